#!/bin/sh
# virtlab micro guest init (PID 1 from the initramfs, busybox sh).
# Loads the virtio modules, mounts the image's disk, reports its kernel uptimes on the
# console, serves the exec agent on a virtio-serial port, runs the image's entrypoint
# inside the disk's root and powers off when it exits, like a container's PID 1 would.
export PATH=/bin
mount -t proc proc /proc
read -r t_init _ < /proc/uptime
# The accelerator probe only needs to know that the kernel reached userspace.
case " $(cat /proc/cmdline) " in *" virtlab.probe "*) echo VIRTLAB_PROBE_OK > /dev/console; poweroff -f ;; esac
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /newroot
mount -t tmpfs -o mode=0755 tmpfs /run

say() { echo "virtlab-init: $*" > /dev/console; }
die() { say "$*"; echo "VIRTLAB_EXIT 125" > /dev/console; sync; poweroff -f; sleep 5; }

while read -r m; do
  [ -n "$m" ] && { insmod "/lib/modules/$m" || say "cannot load $m"; }
done < /etc/virtlab/modules
# Loaded modules live in kernel memory; their files would keep RAM in the initramfs (64 MiB guests).
rm -f /lib/modules/*.ko

# The host passes the VM's config (argv, env, workdir, network) through fw_cfg,
# base64-encoded; it is a shell fragment the host built with quoting. The micro profile
# needs it; the full profile uses its network part.
. /etc/virtlab/lib.sh
cfg=/sys/firmware/qemu_fw_cfg/by_name/opt/org.virtlab/config/raw
has_cfg=
if [ -r "$cfg" ]; then
  base64 -d "$cfg" > /run/config 2>/dev/null || die "config is not base64"
  . /run/config
  has_cfg=1
fi

# Full profile: mount the disk's root and hand over to the image's own init (systemd).
case " $(cat /proc/cmdline) " in
  *" virtlab.full "*)
    root=$(sed -n 's/.*virtlab\.root=\([^ ]*\).*/\1/p' /proc/cmdline)
    n=0
    while [ ! -b "$root" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
    mount -t ext4 -o rw "$root" /newroot || die "cannot mount $root"
    mkdir -p /run/virtlab
    [ -z "$has_cfg" ] || vl_net_up 2>/dev/console
    echo "$t_init" > /run/virtlab/init-uptime
    for m in dev proc sys run; do mount --move "/$m" "/newroot/$m" || die "cannot move /$m"; done
    exec switch_root /newroot /sbin/init
    ;;
esac

[ -n "$has_cfg" ] || die "no config in fw_cfg (opt/org.virtlab/config)"

n=0
while [ ! -b "$VL_ROOT_DEV" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
mount -t ext4 -o rw "$VL_ROOT_DEV" /newroot || die "cannot mount $VL_ROOT_DEV"
for d in proc sys dev tmp run; do [ -d "/newroot/$d" ] || mkdir -p "/newroot/$d"; done
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run

hostname "$VL_HOSTNAME"
vl_net_up 2>/dev/console

# Commands run in the image's root; with a timeout, through a shell that sources the
# config again (timeout cannot run a shell function).
vl_agent_run() {
  t=$1
  shift
  if [ "$t" -gt 0 ]; then
    timeout -s KILL "$t" /bin/sh -c '. /etc/virtlab/lib.sh; . /run/config; vl_in_root "$@"' vl "$@"
  else
    vl_in_root "$@"
  fi
}

vl_stop() {
  pid=$(cat /run/entry.pid 2>/dev/null)
  say "stopping the entrypoint (pid $pid)"
  [ -n "$pid" ] && kill -TERM "$pid"
  sleep "${1:-5}"
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
}

vl_agent_stop() { vl_stop "$1" & }
VL_AGENT_DIR=/run

for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.virtlab.agent ] && { exec 3<>"/dev/${p##*/}" && vl_agent_serve; } </dev/null >/dev/null 2>&1 &
done

read -r t_ready _ < /proc/uptime
echo "VIRTLAB_READY init=$t_init ready=$t_ready" > /dev/console
vl_entry < /dev/null > /dev/console 2>&1 &
echo $! > /run/entry.pid
wait $!
rc=$?
echo "VIRTLAB_EXIT $rc" > /dev/console
sync
umount /newroot/dev/shm /newroot/dev/pts /newroot/run /newroot/dev /newroot/sys /newroot/proc 2>/dev/null
mount -o remount,ro /newroot 2>/dev/null
poweroff -f

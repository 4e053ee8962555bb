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

# Full profile: mount the disk's root and hand over to the image's own init (systemd).
case " $(cat /proc/cmdline) " in
  *" virtlab.full "*)
    root=$(sed -n 's/.*virtlab\.root=\([^ ]*\).*/\1/p' /proc/cmdline)
    n=0
    while [ ! -b "$root" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
    mount -t ext4 -o rw "$root" /newroot || die "cannot mount $root"
    mkdir -p /run/virtlab
    echo "$t_init" > /run/virtlab/init-uptime
    for m in dev proc sys run; do mount --move "/$m" "/newroot/$m" || die "cannot move /$m"; done
    exec switch_root /newroot /sbin/init
    ;;
esac

# The host passes the VM's config (argv, env, workdir, network) through fw_cfg,
# base64-encoded; it is a shell fragment the host built with quoting.
cfg=/sys/firmware/qemu_fw_cfg/by_name/opt/org.virtlab/config/raw
[ -r "$cfg" ] || die "no config in fw_cfg (opt/org.virtlab/config)"
base64 -d "$cfg" > /run/config 2>/dev/null || die "config is not base64"
. /etc/virtlab/lib.sh
. /run/config

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
ip link set lo up 2>/dev/null
if [ -n "$VL_NET_ADDR" ]; then
  ip addr add "$VL_NET_ADDR" dev eth0 && ip link set eth0 up || say "cannot configure eth0"
  [ -n "$VL_NET_GW" ] && ip route add default via "$VL_NET_GW"
fi

agent_exec() {
  id=$1 n=$2 t=$3
  set --
  while [ "$n" -gt 0 ]; do
    read -r a <&3 || return 1
    v=$(echo "$a" | base64 -d; echo x)
    set -- "$@" "${v%x}"
    n=$((n - 1))
  done
  if [ "$t" -gt 0 ]; then
    timeout -s KILL "$t" /bin/sh -c '. /etc/virtlab/lib.sh; . /run/config; vl_in_root "$@"' vl "$@" \
      </dev/null >/run/agent.out 2>/run/agent.err 3>&- 4>&-
  else
    vl_in_root "$@" </dev/null >/run/agent.out 2>/run/agent.err 3>&- 4>&-
  fi
  rc=$?
  { echo "OUT $id"; base64 -w 0 /run/agent.out; echo; echo "ERR $id"; base64 -w 0 /run/agent.err; echo
    echo "END $id $rc"; } >&3
  rm -f /run/agent.out /run/agent.err
}

vl_stop() {
  pid=$(cat /run/entry.pid 2>/dev/null)
  say "stopping the entrypoint (pid $pid)"
  [ -n "$pid" ] && kill -TERM "$pid"
  sleep "${1:-5}"
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
}

agent_loop() {
  # Keep the port open for good: closing it would make QEMU drop a host client that
  # connected meanwhile. read returns EOF at once while no host is connected, so poll;
  # the pause is a builtin read with a timeout on an idle FIFO, because forking `sleep`
  # ten times a second costs an idle guest real CPU under TCG (and limits density).
  exec 3<>"$1" || return
  mkfifo /run/agent.idle && exec 4<>/run/agent.idle
  while :; do
    while read -r verb id a b <&3; do
      case "$verb" in
        EXEC) agent_exec "$id" "$a" "$b" ;;
        PING) echo "PONG $id" >&3 ;;
        STOP) echo "STOPPING $id" >&3; vl_stop "$a" & ;;
      esac
    done
    read -t 0.1 -r _ <&4
  done
}

for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.virtlab.agent ] && agent_loop "/dev/${p##*/}" </dev/null >/dev/null 2>&1 &
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

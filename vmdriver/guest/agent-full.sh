#!/bin/sh
# virtlab exec agent for full-profile guests: a systemd service running the image's own
# sh and coreutils. The protocol loop is lib.sh's, shared with the micro init; the VM's
# address was set by virtlab's initramfs before it handed over to systemd (lib.sh vl_net_up).
. /usr/local/lib/virtlab/lib.sh
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.virtlab.agent ] && port="/dev/${p##*/}"
done
[ -n "$port" ] || { echo "virtlab-agent: no org.virtlab.agent port" >&2; exit 1; }
VL_AGENT_DIR=/run/virtlab
mkdir -p "$VL_AGENT_DIR"

vl_agent_run() {
  t=$1
  shift
  if [ "$t" -gt 0 ]; then timeout -s KILL "$t" "$@"; else "$@"; fi
}
vl_agent_stop() { systemctl poweroff --no-block; }

exec 3<>"$port"
vl_agent_serve

#!/bin/sh
# virtlab exec agent for full-profile guests: a systemd service running the image's own
# sh and coreutils. Same line protocol as the micro init's agent (vmdriver/agent.py).
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.virtlab.agent ] && port="/dev/${p##*/}"
done
[ -n "$port" ] || { echo "virtlab-agent: no org.virtlab.agent port" >&2; exit 1; }
mkdir -p /run/virtlab
# Keep the port open: closing it would make QEMU drop a host client that connected meanwhile.
exec 3<>"$port"

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
    timeout -s KILL "$t" "$@" </dev/null >/run/virtlab/agent.out 2>/run/virtlab/agent.err 3>&-
  else
    "$@" </dev/null >/run/virtlab/agent.out 2>/run/virtlab/agent.err 3>&-
  fi
  rc=$?
  { echo "OUT $id"; base64 -w 0 /run/virtlab/agent.out; echo; echo "ERR $id"; base64 -w 0 /run/virtlab/agent.err; echo
    echo "END $id $rc"; } >&3
  rm -f /run/virtlab/agent.out /run/virtlab/agent.err
}

while :; do
  while read -r verb id a b <&3; do
    case "$verb" in
      EXEC) agent_exec "$id" "$a" "$b" ;;
      PING) echo "PONG $id" >&3 ;;
      STOP) echo "STOPPING $id" >&3; systemctl poweroff --no-block ;;
    esac
  done
  sleep 0.5  # dash has no read -t; a full VM is not a density workload
done

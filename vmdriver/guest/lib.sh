# virtlab guest helpers, sourced by the micro init, by its exec wrapper and by the full
# profile's agent (busybox ash and dash: POSIX sh only).

# Run argv inside the image's root (the mounted disk), in its working directory,
# with exactly the image's environment (vl_env comes from the host's config).
vl_in_root() { vl_env /bin/busybox nsenter -r/newroot -w"/newroot$VL_WORKDIR" -F -- "$@"; }

# The VM's address on the isolated network (VL_NET_ADDR/VL_NET_GW from the host's config).
vl_net_up() {
  ip link set lo up 2>/dev/null
  [ -n "$VL_NET_ADDR" ] || return 0
  ip addr add "$VL_NET_ADDR" dev eth0 && ip link set eth0 up || { echo "virtlab: cannot configure eth0" >&2; return 1; }
  [ -z "$VL_NET_GW" ] || ip route add default via "$VL_NET_GW"
}

# The exec agent (vmdriver/agent.py is the host side) on the virtio-serial port open as fd 3.
# The caller defines vl_agent_run TIMEOUT ARGV... (run a command; stdio already redirected),
# vl_agent_stop GRACE, and sets VL_AGENT_DIR (where output is spooled).
vl_agent_exec() {
  id=$1 n=$2 t=$3
  set --
  while [ "$n" -gt 0 ]; do
    read -r a <&3 || return 1
    v=$(echo "$a" | base64 -d; echo x)
    set -- "$@" "${v%x}"
    n=$((n - 1))
  done
  vl_agent_run "$t" "$@" </dev/null >"$VL_AGENT_DIR/agent.out" 2>"$VL_AGENT_DIR/agent.err" 3>&-
  rc=$?
  { echo "OUT $id"; base64 -w 0 "$VL_AGENT_DIR/agent.out"; echo; echo "ERR $id"; base64 -w 0 "$VL_AGENT_DIR/agent.err"
    echo; echo "END $id $rc"; } >&3
  rm -f "$VL_AGENT_DIR/agent.out" "$VL_AGENT_DIR/agent.err"
}

vl_agent_serve() {
  # The port stays open for good: closing it would make QEMU drop a host client that
  # connected meanwhile. While no host is connected, read returns EOF at once; a write
  # then blocks in the guest kernel until a host connects (virtio_console), so an idle
  # agent sleeps instead of polling, which under TCG costs host CPU per idle guest.
  # The host's client skips the empty line.
  while :; do
    while read -r verb id a b <&3; do
      case "$verb" in
        EXEC) vl_agent_exec "$id" "$a" "$b" ;;
        PING) echo "PONG $id" >&3 ;;
        STOP) echo "STOPPING $id" >&3; vl_agent_stop "$a" ;;
      esac
    done
    echo >&3
  done
}

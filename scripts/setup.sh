#!/usr/bin/env bash
# Installs what virtlab needs on a Debian/Ubuntu host, idempotently:
# Debian packages, the .venv, the daemons libvirt needs, the /dev/kvm
# permission libvirt expects. The OCI validation suite's Go packages are in the list.
# A second run installs nothing and takes about a second.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

say() { printf 'setup: %s\n' "$*"; }
logs=/var/log/virtlab   # apt's and pip's output, kept for when they fail

if [ "$(id -u)" -ne 0 ]; then
  say "run me as root (apt-get, libvirtd and /dev/kvm need it)" >&2
  exit 1
fi

# 1. Debian packages: install only what is missing.
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/apt-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$logs"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >$logs/apt.log 2>&1 || {
    tail -n 30 $logs/apt.log >&2; say "apt-get install failed (log: $logs/apt.log)" >&2; exit 1; }
fi

# 2. The venv, with Debian's own python3 so that every machine gets the same one.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
stamp=.venv/.virtlab-installed
# Reinstall when pyproject.toml changes or a top-level package appears (editable installs map them).
want=$( (cat pyproject.toml; ls -d */__init__.py) | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing Python packages into .venv"
  mkdir -p "$logs"
  # compat mode: a plain .pth path entry. The default editable finder imports pathlib
  # (and with it urllib.parse and ipaddress) at every interpreter start: ~10 ms per command.
  .venv/bin/pip install -q -e '.[dev]' --config-settings editable_mode=compat >$logs/pip.log 2>&1 || {
    tail -n 30 $logs/pip.log >&2; say "pip install failed (log: $logs/pip.log)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# virtlab-runtime is started for every container: replace pip's console script with a
# launcher that skips site-packages processing (python -SI; the runtime needs only the stdlib).
if ! grep -q 'install-launcher' .venv/bin/virtlab-runtime 2>/dev/null; then
  .venv/bin/virtlab-runtime install-launcher "$PWD/.venv/bin/virtlab-runtime"
fi
# virtlab likewise: the venv's python with -SI and its two paths set here. Site processing
# (the editable .pth, setuptools' distutils hack) costs ~3 ms of every command. The venv's
# python stays sys.executable, so what the CLI spawns with it gets the usual site-packages.
# It starts in bench.entry (a plain `run` without click). The marker names the entry module,
# so an older launcher (bench.cli) is replaced.
if ! grep -q 'lean launcher, bench.entry' .venv/bin/virtlab 2>/dev/null; then
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cat > .venv/bin/virtlab.new <<EOF
#!$PWD/.venv/bin/python3 -SI
# virtlab's lean launcher, bench.entry (written by scripts/setup.sh): no site-packages scan at start.
import sys
sys.path[0:0] = ['$PWD', '$site']
from bench.entry import main
sys.exit(main())
EOF
  chmod 755 .venv/bin/virtlab.new && mv .venv/bin/virtlab.new .venv/bin/virtlab
fi

# 3. libvirt: no systemd here, so start the daemons by hand when they are not running.
mkdir -p /var/lib/libvirt/dnsmasq   # libvirt needs it to start any network; some installs lack it
if ! pgrep -x virtlogd >/dev/null; then say "starting virtlogd"; virtlogd -d; fi
if ! pgrep -x libvirtd >/dev/null; then say "starting libvirtd"; libvirtd -d; fi
for _ in $(seq 50); do [ -S /var/run/libvirt/libvirt-sock ] && break; sleep 0.1; done

# 4. /dev/kvm as udev sets it on ordinary distros. Root-only /dev/kvm makes
#    libvirt re-probe QEMU on every domain start (about a minute each).
if [ -e /dev/kvm ]; then
  getent group kvm >/dev/null || groupadd -r kvm
  if [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
    say "fixing /dev/kvm permissions (group kvm, mode 0660) for libvirt"
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm
  fi
fi

exit 0

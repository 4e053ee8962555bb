"""Run inside a fresh network namespace (and a sysfs of its own): publish a port with one firewall backend.

Used by test_network_backends.py: `unshare --net --mount` gives this script a private netns, so the
firewall backend under test (nftables or iptables) changes nothing on the host, and
everything it made dies with the namespace even if the script fails.
Prints one `key value` line per check.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, sys.argv[3])
from runtime.network import NetworkManager, PortSpec  # noqa: E402


def listing(kind: str) -> str:
    argv = ["nft", "list", "ruleset"] if kind == "nftables" else ["iptables-save"]
    return subprocess.run(argv, capture_output=True, text=True).stdout


def main() -> None:
    kind, work = sys.argv[1], sys.argv[2]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    w = tempfile.mkdtemp(dir=work)
    ns = os.path.join(w, "ctr")
    open(ns, "w").close()
    subprocess.run(["unshare", f"--net={ns}", "true"], check=True)
    nm = NetworkManager(os.path.join(w, "network"), firewall=kind)
    port = 18123
    a = nm.attach("c" * 64, ns, ports=[PortSpec("0.0.0.0", port, 8000)])
    print("backend", nm.firewall.kind)
    server = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('0.0.0.0', 8000)); s.listen()\n"
              "while True:\n c,a=s.accept(); c.sendall(('hi '+a[0]+'\\n').encode()); c.close()\n")
    srv = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c", server])
    try:
        for ip in ("127.0.0.1", a.gateway):
            for _ in range(50):
                try:
                    with socket.create_connection((ip, port), timeout=5) as s:
                        print(f"reply-{'loopback' if ip.startswith('127.') else 'gateway'}", s.makefile().readline().strip())
                    break
                except ConnectionRefusedError:
                    time.sleep(0.1)
    finally:
        srv.kill()
        srv.wait()
    print("rules-while-attached", "18123" in listing(kind))
    nm.detach("c" * 64)
    print("rules-after-detach", "18123" in listing(kind))
    nm.teardown()
    print("ours-after-teardown", any(x in listing(kind) for x in ("virtlab_", ":VL")))
    subprocess.run(["umount", ns], check=True)
    os.unlink(ns)


if __name__ == "__main__":
    main()

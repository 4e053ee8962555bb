"""Run inside a fresh network namespace: with ip_forward=1 there, are two networks kept apart?

Used by test_network_backends.py: `unshare --net --mount` gives this script a network namespace of its
own, so ip_forward=1 and the firewall backend's rules exist only there (the host's forwarding
sysctl and rules are never touched), and everything dies with the namespace even if the script fails.
Prints one `key value` line per check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, sys.argv[3])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_helpers import Netns  # noqa: E402

from runtime.network import NetworkManager, nft  # noqa: E402


def reaches(ns: Netns, ip: str) -> bool:
    return ns.run(f"busybox ping -c1 -W1 {ip}").returncode == 0


def rules(nm: NetworkManager) -> str:
    fw = nm.firewall
    if fw.kind == "nftables":
        return nft.run(f"list chain ip {fw.table} isolate")
    return subprocess.run(["iptables", "-S", fw.iso_chain], capture_output=True, text=True).stdout


def main() -> None:
    kind, work = sys.argv[1], sys.argv[2]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # this namespace's own sysctl
        f.write("1")
    w = tempfile.mkdtemp(dir=work)
    nm = NetworkManager(os.path.join(w, "one", "network"), firewall=kind)
    other = NetworkManager(os.path.join(w, "two", "network"), firewall=kind)
    nm.create("iso1")
    two = nm.create("iso2")
    n1, n2, n3, n4 = (Netns(os.path.join(w, f"ns{i}")) for i in range(4))
    a = nm.attach("a" * 64, n1.path, network="iso1")
    b = nm.attach("b" * 64, n2.path, network="iso2")
    c = nm.attach("c" * 64, n3.path, network="iso1")
    d = other.attach("d" * 64, n4.path)  # another store's default network
    print("backend", nm.firewall.kind)
    print("same-network", reaches(n1, c.ip))
    print("other-gateway", reaches(n1, b.gateway))
    print("a-to-b", reaches(n1, b.ip))
    print("b-to-a", reaches(n2, a.ip))
    print("a-to-other-store", reaches(n1, d.ip))
    print("other-store-to-a", reaches(n4, a.ip))
    print("rules-name-iso2", two["bridge"] in rules(nm))
    # the control: without this store's rules and the other store's, the host routes between them
    for m in (nm, other):
        fw = m.firewall
        if fw.kind == "nftables":
            nft.run(f"flush chain ip {fw.table} isolate")
        else:
            fw._ipt(["-t", "filter", "-F", fw.iso_chain])
    print("a-to-b-without-rules", reaches(n1, b.ip))
    nm.detach("b" * 64)
    nm.remove("iso2")
    print("rules-name-iso2-after-rm", two["bridge"] in rules(nm))
    nm.teardown()
    other.teardown()
    for ns in (n1, n2, n3, n4):
        ns.destroy()


if __name__ == "__main__":
    main()

"""Measure runtime/network on this machine: import cost, attach/detach latency vs count, the loopback path.

Run as root:  .venv/bin/python tests/integration/network/bench_network.py --n 200 [--json out.json]
Everything it creates lives in a temporary store and namespaces, and is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from runtime.network import NetworkManager, PortSpec  # noqa: E402


def median_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 3)


def p95_ms(xs: list[float]) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(0.95 * len(xs)))] * 1000, 3)


def import_costs(rounds: int = 7) -> dict:
    """Wall time of importing pyroute2's IPRoute, and of virtlab's lean path, in fresh interpreters."""
    def timed(code: str) -> float:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
        return float(out.stdout.strip())

    heavy = "import time; t=time.perf_counter(); from pyroute2 import IPRoute; print(time.perf_counter()-t)"
    lean = ("import time, tempfile; d=tempfile.TemporaryDirectory(); t=time.perf_counter(); "
            "from runtime.network import NetworkManager, PortSpec; "
            "nm=NetworkManager(d.name+'/network'); nm.hosts_for('c1'); print(time.perf_counter()-t); d.cleanup()")
    links = ("import time; t=time.perf_counter(); import runtime.network.links; print(time.perf_counter()-t)")
    return {
        "pyroute2_import_ms": median_ms([timed(heavy) for _ in range(rounds)]),
        "runtime_network_lean_path_ms": median_ms([timed(lean) for _ in range(rounds)]),
        "runtime_network_links_import_ms": median_ms([timed(links) for _ in range(rounds)]),
    }


def make_netns(d: Path, i: int) -> str:
    p = d / f"ns{i}"
    p.touch()
    subprocess.run(["unshare", f"--net={p}", "true"], check=True)
    return str(p)


def drop_netns(path: str) -> None:
    subprocess.run(["umount", path], capture_output=True)
    os.unlink(path)


def attach_detach(n: int, work: Path) -> dict:
    """Attach n namespaces to one network (1 in 10 publishes a port), then detach them, timing each call."""
    nm = NetworkManager(work / "store" / "network")
    spaces = [make_netns(work, i) for i in range(n)]
    try:
        t0 = time.perf_counter()
        nm.attach("warm", make_netns(work, n))  # first attach pays the pyroute2 import and the bridge
        first = time.perf_counter() - t0
        plain, ported = [], []
        for i, ns in enumerate(spaces):
            ports = [PortSpec("127.0.0.1", 0, 80)] if i % 10 == 0 else []
            t = time.perf_counter()
            nm.attach(f"c{i:06d}", ns, name=f"c{i}", ports=ports)
            (ported if ports else plain).append(time.perf_counter() - t)
        by_decile = [median_ms(plain[k: k + max(1, len(plain) // 10)]) for k in range(0, len(plain), max(1, len(plain) // 10))]
        live_detach, dead_detach = [], []
        half = n // 2
        for i, ns in enumerate(spaces):
            if i >= half:
                drop_netns(ns)  # the container exited first: its veth pair is already going away
            t = time.perf_counter()
            nm.detach(f"c{i:06d}")
            (dead_detach if i >= half else live_detach).append(time.perf_counter() - t)
        return {
            "n": n,
            "first_attach_ms": round(first * 1000, 1),
            "attach_ms_median": median_ms(plain),
            "attach_ms_p95": p95_ms(plain),
            "attach_ms_median_by_decile": by_decile,
            "attach_with_port_ms_median": median_ms(ported) if ported else None,
            "detach_live_netns_ms_median": median_ms(live_detach),
            "detach_dead_netns_ms_median": median_ms(dead_detach) if dead_detach else None,
        }
    finally:
        nm.teardown()
        nm.close()
        for ns in spaces:
            if os.path.exists(ns):
                drop_netns(ns)
        warm = work / f"ns{n}"
        if warm.exists():
            drop_netns(str(warm))


def ab_versus_iproute2(work: Path, n: int = 40) -> dict:
    """virtlab's attach and the same five steps with `ip` commands, interleaved (A, B, A, B) on one load."""
    nm = NetworkManager(work / "abstore" / "network")
    br = "vlbrbench0"
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.250.0.1/16", "dev", br], check=True)
    subprocess.run(["ip", "link", "set", br, "up"], check=True)
    ours, theirs, our_del, their_del = [], [], [], []
    spaces = []
    try:
        nm.attach("warm", make_netns(work, 600000))
        spaces.append(str(work / "ns600000"))
        for i in range(n):
            a, b = make_netns(work, 500000 + 2 * i), make_netns(work, 500001 + 2 * i)
            spaces += [a, b]
            t = time.perf_counter()
            nm.attach(f"ab{i:04d}", a)
            ours.append(time.perf_counter() - t)
            veth, ip = f"vlvbench{i}", f"10.250.{i // 250}.{i % 250 + 2}"
            t = time.perf_counter()
            for cmd in (
                f"ip link add {veth} master {br} up type veth peer name eth0 netns {b}",
                f"nsenter --net={b} ip addr add {ip}/16 dev eth0",
                f"nsenter --net={b} ip link set eth0 up",
                f"nsenter --net={b} ip link set lo up",
                f"nsenter --net={b} ip route add default via 10.250.0.1",
            ):
                subprocess.run(cmd.split(), check=True)
            theirs.append(time.perf_counter() - t)
        for i in range(n):
            t = time.perf_counter()
            nm.detach(f"ab{i:04d}")
            our_del.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["ip", "link", "del", f"vlvbench{i}"], check=True)
            their_del.append(time.perf_counter() - t)
    finally:
        nm.teardown()
        nm.close()
        subprocess.run(["ip", "link", "del", br], capture_output=True)
        for ns in spaces:
            drop_netns(ns)
    return {
        "n": n,
        "virtlab_attach_ms_median": median_ms(ours),
        "iproute2_attach_ms_median": median_ms(theirs),
        "ratio": round(statistics.median(ours) / statistics.median(theirs), 2),
        "virtlab_detach_ms_median": median_ms(our_del),
        "iproute2_link_del_ms_median": median_ms(their_del),
    }


def loopback_path(work: Path, rounds: int = 300) -> dict:
    """Connect+request+reply latency: direct to the container, via DNAT on 127.0.0.1, via DNAT on the gateway."""
    nm = NetworkManager(work / "lstore" / "network")
    ns = make_netns(work, 999999)
    srv = None
    try:
        a = nm.attach("srv", ns, ports=[PortSpec("0.0.0.0", 0, 7000)])
        hp = a.ports[0].host_port
        code = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('0.0.0.0', 7000)); s.listen(128)\n"
                "while True:\n    c,_=s.accept(); c.recv(16); c.sendall(b'ok'); c.close()\n")
        srv = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c", code])
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((a.ip, 7000), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)

        def rtt(ip: str, port: int) -> list[float]:
            out = []
            for _ in range(rounds):
                t = time.perf_counter()
                with socket.create_connection((ip, port), timeout=5) as s:
                    s.sendall(b"x")
                    s.recv(16)
                out.append(time.perf_counter() - t)
            return out

        rtt(a.ip, 7000)  # warm caches
        res = {}
        for label, ip, port in (("direct_container_ip", a.ip, 7000), ("dnat_127.0.0.1", "127.0.0.1", hp),
                                ("dnat_gateway_ip", a.gateway, hp), ("direct_container_ip_again", a.ip, 7000)):
            res[f"{label}_us_median"] = round(statistics.median(rtt(ip, port)) * 1e6, 1)
        return res
    finally:
        if srv:
            srv.kill()
            srv.wait()
        nm.teardown()
        nm.close()
        drop_netns(ns)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="containers to attach (default 200)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = Path(tempfile.mkdtemp(prefix="vlnet-bench-"))
    try:
        res = {"host": os.uname().nodename, "kernel": os.uname().release, "python": sys.version.split()[0]}
        res["imports"] = import_costs()
        res["attach_detach"] = attach_detach(args.n, work)
        res["ab_versus_iproute2"] = ab_versus_iproute2(work)
        res["loopback_path"] = loopback_path(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()

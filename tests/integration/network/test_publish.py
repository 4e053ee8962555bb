"""Published ports: DNAT from 127.0.0.1 and the bridge IP, -P, in-use errors, exact rule removal, the guard."""

from __future__ import annotations

import os
import socket
import time

import pytest
from netns_helpers import tcp_serving, wait_listening

from runtime.network import nft
from runtime.network.errors import PortInUse
from runtime.network.ports import PortSpec, parse_publish

pytestmark = pytest.mark.root

A, B = "a" * 64, "b" * 64


def fetch(ip: str, port: int, timeout: float = 5) -> str:
    """Connect like curl would and read the server's one-line answer."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        return s.makefile().readline().strip()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_published_port_reached_from_loopback_and_bridge_ip(nm, netns):
    n1 = netns()
    port = free_port()
    a = nm.attach(A, n1.path, ports=parse_publish(f"{port}:8000"))
    assert a.ports == [PortSpec("0.0.0.0", port, 8000, "tcp")]
    with tcp_serving(n1, 8000, "hello"):
        answer = fetch("127.0.0.1", port)
        # loopback clients appear as the bridge gateway (masquerade), not as the container's own 127.0.0.1
        assert answer == f"hello {a.gateway}"
        assert fetch(a.gateway, port) == f"hello {a.gateway}"


def test_publish_on_one_host_ip_only(nm, netns):
    n1 = netns()
    port = free_port()
    a = nm.attach(A, n1.path, ports=[PortSpec("127.0.0.1", port, 8000)])
    with tcp_serving(n1, 8000, "lo-only"):
        assert fetch("127.0.0.1", port).startswith("lo-only")
        with pytest.raises(OSError):  # not published on the bridge address: nothing listens there
            fetch(a.gateway, port, timeout=2)


def test_random_host_ports(nm, netns):
    n1 = netns()
    a = nm.attach(A, n1.path, ports=[PortSpec(container_port=8000), PortSpec(container_port=8001, proto="udp")])
    tcp = [p for p in a.ports if p.proto == "tcp"][0]
    assert tcp.host_port >= 1024 and tcp.container_port == 8000
    assert nm.ports_of(A) == a.ports
    with tcp_serving(n1, 8000, "random"):
        assert fetch("127.0.0.1", tcp.host_port).startswith("random")


def test_udp_is_published(nm, netns):
    n1 = netns()
    port = free_port()
    nm.attach(A, n1.path, ports=[PortSpec("127.0.0.1", port, 5300, "udp")])
    code = ("import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5300))\n"
            "d, a = s.recvfrom(100); s.sendto(d.upper(), a)\n")
    import sys

    srv = n1.popen([sys.executable, "-c", code])
    try:
        wait_listening(n1, 5300, "udp")
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(5)
        c.sendto(b"ping", ("127.0.0.1", port))
        assert c.recvfrom(100)[0] == b"PING"
        c.close()
    finally:
        srv.kill()
        srv.wait()


def test_port_bound_by_a_host_process_fails_before_anything_is_created(nm, netns):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        links = set(os.listdir("/sys/class/net"))
        with pytest.raises(PortInUse, match=f"cannot publish 0.0.0.0:{port}/tcp: the port is already in use"):
            nm.attach(A, netns().path, ports=[PortSpec("0.0.0.0", port, 80)])
        assert set(os.listdir("/sys/class/net")) == links
        assert nm.store.all_endpoints() == [] and nm.store.ports() == []
        assert not nm.firewall.exists()
    finally:
        listener.close()


def test_port_published_by_another_container(nm, netns):
    port = free_port()
    nm.attach(A, netns().path, ports=[PortSpec("0.0.0.0", port, 80)])
    links = set(os.listdir("/sys/class/net"))
    with pytest.raises(PortInUse, match=f"already published by container {A[:12]}"):
        nm.attach(B, netns().path, ports=[PortSpec("127.0.0.1", port, 80)])
    assert set(os.listdir("/sys/class/net")) == links
    assert nm.endpoints(B) == []
    nm.detach(A)
    assert nm.attach(B, netns().path, ports=[PortSpec("127.0.0.1", port, 80)]).ports[0].host_port == port


def test_detach_removes_exactly_the_containers_rules(nm, netns):
    pa, pb = free_port(), free_port()
    nm.attach(A, netns().path, ports=[PortSpec("0.0.0.0", pa, 80)])
    nm.attach(B, netns().path, ports=[PortSpec("0.0.0.0", pb, 80)])
    table = nm.firewall.table
    listing = nft.run(f"list table ip {table}")
    assert f"dport {pa} dnat" in listing and f"dport {pb} dnat" in listing
    nm.detach(A)
    listing = nft.run(f"list table ip {table}")
    assert f"dport {pa} " not in listing and f"dport {pb} dnat" in listing
    assert nm.store.ports() == [{"container_id": B, "container_port": 80, "host_ip": "0.0.0.0", "host_port": pb,
                                 "proto": "tcp"}]
    nm.detach(B)
    assert nm.firewall.chains() == set()
    nm.prune()
    assert not nm.firewall.exists()  # the idle default bridge went, and the table with it


def _hostile_sender(nm, netns):
    """A container that routes 127.0.0.1 out of eth0 to the host, and a UDP sink on the host's 127.0.0.1."""
    import sys

    n1 = netns()
    a = nm.attach(A, n1.path, ports=[PortSpec(container_port=80)])
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(1.5)
    port = sink.getsockname()[1]
    r = n1.run("sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1 && "
               "ip route del local 127.0.0.0/8 dev lo table local && ip route del local 127.0.0.1 dev lo table local && "
               f"ip route add 127.0.0.1/32 via {a.gateway} dev eth0 onlink")
    assert r.returncode == 0, r.stderr
    send = (f"{sys.executable} -c \"import socket; "
            f"socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'probe', ('127.0.0.1', {port}))\"")

    def received() -> bool:
        n1.run(send)
        try:
            return sink.recvfrom(100)[0] == b"probe"
        except TimeoutError:
            return False

    return sink, received


def test_guard_blocks_containers_from_host_loopback_services(nm, netns):
    """CVE-2020-8558: with route_localnet on the bridge, a container could reach 127.0.0.1 services."""
    sink, received = _hostile_sender(nm, netns)
    try:
        assert not received(), "a container reached a host service bound to 127.0.0.1"
    finally:
        sink.close()


def test_guard_control_without_it_the_packet_arrives(nm, netns):
    """The control for the test above: flush the guard and the same packet gets through."""
    sink, received = _hostile_sender(nm, netns)
    try:
        # Every store's guard covers all virtlab bridges, so the control needs ours to be the only one.
        others = [t for t in nft.run("list tables").split() if t.startswith("virtlab_") and t != nm.firewall.table]
        if others:
            pytest.skip(f"other virtlab stores' guards are active ({', '.join(others)}); run alone to see the control")
        nft.run(f"flush chain ip {nm.firewall.table} guard")
        assert received()
    finally:
        sink.close()


def test_many_published_ports_and_reattach_speed_is_sane(nm, netns):
    ports = [PortSpec("127.0.0.1", free_port(), 9000 + i) for i in range(5)]
    t = time.perf_counter()
    a = nm.attach(A, netns().path, ports=ports)
    assert len(a.ports) == 5
    assert time.perf_counter() - t < 30  # not a benchmark: only catches a hang
    listing = nft.run(f"list table ip {nm.firewall.table}")
    assert listing.count("dnat to") == 5


def test_rules_flushed_behind_our_back_are_rebuilt_and_detach_still_works(nm, netns):
    n1 = netns()
    nm.attach(A, n1.path, ports=[PortSpec("127.0.0.1", free_port(), 8000)])
    nft.run(f"delete table ip {nm.firewall.table}")  # an admin ran `nft flush ruleset`
    port = free_port()
    b = nm.attach(B, netns().path, ports=[PortSpec("127.0.0.1", port, 8000)])
    assert f"dport {port} dnat to {b.ip}:8000" in nft.run(f"list table ip {nm.firewall.table}")
    nm.detach(A)  # its rules are gone already: no error
    nm.detach(B)
    assert nm.firewall.chains() == set()


def test_requested_address_outside_the_subnet_creates_nothing(nm, netns):
    from runtime.network.errors import InvalidArgument

    nm.create("fixed", subnet="10.235.0.0/24")
    links = set(os.listdir("/sys/class/net"))
    with pytest.raises(InvalidArgument, match="not a usable address"):
        nm.attach(A, netns().path, network="fixed", ip="10.236.0.5")
    assert set(os.listdir("/sys/class/net")) == links
    assert nm.store.all_endpoints() == []
    assert nm.attach(A, netns().path, network="fixed", ip="10.235.0.77").ip == "10.235.0.77"


def test_port_published_by_another_store_is_refused(nm, netns, tmp_path):
    from runtime.network import NetworkManager

    other = NetworkManager(tmp_path / "other" / "network")
    try:
        port = free_port()
        other.attach(A, netns().path, ports=[PortSpec("0.0.0.0", port, 80)])
        links = set(os.listdir("/sys/class/net"))
        with pytest.raises(PortInUse, match=f"already published by another virtlab store \\(nft table {other.firewall.table}"):
            nm.attach(B, netns().path, ports=[PortSpec("127.0.0.1", port, 80)])
        assert set(os.listdir("/sys/class/net")) == links
        assert nm.store.all_endpoints() == []
        # a different port is fine
        assert nm.attach(B, netns().path, ports=[PortSpec("127.0.0.1", free_port(), 80)]).ports
    finally:
        other.teardown()
        other.close()

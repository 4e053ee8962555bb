"""Containers on bridge networks: addresses, /etc/hosts, name resolution between peers, published ports."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from runtime.engine import ContainerSpec
from runtime.engine.errors import EngineError

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def user_network(engine):
    from runtime.network import NetworkManager

    nm = NetworkManager(engine.root / "network")
    nm.create("vltestnet", subnet="10.231.7.0/24")
    yield "vltestnet"
    for c in engine.list(all=True):
        engine.remove(c.id, force=True)
    nm.remove("vltestnet")


def test_default_bridge_gives_an_address_and_hosts(engine):
    c = engine.create(ContainerSpec(image="busybox", cmd=["sh", "-c", "ip -4 addr show eth0; cat /etc/hosts"],
                                    name="nettest"))
    engine.start(c.id)
    assert engine.wait(c.id) == 0
    out = "\n".join(e.text for e in engine.logs(c.id))
    ip = engine.inspect(c.id)
    assert "inet 10." in out and "nettest" in out and "localhost" in out
    engine.remove(c.id)
    assert not any(n.startswith(f"vl-{c.id[:12]}") for n in __import__("os").listdir("/run/netns"))
    del ip


def test_peers_resolve_each_other_by_name(engine, user_network):
    srv = engine.create(ContainerSpec(image="busybox", cmd=["sleep", "60"], name="server", network=user_network))
    engine.start(srv.id)
    cli = engine.create(ContainerSpec(image="busybox", cmd=["sleep", "60"], name="client", network=user_network))
    engine.start(cli.id)
    r = engine.exec(cli.id, ["ping", "-c", "1", "-W", "2", "server"])
    assert r.exit_code == 0, r.stdout + r.stderr
    srv_ip = engine.inspect("server")["NetworkSettings"]["Networks"][user_network]["IPAddress"]
    assert srv_ip.startswith("10.231.7.")
    assert srv_ip in engine.exec(cli.id, ["cat", "/etc/hosts"]).stdout.decode()


def test_published_port_reaches_the_container(engine):
    port = free_port()
    c = engine.create(ContainerSpec(
        image="busybox", network="bridge", ports=[f"127.0.0.1:{port}:80"],
        cmd=["sh", "-c", "mkdir -p /www && echo hello-from-container > /www/index.html && httpd -f -p 80 -h /www"]))
    engine.start(c.id)
    body = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.2)
    assert body == "hello-from-container\n"
    ports = engine.inspect(c.id)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][0]["HostPort"] == str(port)
    # the same host port again: refused, and nothing is left of the second container's start
    c2 = engine.create(ContainerSpec(image="busybox", network="bridge", ports=[f"127.0.0.1:{port}:80"],
                                     cmd=["true"]))
    with pytest.raises(EngineError):
        engine.start(c2.id)
    assert engine.record(c2.id)["State"]["Status"] == "exited"
    engine.remove(c.id, force=True)


def test_unknown_network_is_refused_before_anything_exists(engine):
    with pytest.raises(EngineError, match="not found"):
        engine.create(ContainerSpec(image="busybox", cmd=["true"], network="nosuchnet"))
    assert engine.list(all=True) == []


@pytest.mark.parametrize("net", ["none", "bridge"])
def test_loopback_is_up_in_the_container(engine, net):
    """docker brings lo up in every container's netns: 127.0.0.1 must be reachable without a bridge."""
    script = ("cat /sys/class/net/lo/flags; ip -4 addr show lo; "
              "(echo pong | nc -l -p 5555 &) ; sleep 0.3; nc 127.0.0.1 5555 </dev/null")
    c = engine.create(ContainerSpec(image="busybox", cmd=["sh", "-c", script], network=net))
    engine.start(c.id)
    code = engine.wait(c.id, timeout=30)
    out = "\n".join(e.text for e in engine.logs(c.id))
    assert code == 0, out
    assert "0x9" in out.split("\n")[0], out  # IFF_UP | IFF_LOOPBACK
    assert "inet 127.0.0.1" in out and "pong" in out, out
    netns = engine.inspect(c.id)["NetworkSettings"].get("SandboxKey") or ""
    engine.remove(c.id)
    import os

    assert not any(n == f"vl-{c.id[:12]}" for n in os.listdir("/run/netns"))
    del netns


def test_resolv_conf_is_the_networks(engine):
    """On a bridge, /etc/resolv.conf is what the network says is reachable (no stalling nameserver)."""
    from runtime.network import NetworkManager

    c = engine.create(ContainerSpec(image="busybox", cmd=["cat", "/etc/resolv.conf"]))
    engine.start(c.id)
    assert engine.wait(c.id, timeout=30) == 0
    got = "".join(e.text + "\n" for e in engine.logs(c.id))
    want = NetworkManager(engine.root / "network").resolv_conf_for(c.id)
    assert got.strip() == want.strip()
    engine.remove(c.id)


def test_a_crashed_bridge_container_leaves_no_veth(engine):
    """The monitor SIGKILLed: rm -f still detaches the container and the network collects its leftovers."""
    import os
    import signal

    c = engine.create(ContainerSpec(image="busybox", cmd=["sleep", "60"]))
    engine.start(c.id)
    veth = engine.record(c.id)["NetworkSettings"]["Networks"]["bridge"]["host_ifname"]
    mon = int((engine.store.path(c.id) / "monitor.lock").read_text().split()[0])
    os.kill(mon, signal.SIGKILL)
    os.kill(engine.inspect(c.id)["State"]["Pid"], signal.SIGKILL)
    engine.remove(c.id, force=True)
    assert veth and _gone_soon(veth)
    assert not os.path.exists(f"/run/netns/vl-{c.id[:12]}")


def _gone_soon(link: str, seconds: float = 5.0) -> bool:
    """The kernel deletes a veth with its netns, asynchronously (in its netns cleanup work)."""
    import os

    deadline = time.monotonic() + seconds
    while os.path.exists(f"/sys/class/net/{link}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_removed_containers_veth_goes_with_its_netns_and_its_address_is_reused(engine):
    """rm drops the netns first and lets the kernel delete the veth pair; the bridge stays, as docker0."""
    import os

    seen = []
    for _ in range(2):
        ping_gateway = "ping -c 1 -W 2 $(ip route | awk '/default/ {print $3}')"
        c = engine.create(ContainerSpec(image="busybox", cmd=["sh", "-c", ping_gateway]))
        engine.start(c.id)
        net = engine.record(c.id)["NetworkSettings"]["Networks"]["bridge"]
        assert os.path.exists(f"/sys/class/net/{net['host_ifname']}")
        assert engine.wait(c.id) == 0  # the kept bridge and the reused address work
        engine.remove(c.id)
        assert _gone_soon(net["host_ifname"])
        assert os.path.exists(f"/sys/class/net/{net['bridge']}")
        seen.append(net["ip"])
    assert seen[0] == seen[1]  # released at rm, so the next container gets the same address

"""Bridged networking with real namespaces: veths, addresses, routes, names, cleanup, bad input."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time

import pytest

from runtime.network import NetworkManager
from runtime.network import links as links_mod
from runtime.network.errors import (
    AlreadyAttached,
    BridgeFull,
    InvalidArgument,
    NetnsError,
    NetworkExists,
    NetworkInUse,
    SubnetConflict,
    SubnetExhausted,
)

pytestmark = pytest.mark.root

A, B, C = "a" * 64, "b" * 64, "c" * 64


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _alias(name: str) -> str:
    try:
        with open(f"/sys/class/net/{name}/ifalias") as f:
            return f.read()
    except OSError:
        return ""


def our_links(nm: NetworkManager) -> set[str]:
    """This store's bridges (by ifalias) and the veths enslaved to them."""
    mine = f"virtlab {nm.owner_tag} "
    out = set()
    for name in host_links():
        master = os.path.basename(os.path.realpath(f"/sys/class/net/{name}/master"))
        if _alias(name).startswith(mine) or (name.startswith("vlv") and _alias(master).startswith(mine)):
            out.add(name)
    return out


def test_two_namespaces_on_a_user_network_ping_and_resolve_by_name(nm, netns):
    n1, n2 = netns(), netns()
    net = nm.create("lab")
    a = nm.attach(A, n1.path, network="lab", name="web", aliases=["www"], hostname="webhost")
    b = nm.attach(B, n2.path, network="lab", name="db", aliases=["database"])
    assert a.network == "lab" and a.ifname == "eth0" and a.bridge == net["bridge"]
    assert ipaddress.IPv4Address(a.ip) in ipaddress.IPv4Network(net["subnet"])
    assert a.ip != b.ip

    # inside: eth0 with the address and MAC, lo up, default route via the gateway
    r = n1.run("ip -j addr show eth0; ip -j route show default; ip -j link show lo")
    assert a.ip in r.stdout and a.mac in r.stdout and f'"gateway":"{net["gateway"]}"' in r.stdout.replace(" ", "")
    assert '"operstate":"UNKNOWN"' in r.stdout.replace(" ", "") or "UP" in r.stdout

    assert n1.run(f"busybox ping -c1 -W2 {b.ip}").returncode == 0
    assert n2.run(f"busybox ping -c1 -W2 {a.ip}").returncode == 0

    # names: via the hosts file the engine would bind-mount on /etc/hosts
    h1 = str(nm.hosts_path(A))
    full = open(h1).read()
    assert full.startswith("127.0.0.1\tlocalhost\n") and full.endswith(nm.hosts_for(A))
    assert "localhost" not in nm.hosts_for(A)
    # ahostsv4 = getaddrinfo(AF_INET), what programs call; `getent hosts` asks for IPv6 first
    # and would fall through to DNS for a v4-only name.
    r = n1.resolve(h1, "getent ahostsv4 db && getent ahostsv4 database && busybox ping -c1 -W2 db")
    assert r.returncode == 0, r.stderr
    assert b.ip in r.stdout
    r = n2.resolve(str(nm.hosts_path(B)), f"getent ahostsv4 web | grep -q {a.ip} && busybox ping -c1 -W2 www")
    assert r.returncode == 0, r.stderr
    # the container's resolv.conf: an unknown name fails at once (no unreachable nameserver to wait for)
    assert n2.resolve(str(nm.hosts_path(B)), "getent ahostsv4 nosuchname").returncode != 0
    assert f"{a.ip}\twebhost web www" in nm.hosts_for(A)


def test_hosts_files_follow_joins_and_leaves_in_place(nm, netns):
    n1, n2, n3 = netns(), netns(), netns()
    nm.create("lab")
    nm.attach(A, n1.path, network="lab", name="one")
    hosts_a = nm.hosts_path(A)
    inode = os.stat(hosts_a).st_ino
    c = nm.attach(C, n3.path, network="lab", name="three")
    assert f"{c.ip}\tthree" in hosts_a.read_text()
    nm.attach(B, n2.path, network="lab", name="two")
    assert "\ttwo " in hosts_a.read_text()
    r = n1.resolve(str(hosts_a), "busybox ping -c1 -W2 three")
    assert r.returncode == 0, r.stderr
    nm.detach(C)
    assert "three" not in hosts_a.read_text()
    assert os.stat(hosts_a).st_ino == inode  # same file: a bind mount of it would see every change
    assert not nm.hosts_path(C).exists()


def test_default_bridge_reaches_by_ip_but_not_by_name_as_docker(nm, netns):
    n1, n2 = netns(), netns()
    a = nm.attach(A, n1.path, name="one")
    b = nm.attach(B, n2.path, name="two")
    assert a.network == "bridge"
    assert n1.run(f"busybox ping -c1 -W2 {b.ip}").returncode == 0
    assert "two" not in nm.hosts_for(A)
    assert "one" in nm.hosts_for(A)


def test_default_bridge_is_made_on_demand_kept_as_docker0_and_pruned_when_idle(nm, netns):
    bridge = nm.get("bridge")["bridge"]
    assert bridge not in our_links(nm)
    n1, n2 = netns(), netns()
    nm.attach(A, n1.path)
    assert os.path.exists(f"/sys/class/net/{bridge}")
    assert nm.firewall.exists()
    nm.detach(A)
    assert our_links(nm) == {bridge}  # kept for the next container, as docker keeps docker0
    assert nm.firewall.exists()
    nm.attach(B, n2.path)
    assert nm.prune() == []  # in use: stays, and the default network is never listed as removed
    assert bridge in our_links(nm)
    nm.detach(B)
    assert nm.prune() == []
    assert our_links(nm) == set()
    assert not nm.firewall.exists()
    assert nm.get("bridge")["bridge"] == bridge  # the record stays; the next attach makes it again


def test_everything_is_removed_on_detach_and_remove(nm, netns):
    n1, n2 = netns(), netns()
    before = host_links()
    net = nm.create("lab")
    a = nm.attach(A, n1.path, network="lab", name="x")
    nm.attach(B, n2.path, network="bridge")
    assert a.host_ifname in host_links() and len(a.host_ifname) <= 15 and a.host_ifname.startswith("vlv")
    nm.detach(A)
    nm.detach(A)  # idempotent
    nm.detach(B)
    nm.remove("lab")
    nm.prune()  # the idle default bridge
    assert host_links() == before
    assert our_links(nm) == set()
    assert not nm.firewall.exists()
    store = nm.store
    assert store.all_endpoints() == []
    assert not (store.ipam_dir / net["id"]).exists()
    assert os.listdir(store.hosts_dir) == []
    assert n1.run("ip -br link").stdout.split()[0] == "lo"  # eth0 went with its peer


def test_detach_after_the_namespace_died(nm, netns):
    n1 = netns()
    a = nm.attach(A, n1.path)
    n1.destroy()  # the container exited: the kernel destroys the netns and the veth pair
    deadline = time.time() + 10
    while a.host_ifname in host_links() and time.time() < deadline:
        time.sleep(0.05)
    nm.detach(A)
    assert nm.endpoints(A) == []
    assert our_links(nm) == {nm.get("bridge")["bridge"]}


def test_network_rm_while_in_use_fails_clearly(nm, netns):
    n1 = netns()
    nm.create("busy")
    nm.attach(A, n1.path, network="busy", name="holder")
    with pytest.raises(NetworkInUse, match="cannot remove network busy .*active endpoints \\(holder\\)"):
        nm.remove("busy")
    assert nm.get("busy")
    nm.detach(A)
    nm.remove("busy")


def test_same_name_twice_and_overlapping_subnets(nm):
    net = nm.create("twice", subnet="10.231.0.0/24")
    with pytest.raises(NetworkExists, match="network with name twice already exists"):
        nm.create("twice")
    with pytest.raises(SubnetConflict, match="overlaps network twice"):
        nm.create("other", subnet="10.231.0.128/25")
    assert [n["name"] for n in nm.list()].count("twice") == 1
    assert os.path.exists(f"/sys/class/net/{net['bridge']}")


def test_subnet_that_overlaps_a_host_route_is_refused(nm):
    from runtime.network import ipam

    routes = [r for r in ipam.host_routes() if r.prefixlen >= 8 and not r.is_loopback]
    if not routes:
        pytest.skip("no host route to collide with")
    with pytest.raises(SubnetConflict, match="host route"):
        nm.create("clash", subnet=str(routes[0]))
    assert our_links(nm) == set()


def test_default_subnet_avoids_an_existing_route(nm, tmp_path, netns):
    # a second store's default network materialised first takes 10.88/16 (or whatever is free)
    other = NetworkManager(tmp_path / "other" / "network")
    try:
        n1, n2 = netns(), netns()
        oa = other.attach(A, n1.path)
        mine = nm.attach(B, n2.path)
        assert ipaddress.IPv4Network(f"{oa.ip}/{oa.prefixlen}", strict=False) != ipaddress.IPv4Network(
            f"{mine.ip}/{mine.prefixlen}", strict=False)
        assert oa.bridge != mine.bridge  # the second store does not share the first one's bridge
        assert n1.run(f"busybox ping -c1 -W1 {mine.ip}").returncode != 0  # separate L2 segments, no routing
        nm.detach(B)
        assert os.path.exists(f"/sys/class/net/{oa.bridge}")  # the other store's bridge untouched
        assert other.firewall.exists()
    finally:
        other.teardown()
        other.close()


def test_exhausted_subnet(nm, netns):
    n1, n2 = netns(), netns()
    nm.create("tiny", subnet="10.232.0.0/30")
    a = nm.attach(A, n1.path, network="tiny")
    assert a.ip == "10.232.0.2"
    links = host_links()
    with pytest.raises(SubnetExhausted, match="no available IPv4 addresses on subnet 10.232.0.0/30"):
        nm.attach(B, n2.path, network="tiny")
    assert host_links() == links
    assert nm.endpoints(B) == []
    nm.detach(A)
    assert nm.attach(B, n2.path, network="tiny").ip == "10.232.0.2"


def test_internal_network_has_no_default_route(nm, netns):
    n1 = netns()
    nm.create("private", internal=True)
    nm.attach(A, n1.path, network="private")
    assert n1.run("ip route show default").stdout.strip() == ""
    from runtime.network.ports import PortSpec

    with pytest.raises(InvalidArgument, match="internal network"):
        nm.attach(B, netns().path, network="private", ports=[PortSpec(container_port=80)])


def test_second_network_gets_eth1_and_keeps_the_first_default_route(nm, netns):
    n1 = netns()
    a = nm.attach(A, n1.path)
    nm.create("extra")
    e = nm.attach(A, n1.path, network="extra")
    assert e.ifname == "eth1"
    assert f"via {a.gateway} dev eth0" in n1.run("ip route show default").stdout
    with pytest.raises(AlreadyAttached):
        nm.attach(A, n1.path, network="extra")
    nm.detach(A, network="extra")
    assert [x.network for x in nm.endpoints(A)] == ["bridge"]
    assert "eth1" not in n1.run("ip -br link").stdout
    # a gap left by a disconnect is reused, and no name clashes with a live one
    nm.create("third")
    assert nm.attach(A, n1.path, network="extra").ifname == "eth1"
    nm.detach(A, network="bridge")
    assert nm.attach(A, n1.path, network="third").ifname == "eth0"


@pytest.mark.parametrize("kind", ["missing", "regular file", "host netns", "mount ns"])
def test_bad_netns_paths_create_nothing(nm, tmp_path, kind):
    path = {
        "missing": str(tmp_path / "nope"),
        "regular file": str(tmp_path / "file"),
        "host netns": "/proc/self/ns/net",
        "mount ns": "/proc/self/ns/mnt",
    }[kind]
    (tmp_path / "file").write_text("x")
    links = host_links()
    with pytest.raises(NetnsError):
        nm.attach(A, path)
    assert host_links() == links
    assert nm.endpoints(A) == []
    assert nm.store.all_endpoints() == []


def test_bridge_full_is_a_clear_error(nm, netns, monkeypatch):
    monkeypatch.setattr(links_mod, "BR_MAX_PORTS", 1)
    n1, n2 = netns(), netns()
    nm.attach(A, n1.path)
    links = host_links()
    with pytest.raises(BridgeFull, match="at most 1 ports"):
        nm.attach(B, n2.path)
    assert host_links() == links
    assert nm.endpoints(B) == []


def test_bridge_deleted_behind_our_back_is_recreated(nm, netns):
    n1, n2 = netns(), netns()
    net = nm.create("lab")
    subprocess.run(["ip", "link", "del", net["bridge"]], check=True)
    nm.attach(A, n1.path, network="lab")
    b = nm.attach(B, n2.path, network="lab")
    assert n1.run(f"busybox ping -c1 -W2 {b.ip}").returncode == 0


def test_gc_removes_what_a_crash_left(nm, netns):
    from runtime.network.ports import PortSpec

    n1, n2 = netns(), netns()
    a = nm.attach(A, n1.path, ports=[PortSpec("127.0.0.1", 0, 80)])
    nm.attach(B, n2.path)
    # a crash after the kernel work but before the record was kept:
    nm.store.drop_endpoint(a.network_id, A)
    report = nm.gc([A, B])
    assert a.host_ifname in report["links"]
    assert report["rules"] and report["addresses"]
    assert a.host_ifname not in host_links()
    assert nm.firewall.chains() == set()
    # and containers that are gone lose their endpoints
    report = nm.gc([])
    assert report["endpoints"]
    assert our_links(nm) == {nm.get("bridge")["bridge"]}  # the default bridge is no leftover
    assert nm.gc([]) == {}


def test_parallel_attaches_from_separate_processes(nm, netns, tmp_path):
    spaces = [netns() for _ in range(4)]
    code = (
        "import sys\nfrom runtime.network import NetworkManager\n"
        "nm = NetworkManager(sys.argv[1]); a = nm.attach(sys.argv[2], sys.argv[3]); print(a.ip)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(nm.path), f"{i:064x}", ns.path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, ns in enumerate(spaces)]
    results = [p.communicate(timeout=120) for p in procs]  # all of them, before any assert
    ips = []
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        ips.append(out.strip())
    assert len(set(ips)) == 4
    assert spaces[0].run(f"busybox ping -c1 -W2 {ips[3]}").returncode == 0


def test_cli_lifecycle_as_root(tmp_path, netns):
    root = tmp_path / "cli"
    env = {**os.environ, "VIRTLAB_ROOT": str(root)}

    def vl(*args):
        return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "network", *args],
                              capture_output=True, text=True, env=env)

    r = vl("create", "--subnet", "10.233.0.0/24", "--gateway", "10.233.0.254", "--label", "team=lab", "clinet")
    assert r.returncode == 0, r.stderr
    net_id = r.stdout.strip()
    assert len(net_id) == 64
    nm = NetworkManager(root / "network")
    try:
        bridge = nm.get("clinet")["bridge"]
        assert "10.233.0.254/24" in subprocess.run(["ip", "-br", "addr", "show", bridge], capture_output=True,
                                                    text=True).stdout
        n1 = netns()
        a = nm.attach(A, n1.path, network="clinet", name="web")
        doc = json.loads(vl("inspect", "clinet").stdout)[0]
        assert doc["Id"] == net_id and doc["Labels"] == {"team": "lab"}
        assert doc["Containers"][A]["IPv4Address"] == f"{a.ip}/24" and doc["Containers"][A]["Name"] == "web"
        assert doc["IPAM"]["Config"] == [{"Subnet": "10.233.0.0/24", "Gateway": "10.233.0.254"}]
        r = vl("rm", "clinet")
        assert r.returncode == 125 and "active endpoints" in r.stderr
        nm.detach(A)
        r = vl("rm", "clinet")
        assert r.returncode == 0 and r.stdout.strip() == "clinet"
        assert not os.path.exists(f"/sys/class/net/{bridge}")
        assert vl("create", "p1").returncode == 0
        r = vl("prune", "-f")
        assert r.stdout.split() == ["Deleted", "Networks:", "p1"]
    finally:
        nm.teardown()
        nm.close()


def test_two_stores_materialising_their_default_network_at_once(tmp_path, netns):
    """Bridge names and subnets are host-wide: concurrent stores must not pick the same ones."""
    code = (
        "import sys, json\nfrom runtime.network import NetworkManager\n"
        "nm = NetworkManager(sys.argv[1]); a = nm.attach('c' * 64, sys.argv[2])\n"
        "print(json.dumps({'bridge': a.bridge, 'ip': a.ip, 'prefixlen': a.prefixlen}))\n"
    )
    stores = [tmp_path / f"s{i}" / "network" for i in range(3)]
    spaces = [netns() for _ in stores]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(s), ns.path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for s, ns in zip(stores, spaces, strict=True)]
    try:
        results = [p.communicate(timeout=120) for p in procs]
        outs = []
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            outs.append(json.loads(out))
        assert len({o["bridge"] for o in outs}) == 3
        nets = [ipaddress.IPv4Network(f"{o['ip']}/{o['prefixlen']}", strict=False) for o in outs]
        assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    finally:
        for s in stores:
            m = NetworkManager(s)
            m.teardown()
            m.close()


@pytest.mark.parametrize("crash_in", ["configure_netns", "add_ports", "_refresh_hosts"])
def test_a_process_killed_mid_attach_leaves_nothing_gc_cannot_remove(nm, netns, crash_in):
    """The attaching process dies hard (os._exit: no rollback, like SIGKILL) at three points."""
    n1 = netns()
    code = (
        "import os, sys\n"
        "from runtime.network import NetworkManager, PortSpec\n"
        "from runtime.network import firewall, links, manager\n"
        "target = {'configure_netns': links.Links, 'add_ports': firewall.NftFirewall,"
        " '_refresh_hosts': manager.NetworkManager}[sys.argv[3]]\n"
        "setattr(target, sys.argv[3], lambda *a, **k: os._exit(9))\n"
        "NetworkManager(sys.argv[1]).attach('d' * 64, sys.argv[2], ports=[PortSpec('127.0.0.1', 0, 80)])\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(nm.path), n1.path, crash_in], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 9, r.stderr
    left = nm.store.all_endpoints()
    assert [e["container_id"] for e in left] == ["d" * 64]  # the record tells gc what to look for
    veth = left[0]["host_ifname"]
    assert veth in host_links()
    report = nm.gc([])
    assert report["endpoints"]
    assert veth not in host_links()
    assert our_links(nm) == {nm.get("bridge")["bridge"]}
    assert nm.store.all_endpoints() == [] and nm.store.ports() == []
    assert nm.firewall.chains() == set()
    assert os.listdir(nm.store.hosts_dir) == []
    assert nm.gc([]) == {}


def test_a_store_with_a_very_long_path_still_owns_its_links(tmp_path, netns):
    deep = tmp_path / ("d" * 120) / ("e" * 120) / "network"
    nm = NetworkManager(deep)
    try:
        n1, n2 = netns(), netns()
        nm.create("long")
        a = nm.attach(A, n1.path, network="long")
        nm.attach(B, n2.path, network="long")
        assert n1.run(f"busybox ping -c1 -W2 {nm.endpoints(B)[0].ip}").returncode == 0
        assert a.bridge in our_links(nm)
        nm.detach(A)
        nm.detach(B)
        nm.remove("long")
        assert our_links(nm) == set()
    finally:
        nm.teardown()
        nm.close()

"""IPAM: subnet/gateway parsing, default-subnet choice, allocation, exhaustion, locking across processes."""

import ipaddress
import multiprocessing

import pytest

from runtime.network import ipam
from runtime.network.errors import InvalidArgument, SubnetConflict, SubnetExhausted
from runtime.network.records import Store

N = ipaddress.IPv4Network


@pytest.mark.parametrize(
    "text",
    ["bogus", "", "10.0.0.0", "10.0.0.1/24", "10.0.0.0/33", "fd00::/64", "10.0.0.0/31", "10.0.0.0/32",
     "127.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16", "0.0.0.0/8", "10.0.0.0/-1", "10.0.0.0/24\n10.1.0.0/24",
     "999.1.1.0/24"],
)
def test_bad_subnets_are_rejected_with_the_value_named(text):
    with pytest.raises(InvalidArgument) as err:
        ipam.parse_subnet(text)
    assert "invalid subnet" in str(err.value)
    assert err.value.exit_code == 125


def test_good_subnets():
    assert ipam.parse_subnet("10.1.2.0/24") == N("10.1.2.0/24")
    assert ipam.parse_subnet(" 172.20.0.0/16 ") == N("172.20.0.0/16")
    assert ipam.parse_subnet("192.168.7.4/30") == N("192.168.7.4/30")


def test_gateway_defaults_to_first_host_and_is_checked():
    net = N("10.5.0.0/24")
    assert str(ipam.parse_gateway(None, net)) == "10.5.0.1"
    assert str(ipam.parse_gateway("10.5.0.254", net)) == "10.5.0.254"
    for bad in ("10.6.0.1", "10.5.0.0", "10.5.0.255", "nope", "fd00::1"):
        with pytest.raises(InvalidArgument, match="invalid gateway"):
            ipam.parse_gateway(bad, net)


def _pool(tmp_path, subnet="10.9.0.0/24", gw=None):
    store = Store(tmp_path / "network")
    store.ensure()
    net = N(subnet)
    return ipam.Ipam(store, "net1", net, ipam.parse_gateway(gw, net))


def test_allocation_is_lowest_free_and_skips_the_gateway(tmp_path):
    pool = _pool(tmp_path, gw="10.9.0.2")
    assert str(pool.allocate("a")) == "10.9.0.1"
    assert str(pool.allocate("b")) == "10.9.0.3"  # .2 is the gateway
    pool.release("a")
    pool.release("a")  # idempotent
    assert str(pool.allocate("c")) == "10.9.0.1"
    assert pool.allocated() == {"10.9.0.1": "c", "10.9.0.3": "b"}


def test_release_by_address_checks_the_owner(tmp_path):
    pool = _pool(tmp_path)
    pool.allocate("a")
    pool.release("b", "10.9.0.2")  # not b's: kept
    assert pool.allocated() == {"10.9.0.2": "a"}
    pool.release("a", "10.9.0.2")
    pool.release("a", "10.9.0.2")
    assert pool.allocated() == {}


def test_allocations_persist_in_the_store(tmp_path):
    _pool(tmp_path).allocate("a")
    again = _pool(tmp_path)
    assert again.allocated() == {"10.9.0.2": "a"}
    assert str(again.allocate("b")) == "10.9.0.3"


def test_requested_address(tmp_path):
    pool = _pool(tmp_path)
    assert str(pool.allocate("a", "10.9.0.77")) == "10.9.0.77"
    with pytest.raises(InvalidArgument, match="already in use"):
        pool.allocate("b", "10.9.0.77")
    for bad in ("10.9.0.1", "10.9.0.0", "10.9.0.255", "10.10.0.5", "x"):
        with pytest.raises(InvalidArgument):
            pool.allocate("b", bad)


def test_slash30_holds_one_container_then_is_exhausted(tmp_path):
    pool = _pool(tmp_path, subnet="10.9.0.0/30")
    assert str(pool.allocate("a")) == "10.9.0.2"
    with pytest.raises(SubnetExhausted) as err:
        pool.allocate("b")
    assert "10.9.0.0/30" in str(err.value)
    assert "1 usable" in str(err.value)
    pool.release("a")
    assert str(pool.allocate("b")) == "10.9.0.2"


def _allocate_many(root: str, owner_prefix: str, n: int, out) -> None:
    store = Store(root)
    net = N("10.9.0.0/24")
    pool = ipam.Ipam(store, "net1", net, net.network_address + 1)
    got = []
    for i in range(n):
        with store.locked():
            got.append(str(pool.allocate(f"{owner_prefix}-{i}")))
    out.put(got)


def test_parallel_processes_never_share_an_address(tmp_path):
    root = str(tmp_path / "network")
    Store(root).ensure()
    q = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_allocate_many, args=(root, f"p{i}", 15, q))
             for i in range(6)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    addrs = [a for r in results for a in r]
    assert len(addrs) == 90
    assert len(set(addrs)) == 90


def test_host_routes_are_read_from_proc_format(tmp_path):
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "br0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    assert ipam.host_routes(str(route)) == [N("192.0.2.0/24"), N("10.88.0.0/16")]
    assert ipam.host_routes(str(route), skip_ifaces={"br0"}) == [N("192.0.2.0/24")]


def test_default_subnet_avoids_host_routes_and_other_networks():
    assert ipam.pick_subnet({}, []) == N("10.88.0.0/16")
    assert ipam.pick_subnet({}, [N("10.88.5.0/24")]) == N("10.89.0.0/16")
    assert ipam.pick_subnet({"x": N("10.89.0.0/16")}, [N("10.88.0.0/16")]) == N("10.90.0.0/16")
    # a host route covering all of 10/8 pushes us to 172.x
    assert ipam.pick_subnet({}, [N("10.0.0.0/8")]) == N("172.20.0.0/16")


def test_check_free_names_the_conflict():
    with pytest.raises(SubnetConflict, match="overlaps network web"):
        ipam.check_free(N("10.1.0.0/24"), {"web": N("10.1.0.0/16")}, [])
    with pytest.raises(SubnetConflict, match="host route to 192.0.2.0/24"):
        ipam.check_free(N("192.0.2.128/25"), {}, [N("192.0.2.0/24")])
    ipam.check_free(N("10.2.0.0/24"), {"web": N("10.1.0.0/16")}, [N("192.0.2.0/24")])

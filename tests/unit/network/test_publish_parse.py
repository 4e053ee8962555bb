"""`-p` parsing, PortSpec validation, and host-port reservation (random ports, in-use errors)."""

import socket

import pytest

from runtime.network.errors import InvalidArgument, PortInUse
from runtime.network.ports import PortSpec, parse_publish, reserve


@pytest.mark.parametrize(
    "text,expected",
    [
        ("80", [PortSpec("0.0.0.0", 0, 80, "tcp")]),
        ("8080:80", [PortSpec("0.0.0.0", 8080, 80, "tcp")]),
        ("8080:80/udp", [PortSpec("0.0.0.0", 8080, 80, "udp")]),
        ("127.0.0.1:8080:80", [PortSpec("127.0.0.1", 8080, 80, "tcp")]),
        ("127.0.0.1::80/UDP", [PortSpec("127.0.0.1", 0, 80, "udp")]),
        (":8080:80", [PortSpec("0.0.0.0", 8080, 80, "tcp")]),
        ("8080-8081:80-81", [PortSpec("0.0.0.0", 8080, 80, "tcp"), PortSpec("0.0.0.0", 8081, 81, "tcp")]),
        ("5000-5001", [PortSpec("0.0.0.0", 0, 5000, "tcp"), PortSpec("0.0.0.0", 0, 5001, "tcp")]),
    ],
)
def test_parse_publish(text, expected):
    assert parse_publish(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "abc", "0:80", "80:0", "70000:80", "1:2:3:4", "[::1]:80:80", "80/sctp", "8080-8081:80",
     "8081-8080:80-81", "localhost:80:80", "::1:80:80", "-1:80", "80:"],
)
def test_parse_publish_rejects(text):
    with pytest.raises(InvalidArgument) as err:
        parse_publish(text)
    assert err.value.exit_code == 125


def test_portspec_validates():
    for kw in ({"container_port": 0}, {"container_port": 80, "proto": "icmp"},
               {"container_port": 80, "host_ip": "fd00::1"}, {"container_port": 80, "host_port": 70000},
               {"container_port": 80, "host_ip": "x"}):
        with pytest.raises(InvalidArgument):
            PortSpec(**kw)
    assert str(PortSpec("127.0.0.1", 8080, 80, "udp")) == "127.0.0.1:8080->80/udp"


def test_random_host_port_is_concrete_and_free():
    (spec,) = reserve([PortSpec("127.0.0.1", 0, 80)], [], "c1")
    assert 1024 <= spec.host_port <= 65535
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", spec.host_port))  # it really was free
    s.close()


def test_port_bound_by_another_process_is_refused():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}/tcp.*in use by another process"):
            reserve([PortSpec("127.0.0.1", port, 80)], [], "c1")
        with pytest.raises(PortInUse):  # 0.0.0.0 covers 127.0.0.1
            reserve([PortSpec("0.0.0.0", port, 80)], [], "c1")
    finally:
        srv.close()


def test_udp_port_in_use():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match="udp"):
            reserve([PortSpec("127.0.0.1", port, 53, "udp")], [], "c1")
        # the same number over tcp is a different port
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip("tcp port of the same number is busy")
        s.close()
        assert reserve([PortSpec("127.0.0.1", port, 53, "tcp")], [], "c1")[0].host_port == port
    finally:
        u.close()


def test_port_published_by_another_container_is_refused():
    table = [{"proto": "tcp", "host_ip": "0.0.0.0", "host_port": 18555, "container_port": 80,
              "container_id": "b" * 64}]
    with pytest.raises(PortInUse, match="already published by container bbbbbbbbbbbb"):
        reserve([PortSpec("127.0.0.1", 18555, 80)], table, "a" * 64)
    # another protocol is fine
    assert reserve([PortSpec("127.0.0.1", 18555, 80, "udp")], table, "a" * 64)[0].host_port == 18555


def test_duplicate_ports_in_one_request_are_refused():
    with pytest.raises(PortInUse, match="this container"):
        reserve([PortSpec("0.0.0.0", 18556, 80), PortSpec("127.0.0.1", 18556, 81)], [], "c1")


def test_specific_ips_do_not_clash_with_each_other():
    table = [{"proto": "tcp", "host_ip": "127.0.0.1", "host_port": 18557, "container_port": 80,
              "container_id": "b"}]
    assert reserve([PortSpec("127.0.0.2", 18557, 80)], table, "a")[0].host_ip == "127.0.0.2"


def test_address_not_on_this_host():
    with pytest.raises(InvalidArgument, match="not an address of this host"):
        reserve([PortSpec("203.0.113.7", 18558, 80)], [], "c1")


def test_port_published_by_another_store_names_its_table():
    table = [{"proto": "tcp", "host_ip": "0.0.0.0", "host_port": 18559,
              "container_id": "another virtlab store (nft table virtlab_0123abcd)"}]
    with pytest.raises(PortInUse, match=r"already published by another virtlab store \(nft table virtlab_0123abcd\)"):
        reserve([PortSpec("127.0.0.1", 18559, 80)], table, "a")

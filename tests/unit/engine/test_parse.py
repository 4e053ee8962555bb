import os

import pytest

from runtime.engine import parse
from runtime.engine.errors import InvalidArgument


@pytest.mark.parametrize("text,expected", [("64m", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("1024", 1024),
                                           ("1.5g", int(1.5 * (1 << 30))), ("-1", -1), ("2MB", 2 << 20), (None, None)])
def test_size(text, expected):
    assert parse.size(text, "--memory") == expected


@pytest.mark.parametrize("bad", ["abc", "1x", "-5", "12 m m", ""[:0] + "m"])
def test_size_rejects(bad):
    with pytest.raises(InvalidArgument, match="--memory"):
        parse.size(bad, "--memory")


def test_cpus_bounds():
    assert parse.cpus("0.5") == 0.5
    for bad in ("0", "-1", "abc", str((os.cpu_count() or 1) + 1), "nan"):
        with pytest.raises(InvalidArgument):
            parse.cpus(bad)


def test_cpuset():
    assert parse.cpuset("0-1,3", "--cpuset-cpus") == "0-1,3"
    with pytest.raises(InvalidArgument, match="reversed"):
        parse.cpuset("3-1", "--cpuset-cpus")
    with pytest.raises(InvalidArgument, match="only 2"):
        parse.cpuset("0-5", "--cpuset-cpus", limit=2)
    with pytest.raises(InvalidArgument):
        parse.cpuset("a,b", "--cpuset-cpus")


def test_restart_policies():
    assert parse.restart("no").name == "no"
    assert parse.restart("always").name == "always"
    p = parse.restart("on-failure:3")
    assert (p.name, p.max_retries, str(p)) == ("on-failure", 3, "on-failure:3")
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(InvalidArgument):
            parse.restart(bad)


def test_ports():
    (p,) = parse.ports(["8080:80"])
    assert (p.host_port, p.container_port, p.proto, p.host_ip) == (8080, 80, "tcp", "")
    (p,) = parse.ports(["127.0.0.1:53:53/udp"])
    assert (p.host_ip, p.proto) == ("127.0.0.1", "udp")
    (p,) = parse.ports(["80"])
    assert p.host_port == 0
    r = parse.ports(["8000-8002:9000-9002"])
    assert [(x.host_port, x.container_port) for x in r] == [(8000, 9000), (8001, 9001), (8002, 9002)]


@pytest.mark.parametrize("bad", ["70000:80", "80:0", "a:b", "1.2.3.4.5:80:80", "80/icmp", "8000-8001:9000", "1:2:3:4",
                                 "80/sctp", "[::1]:80:80",  # the network layer publishes tcp/udp over IPv4
                                 "8080:80,8080:81"])
def test_ports_reject(bad):
    with pytest.raises(InvalidArgument):
        parse.ports(bad.split(","))


def test_volumes():
    b, n, a = parse.volumes(["/srv:/data:ro", "cache:/cache", "/anon"])
    assert (b.kind, b.source, b.target, b.read_only) == ("bind", "/srv", "/data", True)
    assert (n.kind, n.source, n.target) == ("volume", "cache", "/cache")
    assert (a.kind, a.source) == ("volume", "")


@pytest.mark.parametrize("bad", ["/x:relative", "/x:/", "/x:/proc", "/x:/proc/self/attr", "/x:/sys/kernel", "a/b:/x",
                                 "/x:/y:zz", "/x:/y:ro:extra", "/a:/d,/b:/d"])
def test_volumes_reject(bad):
    with pytest.raises(InvalidArgument):
        parse.volumes(bad.split(","))


def test_ulimits():
    assert parse.ulimits(["nofile=512:1024"]) == {"RLIMIT_NOFILE": (512, 1024)}
    assert parse.ulimits(["nproc=100"]) == {"RLIMIT_NPROC": (100, 100)}
    for bad in ("nofile", "bogus=1", "nofile=2:1", "nofile=a"):
        with pytest.raises(InvalidArgument):
            parse.ulimits([bad])


def test_ulimit_above_host_hard_limit():
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this host has no hard RLIMIT_NOFILE")
    with pytest.raises(InvalidArgument, match="hard limit"):
        parse.ulimits([f"nofile={hard + 1}"])


def test_env(monkeypatch, tmp_path):
    monkeypatch.setenv("VL_FROM_HOST", "yes")
    assert parse.env_list(["A=1", "VL_FROM_HOST", "VL_MISSING_XYZ"]) == ["A=1", "VL_FROM_HOST=yes"]
    f = tmp_path / "env"
    f.write_text("# comment\n\nB=2\nC=x=y\n")
    assert parse.env_file(str(f)) == ["B=2", "C=x=y"]
    with pytest.raises(InvalidArgument):
        parse.env_list(["=x"])
    with pytest.raises(InvalidArgument, match="cannot read"):
        parse.env_file(str(tmp_path / "missing"))


def test_signals_and_durations():
    assert parse.signal_number("TERM") == 15
    assert parse.signal_number("SIGKILL") == 9
    assert parse.signal_number("2") == 2
    for bad in ("NOPE", "0", "99"):
        with pytest.raises(InvalidArgument):
            parse.signal_number(bad)
    assert parse.duration("300ms", "-t") == pytest.approx(0.3)
    assert parse.duration("2m", "-t") == 120
    with pytest.raises(InvalidArgument):
        parse.duration("soon", "-t")

import subprocess

import pytest

from bench import probe
from bench.errors import ProbeError
from bench.workloads.density import classify_failure
from bench.workloads.isolation import CHECKS, judge

HOST = {"boot_id": "host-boot", "ns": {"mnt": "mnt:[1]", "net": "net:[2]"}, "mounts": {"/", "/proc", "/work", "/var/lib/x"}}


def test_parse_output_keeps_repeated_keys_as_lists():
    facts = probe.parse_output("a=1\nmount=/\nmount=/proc\nnoise line\n=x\nb=two=parts\n")
    assert facts == {"a": "1", "mount": ["/", "/proc"], "b": "two=parts"}
    assert probe.number(facts, "a") == 1.0
    with pytest.raises(ProbeError, match="no single mount"):
        probe.number(facts, "mount")
    with pytest.raises(ProbeError, match="not a number"):
        probe.number(facts, "b")
    with pytest.raises(ProbeError, match="no single missing"):
        probe.number(facts, "missing")


def native_facts():
    return {"boot_id": "host-boot", "kernel": "6.1", "ns.mnt": "mnt:[1]", "ns.net": "net:[2]", "canary_visible": "1",
            "pids_visible": "100", "mount": ["/", "/proc", "/work"], "dev": ["null:c:1:3", "sda:b:8:0"],
            "seccomp": "0", "escape.mount": "allowed", "escape.devmem": "blocked:ENOENT", "netif": ["lo", "eth0"]}


def container_facts():
    return {"boot_id": "host-boot", "kernel": "6.1", "ns.mnt": "mnt:[9]", "ns.net": "net:[8]", "canary_visible": "0",
            "pids_visible": "2", "mount": ["/", "/proc", "/dev/pts"], "dev": ["null:c:1:3", "zero:c:1:5"],
            "seccomp": "2", "seccomp_filters": "1", "escape.mount": "blocked:EPERM", "escape.ptrace": "blocked:ESRCH",
            "netif": "lo"}


def vm_facts():
    return {"boot_id": "guest-boot", "kernel": "6.1-cloud", "ns.mnt": "mnt:[1]", "ns.net": "net:[2]",
            "canary_visible": "0", "mount": ["/", "/work"], "dev": ["vda:b:254:0"], "seccomp": "0",
            "escape.mount": "allowed", "escape.devmem": "allowed", "netif": ["lo"]}


def test_native_is_isolated_from_nothing():
    m = judge(native_facts(), HOST)
    assert set(m) == set(CHECKS)
    assert all(v == 0 for v, _ in m.values()), m
    assert "/work" in m["host_mounts_hidden"][1]
    assert "sda" in m["host_devices_hidden"][1]


def test_container_matrix():
    m = judge(container_facts(), HOST)
    assert m["kernel_separate"][0] == 0
    for check in ("host_pids_hidden", "host_mounts_hidden", "host_devices_hidden", "syscall_filter",
                  "escape_probes_blocked", "own_network_stack"):
        assert m[check][0] == 1, (check, m[check])


def test_container_without_seccomp_and_with_a_leaked_mount():
    f = container_facts() | {"seccomp": "0", "mount": ["/", "/var/lib/x"], "escape.mount": "allowed"}
    m = judge(f, HOST)
    assert m["syscall_filter"][0] == 0
    assert m["host_mounts_hidden"][0] == 0 and "/var/lib/x" in m["host_mounts_hidden"][1]
    assert m["escape_probes_blocked"][0] == 0 and "mount=allowed" in m["escape_probes_blocked"][1]


def test_untested_escape_probe_is_not_counted_as_blocked():
    f = container_facts() | {"escape.mount": "untested:EROFS"}
    assert judge(f, HOST)["escape_probes_blocked"][0] == 0


def test_vm_is_separate_and_says_why():
    m = judge(vm_facts(), HOST)
    assert all(v == 1 for v, _ in m.values()), m
    assert "guest" in m["escape_probes_blocked"][1] and "mount allowed" in m["escape_probes_blocked"][1]


@pytest.mark.parametrize("msg,limit", [
    ("RTNETLINK answers: exchange full", "bridge ports"),
    ("runc create failed: fork/exec: resource temporarily unavailable", "pids"),
    ("Too many open files", "nofile"),
    ("podman x printed no VIRTLAB_READY within 60s", "launch timeout"),
    ("something else", "launch failure"),
])
def test_density_names_the_limit(msg, limit):
    assert classify_failure(msg).startswith(limit)


@pytest.fixture(scope="module")
def probe_bin(tmp_path_factory):
    return probe.build(tmp_path_factory.mktemp("cache"))


def run(probe_bin, *args):
    return subprocess.run([str(probe_bin), *args], capture_output=True, text=True, timeout=60)


def test_probe_is_static_and_cached(probe_bin, tmp_path):
    out = subprocess.run(["file", str(probe_bin)], capture_output=True, text=True).stdout
    assert "statically linked" in out
    assert probe.build(probe_bin.parent.parent.parent) == probe_bin


def test_probe_workloads_print_their_numbers(probe_bin, tmp_path):
    cases = [(["cpu", "20"], "events_per_s"), (["mem", "4", "2"], "mb_per_s"), (["syscall", "1000"], "ns_per_op"),
             (["fork", "5"], "us_per_op"), (["fileio", str(tmp_path / "f"), "2"], "write_mb_per_s"),
             (["http", "0", "20"], "req_per_s")]
    for args, key in cases:
        r = run(probe_bin, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert probe.number(probe.parse_output(r.stdout), key) > 0
    assert list((tmp_path / "f").iterdir()) == []  # fileio removes its file
    assert probe.parse_output(run(probe_bin, "cpu", "3").stdout)["primes"] == "1228"


@pytest.mark.parametrize("args", [[], ["nope"], ["cpu"], ["cpu", "-1"], ["cpu", "12x"], ["mem", "0"],
                                  ["http", "70000"], ["isolation", "tok"], ["netserve"], ["netclient", "127.0.0.1"],
                                  ["netup"]])
def test_probe_rejects_bad_input_with_exit_2(probe_bin, args):
    r = run(probe_bin, *args)
    assert r.returncode == 2
    assert "usage" in r.stderr or "invalid" in r.stderr


def test_probe_ready_prints_the_marker_and_exits_on_term(probe_bin):
    p = subprocess.Popen([str(probe_bin), "ready"], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"VIRTLAB_READY\n"
    p.terminate()
    assert p.wait(timeout=5) == 0


def test_probe_ready_also_writes_to_the_ready_fd(probe_bin):
    import os

    r, w = os.pipe()
    p = subprocess.Popen([str(probe_bin), "ready", "1"], stdout=subprocess.DEVNULL, pass_fds=(w,),
                         env={"VIRTLAB_READY_FD": str(w)})
    os.close(w)
    assert os.read(r, 100) == b"VIRTLAB_READY\n"
    os.close(r)
    p.kill()
    p.wait()


def test_probe_netserve_and_netclient_talk_over_loopback(probe_bin):
    srv = subprocess.Popen([str(probe_bin), "netserve", "127.0.0.1", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        port = srv.stdout.readline().strip()
        assert port.startswith("port=") and srv.stdout.readline() == "VIRTLAB_READY\n"
        r = run(probe_bin, "netclient", "127.0.0.1", port[5:], "4", "50")
        assert r.returncode == 0, r.stderr
        facts = probe.parse_output(r.stdout)
        assert facts["peer"] == "127.0.0.1" and facts["mb"] == "4" and facts["rounds"] == "50"
        assert all(probe.number(facts, k) > 0 for k in ("gbit_per_s", "rx_gbit_per_s", "rtt_us"))
        out, err = srv.communicate(timeout=30)
        assert srv.returncode == 0, err
        assert probe.parse_output(out) == {"served_mb": "4", "served_rounds": "50"}
    finally:
        srv.kill()
        srv.wait()


def test_probe_netclient_fails_clearly_without_a_server(probe_bin):
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, not listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = run(probe_bin, "netclient", "127.0.0.1", str(port), "1", "1")
    assert r.returncode == 1 and "connect to 127.0.0.1" in r.stderr
    for args in (["netclient", "not-an-ip", "80", "1"], ["netserve", "300.1.1.1"], ["netclient", "127.0.0.1", "0", "1"],
                 ["netup", "10.0.0.1/33"]):
        assert run(probe_bin, *args).returncode == 2, args


def test_probe_forkbomb_is_bounded(probe_bin):
    facts = probe.parse_output(run(probe_bin, "forkbomb", "20").stdout)
    assert facts == {"forked": "20", "stopped_by": "max"}

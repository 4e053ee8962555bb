"""Container-side backends against the real host: runc, podman and virtlab's engine (root)."""

import os
import subprocess

import pytest

from bench import backends, image
from bench.backends.base import LaunchSpec
from bench.backends.hostfs import mounts_under
from bench.probe import IN_IMAGE, number, parse_output
from bench.workloads.base import Context
from bench.workloads.isolation import Isolation

pytestmark = pytest.mark.root

NAMES = ["runc", "podman", "container"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("vlroot")
    yield root
    # podman's storage keeps a private bind mount of its own; nothing may stay mounted.
    from bench.backends.hostfs import umount_under

    umount_under(root)


@pytest.fixture(scope="module")
def bench_image(store_root):
    return image.ensure(store_root, "busybox")


@pytest.fixture(params=NAMES)
def backend(request, store_root, bench_image, tmp_path):
    b = backends.create(request.param, store_root, tmp_path / "work")
    ok, reason = b.available()
    if not ok:
        pytest.skip(f"{request.param}: {reason}")
    b.prepare(bench_image)
    yield b
    b.cleanup()
    assert b.live() == []
    assert mounts_under(tmp_path) == []


def processes_named(text):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


def test_launch_exec_destroy(backend):
    inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=60))
    try:
        assert inst.requested < inst.ready
        assert 0 < inst.startup < 30
        assert inst.host_pids(), "an instance has host processes"
        res = inst.exec([inst.probe, "cpu", "5"], timeout=60)
        assert res.exit_code == 0, res.stderr
        assert number(parse_output(res.stdout), "events_per_s") > 0
        res = inst.exec([inst.probe, "fileio", inst.scratch, "1"], timeout=60)
        assert res.exit_code == 0, res.stderr
        assert inst.disk_usage() >= 0
        bad = inst.exec([inst.probe, "cpu", "nope"], timeout=60)
        assert bad.exit_code == 2
    finally:
        inst.destroy()
    inst.destroy()  # idempotent
    assert processes_named(inst.name) == []
    assert backend.live() == []


def test_phases_add_up_to_the_startup(backend):
    with backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=60)) as inst:
        phases = dict(inst.phases)
        startup = inst.startup
    if backend.name == "podman":
        assert phases == {}  # podman run is one CLI call: no honest split from outside
        return
    assert set(phases) >= {"create", "start", "exec"}
    assert all(v >= 0 for v in phases.values())
    assert sum(phases.values()) == pytest.approx(startup, abs=0.005)


def test_a_failing_workload_does_not_leak(backend):
    from bench.errors import LaunchError

    with pytest.raises(LaunchError):
        backend.launch(LaunchSpec(argv=["/no/such/binary"], ready_timeout=10))
    assert backend.live() == []


def test_ready_timeout_destroys_the_instance(backend):
    from bench.errors import LaunchError

    with pytest.raises(LaunchError):
        backend.launch(LaunchSpec(argv=[IN_IMAGE, "canary", "x"], ready_timeout=2))
    assert backend.live() == []


def test_isolation_matrix_of_a_container(backend):
    samples = Isolation().run_once(backend, Context(run_id="t"))
    m = {s.metric.split(".", 1)[1]: int(s.value) for s in samples}
    assert m["kernel_separate"] == 0
    assert m["host_pids_hidden"] == 1
    assert m["host_mounts_hidden"] == 1
    assert m["own_network_stack"] == 1
    detail = {s.metric: s.metadata["detail"] for s in samples}
    assert "escape" not in detail["isolation.escape_probes_blocked"]  # lists probe=result pairs
    assert "mount=" in detail["isolation.escape_probes_blocked"]
    if backend.name == "podman":
        assert m["syscall_filter"] == 1 and m["escape_probes_blocked"] == 1


def test_runc_leaves_no_state_or_cgroup(store_root, bench_image, tmp_path):
    b = backends.create("runc", store_root, tmp_path / "work")
    if not b.available()[0]:
        pytest.skip("runc unavailable")
    b.prepare(bench_image)
    inst = b.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=30))
    name = inst.name
    cg = [p for p in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified") if os.path.isdir(p)]
    inst.destroy()
    listed = subprocess.run([*b.runc_argv(), "list", "-q"], capture_output=True, text=True).stdout.split()
    assert name not in listed
    for base in cg:
        for dirpath, dirnames, _ in os.walk(base):
            assert name not in dirnames, f"cgroup {dirpath}/{name} left behind"
    b.cleanup()
    assert not (tmp_path / "work" / "runc-state").exists()


def host_links(name_part):
    """Host interfaces and namespaces whose names contain name_part (the harness' veths are vlh<pid>x<n>)."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [w for w in (links + netns).replace(":", " ").split() if name_part in w]


def test_network_workload_goes_between_host_and_instance(backend):
    """The server runs on the host's end of the instance's link; the instance is the client; all cleaned up."""
    from bench.workloads.perf import create

    w = create("network")
    ctx = Context(run_id="t", params={"network": {"mb": 4, "rounds": 20}})
    inst = w.setup(backend, ctx)
    try:
        link = inst.link
        assert link is not None and link.host_addr != "127.0.0.1" and link.host_addr != link.instance_addr
        samples = w.measure(backend, inst, ctx, 0)
        by = {s.metric: s for s in samples}
        assert set(by) == {"perf.network", "perf.network.rx", "perf.network.rtt"}
        assert all(s.value > 0 for s in samples)
        assert by["perf.network"].metadata["probe"]["peer"] == link.host_addr
        assert by["perf.network"].metadata["path"] == link.path
        # From inside, the host's end answers, and nothing beyond it is routed (no default route).
        r = inst.exec([inst.probe, "netclient", "192.0.2.1", "9", "1", "1"], timeout=30)
        assert r.exit_code == 1 and "connect" in r.stderr
    finally:
        ctx.drain_pool()
    assert backend.live() == []
    assert host_links(f"vlh{os.getpid() % 100000}x") == []
    assert host_links(f"vln{os.getpid() % 100000}x") == []

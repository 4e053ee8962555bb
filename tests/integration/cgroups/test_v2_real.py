"""The v2 manager on a real cgroup2 tree: /sys/fs/cgroup on v2 hosts, /sys/fs/cgroup/unified on hybrid ones.

On a hybrid host the unified tree offers (almost) no controllers, so these tests use what
cgroup2 itself provides: cgroup.procs, cgroup.freeze, cgroup.kill, cpu.stat and the eBPF
device filter. Limits that need a controller must fail cleanly there.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from cgtools import PY, check_freeze_stops_a_busy_child, proc_cgroup, read, unique_id, wait_for

from runtime.oci.cgroups import CgroupUnsupported, detect_mode, load_manager
from runtime.oci.cgroups.errors import InvalidResources

ROOT = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "/sys/fs/cgroup/unified"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists(f"{ROOT}/cgroup.controllers"), reason="no cgroup2 tree mounted"),
]


@pytest.fixture(autouse=True)
def root_subtree_unchanged():
    before = read(f"{ROOT}/cgroup.subtree_control")
    yield
    if ROOT.endswith("unified"):
        assert read(f"{ROOT}/cgroup.subtree_control") == before


def test_mode_and_membership(cg):
    assert detect_mode(ROOT) == "v2"
    mgr = cg(root=ROOT)
    assert mgr.mode == "v2" and set(mgr.paths) == {""}
    mgr.apply({})
    child = cg.child(mgr, ["sleep", "60"])
    assert proc_cgroup(child.pid)[""] == "/" + os.path.relpath(mgr.paths[""], ROOT)
    assert mgr.pids() == [child.pid]


def test_freeze_with_cgroup_freeze(cg):
    mgr = cg(root=ROOT)
    mgr.apply({})

    def events_say_frozen():
        assert "frozen 1" in read(f"{mgr.paths['']}/cgroup.events")

    check_freeze_stops_a_busy_child(cg, mgr, events_say_frozen)


def test_kill_all_with_cgroup_kill_and_sigterm(cg):
    mgr = cg(root=ROOT)
    mgr.apply({})
    child = cg.child(mgr, ["sh", "-c", "sleep 60 & sleep 60 & wait"])
    child.go()
    assert wait_for(lambda: len(mgr.pids()) == 3)
    mgr.kill_all(signal.SIGKILL)
    assert wait_for(lambda: mgr.pids() == [])
    child.wait()
    other = cg.child(mgr, ["sleep", "60"])
    other.go()
    mgr.kill_all(signal.SIGTERM)
    assert other.wait() == -signal.SIGTERM


def test_device_filter_ebpf(cg):
    mgr = cg(root=ROOT)
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
    ]
    mgr.apply({"devices": rules})
    child = cg.child(mgr, ["sh", "-c", "echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null || echo zero-denied"])
    child.go()
    code, out, err = child.output()
    assert out.split() == ["null-ok", "zero-denied"]
    # an update replaces the program instead of stacking a second one
    from runtime.oci.cgroups import ebpf

    mgr.update({"devices": [{"allow": True, "access": "rwm"}]})
    fd = os.open(mgr.paths[""], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.query(fd)) == 1
    finally:
        os.close(fd)
    again = cg.child(mgr, ["head", "-c1", "/dev/zero"])
    again.go()
    assert again.output()[0] == 0


def test_stats_from_core_files(cg):
    mgr = cg(root=ROOT)
    mgr.apply({})
    child = cg.child(mgr, [PY, "-c", "import time\nwhile time.process_time() < 0.3: pass\n"
                                     "print('ok', flush=True); time.sleep(60)"])
    child.go()
    assert child.proc.stdout.readline().strip() == b"ok"
    s = mgr.stats()
    assert s["cpu_ns"] >= 100_000_000
    assert s["pids"] == 1


def test_limits_without_controller_fail_cleanly(cg):
    offered = read(f"{ROOT}/cgroup.controllers").split()
    if "memory" in offered:
        pytest.skip("this cgroup2 tree offers the memory controller")
    mgr = cg(root=ROOT)
    with pytest.raises(CgroupUnsupported, match="memory"):
        mgr.apply({"memory": {"limit": 64 << 20}})
    assert not os.path.exists(mgr.paths[""])
    with pytest.raises(InvalidResources, match="real-time"):
        mgr.apply({"cpu": {"realtimeRuntime": 10}})


def test_destroy_and_reload(cg):
    mgr = cg(root=ROOT)
    mgr.apply({})
    child = cg.child(mgr, ["true"])
    child.go()
    child.wait()
    again = load_manager(mgr.paths, root=ROOT)
    again.destroy()
    again.destroy()
    assert not os.path.exists(mgr.paths[""])


def test_controller_enabled_top_down_on_the_real_tree(cg):
    """hugetlb is the one controller a hybrid host's cgroup2 tree offers: enable it, limit, undo.

    Uses a parent of its own (not the shared /virtlab), so the controller can be disabled again.
    """
    if "hugetlb" not in read(f"{ROOT}/cgroup.controllers").split():
        pytest.skip("the cgroup2 tree offers no hugetlb controller")
    from runtime.oci.cgroups.resources import hugepage_sizes

    sizes = hugepage_sizes()
    if not sizes:
        pytest.skip("no huge page sizes")
    was_enabled = "hugetlb" in read(f"{ROOT}/cgroup.subtree_control").split()
    mgr = cg(f"/{unique_id()}/ctr", root=ROOT)
    try:
        mgr.apply({"hugepageLimits": [{"pageSize": sizes[0], "limit": 4 << 30}]})
        parent = os.path.dirname(mgr.paths[""])
        assert "hugetlb" in read(f"{parent}/cgroup.subtree_control").split()
        assert read(f"{mgr.paths['']}/hugetlb.{sizes[0]}.max") == str(4 << 30)
        mgr.update({"hugepageLimits": [{"pageSize": sizes[0], "limit": 2 << 30}]})
        assert read(f"{mgr.paths['']}/hugetlb.{sizes[0]}.max") == str(2 << 30)
    except CgroupUnsupported:
        pytest.skip("hugetlb is bound to a v1 hierarchy right now")
    finally:
        mgr.destroy()
        if not was_enabled and ROOT.endswith("unified"):
            # someone else's cgroup created meanwhile may hold it (EBUSY): then it stays, as on v2 hosts
            with contextlib.suppress(OSError), open(f"{ROOT}/cgroup.subtree_control", "w") as f:
                f.write("-hugetlb")


def test_replace_detaches_every_earlier_program(cg):
    from runtime.oci.cgroups import ebpf
    from runtime.oci.cgroups.resources import device_rules

    mgr = cg(root=ROOT)
    mgr.apply({})
    allow_all = device_rules([{"allow": True, "access": "rwm"}])
    for _ in range(3):
        ebpf.set_device_rules(mgr.paths[""], allow_all, replace=False)
    fd = os.open(mgr.paths[""], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.query(fd)) == 3
        mgr.update({"devices": [{"allow": False, "access": "rwm"}]})
        assert len(ebpf.query(fd)) == 1
    finally:
        os.close(fd)
    child = cg.child(mgr, ["sh", "-c", "echo x > /dev/null"])
    child.go()
    assert child.output()[0] != 0  # deny-all now, even /dev/null

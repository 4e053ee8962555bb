"""The v2 manager against a fake cgroup2 tree: creation, conversions, update, freezer, stats."""

from __future__ import annotations

import os
import signal

import pytest
from cgfake import read, trusted_xattrs_work

from runtime.oci.cgroups import InvalidResources, load_manager, open_manager
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, FreezeTimeout


@pytest.fixture
def v2(fakefs):
    return fakefs("v2")


def test_default_path_and_controllers_enabled_top_down(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    assert mgr.paths == {"": str(v2.root / "virtlab" / "c1")}
    assert not os.path.exists(mgr.paths[""])  # nothing before apply
    mgr.apply({})
    assert os.path.isdir(mgr.paths[""])
    for d in (v2.root, v2.root / "virtlab"):
        assert set(read(d / "cgroup.subtree_control").split()) == {"cpu", "io", "memory", "pids"}
    # the leaf holds processes, so nothing is enabled below it
    assert read(v2.root / "virtlab" / "c1" / "cgroup.subtree_control") == ""


def test_cpuset_and_hugetlb_enabled_only_when_asked(v2):
    mgr = open_manager("/a/b", "c1", root=str(v2.root))
    mgr.apply({"cpu": {"cpus": "1", "mems": "0"}, "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
    d = v2.root / "a" / "b"
    assert read(d / "cpuset.cpus") == "1"
    assert read(d / "cpuset.mems") == "0"
    assert read(d / "hugetlb.2MB.max") == "4194304"
    assert "hugetlb" in read(v2.root / "a" / "cgroup.subtree_control").split()


def test_conversions(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({
        "memory": {"limit": 128 << 20, "swap": 192 << 20, "reservation": 64 << 20, "kernel": 1 << 20,
                   "swappiness": 10, "disableOOMKiller": True},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "idle": 1},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500},
    })
    d = mgr.paths[""]
    assert read(f"{d}/memory.max") == str(128 << 20)
    assert read(f"{d}/memory.swap.max") == str(64 << 20)  # memory+swap minus memory
    assert read(f"{d}/memory.low") == str(64 << 20)
    assert read(f"{d}/cpu.weight") == "100"  # 1024 shares is the default weight
    assert read(f"{d}/cpu.max") == "50000 100000"
    assert read(f"{d}/cpu.idle") == "1"
    assert read(f"{d}/pids.max") == "64"
    assert read(f"{d}/io.weight") == str(1 + (500 - 10) * 9999 // 990)
    # what v2 cannot do is reported, not silently dropped
    assert any("kernel" in n for n in mgr.notes)
    assert any("swappiness" in n for n in mgr.notes)
    assert any("disableOOMKiller" in n for n in mgr.notes)


def test_unlimited_values(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}})
    d = mgr.paths[""]
    assert read(f"{d}/memory.max") == "max"
    assert read(f"{d}/memory.swap.max") == "max"
    assert read(f"{d}/cpu.max") == "max 100000"
    assert read(f"{d}/pids.max") == "max"


def test_period_alone_keeps_quota(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"cpu": {"quota": 20000}})
    mgr.update({"cpu": {"period": 50000}})
    assert read(f"{mgr.paths['']}/cpu.max") == "20000 50000"


def test_io_max_lines(v2, record_writes):
    written = record_writes()
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
                           "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]}})
    assert ("io.max", "8:0 rbps=1024") in written
    assert ("io.max", "8:0 wiops=max") in written  # 0 lifts the limit, as in v1


def test_unified_written_last_and_checked(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"memory": {"limit": 1 << 30}, "unified": {"memory.max": "2147483648"}})
    assert read(f"{mgr.paths['']}/memory.max") == "2147483648"
    with pytest.raises(InvalidResources, match="no such file"):
        mgr.update({"unified": {"memory.nonsense": "1"}})
    with pytest.raises(InvalidResources, match="unified key"):
        mgr.update({"unified": {"../../etc/passwd": "x"}})
    with pytest.raises(InvalidResources, match="unified key"):
        mgr.update({"unified": {"cgroup.procs": "1"}})


def test_realtime_rejected_on_v2(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    with pytest.raises(InvalidResources, match="real-time"):
        mgr.apply({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 10000}})
    assert not os.path.exists(mgr.paths[""])


def test_update_validates_before_writing(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"memory": {"limit": 256 << 20}, "cpu": {"quota": 50000}, "pids": {"limit": 100}})
    d = mgr.paths[""]
    v2.write(v2.root / "virtlab" / "c1" / "memory.current", str(100 << 20))
    bad = [
        {"memory": {"limit": 10 << 20}},  # below current usage
        {"cpu": {"quota": 0}},
        {"cpu": {"quota": 300000, "period": 100000}},  # 3 CPUs on a 2-CPU host
        {"cpu": {"cpus": "0-7"}},
        {"pids": {"limit": 0}},
        {"pids": {"limit": 50}, "memory": {"limit": 1 << 20}},  # one bad value spoils the whole update
        {"memory": {"limit": "lots"}},
    ]
    for update in bad:
        with pytest.raises(InvalidResources):
            mgr.update(update)
        assert read(f"{d}/memory.max") == str(256 << 20)
        assert read(f"{d}/cpu.max") == "50000 100000"
        assert read(f"{d}/pids.max") == "100"
    mgr.update({"memory": {"limit": 200 << 20}, "pids": {"limit": 50}})
    assert read(f"{d}/memory.max") == str(200 << 20)
    assert read(f"{d}/pids.max") == "50"


def test_failed_write_rolls_back(v2, fail_writes):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"memory": {"limit": 256 << 20}, "pids": {"limit": 100}})
    d = mgr.paths[""]
    fail_writes(lambda path, value: path.endswith("pids.max") and str(value) == "7", "Device or resource busy")
    with pytest.raises(CgroupError, match="busy"):
        mgr.update({"memory": {"limit": 128 << 20}, "pids": {"limit": 7}})
    assert read(f"{d}/memory.max") == str(256 << 20)  # restored
    assert read(f"{d}/pids.max") == "100"


def test_freeze_waits_for_events(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({})
    d = mgr.paths[""]
    assert mgr.state() == "thawed"
    with pytest.raises(FreezeTimeout):
        mgr.freeze(timeout=0.05)  # the fake kernel never reports frozen
    assert read(f"{d}/cgroup.freeze") == "0"  # thawed again after the timeout
    v2.write(v2.root / "virtlab" / "c1" / "cgroup.events", "populated 1\nfrozen 1\n")
    mgr.freeze()
    assert mgr.state() == "frozen"
    v2.write(v2.root / "virtlab" / "c1" / "cgroup.events", "populated 1\nfrozen 0\n")
    mgr.thaw()
    assert mgr.state() == "thawed"


def test_kill_all_uses_cgroup_kill(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({})
    mgr.kill_all(signal.SIGKILL)
    assert read(f"{mgr.paths['']}/cgroup.kill") == "1"


def test_stats_and_oom(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"memory": {"limit": 64 << 20}, "pids": {"limit": 10}})
    d = v2.root / "virtlab" / "c1"
    v2.write(d / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    v2.write(d / "memory.current", str(10 << 20))
    v2.write(d / "memory.stat", f"anon 100\ninactive_file {2 << 20}\n")
    v2.write(d / "memory.peak", str(12 << 20))
    v2.write(d / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    v2.write(d / "pids.current", "3")
    v2.write(d / "io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n253:0 rbytes=1 wbytes=2\n")
    s = mgr.stats()
    assert s == {
        "cpu_ns": 1_500_000, "cpu_user_ns": 1_000_000, "cpu_system_ns": 500_000,
        "mem_bytes": 8 << 20, "mem_limit": 64 << 20, "mem_max_usage": 12 << 20, "oom_kills": 1,
        "pids": 3, "pids_limit": 10, "blk_read": 101, "blk_write": 202,
    }
    assert mgr.oom_killed()


def test_pids_recursive(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({})
    d = v2.root / "virtlab" / "c1"
    v2.write(d / "cgroup.procs", "10\n11\n")
    os.mkdir(d / "inner")
    v2.write(d / "inner" / "cgroup.procs", "12\n")
    assert mgr.pids() == [10, 11, 12]


def test_destroy_removes_what_it_made_and_is_idempotent(v2):
    (v2.root / "admin").mkdir()  # an administrator's parent: must stay
    a = open_manager("/admin/c1", "c1", root=str(v2.root))
    a.apply({})
    b = open_manager(None, "c2", root=str(v2.root))
    c = open_manager(None, "c3", root=str(v2.root))
    b.apply({})
    c.apply({})
    os.mkdir(os.path.join(b.paths[""], "nested"))  # a cgroup the container made inside its own
    load_manager(b.paths, root=str(v2.root)).destroy()
    assert not os.path.exists(b.paths[""])
    assert (v2.root / "virtlab").is_dir()  # still used by c3
    c.destroy()
    c.destroy()
    if trusted_xattrs_work(v2.root):
        assert not (v2.root / "virtlab").exists()  # the last one takes the shared parent
    a.destroy()
    assert (v2.root / "admin").is_dir()


def test_load_manager_rejects_foreign_paths(v2):
    with pytest.raises(CgroupError, match="not inside"):
        load_manager({"": "/etc"}, root=str(v2.root))
    with pytest.raises(CgroupError, match="not inside"):
        load_manager({"": f"{v2.root}/../../etc"}, root=str(v2.root))
    with pytest.raises(CgroupError):
        load_manager({}, root=str(v2.root))


def test_add_creates_and_moves(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.add(4242)
    assert read(f"{mgr.paths['']}/cgroup.procs") == "4242"


def test_destroy_refuses_while_processes_remain(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({})
    v2.write(v2.root / "virtlab" / "c1" / "cgroup.procs", "4242\n")
    with pytest.raises(CgroupError, match="busy"):
        mgr.destroy()
    assert os.path.isdir(mgr.paths[""])


def test_missing_controller_fails_before_writing(fakefs):
    fs = fakefs("v2", v2_controllers=("pids",))
    mgr = open_manager(None, "c1", root=str(fs.root))
    with pytest.raises(CgroupUnsupported, match="memory limits .* controller not available"):
        mgr.apply({"pids": {"limit": 5}, "memory": {"limit": 64 << 20}})
    assert not os.path.exists(mgr.paths[""])
    mgr.apply({"pids": {"limit": 5}, "memory": {"kernel": 1 << 20}})  # notes only: no memory files needed
    assert read(f"{mgr.paths['']}/pids.max") == "5"


def test_enable_refused_by_the_kernel_is_explained(v2, fail_writes):
    fail_writes(lambda path, value: path.endswith("cgroup.subtree_control") and "memory" in str(value),
                "Device or resource busy")
    mgr = open_manager(None, "c1", root=str(v2.root))
    with pytest.raises(CgroupUnsupported, match="cannot enable the memory controller .* busy"):
        mgr.apply({"memory": {"limit": 64 << 20}})
    assert not os.path.exists(mgr.paths[""])


def test_unknown_unified_key_refused_at_apply(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    with pytest.raises(InvalidResources, match="memory.nonsense"):
        mgr.apply({"unified": {"memory.nonsense": "1"}})
    assert not os.path.exists(mgr.paths[""])


def test_apply_takes_a_quota_above_the_host_update_does_not(v2):
    mgr = open_manager(None, "c1", root=str(v2.root))
    mgr.apply({"cpu": {"quota": 200000, "period": 50000, "cpus": "0"}})  # the OCI suite does this
    assert read(f"{mgr.paths['']}/cpu.max") == "200000 50000"
    with pytest.raises(InvalidResources, match="asks for 3 CPUs"):
        mgr.update({"cpu": {"quota": 150000}})
    assert read(f"{mgr.paths['']}/cpu.max") == "200000 50000"

"""The v1 manager's logic against a fake v1/hybrid tree (the real tree is in tests/integration)."""

from __future__ import annotations

import os

import pytest
from cgfake import V1_MAX, read

from runtime.oci.cgroups import InvalidResources, detect_mode, load_manager, open_manager
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported


@pytest.fixture
def v1(fakefs):
    return fakefs("v1")


def test_modes(fakefs):
    assert detect_mode(str(fakefs("v1").root)) == "v1"
    assert detect_mode(str(fakefs("hybrid").root)) == "hybrid"
    assert detect_mode(str(fakefs("v2").root)) == "v2"


def test_one_dir_per_hierarchy(v1):
    mgr = open_manager("/x/y", "c1", root=str(v1.root))
    assert mgr.mode == "v1"
    assert set(mgr.paths) == set(v1.v1_controllers)
    for ctrl, d in mgr.paths.items():
        assert d == str(v1.root / ctrl / "x" / "y")


def test_hybrid_joins_the_unified_tree(fakefs):
    fs = fakefs("hybrid")
    mgr = open_manager(None, "c1", root=str(fs.root))
    assert mgr.mode == "hybrid"
    assert mgr.paths[""] == str(fs.root / "unified" / "virtlab" / "c1")
    mgr.add(77)
    assert read(fs.root / "unified" / "virtlab" / "c1" / "cgroup.procs") == "77"
    assert read(fs.root / "memory" / "virtlab" / "c1" / "cgroup.procs") == "77"


def test_cpuset_copied_down_every_level(v1):
    mgr = open_manager("/a/b/c", "c1", root=str(v1.root))
    mgr.apply({})
    for d in ("a", "a/b", "a/b/c"):
        assert read(v1.root / "cpuset" / d / "cpuset.cpus") == "0-1"
        assert read(v1.root / "cpuset" / d / "cpuset.mems") == "0"


def test_values_written(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({
        "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20, "kernelTCP": 1 << 20,
                   "swappiness": 10, "disableOOMKiller": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimePeriod": 1000000, "realtimeRuntime": 100,
                "cpus": "1", "mems": "0"},
        "pids": {"limit": 99},
        "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}],
    })
    p = mgr.paths
    assert read(f"{p['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert read(f"{p['memory']}/memory.memsw.limit_in_bytes") == str(128 << 20)
    assert read(f"{p['memory']}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(f"{p['memory']}/memory.kmem.tcp.limit_in_bytes") == str(1 << 20)
    assert read(f"{p['memory']}/memory.swappiness") == "10"
    assert read(f"{p['memory']}/memory.oom_control") == "1"
    assert read(f"{p['cpu']}/cpu.shares") == "512"
    assert read(f"{p['cpu']}/cpu.cfs_quota_us") == "50000"
    assert read(f"{p['cpu']}/cpu.cfs_period_us") == "100000"
    assert read(f"{p['cpu']}/cpu.rt_runtime_us") == "100"
    assert read(f"{p['cpuset']}/cpuset.cpus") == "1"
    assert read(f"{p['pids']}/pids.max") == "99"
    assert read(f"{p['blkio']}/blkio.bfq.weight") == "300"  # no CFQ blkio.weight here: BFQ's file
    assert read(f"{p['blkio']}/blkio.throttle.read_bps_device") == "8:0 1000"
    assert read(f"{p['hugetlb']}/hugetlb.2MB.limit_in_bytes") == str(2 << 20)


def test_memory_and_swap_order(v1, record_writes):
    written = record_writes()
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"memory": {"limit": 64 << 20, "swap": 64 << 20}})
    # lowering from unlimited: memory first, then memory+swap
    assert [w for w, _ in written if "limit_in_bytes" in w] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    written.clear()
    mgr.update({"memory": {"limit": 256 << 20, "swap": 512 << 20}})
    # growing past the current memory+swap ceiling: the ceiling first
    assert [w for w, _ in written if "limit_in_bytes" in w] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_update_memory_above_swap_ceiling_refused(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"memory": {"limit": 64 << 20, "swap": 64 << 20}})
    with pytest.raises(InvalidResources, match="memory\\+swap"):
        mgr.update({"memory": {"limit": 128 << 20}})
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(64 << 20)


def test_update_below_usage_refused(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"memory": {"limit": 64 << 20}})
    v1.write(v1.root / "memory" / "virtlab" / "c1" / "memory.usage_in_bytes", str(40 << 20))
    with pytest.raises(InvalidResources, match="current usage"):
        mgr.update({"memory": {"limit": 20 << 20}})
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(64 << 20)


def test_devices_in_order(v1, record_writes):
    written = record_writes()
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "b", "major": 8, "minor": 20, "access": "wr"},
        {"allow": False, "type": "c", "major": 5, "access": "m"},
    ]})
    assert [w for w in written if w[0].startswith("devices.")] == [
        ("devices.deny", "a"),
        ("devices.allow", "c 10:229 rwm"),
        ("devices.allow", "b 8:20 rw"),
        ("devices.deny", "c 5:* m"),
    ]


def test_kernel_memory_ignored_when_missing(fakefs):
    fs = fakefs("v1")
    os.unlink(fs.root / "memory" / "memory.kmem.limit_in_bytes")  # a kernel without it (children copy the root)
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({})
    os.unlink(f"{mgr.paths['memory']}/memory.kmem.limit_in_bytes")
    mgr.update({"memory": {"kernel": 1 << 20}})
    assert any("kmem" in n for n in mgr.notes)


def test_missing_controller_noted(fakefs):
    fs = fakefs("v1", v1_controllers=("memory", "cpu", "pids", "freezer"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({"network": {"classID": 7}, "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    assert any("net_cls" in n for n in mgr.notes)
    assert any("hugetlb" in n for n in mgr.notes)


def test_unified_refused_on_v1(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    with pytest.raises(InvalidResources, match="cgroup v2"):
        mgr.apply({"unified": {"memory.high": "1000"}})
    assert not os.path.exists(mgr.paths["memory"])


def test_freezer_v1(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({})
    mgr.freeze()
    assert read(f"{mgr.paths['freezer']}/freezer.state") == "FROZEN"
    assert mgr.state() == "frozen"
    mgr.thaw()
    assert mgr.state() == "thawed"


def test_no_freezer(fakefs):
    fs = fakefs("v1", v1_controllers=("memory", "pids"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({})
    with pytest.raises(CgroupUnsupported, match="freezer"):
        mgr.freeze()


def test_stats_v1(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"memory": {"limit": 64 << 20}, "pids": {"limit": 5}})
    d = v1.root
    v1.write(d / "cpuacct/virtlab/c1/cpuacct.usage", "3000")
    v1.write(d / "cpuacct/virtlab/c1/cpuacct.usage_user", "2000")
    v1.write(d / "cpuacct/virtlab/c1/cpuacct.usage_sys", "1000")
    v1.write(d / "memory/virtlab/c1/memory.usage_in_bytes", str(5 << 20))
    v1.write(d / "memory/virtlab/c1/memory.stat", f"cache 0\ntotal_inactive_file {1 << 20}\n")
    v1.write(d / "memory/virtlab/c1/memory.max_usage_in_bytes", str(6 << 20))
    v1.write(d / "memory/virtlab/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    v1.write(d / "pids/virtlab/c1/pids.current", "2")
    v1.write(d / "blkio/virtlab/c1/blkio.throttle.io_service_bytes_recursive",
             "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Total 30\nTotal 30\n")
    assert mgr.stats() == {
        "cpu_ns": 3000, "cpu_user_ns": 2000, "cpu_system_ns": 1000, "mem_bytes": 4 << 20, "mem_limit": 64 << 20,
        "mem_max_usage": 6 << 20, "oom_kills": 2, "pids": 2, "pids_limit": 5, "blk_read": 10, "blk_write": 20,
    }
    assert mgr.oom_killed()


def test_unlimited_memory_reads_as_host_memory(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({})
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == V1_MAX
    assert mgr.stats()["mem_limit"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert mgr.stats()["pids_limit"] == 0


def test_load_and_destroy(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({})
    again = load_manager(mgr.paths, root=str(v1.root))
    assert again.mode == "v1"
    again.destroy()
    again.destroy()
    assert not any(os.path.exists(d) for d in mgr.paths.values())
    with pytest.raises(CgroupError, match="does not exist"):
        again.update({"pids": {"limit": 3}})


def test_failed_apply_leaves_nothing(v1, fail_writes):
    fail_writes(lambda path, value: path.endswith("pids.max"), "Invalid argument")
    mgr = open_manager(None, "c1", root=str(v1.root))
    with pytest.raises(CgroupError, match="pids.max"):
        mgr.apply({"memory": {"limit": 64 << 20}, "pids": {"limit": 3}})
    assert not any(os.path.exists(d) for d in mgr.paths.values())


def test_reclaimable_page_cache_does_not_block_a_lower_limit(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"memory": {"limit": 64 << 20}})
    d = v1.root / "memory" / "virtlab" / "c1"
    v1.write(d / "memory.usage_in_bytes", str(40 << 20))
    v1.write(d / "memory.stat", f"total_inactive_file {30 << 20}\n")
    mgr.update({"memory": {"limit": 20 << 20}})  # 10 MiB really in use
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(20 << 20)
    with pytest.raises(InvalidResources, match="10485760 bytes"):
        mgr.update({"memory": {"limit": 5 << 20}})


def test_swap_without_memory_limit_refused_before_writing(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    with pytest.raises(InvalidResources, match="memory\\+swap"):
        mgr.apply({"memory": {"swap": 64 << 20}})
    assert not any(os.path.exists(d) for d in mgr.paths.values())


def test_rollback_restores_oom_control(v1, fail_writes):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"pids": {"limit": 9}})
    fail_writes(lambda path, value: path.endswith("pids.max"), "Invalid argument")
    with pytest.raises(CgroupError) as info:
        mgr.update({"memory": {"disableOOMKiller": True}, "pids": {"limit": 3}})
    assert read(f"{mgr.paths['memory']}/memory.oom_control") == "0"
    assert not getattr(info.value, "__notes__", None)  # every restore worked


def test_hybrid_without_v1_freezer_uses_cgroup_freeze(fakefs):
    fs = fakefs("hybrid", v1_controllers=("memory", "pids"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({})
    unified = fs.root / "unified" / "virtlab" / "c1"
    fs.write(unified / "cgroup.events", "populated 1\nfrozen 1\n")
    mgr.freeze()
    assert read(unified / "cgroup.freeze") == "1"
    assert mgr.state() == "frozen"
    fs.write(unified / "cgroup.events", "populated 1\nfrozen 0\n")
    mgr.thaw()
    assert mgr.state() == "thawed"


def test_hybrid_without_v1_devices_uses_ebpf(fakefs, monkeypatch):
    from runtime.oci.cgroups import ebpf

    calls = []
    monkeypatch.setattr(ebpf, "set_device_rules", lambda d, rules, replace=True: calls.append((d, rules)))
    fs = fakefs("hybrid", v1_controllers=("memory", "pids"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3}]})
    assert len(calls) == 1
    assert calls[0][0] == str(fs.root / "unified" / "virtlab" / "c1")
    assert [r.v1_line() for r in calls[0][1]] == ["a", "c 1:3 rwm"]


def test_v1_without_devices_notes_the_rules(fakefs):
    fs = fakefs("v1", v1_controllers=("memory", "pids"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({"devices": [{"allow": False, "access": "rwm"}]})
    assert any("devices" in n for n in mgr.notes)


def test_kill_all_sigterm_freezes_signals_thaws(v1, monkeypatch):
    import signal

    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig, read(f"{mgr.paths['freezer']}/freezer.state"))))
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({})
    v1.write(v1.root / "pids" / "virtlab" / "c1" / "cgroup.procs", "101\n102\n")
    mgr.kill_all(signal.SIGTERM)
    assert sent == [(101, signal.SIGTERM, "FROZEN"), (102, signal.SIGTERM, "FROZEN")]
    assert mgr.state() == "thawed"


def test_update_refuses_more_cpus_than_the_host_using_the_current_period(v1):
    mgr = open_manager(None, "c1", root=str(v1.root))
    mgr.apply({"cpu": {"quota": 400000, "period": 500000}})  # 0.8 CPU
    with pytest.raises(InvalidResources, match="asks for 3 CPUs"):
        mgr.update({"cpu": {"quota": 1500000}})  # period stays 500000
    mgr.update({"cpu": {"quota": 900000}})
    assert read(f"{mgr.paths['cpu']}/cpu.cfs_quota_us") == "900000"


def test_hybrid_cpu_time_from_cgroup2_without_cpuacct(fakefs):
    fs = fakefs("hybrid", v1_controllers=("memory", "pids"))
    mgr = open_manager(None, "c1", root=str(fs.root))
    mgr.apply({})
    fs.write(fs.root / "unified" / "virtlab" / "c1" / "cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n")
    s = mgr.stats()
    assert (s["cpu_ns"], s["cpu_user_ns"], s["cpu_system_ns"]) == (7000, 5000, 2000)


def test_partial_creation_is_undone(v1):
    (v1.root / "pids" / "virtlab").mkdir()
    (v1.root / "pids" / "virtlab" / "c1").write_text("")  # a file where the cgroup should go
    mgr = open_manager(None, "c1", root=str(v1.root))
    with pytest.raises(CgroupError, match="a file is in the way"):
        mgr.apply({"memory": {"limit": 64 << 20}})
    for ctrl in v1.v1_controllers:
        if ctrl != "pids":
            assert not (v1.root / ctrl / "virtlab").exists(), ctrl

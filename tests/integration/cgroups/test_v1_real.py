"""The v1/hybrid manager on this host's real cgroup tree (root only).

Each test creates its own cgroup under /virtlab/<unique id>, puts real processes in it
and checks what the kernel does with the limits.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from cgtools import (
    MEMHOG,
    PY,
    check_freeze_stops_a_busy_child,
    proc_cgroup,
    read,
    unique_id,
    wait_for,
)

from runtime.oci.cgroups import InvalidResources, detect_mode, load_manager, open_manager

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(detect_mode() == "v2", reason="this host has a pure cgroup v2 tree (see test_v2_real.py)"),
]


def test_lifecycle(cg):
    mgr = cg()
    mgr.apply({
        "memory": {"limit": 64 << 20, "swap": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
    })
    child = cg.child(mgr, ["sleep", "60"])
    where = proc_cgroup(child.pid)
    rel = "/" + os.path.relpath(mgr.paths["memory"], "/sys/fs/cgroup/memory")
    for ctrl in ("memory", "cpu", "cpuset", "pids", "freezer", "devices", "blkio", "cpuacct"):
        if ctrl in mgr.paths:
            assert where[ctrl] == rel, ctrl
    if mgr.mode == "hybrid":
        assert where[""] == rel
    assert mgr.pids() == [child.pid]
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert read(f"{mgr.paths['memory']}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(f"{mgr.paths['memory']}/memory.swappiness") == "10"
    assert read(f"{mgr.paths['cpu']}/cpu.shares") == "512"
    assert read(f"{mgr.paths['cpu']}/cpu.cfs_quota_us") == "50000"
    assert read(f"{mgr.paths['cpuset']}/cpuset.cpus") == "0"
    assert read(f"{mgr.paths['pids']}/pids.max") == "50"
    # the intermediate /virtlab level got cpus and mems too, or the child could not have joined
    assert read(os.path.dirname(mgr.paths["cpuset"]) + "/cpuset.cpus") != ""


def test_freeze_stops_the_process(cg):
    mgr = cg()
    mgr.apply({})
    check_freeze_stops_a_busy_child(cg, mgr)


def test_update_and_bad_updates_keep_limits(cg):
    mgr = cg()
    mgr.apply({"memory": {"limit": 256 << 20}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}})
    child = cg.child(mgr, [PY, "-c", "b = bytearray(40 << 20); b[::4096] = b'x' * (10 << 10); print('ok', flush=True)\n"
                                     "import time; time.sleep(60)"])
    child.go()
    assert child.proc.stdout.readline().strip() == b"ok"
    mgr.update({"memory": {"limit": 200 << 20}, "cpu": {"quota": 25000}, "pids": {"limit": 20}})
    assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(200 << 20)
    assert read(f"{mgr.paths['cpu']}/cpu.cfs_quota_us") == "25000"
    assert read(f"{mgr.paths['pids']}/pids.max") == "20"
    for bad in (
        {"memory": {"limit": 8 << 20}},  # below the 40 MiB the child uses
        {"cpu": {"quota": 0}},
        {"cpu": {"quota": 100000 * (len(os.sched_getaffinity(0)) + 1)}},
        {"cpu": {"cpus": "0-4095"}},
        {"pids": {"limit": 0}},
        {"pids": {"limit": 5}, "memory": {"limit": 1}},
    ):
        with pytest.raises(InvalidResources):
            mgr.update(bad)
        assert read(f"{mgr.paths['memory']}/memory.limit_in_bytes") == str(200 << 20)
        assert read(f"{mgr.paths['cpu']}/cpu.cfs_quota_us") == "25000"
        assert read(f"{mgr.paths['pids']}/pids.max") == "20"


def test_memory_hog_is_oom_killed(cg):
    mgr = cg()
    mgr.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    assert not mgr.oom_killed()
    child = cg.child(mgr, [PY, "-c", MEMHOG])
    child.go()
    code, out, _ = child.output(timeout=60)
    assert code == -signal.SIGKILL
    assert "survived" not in out
    assert mgr.oom_killed()
    stats = mgr.stats()
    assert stats["oom_kills"] >= 1
    assert stats["mem_max_usage"] >= 16 << 20
    assert stats["mem_limit"] == 32 << 20


def test_fork_bomb_is_contained(cg):
    mgr = cg()
    mgr.apply({"pids": {"limit": 16}})
    child = cg.child(mgr, ["sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait"])
    child.go()
    events = f"{mgr.paths['pids']}/pids.events"
    assert wait_for(lambda: files_int(events, "max") > 0), "the pids limit never refused a fork"
    time.sleep(0.2)
    stats = mgr.stats()
    assert 0 < stats["pids"] <= 16
    assert stats["pids_limit"] == 16
    assert len(mgr.pids()) <= 16
    mgr.kill_all(signal.SIGKILL)
    assert wait_for(lambda: mgr.pids() == [])


def files_int(path: str, key: str) -> int:
    for line in read(path).splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return 0


def test_kill_all_with_sigterm_reaches_every_process(cg):
    mgr = cg()
    mgr.apply({})
    child = cg.child(mgr, ["sh", "-c", "sleep 30 & sleep 30 & wait"])
    child.go()
    assert wait_for(lambda: len(mgr.pids()) == 3)
    mgr.kill_all(signal.SIGTERM)
    assert wait_for(lambda: mgr.pids() == [])
    assert mgr.state() == "thawed"


def test_stats_count_real_work(cg):
    mgr = cg()
    mgr.apply({"memory": {"limit": 128 << 20}, "pids": {"limit": 10}})
    child = cg.child(mgr, [PY, "-c", "import time\nb = bytearray(8 << 20); b[::4096] = b'x' * (2 << 10)\n"
                                     "while time.process_time() < 0.3: pass\n"
                                     "open('/proc/self/status').read(); print('ok', flush=True); time.sleep(60)"])
    child.go()
    assert child.proc.stdout.readline().strip() == b"ok"
    s = mgr.stats()
    assert s["cpu_ns"] >= 100_000_000
    assert s["cpu_user_ns"] > 0
    assert s["mem_bytes"] >= 8 << 20
    assert s["mem_limit"] == 128 << 20
    assert s["pids"] == 1 and s["pids_limit"] == 10
    assert set(s) == {"cpu_ns", "cpu_user_ns", "cpu_system_ns", "mem_bytes", "mem_limit", "mem_max_usage",
                      "oom_kills", "pids", "pids_limit", "blk_read", "blk_write"}


def test_devices_rules(cg):
    mgr = cg()
    mgr.apply({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]})
    assert read(f"{mgr.paths['devices']}/devices.list") == "c 1:3 rwm"
    child = cg.child(mgr, ["sh", "-c", "echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null || echo zero-denied"])
    child.go()
    code, out, err = child.output()
    assert out.split() == ["null-ok", "zero-denied"]
    assert "Operation not permitted" in err


def test_blkio_throttle_on_a_real_disk(cg):
    disk = None
    with open("/proc/partitions") as f:
        for line in f.read().splitlines()[2:]:
            major, minor, _, name = line.split()
            if os.path.exists(f"/sys/block/{name}"):
                disk = (int(major), int(minor))
                break
    if disk is None:
        pytest.skip("no block device on this host")
    mgr = cg()
    if "blkio" not in mgr.paths:
        pytest.skip("blkio controller not mounted")
    mgr.apply({"blockIO": {"throttleReadBpsDevice": [{"major": disk[0], "minor": disk[1], "rate": 1 << 20}]}})
    assert read(f"{mgr.paths['blkio']}/blkio.throttle.read_bps_device") == f"{disk[0]}:{disk[1]} {1 << 20}"


def test_destroy_leaves_nothing_and_reload_works(cg):
    parent_existed = os.path.exists("/sys/fs/cgroup/pids/virtlab")
    mgr = cg()
    mgr.apply({"pids": {"limit": 10}})
    child = cg.child(mgr, ["true"])
    child.go()
    child.wait()
    again = load_manager(mgr.paths)
    again.destroy()
    again.destroy()
    assert not any(os.path.exists(d) for d in mgr.paths.values())
    if not parent_existed:
        for d in mgr.paths.values():
            assert not os.path.exists(os.path.dirname(d)), os.path.dirname(d)


def test_relative_path_lives_under_our_own_cgroup(cg):
    name = unique_id()
    mgr = cg(f"{name}/inner/ctr")
    mgr.apply({"memory": {"limit": 64 << 20}})
    own = proc_cgroup(os.getpid())
    for ctrl in ("memory", "pids"):
        expected = os.path.join(f"/sys/fs/cgroup/{ctrl}", own[ctrl].lstrip("/"), name, "inner", "ctr")
        assert mgr.paths[ctrl] == expected
        assert os.path.isdir(expected)
    mgr.destroy()
    for ctrl in ("memory", "pids"):
        assert not os.path.exists(os.path.join(f"/sys/fs/cgroup/{ctrl}", own[ctrl].lstrip("/"), name))


def test_existing_parent_is_kept(cg):
    parent = f"/sys/fs/cgroup/pids/{unique_id('vladmin')}"
    os.mkdir(parent)
    try:
        mgr = cg("/" + os.path.basename(parent) + "/ctr")
        mgr.apply({"pids": {"limit": 5}})
        mgr.destroy()
        assert os.path.isdir(parent)
    finally:
        os.rmdir(parent)


def test_second_manager_for_same_path_joins(cg):
    cid = unique_id()
    a = cg(None, container_id=cid)
    a.apply({"pids": {"limit": 7}})
    b = open_manager(None, cid)
    assert b.paths == a.paths
    b.apply({})  # existing directories are reused, limits kept
    assert read(f"{a.paths['pids']}/pids.max") == "7"


def test_realtime_budget_granted_by_the_parents_we_made(cg):
    mgr = cg(f"/{unique_id()}/mid/ctr")
    if "cpu" not in mgr.paths or not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.skip("no real-time group scheduling in this kernel")
    mgr.apply({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}})
    assert read(f"{mgr.paths['cpu']}/cpu.rt_runtime_us") == "10000"
    assert int(read(os.path.dirname(mgr.paths["cpu"]) + "/cpu.rt_runtime_us")) >= 10000
    with pytest.raises(InvalidResources, match="realtimePeriod"):
        mgr.update({"cpu": {"realtimePeriod": 1000, "realtimeRuntime": 2000}})


def test_kernel_memory_limit_is_reported_when_ignored(cg):
    mgr = cg()
    mgr.apply({"memory": {"limit": 64 << 20, "kernel": 16 << 20, "kernelTCP": 16 << 20}})
    path = f"{mgr.paths['memory']}/memory.kmem.limit_in_bytes"
    if not os.path.exists(path):
        assert any("kmem" in n for n in mgr.notes)
    elif read(path) != str(16 << 20):
        assert any("not enforced" in n for n in mgr.notes)
    assert read(f"{mgr.paths['memory']}/memory.kmem.tcp.limit_in_bytes") == str(16 << 20)


def test_sigkill_reaches_a_paused_container(cg):
    mgr = cg()
    mgr.apply({})
    child = cg.child(mgr, ["sleep", "60"])
    child.go()
    mgr.freeze()
    mgr.kill_all(signal.SIGKILL)
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert mgr.state() == "thawed"
    assert wait_for(lambda: mgr.pids() == [])


def test_parallel_create_and_destroy_share_the_parent_safely():
    """Containers coming and going at once: the shared /virtlab parent may vanish between two mkdirs."""
    import threading

    parent_existed = os.path.exists("/sys/fs/cgroup/pids/virtlab")
    errors: list[BaseException] = []
    made: list = []

    def worker(n: int) -> None:
        try:
            for _ in range(15):
                mgr = open_manager(None, unique_id(f"vlpar{n}"))
                made.append(mgr)
                mgr.apply({"pids": {"limit": 10}, "cpu": {"cpus": "0"}})
                mgr.destroy()
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for mgr in made:  # whatever a failure left behind
        mgr.destroy()
    assert not errors, errors[0]
    assert not any(os.path.exists(d) for mgr in made for d in mgr.paths.values())
    if not parent_existed and os.path.exists("/sys/fs/cgroup/pids/virtlab"):
        # only someone else's containers may keep it
        assert [e for e in os.scandir("/sys/fs/cgroup/pids/virtlab") if e.is_dir()]

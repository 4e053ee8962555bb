import os
import subprocess
import time

import pytest

from bench import backends, suites
from bench import workloads as wl
from bench.backends.base import Backend, Instance, MarkerWatcher, pss_bytes, run_cmd, wait_marker
from bench.errors import ConfigError, ReadyTimeout


def test_backend_names_and_kinds():
    assert backends.NAMES == ("native", "container", "vm-micro", "vm-full", "podman", "runc", "qemu-direct")
    for name in backends.NAMES:
        b = backends.create(name, "/nonexistent", "/nonexistent/work")
        assert b.name == name and b.kind == backends.KIND[name]
    with pytest.raises(ConfigError, match="unknown backend 'xen'"):
        backends.create("xen", "/r", "/w")


def test_parse_lists():
    assert backends.parse_list("runc, native,runc", ("native",)) == ["runc", "native"]
    assert backends.parse_list(None, ("native",)) == ["native"]
    with pytest.raises(ConfigError, match="no backend"):
        backends.parse_list(" , ", ("native",))
    # workloads keep the canonical order whatever the user typed
    assert wl.parse_list("isolation,boot", wl.NAMES) == ["boot", "isolation"]
    with pytest.raises(ConfigError, match="unknown workload"):
        wl.parse_list("boot,sleep", wl.NAMES)


def test_every_workload_can_be_created_and_says_what_fails():
    for name in wl.NAMES:
        w = wl.create(name)
        assert w.name == name and w.mode in ("repeated", "once")
        assert w.failure_metrics(), name
        for metric, unit in w.failure_metrics():
            assert unit and metric


def test_suites():
    q = suites.get("quick")
    assert q.image == "busybox" and "vm-micro" in q.backends and "vm-full" not in q.backends
    assert set(q.workloads) == set(wl.NAMES)
    assert q.params["density"]["cap"] == 20 and q.params["density"]["cap_vm"] == 3
    assert sum(q.params["budget_s"].values()) <= 600
    t = suites.get("table")
    assert t.image == "debian" and "vm-full" in t.backends and t.params["density"]["cap"] is None
    assert suites.get("full").repeat > t.repeat
    q.repeat = 99
    assert suites.get("quick").repeat != 99  # get() returns a copy


def test_instance_destroy_is_idempotent_and_forgets():
    calls = []

    class Inst(Instance):
        def _destroy(self):
            calls.append(1)

    b = Backend("/r", "/w")
    inst = b._track(Inst(b, "x"))
    assert b.live() == [inst]
    with inst:
        pass
    inst.destroy()
    assert calls == [1] and b.live() == [] and inst.destroyed


def test_destroy_all_reports_errors_and_goes_on():
    class Bad(Instance):
        def _destroy(self):
            raise RuntimeError("stuck")

    class Good(Instance):
        def _destroy(self):
            pass

    b = Backend("/r", "/w")
    b._track(Bad(b, "a"))
    b._track(Good(b, "b"))
    errors = b.destroy_all()
    assert len(errors) == 1 and "stuck" in errors[0]
    assert b.live() == []


def test_wait_marker_on_a_pipe():
    r, w = os.pipe()
    os.write(w, b"noise\nVIRTLAB_")
    os.write(w, b"READY\n")
    t0 = time.time()
    seen = wait_marker(r, b"VIRTLAB_READY", 5, "test")
    assert t0 <= seen <= time.time()
    os.close(w)
    with pytest.raises(ReadyTimeout, match="closed its output"):
        wait_marker(r, b"VIRTLAB_READY", 5, "test")
    os.close(r)


def test_wait_marker_times_out_and_notices_exit():
    r, w = os.pipe()
    with pytest.raises(ReadyTimeout, match="within"):
        wait_marker(r, b"X", 0.2, "quiet")
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(ReadyTimeout, match="exited with 0"):
        wait_marker(r, b"X", 5, "gone", proc=p)
    os.close(r)
    os.close(w)


def test_marker_watcher_thread():
    r, w = os.pipe()
    mw = MarkerWatcher(r, b"GO", 5, "t")
    os.write(w, b"GO\n")
    assert mw.result(5) <= time.time()
    os.close(w)
    os.close(r)


def test_run_cmd_captures_and_times_out():
    r = run_cmd(["sh", "-c", "echo out; echo err >&2; exit 3"], 10, capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_cmd(["sleep", "10"], 0.3)


def test_pss_of_ourselves_and_of_nothing():
    assert pss_bytes([os.getpid()]) > 0
    assert pss_bytes([2**22 + 7]) == 0

"""Engine lifecycle on the real runtime: create, start, logs, wait, stop, restart, pause, rm."""

from __future__ import annotations

import os
import signal
import time

import pytest

from runtime.engine import ContainerSpec
from runtime.engine.errors import CommandNotFound, EngineError, InvalidState, NameConflict, NoSuchContainer

pytestmark = pytest.mark.root


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def spec(*cmd, **kw):
    kw.setdefault("network", "none")
    return ContainerSpec(image="busybox", cmd=list(cmd), **kw)


def test_run_to_exit_with_logs_and_timings(engine):
    c = engine.create(spec("sh", "-c", "echo out; echo err >&2; exit 3", name="job"))
    assert c.status == "created" and len(c.id) == 64
    engine.start(c.id)
    assert engine.wait(c.id) == 3
    entries = list(engine.logs("job"))
    assert [(e.stream, e.text) for e in entries] == [("stdout", "out"), ("stderr", "err")]
    info = engine.inspect("job")
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 3
    assert info["Name"] == "/job"
    t = info["State"]["Timings"]
    assert t["requested"] <= t["runtime_create_begin"] <= t["runtime_create_end"] <= t["runtime_start_end"]
    assert entries[0].ts >= t["runtime_create_end"]


def test_wait_output_gives_the_host_time_of_the_marker(engine):
    c = engine.create(spec("sh", "-c", "sleep 0.2; echo VIRTLAB_READY; sleep 30"))
    before = time.time()
    engine.start(c.id)
    ready = engine.wait_output(c.id, b"VIRTLAB_READY", timeout=10)
    assert before + 0.2 <= ready <= time.time()
    engine.stop(c.id, timeout=1)


def test_signal_and_exit_codes(engine):
    c = engine.create(spec("sleep", "30"))
    engine.start(c.id)
    engine.kill(c.id, signal.SIGKILL)
    assert engine.wait(c.id) == 137
    c = engine.create(spec("/nonexistent"))
    with pytest.raises(CommandNotFound) as ei:
        engine.start(c.id)
    assert ei.value.exit_code == 127
    assert engine.record(c.id)["State"]["Status"] == "exited"


def test_stop_sends_stop_signal_then_sigkill(engine):
    c = engine.create(spec("sh", "-c", "trap '' TERM; echo up; while true; do sleep 1; done"))
    engine.start(c.id)
    engine.wait_output(c.id, "up", timeout=10)
    t0 = time.monotonic()
    engine.stop(c.id, timeout=1)
    assert 0.9 <= time.monotonic() - t0 < 8
    rec = engine.record(c.id)
    assert rec["State"]["Status"] == "exited" and rec["State"]["ExitCode"] == 137
    c2 = engine.create(spec("sleep", "30"))
    engine.start(c2.id)
    engine.stop(c2.id, timeout=10)  # sleep as PID 1 has no TERM handler... it still dies on SIGKILL
    assert engine.record(c2.id)["State"]["Status"] == "exited"


def test_pause_unpause_and_state_checks(engine):
    c = engine.create(spec("sh", "-c", "while true; do echo tick; sleep 0.1; done"))
    with pytest.raises(InvalidState):
        engine.pause(c.id)
    engine.start(c.id)
    engine.pause(c.id)
    assert engine.record(c.id)["State"]["Status"] == "paused"
    with pytest.raises(InvalidState):
        engine.exec(c.id, ["true"])
    with pytest.raises(InvalidState, match="stop the container"):
        engine.remove(c.id)
    engine.unpause(c.id)
    assert engine.record(c.id)["State"]["Status"] == "running"
    engine.remove(c.id, force=True)
    with pytest.raises(NoSuchContainer):
        engine.record(c.id)


def test_restart_and_start_again(engine):
    c = engine.create(spec("sh", "-c", "echo run; sleep 30", name="again"))
    engine.start(c.id)
    engine.wait_output(c.id, "run", 10)
    engine.restart(c.id, timeout=0)
    assert engine.record(c.id)["State"]["Status"] == "running"
    # the second run must have printed before it is stopped, or there is nothing to count
    assert wait_for(lambda: [e.text for e in engine.logs(c.id)].count("run") == 2)
    engine.stop(c.id, timeout=0)
    engine.start(c.id)
    ok = wait_for(lambda: [e.text for e in engine.logs(c.id)].count("run") == 3, timeout=20)
    assert ok, ([(e.stream, e.text) for e in engine.logs(c.id)], engine.inspect(c.id)["State"])


def test_names_conflict_and_rename(engine):
    a = engine.create(spec("true", name="alpha"))
    with pytest.raises(NameConflict):
        engine.create(spec("true", name="alpha"))
    engine.rename("alpha", "beta")
    assert engine.resolve("beta") == a.id
    with pytest.raises(NoSuchContainer):
        engine.resolve("alpha")
    engine.create(spec("true", name="alpha"))  # the old name is free again


def test_exec_joins_the_container(engine):
    c = engine.create(spec("sleep", "30", hostname="inside", env={"FOO": "bar"}))
    engine.start(c.id)
    r = engine.exec(c.id, ["sh", "-c", "hostname; echo $FOO $EXTRA; id -u; pwd"], env={"EXTRA": "x"},
                    user="nobody", workdir="/tmp")
    assert r.exit_code == 0
    assert r.stdout.decode().split() == ["inside", "bar", "x", "65534", "/tmp"]
    pid1 = engine.exec(c.id, ["cat", "/proc/1/cmdline"]).stdout
    assert pid1.startswith(b"sleep")
    assert engine.exec(c.id, ["sh", "-c", "exit 7"]).exit_code == 7
    with pytest.raises(CommandNotFound):
        engine.exec(c.id, ["/no/such/cmd"])


def test_restart_policy_on_failure(engine):
    c = engine.create(spec("sh", "-c", "echo boot; exit 1", restart="on-failure:2"))
    engine.start(c.id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rec = engine.record(c.id)
        if rec["State"]["Status"] == "exited":
            break
        time.sleep(0.1)
    assert rec["State"]["Status"] == "exited"
    assert [e.text for e in engine.logs(c.id)].count("boot") == 3
    assert engine.inspect(c.id)["RestartCount"] == 2


def test_autoremove_by_the_monitor(engine):
    c = engine.create(spec("true", auto_remove=True))
    engine.start(c.id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and engine.store.path(c.id).exists():
        time.sleep(0.05)
    assert not engine.store.path(c.id).exists()


def test_ps_truthful_after_sigkill_of_monitor_and_container(engine):
    c = engine.create(spec("sleep", "60"))
    engine.start(c.id)
    mon = int((engine.store.path(c.id) / "monitor.lock").read_text())
    os.kill(mon, signal.SIGKILL)
    time.sleep(0.2)
    rec = engine.record(c.id)
    assert rec["State"]["Status"] == "running" and "monitor died" in rec["State"]["Error"]
    os.kill(rec["State"]["Pid"], signal.SIGKILL)
    time.sleep(0.2)
    rec = engine.record(c.id)
    assert rec["State"]["Status"] == "exited"
    engine.remove(c.id)

    c = engine.create(spec("sleep", "60"))
    engine.start(c.id)
    os.kill(engine.record(c.id)["State"]["Pid"], signal.SIGKILL)
    assert engine.wait(c.id, timeout=10) == 137
    assert [x.id for x in engine.list()] == []


def test_volumes_named_bind_and_anonymous(engine, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("from host")
    c = engine.create(spec("sh", "-c", "cat /h/f; echo hi > /data/x; echo a > /anon/y",
                           volumes=[f"{host}:/h:ro", "data:/data", "/anon"]))
    engine.start(c.id)
    assert engine.wait(c.id) == 0
    assert [e.text for e in engine.logs(c.id)] == ["from host"]
    assert (engine.root / "volumes" / "data" / "_data" / "x").read_text() == "hi\n"
    anon = [m["Name"] for m in engine.record(c.id)["Mounts"] if m.get("Anonymous")]
    engine.remove(c.id, volumes=True)
    assert not (engine.root / "volumes" / anon[0]).exists()
    assert (engine.root / "volumes" / "data").exists()  # named volumes survive rm -v


def test_read_only_rootfs_and_init(engine):
    c = engine.create(spec("sh", "-c", "touch /x 2>/dev/null && echo writable || echo ro; cat /proc/1/cmdline | tr '\\0' ' '",
                           read_only=True, init=True))
    engine.start(c.id)
    assert engine.wait(c.id) == 0
    out = [e.text for e in engine.logs(c.id)]
    assert out[0] == "ro" and out[1].startswith("/dev/init")


def test_unknown_image_creates_nothing(engine):
    with pytest.raises(EngineError, match="unable to find image"):
        engine.create(spec("true").__class__(image="nope:latest", cmd=["true"], network="none"))
    assert engine.list(all=True) == []
    assert not any(n for n in os.listdir(engine.root / "containers") if not n.startswith(".")) \
        if (engine.root / "containers").exists() else True

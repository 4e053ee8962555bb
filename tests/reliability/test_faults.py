"""SIGKILL at each step of create, start, stop, rm, commit, pull and push, of the CLI, the monitor and the init.

Each test drives the real CLI on a fresh store, kills one process at chosen moments (when
the step's on-disk trace appears, and after short delays spread over the step), then checks
that the image store is consistent, that `ps -a` tells the truth, and that the ordinary
commands clean everything up (the leak check then looks at the host). VM faults (the CLI,
QEMU and libvirtd during `vm start`) are in test_vm_faults.py.

VIRTLAB_FAULT_ROUNDS (default 1) repeats the delay schedule with other seeds; the `slow`
variants run five rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    cgroup_procs,
    check_ps_truth,
    check_store,
    cleanup_with_cli,
    communicate_or_fail,
    engine_scratch,
    glob_any,
    holders_of,
    kill_after,
    kill_when,
    monitor_pid,
    pid_alive,
    release_container_objects,
    spawn,
    vl,
)

pytestmark = pytest.mark.root

ROUNDS = int(os.environ.get("VIRTLAB_FAULT_ROUNDS", "1"))
# Kill delays, as fractions of how long the step takes when nothing goes wrong.
FRACTIONS = (0.1, 0.4, 0.7, 0.95)


def delays(duration: float, rounds: int = ROUNDS, seed: int = 0) -> list[float]:
    """Kill moments spread over a step of `duration` seconds, jittered per round."""
    rng = random.Random(seed)
    out = []
    for r in range(rounds):
        out += [duration * f * (1 + (rng.uniform(-0.3, 0.3) if r else 0)) for f in FRACTIONS]
    return out


def timed(root: Path, *args: str) -> float:
    """How long a successful `virtlab ARGS` takes here (the machine is shared: measure, do not assume)."""
    t = time.monotonic()
    vl(root, *args)
    return time.monotonic() - t


def cid_of(root: Path, name: str) -> str | None:
    """The full ID of container `name`, or None if there is none."""
    r = vl(root, "inspect", "--format", "{{.Id}}", name, check=False)
    return r.stdout.decode().strip() if r.returncode == 0 else None


def state_of(root: Path, name: str) -> dict:
    """inspect's State of `name`."""
    return json.loads(vl(root, "inspect", name).stdout)[0]["State"]


def after_fault(root: Path) -> None:
    """The three questions after any fault: store consistent, ps truthful (and nothing else)."""
    check_store(root)
    check_ps_truth(root)


# ---------------------------------------------------------------- the CLI dies


def test_cli_killed_during_create(root):
    cdir = root / "containers"
    names = []
    # once the record exists, and after delays spread over the step
    p = spawn(root, "create", "--name", "rec", "busybox", "sleep", "60")
    kill_when(p, lambda: cdir.is_dir() and any((d / "record.json").exists() for d in cdir.iterdir()))
    after_fault(root)
    cleanup_with_cli(root)
    dur = timed(root, "create", "--name", "probe", "busybox", "true")
    vl(root, "rm", "probe")
    for i, d in enumerate(delays(dur)):
        n = f"d{i}"
        names.append(n)
        kill_after(spawn(root, "create", "--name", n, "busybox", "sleep", "60"), d)
        after_fault(root)
    cleanup_with_cli(root)
    # every name is free again: nothing half-made keeps one
    for n in names:
        vl(root, "create", "--name", n, "--network", "none", "busybox", "true")
    cleanup_with_cli(root, all_images=True)


def test_create_killed_before_its_record_leaves_nothing_behind(root):
    cdir = root / "containers"
    p = spawn(root, "create", "--name", "half", "busybox", "sleep", "60")
    assert kill_when(p, lambda: (cdir / ".names" / "half").exists())
    after_fault(root)
    # the ordinary commands: the name can be used again, and cleanup leaves nothing
    r = vl(root, "create", "--name", "half", "--network", "none", "busybox", "true", check=False)
    vl(root, "rm", "-f", "half", check=False)
    cleanup_with_cli(root, all_images=True)
    assert r.returncode == 0, r.stderr.decode()


def test_cli_killed_during_start(root):
    # before the monitor: once the rootfs is mounted, once the container's netns exists
    moments = {
        "merged": lambda c: os.path.ismount(c / "merged"),
        "netns": lambda c: os.path.exists(f"/run/netns/vl-{c.name}") or os.path.exists(f"/run/netns/vl-{c.name[:12]}"),
        "workload": lambda c: _exec_done(c.name),
    }
    for i, (kind, trace) in enumerate(moments.items()):
        n = f"s{i}"
        cid = vl(root, "create", "--name", n, "busybox", "sleep", "60").stdout.decode().strip()
        c = root / "containers" / cid
        p = spawn(root, "start", n)
        kill_when(p, lambda c=c, trace=trace: trace(c))
        after_fault(root)
        # the ordinary commands still work on it: start (or it is running), stop, start again
        vl(root, "start", n, timeout=60)
        assert state_of(root, n)["Status"] == "running"
        vl(root, "stop", "-t", "1", n, timeout=60)
        assert state_of(root, n)["Status"] == "exited", kind
        assert cgroup_procs(cid) == []
    cleanup_with_cli(root, all_images=True)


def _exec_done(cid: str) -> bool:
    """True once the container's init runs the workload (no longer the runtime's own process)."""
    for pid in cgroup_procs(cid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                return True
        except OSError:
            pass
    return False


def test_start_killed_after_runtime_create_can_be_removed(root):
    cid = vl(root, "create", "--name", "h", "busybox", "sleep", "60").stdout.decode().strip()
    c = root / "containers" / cid
    p = spawn(root, "start", "h")
    assert kill_when(p, lambda: (c / "monitor.lock").exists() and bool((c / "monitor.lock").read_text().strip()))
    after_fault(root)
    try:
        r = vl(root, "rm", "-f", "h", check=False, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("rm -f hangs: the container lock is held by the orphaned init")
    assert r.returncode == 0, r.stderr.decode()
    assert cgroup_procs(cid) == []


def test_start_killed_after_runtime_create_then_rm_cleans_the_host(root):
    cid = vl(root, "create", "--name", "h2", "busybox", "sleep", "60").stdout.decode().strip()
    c = root / "containers" / cid
    p = spawn(root, "start", "h2")
    assert kill_when(p, lambda: (c / "monitor.lock").exists() and bool((c / "monitor.lock").read_text().strip()))
    # the double-forked launcher goes on without the CLI: wait for the init it makes, then kill what holds
    # the lock (the workaround for the hang of the test above)
    deadline = time.monotonic() + 20
    while not cgroup_procs(cid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    for pid in set(holders_of(c / "lock") + cgroup_procs(cid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        vl(root, "rm", "-f", "h2", timeout=60)
        left = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/virtlab-{cid}")]
        left += [f"/run/netns/{n}" for n in os.listdir("/run/netns") if n.startswith(f"vl-{cid[:12]}")] \
            if os.path.isdir("/run/netns") else []
        assert left == [], f"rm -f left host objects: {left}"
    finally:
        release_container_objects(cid)  # the record is gone: the fixture would not find these


STUBBORN = ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]


def test_cli_killed_during_stop(root):
    moments = [("requested", None)] + [("delay", d) for d in delays(2.5)]
    for i, (kind, d) in enumerate(moments):
        n = f"p{i}"
        cid = vl(root, "run", "-d", "--name", n, "busybox", *STUBBORN).stdout.decode().strip()
        p = spawn(root, "stop", "-t", "2", n)
        if kind == "requested":
            kill_when(p, lambda cid=cid: (root / "containers" / cid / "stop-requested").exists())
        else:
            kill_after(p, d)
        after_fault(root)
        # stop again finishes the job: exited, cgroup empty
        vl(root, "stop", "-t", "1", n)
        st = state_of(root, n)
        assert st["Status"] == "exited", st
        assert cgroup_procs(cid) == []
    cleanup_with_cli(root, all_images=True)


def test_cli_killed_during_rm(root):
    moments = [("requested", None)] + [("delay", d) for d in delays(1.5)]
    for i, (kind, d) in enumerate(moments):
        n = f"r{i}"
        cid = vl(root, "run", "-d", "--name", n, "busybox", "sleep", "60").stdout.decode().strip()
        c = root / "containers" / cid
        p = spawn(root, "rm", "-f", n)
        if kind == "requested":
            kill_when(p, lambda c=c: (c / "stop-requested").exists())
        else:
            kill_after(p, d)
        after_fault(root)
        # rm -f again (if it is still listed) removes it; then its name is free
        if cid_of(root, n):
            vl(root, "rm", "-f", n)
        assert cgroup_procs(cid) == []
        cleanup_with_cli(root)
        vl(root, "create", "--name", n, "--network", "none", "busybox", "true")
        vl(root, "rm", n)


def test_rm_killed_after_the_record_leaves_nothing_behind(root):
    cid = vl(root, "run", "-d", "--name", "gone", "busybox", "sleep", "60").stdout.decode().strip()
    vl(root, "exec", "gone", "sh", "-c", "head -c 2000000 /dev/urandom > /data")
    c = root / "containers" / cid
    p = spawn(root, "rm", "-f", "gone")
    kill_when(p, lambda: not (c / "record.json").exists())
    after_fault(root)
    vl(root, "system", "prune", "-f", check=False)
    cleanup_with_cli(root)


def test_cli_killed_during_commit(root):
    vl(root, "run", "-d", "--name", "src", "--network", "none", "busybox", "sh", "-c",
       "head -c 3000000 /dev/urandom > /big; mkdir -p /a/b; echo hi > /a/b/c; sleep 600")
    deadline = time.monotonic() + 30
    while vl(root, "exec", "src", "test", "-s", "/a/b/c", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    dur = timed(root, "commit", "src", "probe:1")
    vl(root, "rmi", "probe:1")
    staging = root / "image" / "staging"
    frozen: list[str] = []
    moments = [("staging", None)] + [("delay", d) for d in delays(dur)]
    for i, (kind, d) in enumerate(moments):
        ref = f"snap{i}:1"
        p = spawn(root, "commit", "src", ref)
        if kind == "staging":
            kill_when(p, lambda: glob_any(staging, "*-layer-*"))
        else:
            kill_after(p, d)
        check_store(root)
        # the source container is not left frozen by the commit that died while it was paused
        st = state_of(root, "src")
        if st["Status"] == "paused":
            frozen.append(kind if d is None else f"{d:.2f}s")
            vl(root, "unpause", "src")
        # all or nothing: either the image is there and complete, or there is no trace of it
        if vl(root, "image", "inspect", ref, check=False).returncode == 0:
            r = vl(root, "run", "--rm", "--network", "none", ref, "cat", "/a/b/c")
            assert r.stdout == b"hi\n"
    scratch = engine_scratch(root)
    # the ordinary commands work: a commit now succeeds, the source container is intact
    vl(root, "commit", "src", "final:1")
    assert vl(root, "run", "--rm", "--network", "none", "final:1", "cat", "/a/b/c").stdout == b"hi\n"
    cleanup_with_cli(root, all_images=True)
    assert [line for line in vl(root, "images", "-q").stdout.decode().split()] == []
    assert frozen == [], f"a killed commit left the container paused (kill moments: {frozen})"
    assert scratch == [], f"a killed commit left its layer tar in containers/.tmp: {scratch}"


def test_commit_killed_leaves_no_paused_container_nor_tar(root):
    vl(root, "run", "-d", "--name", "src", "--network", "none", "busybox", "sh", "-c",
       "head -c 20000000 /dev/urandom > /big; touch /ready; sleep 600")
    deadline = time.monotonic() + 60
    while vl(root, "exec", "src", "test", "-e", "/ready", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    p = spawn(root, "commit", "src", "x:1")
    assert kill_when(p, lambda: bool(engine_scratch(root)))
    check_store(root)
    problems = []
    if state_of(root, "src")["Status"] != "running":
        problems.append(f"container left {state_of(root, 'src')['Status']}")
    vl(root, "system", "prune", "-f")
    if engine_scratch(root):
        problems.append(f"scratch tar left: {engine_scratch(root)}")
    vl(root, "rm", "-f", "src")
    assert problems == []


def _push_source(root: Path, registry, repo: str) -> str:
    """A two-layer image (busybox + 4 MB of random data) tagged for the registry; returns its ref."""
    vl(root, "run", "--name", "mk", "--network", "none", "busybox", "sh", "-c",
       "head -c 4000000 /dev/urandom > /payload")
    ref = f"{registry.host}/{repo}:1"
    vl(root, "commit", "mk", ref)
    vl(root, "rm", "mk")
    return ref


def test_cli_killed_during_pull(root, registry, tmp_path):
    ref = _push_source(root, registry, "faults/pull")
    vl(root, "push", ref)
    want = vl(root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    dst = tmp_path / "dst"
    dur = timed(dst, "pull", ref)
    vl(dst, "image", "prune", "-a", "-f")
    partial = dst / "image" / "staging" / "partial"
    moments = [("partial", None)] + [("delay", d) for d in delays(dur)]
    for kind, d in moments:
        p = spawn(dst, "pull", ref)
        if kind == "partial":
            kill_when(p, lambda: glob_any(partial, "*") or glob_any(dst / "image" / "staging", "*-layer-*"))
        else:
            kill_after(p, d)
        check_store(dst)
        assert vl(dst, "images", "-q").stdout.strip() in (b"", want.split(b":")[-1][:12])
        # a retry completes (resuming what it can) and gives the very same image
        vl(dst, "pull", ref)
        assert vl(dst, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == want
        check_store(dst)
        vl(dst, "rmi", ref)
    cleanup_with_cli(dst, all_images=True)
    cleanup_with_cli(root, all_images=True)


def test_cli_killed_during_push(root, registry, tmp_path):
    ref = _push_source(root, registry, "faults/push")
    want = vl(root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    probe = f"{registry.host}/faults/probe:1"
    vl(root, "tag", ref, probe)
    dur = timed(root, "push", probe)
    for i, d in enumerate(delays(dur)):
        r = f"{registry.host}/faults/push{i}:1"
        vl(root, "tag", ref, r)
        kill_after(spawn(root, "push", r), d)
        check_store(root)
        # whatever the registry holds now, a second push completes and a pull gets the same image
        vl(root, "push", r)
        dst = tmp_path / f"dst{i}"
        vl(dst, "pull", r)
        assert vl(dst, "image", "inspect", "--format", "{{.Id}}", r).stdout.strip() == want
        check_store(dst)
        cleanup_with_cli(dst, all_images=True)
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- the monitor dies


def await_written(path: Path, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Poll (0.5 ms) until PATH exists and is not empty, failing if `proc` ends first ("... before WHAT")."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        assert proc.poll() is None, f"start ended before {what}: {proc.communicate()[1].decode()}"
        time.sleep(0.0005)


def test_monitor_killed_during_start(root):
    # as soon as the monitor exists, before the workload runs (often before it said it is ready)
    for i in range(3):
        n = f"m1{i}"
        cid = vl(root, "create", "--name", n, "busybox", "sleep", "60").stdout.decode().strip()
        c = root / "containers" / cid
        p = spawn(root, "start", n)
        await_written(c / "monitor.lock", p, "its monitor ran")
        os.kill(monitor_pid(root, cid), signal.SIGKILL)
        _, err = communicate_or_fail(p, "virtlab start hangs after its monitor died")
        # the kill may also land after the start finished: then the container runs unmonitored
        assert p.returncode in (0, 125), err.decode()
        if p.returncode == 125:
            assert b"monitor" in err and n.encode() in err, err.decode()
            st = state_of(root, n)
            assert st["Status"] == "exited" and "monitor" in st["Error"], st
            assert cgroup_procs(cid) == []
        after_fault(root)
    cleanup_with_cli(root, all_images=True)


@pytest.mark.parametrize("workload, code", [("sleep 60", None), ("sleep 2; exit 3", 3)])
def test_monitor_killed_while_run_streams(root, workload, code):
    """An attached `run` whose monitor dies: never a false "detached" with exit 0.

    The container still running: an error naming it (125). Already exited: its own code.
    """
    p = spawn(root, "run", "--name", "streamed", "busybox", "sh", "-c", f"echo started; {workload}")
    assert p.stdout is not None
    assert p.stdout.readline() == b"started\n"  # attached and streaming
    cid = cid_of(root, "streamed")
    assert cid
    if code is not None:
        deadline = time.monotonic() + 30
        while state_of(root, "streamed")["Status"] != "exited":  # the monitor recorded the exit...
            assert time.monotonic() < deadline, "the container never exited"
            time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # ...or is killed first: the CLI may have its frame
        os.kill(monitor_pid(root, cid), signal.SIGKILL)
    out, err = communicate_or_fail(p, "virtlab run hangs after its monitor died")
    assert b"detached" not in err, err.decode()
    if code is None:
        assert p.returncode == 125, err.decode()
        assert b"monitor" in err and cid[:12].encode() in err, err.decode()
    else:
        assert p.returncode == code, err.decode()
    cleanup_with_cli(root, all_images=True)


def launcher_of(init_pid: int) -> int:
    """The launcher (later the monitor: it execs vl-monitor in place of itself) of a created init.

    The launcher made itself a session leader; the init is its child or grandchild in that session.
    """
    pid = init_pid
    for _ in range(8):
        data = Path(f"/proc/{pid}/stat").read_text()
        ppid, _pgrp, sid = (int(x) for x in data[data.rfind(")") + 2 :].split()[1:4])
        if pid == sid:
            return pid
        pid = ppid
    raise AssertionError(f"no session leader above init {init_pid}")


def test_monitor_killed_before_it_is_ready(root):
    # The launcher (which becomes the monitor) dies after the runtime created the init, before the
    # monitor said it is ready. The init waits for `start` holding every fd the launcher had: the CLI
    # must notice the monitor's death itself, not wait for an EOF the init keeps from coming.
    early = 0
    for i in range(3):
        n = f"mr{i}"
        cid = vl(root, "create", "--name", n, "busybox", "sleep", "60").stdout.decode().strip()
        c = root / "containers" / cid
        p = spawn(root, "start", n)
        await_written(c / "init.pid", p, "the runtime created the init")
        mon = launcher_of(int((c / "init.pid").read_text()))
        os.kill(mon, signal.SIGSTOP)
        ready = (c / "attach.sock").exists()  # the monitor listens, then says ready
        os.kill(mon, signal.SIGKILL)
        _, err = communicate_or_fail(p, "virtlab start hangs after its monitor died before it was ready")
        if not ready:
            early += 1
            assert p.returncode == 125, err.decode()
            assert b"monitor" in err and n.encode() in err, err.decode()
            st = state_of(root, n)
            assert st["Status"] == "exited" and "monitor" in st["Error"], st
        after_fault(root)
        assert cgroup_procs(cid) == [] or state_of(root, n)["Status"] == "running"
    assert early, "the kill never landed before the monitor was ready: the test proved nothing"
    cleanup_with_cli(root, all_images=True)


def test_monitor_killed_at_each_step(root):
    # while running: the container runs on unmonitored; once its init dies, ps stops saying Up
    cid2 = vl(root, "run", "-d", "--name", "m2", "busybox", "sleep", "60").stdout.decode().strip()
    os.kill(monitor_pid(root, cid2), signal.SIGKILL)
    after_fault(root)
    st = state_of(root, "m2")
    if st["Status"] == "running":
        os.kill(st["Pid"], signal.SIGKILL)
    after_fault(root)
    assert state_of(root, "m2")["Status"] == "exited"
    vl(root, "start", "m2")  # a new monitor
    assert state_of(root, "m2")["Status"] == "running"

    # during stop: the monitor dies while stop waits for the container
    cid3 = vl(root, "run", "-d", "--name", "m3", "busybox", *STUBBORN).stdout.decode().strip()
    p = spawn(root, "stop", "-t", "2", "m3")
    kill_pid_when(lambda: (root / "containers" / cid3 / "stop-requested").exists(), monitor_pid(root, cid3), p)
    assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    after_fault(root)
    assert state_of(root, "m3")["Status"] == "exited"
    assert cgroup_procs(cid3) == []

    # during rm -f
    cid4 = vl(root, "run", "-d", "--name", "m4", "busybox", *STUBBORN).stdout.decode().strip()
    p = spawn(root, "rm", "-f", "m4")
    kill_pid_when(lambda: (root / "containers" / cid4 / "stop-requested").exists(), monitor_pid(root, cid4), p)
    p.wait(timeout=60)
    after_fault(root)
    assert cgroup_procs(cid4) == []
    cleanup_with_cli(root, all_images=True)
    for x in (cid2, cid3, cid4):
        assert cgroup_procs(x) == []


def kill_pid_when(ready, pid: int, proc) -> None:
    """SIGKILL `pid` (not the CLI) as soon as `ready()` is true, while the CLI `proc` runs."""
    deadline = time.monotonic() + 60
    while not ready():
        assert time.monotonic() < deadline, "the step's trace never appeared"
        if proc.poll() is not None:
            break
        time.sleep(0.0005)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the init dies


def test_init_killed_at_each_step(root):
    # during start: the init is killed as soon as it is in its cgroup
    cid = vl(root, "create", "--name", "i1", "busybox", "sleep", "60").stdout.decode().strip()
    p = spawn(root, "start", "i1")
    deadline = time.monotonic() + 60
    while not cgroup_procs(cid):
        assert time.monotonic() < deadline and p.poll() is None, "the init never appeared"
    for pid in cgroup_procs(cid):
        os.kill(pid, signal.SIGKILL)
    p.communicate(timeout=60)
    after_fault(root)
    # the start failed or the workload was killed: either way a non-zero exit, never "Up"
    assert int(vl(root, "wait", "i1", timeout=60).stdout.strip()) in (128, 137, 255)
    assert "Exited" in [r["Status"] for r in check_ps_truth(root) if r["Names"] == "i1"][0]

    # while running: exit code 137, ps says Exited (137)
    cid2 = vl(root, "run", "-d", "--name", "i2", "busybox", "sleep", "60").stdout.decode().strip()
    os.kill(state_of(root, "i2")["Pid"], signal.SIGKILL)
    assert vl(root, "wait", "i2", timeout=60).stdout.strip() == b"137"
    rows = check_ps_truth(root)
    assert [r["Status"] for r in rows if r["Names"] == "i2"][0].startswith("Exited (137)")

    # during stop and during rm -f
    for verb, n in (("stop", "i3"), ("rm", "i4")):
        cid_n = vl(root, "run", "-d", "--name", n, "busybox", *STUBBORN).stdout.decode().strip()
        args = ["stop", "-t", "5", n] if verb == "stop" else ["rm", "-f", n]
        pid = state_of(root, n)["Pid"]
        p = spawn(root, *args)
        kill_pid_when(lambda c=cid_n: (root / "containers" / c / "stop-requested").exists(), pid, p)
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
        after_fault(root)
        assert cgroup_procs(cid_n) == []
    # start again after a killed init works
    vl(root, "start", "i2")
    assert state_of(root, "i2")["Status"] == "running"
    cleanup_with_cli(root, all_images=True)
    for x in (cid, cid2):
        assert cgroup_procs(x) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_cli_kills_many_seeds(root, seed):
    """Random kills over a whole create-start-stop-rm cycle, five seeds (slow tier)."""
    rng = random.Random(seed)
    for i in range(12):
        n = f"x{i}"
        for args in (("create", "--name", n, "busybox", "sleep", "60"), ("start", n), ("stop", "-t", "1", n),
                     ("rm", "-f", n)):
            kill_after(spawn(root, *args), rng.uniform(0.0, 1.5))
            after_fault(root)
    cleanup_with_cli(root, all_images=True)

"""Restart policies as docker applies them: what restarts, what a manual stop/kill/restart changes, RestartCount.

The monitor restarts the container (it reads the policy at each exit); `stop` and `kill`
(SIGKILL or the stop signal) suppress the policy for that run, a manual `start` or
`restart` begins a new run with RestartCount 0, and `restart -t N` stops with timeout N.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.engine.engine import monitor_alive

pytestmark = pytest.mark.root
VIRTLAB = str(Path(sys.executable).parent / "virtlab")
# Longer than the monitor's longest back-off (3.2 s): a restart the policy still wanted would have happened.
SETTLE = 4.0


@pytest.fixture
def vl(store_root, image_store):
    """Run `virtlab --root <store> ARGS` (text); removes every container at the end."""

    def run(*args, check=True, timeout=90):
        r = subprocess.run([VIRTLAB, "--root", str(store_root), *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"virtlab {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    yield run
    ids = run("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        run("rm", "-f", *ids, check=False)


def info(vl, cid):
    return json.loads(vl("inspect", cid).stdout)[0]


def boots(vl, cid, word="boot"):
    return vl("logs", cid).stdout.split().count(word)


def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def monitor_running(store_root, cid):
    """The engine's own check: the monitor holds an exclusive flock on monitor.lock while it lives."""
    return monitor_alive(store_root / "containers" / cid)


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_stop_suppresses_always_and_unless_stopped(vl, store_root, policy):
    # a container that keeps exiting (0: always restarts anyway), stopped between runs or during one
    cid = vl("run", "-d", "--network", "none", "--restart", policy, "busybox", "sh", "-c",
             "echo boot; sleep 0.3").stdout.strip()
    assert wait_for(lambda: info(vl, cid)["RestartCount"] >= 2), info(vl, cid)
    vl("stop", "-t", "1", cid)
    count, n = info(vl, cid)["RestartCount"], boots(vl, cid)
    time.sleep(SETTLE)
    st = info(vl, cid)
    assert st["State"]["Status"] == "exited" and st["RestartCount"] == count and boots(vl, cid) == n
    assert not monitor_running(store_root, cid)

    # a manual start is a new run: RestartCount 0, and the policy applies again after a crash
    long = vl("run", "-d", "--network", "none", "--restart", policy, "busybox", "sh", "-c",
              "echo boot; sleep 60").stdout.strip()
    vl("stop", "-t", "1", long)
    time.sleep(SETTLE)
    assert info(vl, long)["State"]["Status"] == "exited"
    vl("start", long)
    st = info(vl, long)
    assert st["State"]["Status"] == "running" and st["RestartCount"] == 0
    os.kill(st["State"]["Pid"], signal.SIGKILL)  # not a `stop`: the policy restarts it
    assert wait_for(lambda: info(vl, long)["RestartCount"] == 1 and info(vl, long)["State"]["Status"] == "running")
    assert wait_for(lambda: boots(vl, long) == 3)


def test_on_failure_counts_and_limits_restarts(vl):
    cid = vl("run", "-d", "--network", "none", "--restart", "on-failure:2", "busybox", "sh", "-c",
             "echo boot; exit 3").stdout.strip()
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "exited" and boots(vl, cid) == 3)
    time.sleep(SETTLE)
    st = info(vl, cid)
    assert (st["State"]["Status"], st["State"]["ExitCode"], st["RestartCount"]) == ("exited", 3, 2), st["State"]
    assert boots(vl, cid) == 3
    assert st["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # docker: a manual start resets the count, and the limit applies to the new run
    vl("start", cid)
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "exited" and boots(vl, cid) == 6)
    time.sleep(SETTLE)
    assert info(vl, cid)["RestartCount"] == 2 and boots(vl, cid) == 6

    # a clean exit is not a failure
    ok = vl("run", "-d", "--network", "none", "--restart", "on-failure:2", "busybox", "sh", "-c",
            "echo boot").stdout.strip()
    assert vl("wait", ok).stdout.strip() == "0"
    time.sleep(SETTLE)
    assert info(vl, ok)["RestartCount"] == 0 and boots(vl, ok) == 1


def test_stop_during_the_back_off(vl, store_root):
    cid = vl("run", "-d", "--network", "none", "--restart", "on-failure", "busybox", "sh", "-c",
             "echo boot; exit 1").stdout.strip()
    # caught between two runs (the monitor waits out its back-off)
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "restarting")
    vl("stop", "-t", "5", cid)
    n = boots(vl, cid)
    st = info(vl, cid)
    assert st["State"]["Status"] == "exited" and not monitor_running(store_root, cid), st["State"]
    # the last run's code, not "the monitor died" (it ended its wait and said so)
    assert (st["State"]["ExitCode"], st["State"]["Error"]) == (1, ""), st["State"]
    time.sleep(SETTLE)
    assert boots(vl, cid) == n and info(vl, cid)["State"]["Status"] == "exited"


def test_kill_suppresses_the_policy(vl, store_root):
    cid = vl("run", "-d", "--network", "none", "--restart", "always", "busybox", "sh", "-c",
             "echo boot; sleep 60").stdout.strip()
    vl("kill", cid)
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "exited")
    time.sleep(SETTLE)
    st = info(vl, cid)
    assert st["State"]["Status"] == "exited" and st["State"]["ExitCode"] == 137 and st["RestartCount"] == 0
    assert boots(vl, cid) == 1 and not monitor_running(store_root, cid)


def test_restart_honours_its_timeout(vl):
    trap = "trap 'echo term; sleep 1; echo clean; exit 0' TERM; echo boot; while :; do sleep 0.1; done"
    cid = vl("run", "-d", "--network", "none", "--restart", "always", "busybox", "sh", "-c", trap).stdout.strip()
    assert wait_for(lambda: boots(vl, cid) == 1)
    pid = info(vl, cid)["State"]["Pid"]
    # -t 30: the stop signal, then time to finish (no SIGKILL at the default 10 s or earlier)
    vl("restart", "-t", "30", cid)
    st = info(vl, cid)
    assert st["State"]["Status"] == "running" and st["State"]["Pid"] != pid and st["RestartCount"] == 0
    assert wait_for(lambda: boots(vl, cid) == 2)
    assert "clean" in vl("logs", cid).stdout.split()
    # -t 0: SIGKILL right after the stop signal, so the trap cannot finish
    vl("restart", "-t", "0", cid)
    assert wait_for(lambda: boots(vl, cid) == 3)
    assert vl("logs", cid).stdout.split().count("clean") == 1
    # a stubborn container is killed only once the timeout has passed
    stub = vl("run", "-d", "--network", "none", "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"
              ).stdout.strip()
    t0 = time.monotonic()
    vl("restart", "-t", "2", stub)
    assert time.monotonic() - t0 >= 2.0
    assert info(vl, stub)["State"]["Status"] == "running"
    # the policy saw neither stop: exactly one run per start, none by the policy
    time.sleep(SETTLE)
    assert boots(vl, cid) == 3 and info(vl, cid)["RestartCount"] == 0


def test_a_terminal_container_restarts_with_a_new_terminal(vl):
    cid = vl("run", "-d", "-t", "--network", "none", "--restart", "on-failure:2", "busybox", "sh", "-c",
             "echo boot; tty; exit 1").stdout.strip()
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "exited" and boots(vl, cid) == 3), \
        (info(vl, cid)["State"], vl("logs", cid).stdout)
    st = info(vl, cid)
    assert st["RestartCount"] == 2 and st["State"]["ExitCode"] == 1
    # every run had a terminal, and the monitor logged each one's output
    assert [ln.startswith("/dev/pts/") for ln in vl("logs", cid).stdout.splitlines() if ln != "boot"] == [True] * 3


def test_update_restart_applies_to_a_running_container(vl):
    cid = vl("run", "-d", "--network", "none", "busybox", "sh", "-c",
             "echo boot; sleep 2; exit 1").stdout.strip()
    vl("update", "--restart", "on-failure:1", cid)
    assert wait_for(lambda: info(vl, cid)["State"]["Status"] == "exited" and boots(vl, cid) == 2)
    time.sleep(SETTLE)
    st = info(vl, cid)
    assert st["RestartCount"] == 1 and boots(vl, cid) == 2
    assert st["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}

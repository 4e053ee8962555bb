"""SIGINT during `virtlab bench run`: instances destroyed, nothing left mounted, results marked incomplete."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.backends.hostfs import mounts_under, umount_under

pytestmark = pytest.mark.root

VIRTLAB = str(Path(sys.executable).parent / "virtlab")


def instance_processes(pid):
    """Processes whose command line names an instance of the run with harness PID `pid`."""
    key = f"-{pid}-".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if key in cmd and b"vlb-" in cmd:
            out.append(cmd.replace(b"\0", b" ").decode(errors="replace")[:120])
    return out


@pytest.mark.parametrize("backends", ["runc,podman"])
def test_sigint_stops_cleanly(tmp_path, backends):
    root, out = tmp_path / "root", tmp_path / "out"
    proc = subprocess.Popen([VIRTLAB, "--root", str(root), "bench", "run", "--backends", backends, "--workloads",
                             "density", "--out", str(out), "--run-id", "int", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(instance_processes(proc.pid)) < 3:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert instance_processes(proc.pid), "the run never launched an instance"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        umount_under(root)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert stdout.strip().splitlines()[-1] == str(out / "int")
    env = json.loads((out / "int" / "environment.json").read_text())
    assert env["incomplete"] is True and env["interrupted"] is True and env["finished"]
    assert instance_processes(proc.pid) == []
    assert mounts_under(tmp_path) == []
    assert not (root / "cache" / "bench" / "work" / "int").exists()
    for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"):
        for dirpath, dirnames, _ in os.walk(base):
            assert not [d for d in dirnames if f"-{proc.pid}-" in d], f"cgroup left under {dirpath}"
    # samples measured before the signal are kept, and the file is valid CSV with its header
    lines = (out / "int" / "samples.csv").read_text().splitlines()
    assert lines[0].startswith("run_id,backend,workload,metric,value,unit,repetition,metadata,timestamp")

"""podman driving virtlab-runtime through runc's CLI (private podman storage under tmp_path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.skipif(not shutil.which("podman"), reason="requires podman")]

RUNTIME = str(Path(sys.executable).parent / "virtlab-runtime")
LIMITS = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@pytest.fixture
def podman(tmp_path, busybox_rootfs):
    """podman with its own storage and an imported busybox image; removes everything afterwards."""
    runroot = Path(tempfile.mkdtemp(prefix="vl-podman-"))  # podman wants a runroot under 50 characters
    # --tmpdir too: the default /run/libpod (exit files, locks) is shared with every other podman user.
    base = ["podman", "--root", str(tmp_path / "storage"), "--runroot", str(runroot / "run"),
            "--tmpdir", str(runroot / "tmp"),
            "--runtime", RUNTIME, "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(tar), "."], check=True)
    r = subprocess.run(base + ["import", str(tar), "localhost/vl-busybox:latest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def run(*args, timeout=120):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=timeout)

    yield run
    run("rm", "--all", "--force")
    run("rmi", "--all", "--force")
    subprocess.run(["umount", "-R", str(tmp_path / "storage" / "overlay")], capture_output=True)
    subprocess.run(base + ["system", "reset", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_run_exit_codes_and_exec(podman):
    r = podman("run", "--rm", *LIMITS, "localhost/vl-busybox", "sh", "-c", "echo hello; exit 3")
    assert r.returncode == 3 and r.stdout == "hello\n", r.stderr
    r = podman("run", "--rm", *LIMITS, "localhost/vl-busybox", "no-such-command")
    assert r.returncode == 127
    r = podman("run", "-d", *LIMITS, "localhost/vl-busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    r = podman("exec", cid, "sh", "-c", "echo in-exec; exit 5")
    assert r.returncode == 5 and r.stdout == "in-exec\n"
    assert podman("pause", cid).returncode == 0
    assert podman("unpause", cid).returncode == 0
    assert podman("rm", "--force", cid).returncode == 0

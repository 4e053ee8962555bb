"""SECURITY.md cases of the runtime, as root: /proc/self/exe, cwd leaks, symlinked /proc and /dev, fds."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

from runtime.oci import launcher

pytestmark = pytest.mark.root

RUNTIME = [str(Path(sys.executable).parent / "virtlab-runtime")]

HOST_PYTHON = os.path.realpath(sys.executable)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_evil(bundle_dir):
    evil = bundle_dir / "rootfs" / "bin" / "evil"
    evil.write_text("#!/proc/self/exe\n")
    evil.chmod(0o755)


def _runs_the_runtime(pid: int) -> bool:
    """True while PID is still the runtime's own process (its command line), before its exec."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"virtlab-runtime" in f.read()


def exe_samples(pid: int, seconds: float) -> set[str]:
    """/proc/PID/exe, sampled for SECONDS once the process has left the runtime's code.

    `start` and `exec -d` return before the init (or exec'd process) has exec'd; until then it
    is the runtime itself, a host Python process, and that is not the container's program. A
    sample counts only when the command line before and after reading the link is no longer
    the runtime's: a program that got the host interpreter through `#!/proc/self/exe` would
    have the command line `/proc/self/exe /bin/evil`.
    """
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not _runs_the_runtime(pid):
                exe = os.readlink(f"/proc/{pid}/exe")
                if not _runs_the_runtime(pid):
                    seen.add(exe)
        except OSError:
            pass
        time.sleep(0.005)
    return seen


def test_proc_self_exe_never_points_at_the_host_interpreter_in_run(rt, bundle):
    """CVE-2019-5736: an image whose program is `#!/proc/self/exe` only reaches the sealed launcher.

    The launcher refuses to run as a script's interpreter (exit 126), so the hostile
    program neither touches the host interpreter nor loops exec'ing itself.
    """
    before = (sha256(HOST_PYTHON), launcher.elf_image())
    b = bundle(["/bin/evil"])
    write_evil(b)
    rt("create", "-b", b, "evil", check=True)
    pid = json.loads(rt("state", "evil", check=True).stdout)["pid"]
    rt("start", "evil", check=True)
    seen = exe_samples(pid, 0.5)
    state = json.loads(rt("state", "evil", check=True).stdout)
    rt("delete", "--force", "evil", check=True)
    assert state["status"] == "stopped", state
    assert HOST_PYTHON not in seen and not any("python" in s for s in seen), seen
    assert (sha256(HOST_PYTHON), launcher.elf_image()) == before
    r = rt("run", "-b", b, "evil2")
    assert r.returncode == 126, (r.returncode, r.stderr)
    assert (sha256(HOST_PYTHON), launcher.elf_image()) == before


def test_proc_self_exe_in_exec(rt, bundle):
    """The same for exec: the joining process is non-dumpable and execs through the launcher."""
    before = sha256(HOST_PYTHON)
    b = bundle(["sleep", "30"])
    write_evil(b)
    rt("run", "-d", "-b", b, "ev2", check=True)
    import subprocess

    proc = subprocess.Popen(RUNTIME + ["--root", str(rt.root), "exec", "-d", "--pid-file",
                                       str(b / "exec.pid"), "ev2", "/bin/evil"])
    assert proc.wait(timeout=30) == 0
    pid = int((b / "exec.pid").read_text())
    seen = exe_samples(pid, 0.5)
    # The container itself cannot reach the interpreter through any of its processes either.
    r = rt("exec", "ev2", "sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done")
    assert rt("exec", "ev2", "/bin/evil").returncode == 126
    rt("delete", "--force", "ev2", check=True)
    assert HOST_PYTHON not in seen and not any("python" in s for s in seen), seen
    assert "python" not in r.stdout
    assert sha256(HOST_PYTHON) == before


def test_cwd_through_a_leaked_fd_is_refused(rt, bundle):
    """CVE-2024-21626: cwd=/proc/self/fd/N must never land in a host directory."""
    for n in range(3, 12):
        b = bundle(["sh", "-c", "pwd; cat ../../../../etc/passwd | head -1"],
                   mutate=lambda c, n=n: c["process"].update(cwd=f"/proc/self/fd/{n}"))
        r = rt("run", "-b", b, f"cwd{n}")
        if r.returncode == 0:
            assert r.stdout.startswith("/") and "unreachable" not in r.stdout
        else:
            assert "cwd" in r.stderr or "outside" in r.stderr or "directory" in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["proc", "sys"])
def test_symlinked_proc_or_sys_is_refused(rt, bundle, name):
    """CVE-2023-28642: /proc and /sys must be mounted on ordinary directories."""
    b = bundle(["true"])
    os.rmdir(b / "rootfs" / name)
    os.symlink("/tmp", b / "rootfs" / name)
    r = rt("run", "-b", b, f"sym{name}")
    assert r.returncode == 125 and "ordinary directory" in r.stderr
    assert os.listdir(rt.root) == []


def test_symlinked_dev_is_never_followed(rt, bundle, tmp_path):
    """CVE-2026-41579: an image /dev symlink pointing at a host-like directory is refused, the host untouched."""
    host_like = tmp_path / "hostdev"
    host_like.mkdir()
    (host_like / "ptmx").write_text("sentinel")
    b = bundle(["true"])
    os.rmdir(b / "rootfs" / "dev")
    os.symlink(str(host_like), b / "rootfs" / "dev")
    ptmx_before = os.stat("/dev/ptmx").st_ino
    r = rt("run", "-b", b, "symdev")
    assert r.returncode == 125 and "/dev" in r.stderr
    assert sorted(os.listdir(host_like)) == ["ptmx"] and (host_like / "ptmx").read_text() == "sentinel"
    assert os.stat("/dev/ptmx").st_ino == ptmx_before


def test_only_stdio_reaches_the_container(rt, bundle):
    """Every fd of the runtime except 0-2 is closed before exec, in run and in exec."""
    r = rt("run", "-b", bundle(["ls", "/proc/self/fd"]), "fds")
    assert r.stdout.split() == ["0", "1", "2", "3"]  # 3 is ls's own directory handle
    rt("run", "-d", "-b", bundle(["sleep", "30"]), "fds2", check=True)
    r = rt("exec", "fds2", "ls", "/proc/self/fd")
    assert r.stdout.split() == ["0", "1", "2", "3"]
    rt("delete", "-f", "fds2", check=True)


def test_bind_mount_source_cannot_escape_via_image_symlink(rt, bundle, tmp_path):
    """A bind destination that is an image symlink to the host's /etc lands inside the rootfs."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("data")
    b = bundle(["cat", "/etc/target/f"], mutate=lambda c: c["mounts"].append(
        {"destination": "/evil/target", "type": "bind", "source": str(src), "options": ["rbind", "ro"]}))
    os.symlink("/etc", b / "rootfs" / "evil")
    r = rt("run", "-b", b, "bindesc")
    assert r.stdout == "data"
    assert not os.path.exists("/etc/target")


def test_created_init_is_not_dumpable(rt, bundle):
    """CVE-2016-9962: until it execs, the init (a Python fork) is not dumpable; afterwards the program is."""
    rt("create", "-b", bundle(["sleep", "30"]), "dump", check=True)
    pid = json.loads(rt("state", "dump", check=True).stdout)["pid"]
    assert os.readlink(f"/proc/{pid}/exe") == HOST_PYTHON  # the Python init, still waiting for start
    # From inside (root without CAP_SYS_PTRACE), the non-dumpable init's exe cannot be reached.
    r = rt("exec", "dump", "sh", "-c", "readlink /proc/1/exe; echo rc=$?")
    assert "python" not in r.stdout and "rc=1" in r.stdout, r.stdout
    rt("start", "dump", check=True)
    rt("delete", "--force", "dump", check=True)

"""SECURITY.md corpus cases that no area's tests covered at the CLI level: 38, 39, 41-46, 51, 52.

Every case drives the real `virtlab` CLI against a fresh store and checks SECURITY.md's
oracle: (a) a clear error and exit 125 where the input is refused, (b) a sentinel tree
outside the store unchanged, (c) no partial state (ps -a, images, the leak check).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest
from conftest import cgroup_procs, check_ps_truth, check_store, cleanup_with_cli, vl

pytestmark = pytest.mark.root


@pytest.fixture
def sentinel(tmp_path: Path):
    """A host tree that must never change: `check()` asserts it is byte-for-byte what it was."""
    d = tmp_path / "host"
    (d / "etc").mkdir(parents=True)
    (d / "etc" / "unbroken").write_text("untouched\n")
    (d / "dev").mkdir()
    (d / "dev" / "ptmx").write_text("not a device\n")

    def snap() -> dict:
        out = {}
        for dirpath, dirnames, files in os.walk(d):
            for n in files + dirnames:
                p = Path(dirpath) / n
                st = p.lstat()
                out[str(p)] = (st.st_mode, st.st_size, p.read_bytes() if p.is_file() and not p.is_symlink() else b"")
        return out

    before = snap()

    class S:
        path = d

        @staticmethod
        def check() -> None:
            assert snap() == before, "the host sentinel tree changed"

    return S


def rootfs_tar(root: Path, tmp: Path) -> Path:
    """busybox's filesystem as a tar (exported from a created, never started, container)."""
    vl(root, "create", "--name", "exp", "--network", "none", "busybox", "true")
    out = tmp / "busybox-rootfs.tar"
    vl(root, "export", "-o", str(out), "exp")
    vl(root, "rm", "exp")
    return out


def image_from(root: Path, tmp: Path, ref: str, drop: tuple[str, ...] = (), add=()) -> None:
    """Import busybox's rootfs minus the `drop` paths plus the `add` members (TarInfo, bytes|None) as `ref`."""
    src = rootfs_tar(root, tmp)
    dst = tmp / f"{ref.replace(':', '_')}.tar"
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            name = m.name.lstrip("./")
            if any(name == p or name.startswith(p + "/") for p in drop):
                continue
            tout.addfile(m, tin.extractfile(m) if m.isfile() else None)
        for info, data in add:
            tout.addfile(info, io.BytesIO(data) if data is not None else None)
    vl(root, "import", str(dst), ref)


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    """A symlink tar member."""
    t = tarfile.TarInfo(name)
    t.type, t.linkname = tarfile.SYMTYPE, target
    return t, None


def regfile(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file tar member."""
    t = tarfile.TarInfo(name)
    t.size, t.mode = len(data), mode
    return t, data


def no_new_container(root: Path, before: bytes) -> None:
    """ps -a lists what it listed before (oracle c)."""
    assert vl(root, "ps", "-aq", "--no-trunc").stdout == before


# ---------------------------------------------------------------- 38, 39: hostile rootfs shapes


@pytest.mark.parametrize("what,shape", [("proc", "symlink"), ("sys", "file")])
def test_case38_proc_or_sys_not_a_directory_is_refused(root, tmp_path, sentinel, what, shape):
    target = str(sentinel.path / "etc")
    member = symlink(what, target) if shape == "symlink" else regfile(what, b"not a dir\n")
    image_from(root, tmp_path, "bad:1", drop=(what,), add=[member])
    r = vl(root, "run", "--name", "c38", "--network", "none", "bad:1", "true", check=False)
    # refused before anything runs. (The message should name /proc or /sys; today it is sometimes
    # "the monitor ... did not start: b''": reported to the engine, not asserted, as it varies.)
    assert r.returncode == 125, r.stderr.decode()
    assert b"Traceback" not in r.stderr and r.stderr.startswith(b"Error:"), r.stderr.decode()
    sentinel.check()
    check_ps_truth(root)
    cleanup_with_cli(root, all_images=True)


def test_case39_dev_symlink_to_a_host_like_dir_is_never_followed(root, tmp_path, sentinel):
    image_from(root, tmp_path, "devlink:1", drop=("dev",), add=[symlink("dev", str(sentinel.path / "dev"))])
    r = vl(root, "run", "--rm", "--network", "none", "devlink:1", "sh", "-c",
           "ls -l /dev/null /dev/ptmx && echo x > /dev/null && echo ok", check=False)
    # either refused, or run with its own /dev: in both cases the host dir is untouched
    if r.returncode == 0:
        assert r.stdout.endswith(b"ok\n") and b"crw" in r.stdout
    else:
        assert r.returncode == 125 and b"Traceback" not in r.stderr, r.stderr.decode()
    sentinel.check()
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- 41: bind-mount destination race


def test_case41_bind_destination_swapped_for_a_symlink_during_create(root, tmp_path, sentinel):
    src = tmp_path / "vol"
    src.mkdir()
    (src / "payload").write_text("from the volume\n")
    host_mounts_before = Path("/proc/self/mountinfo").read_text().count(str(sentinel.path))
    for i in range(6):
        n = f"c41-{i}"
        cid = vl(root, "create", "--name", n, "--network", "none", "-v", f"{src}:/mnt/dst", "busybox",
                 "sh", "-c", "cat /mnt/dst/payload 2>&1; ls /mnt/dst").stdout.decode().strip()
        upper = root / "containers" / cid / "upper"
        stop = threading.Event()

        def flip(upper=upper, stop=stop) -> None:
            d = upper / "mnt"
            d.mkdir(exist_ok=True)
            link = d / "dst"
            while not stop.is_set():
                try:
                    if link.is_symlink():
                        link.unlink()
                        link.mkdir()
                    else:
                        os.rmdir(link) if link.is_dir() else None
                        os.symlink(str(sentinel.path / "etc"), link)
                except OSError:
                    pass

        t = threading.Thread(target=flip, daemon=True)
        t.start()
        try:
            r = vl(root, "start", "-a", n, check=False, timeout=60)
        finally:
            stop.set()
            t.join()
        # refused, or the volume landed inside the container: never on the host path
        assert b"untouched" not in r.stdout, "the host sentinel was visible through the bind mount"
        assert Path("/proc/self/mountinfo").read_text().count(str(sentinel.path)) == host_mounts_before
        sentinel.check()
        vl(root, "rm", "-f", n)
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- 42: sysctl injection


def test_case42_sysctl_injection_is_refused(root):
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    ps_before = vl(root, "ps", "-aq", "--no-trunc").stdout
    for value in ("kernel.shm_rmid_forced=1+kernel.core_pattern=|/x", "kernel.core_pattern=|/x",
                  "kernel.shm_rmid_forced=1\nkernel.core_pattern=|/x"):
        r = vl(root, "run", "--rm", "--sysctl", value, "--network", "none", "busybox", "true", check=False)
        assert r.returncode == 125, r.stderr.decode()
        assert b"Traceback" not in r.stderr
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
    no_new_container(root, ps_before)


# ---------------------------------------------------------------- 43: bad updates change nothing


def _limits(root: Path, name: str) -> dict:
    hc = json.loads(vl(root, "inspect", name).stdout)[0]["HostConfig"]
    return {k: hc.get(k) for k in ("Memory", "NanoCpus", "CpuQuota", "CpuPeriod", "PidsLimit", "CpuShares")}


@pytest.mark.parametrize("args", [
    ["--memory", "1k"], ["--cpus", "0"], ["--cpus", "100000"], ["--pids-limit", "0"], ["--memory", "-5"],
    ["--cpus", "nan"], ["--memory", "10m", "--cpus", "0"], ["--cpu-shares", "abc"],
])
def test_case43_bad_update_is_refused_and_changes_nothing(root, args):
    vl(root, "run", "-d", "--name", "u", "--network", "none", "--memory", "64m", "--cpus", "1",
       "--pids-limit", "100", "busybox", "sleep", "60")
    cid = vl(root, "inspect", "--format", "{{.Id}}", "u").stdout.decode().strip()
    before = _limits(root, "u")
    r = vl(root, "update", *args, "u", check=False)
    assert r.returncode == 125, (args, r.returncode, r.stderr.decode())
    assert b"Traceback" not in r.stderr
    assert _limits(root, "u") == before  # no half-applied update
    assert json.loads(vl(root, "inspect", "u").stdout)[0]["State"]["Status"] == "running"
    assert cgroup_procs(cid)
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- 44: names


@pytest.mark.parametrize("name", ["a/b", "..", ".", "x" * 10_000, "-x", "a b", "é", "a\nb"])
def test_case44_bad_names_create_nothing(root, name):
    before = sorted(os.listdir(root))
    r = vl(root, "create", "--name", name, "--network", "none", "busybox", "true", check=False)
    assert r.returncode == 125, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    assert vl(root, "ps", "-aq").stdout == b""
    after = set(os.listdir(root)) - set(before)
    assert after <= {"containers"}, after
    names = root / "containers" / ".names"
    assert not names.is_dir() or os.listdir(names) == []


def test_case44_duplicate_name_is_refused(root):
    vl(root, "create", "--name", "dup", "--network", "none", "busybox", "true")
    r = vl(root, "create", "--name", "dup", "--network", "none", "busybox", "true", check=False)
    assert r.returncode == 125 and b"already in use" in r.stderr
    assert len(vl(root, "ps", "-aq").stdout.split()) == 1
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- 45, 46: exit codes and stop


@pytest.mark.parametrize("cmd,code", [
    (["no-such-command"], 127), (["/etc/passwd"], 126), (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], 137),
])
def test_case45_exit_codes(root, cmd, code):
    r = vl(root, "run", "--rm", "--network", "none", "busybox", *cmd, check=False)
    assert r.returncode == code, r.stderr.decode()
    assert vl(root, "ps", "-aq").stdout == b""


def test_case45_killed_by_sigkill_is_137(root):
    vl(root, "run", "-d", "--name", "k", "--network", "none", "busybox", "sleep", "600")
    vl(root, "kill", "k")
    assert vl(root, "wait", "k").stdout.strip() == b"137"
    assert vl(root, "ps", "-a", "--format", "{{.Status}}").stdout.startswith(b"Exited (137)")
    cleanup_with_cli(root, all_images=True)


def test_case46_stop_kills_a_process_that_ignores_sigterm(root):
    cid = vl(root, "run", "-d", "--name", "deaf", "--network", "none", "busybox", "sh", "-c",
             "trap '' TERM; sleep 1000 & while :; do sleep 1; done").stdout.decode().strip()
    t = time.monotonic()
    vl(root, "stop", "-t", "2", "deaf")
    took = time.monotonic() - t
    assert took >= 2, f"stop returned after {took:.1f}s, before the grace period"
    st = json.loads(vl(root, "inspect", "deaf").stdout)[0]["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    assert cgroup_procs(cid) == []  # the cgroup is empty: the background sleep went too
    check_ps_truth(root)
    cleanup_with_cli(root, all_images=True)


# ---------------------------------------------------------------- 51: trojan tools in the container


TROJAN = b"#!/bin/sh\necho pwned > %s\n"


def test_case51_trojan_compressors_and_nss_are_never_used(root, tmp_path):
    marker = tmp_path / "pwned"
    vl(root, "run", "--name", "t51", "--network", "none", "busybox", "mkdir", "-p", "/lib", "/usr/local/bin")
    troj = TROJAN % str(marker).encode()
    files = tmp_path / "trojans"
    files.mkdir()
    for tool in ("xz", "gzip", "unpigz", "pigz", "zstd", "tar", "bzip2"):
        (files / tool).write_bytes(troj)
        os.chmod(files / tool, 0o755)
    (files / "libnss_files.so.2").write_bytes(b"\x7fELF not a real library")
    for tool in ("xz", "gzip", "unpigz", "pigz", "zstd", "tar", "bzip2"):
        vl(root, "cp", str(files / tool), f"t51:/bin/{tool}")
    vl(root, "cp", str(files / "libnss_files.so.2"), "t51:/lib/libnss_files.so.2")
    # every host-side path that reads the container's filesystem
    out = tmp_path / "out"
    out.mkdir()
    vl(root, "cp", "-a", "t51:/etc", str(out / "etc"))
    vl(root, "cp", "t51:/bin/xz", str(out / "xz"))
    vl(root, "export", "-o", str(tmp_path / "exp.tar"), "t51")
    vl(root, "commit", "t51", "t51img:1")
    vl(root, "diff", "t51")
    vl(root, "save", "-o", str(tmp_path / "saved.tar"), "t51img:1")
    vl(root, "cp", str(files / "xz"), "t51:/tmp/again")
    assert not marker.exists(), "a tool from the container ran on the host"
    check_store(root)
    cleanup_with_cli(root, all_images=True)
    assert not marker.exists()


# ---------------------------------------------------------------- 52: commit/export content


def test_case52_export_and_commit_are_deterministic_and_skip_sockets_and_mounts(root, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "secret-of-the-mount").write_text("must not be exported\n")
    cid = vl(root, "run", "--name", "t52", "--network", "none", "-v", f"{vol}:/mnt/vol", "busybox", "sh", "-c",
             "echo a > /a; ln /a /hard; rm /bin/vi; mkdir -p /d && echo x > /d/f").stdout
    cid = vl(root, "inspect", "--format", "{{.Id}}", "t52").stdout.decode().strip()
    here = os.getcwd()
    os.chdir(root / "containers" / cid / "upper")  # AF_UNIX paths are short: bind relative
    try:
        s = socket.socket(socket.AF_UNIX)  # a socket in the container's filesystem (its upper dir)
        s.bind("sock")
        s.close()
    finally:
        os.chdir(here)
    e1, e2 = tmp_path / "e1.tar", tmp_path / "e2.tar"
    vl(root, "export", "-o", str(e1), "t52")
    vl(root, "export", "-o", str(e2), "t52")
    assert hashlib.sha256(e1.read_bytes()).digest() == hashlib.sha256(e2.read_bytes()).digest(), \
        "export is not deterministic"
    with tarfile.open(e1) as t:
        members = {m.name.lstrip("./"): m for m in t.getmembers()}
    assert "mnt/vol/secret-of-the-mount" not in members, "the bind mount's content was exported"
    assert "sock" not in members or not members["sock"].isfile()
    assert "bin/vi" not in members
    assert members["hard"].islnk() or members["a"].islnk()
    # commit: one layer of the changes, with a whiteout for the deleted file, no socket, no mount content
    vl(root, "commit", "t52", "c52:1")
    vl(root, "commit", "t52", "c52:2")
    diff1 = json.loads(vl(root, "image", "inspect", "c52:1").stdout)[0]["RootFS"]["Layers"][-1]
    diff2 = json.loads(vl(root, "image", "inspect", "c52:2").stdout)[0]["RootFS"]["Layers"][-1]
    assert diff1 == diff2, "the same changes gave two different layers"
    r = vl(root, "run", "--rm", "--network", "none", "c52:1", "sh", "-c",
           "cat /a /hard /d/f; test -e /bin/vi && echo vi-back; ls /mnt/vol 2>&1; test -S /sock && echo sock; true")
    assert r.stdout.startswith(b"a\na\nx\n")
    assert b"vi-back" not in r.stdout and b"secret-of-the-mount" not in r.stdout and b"sock\n" not in r.stdout
    check_store(root)
    cleanup_with_cli(root, all_images=True)

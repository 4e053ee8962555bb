"""A full disk during import, pull, commit and VM disk creation: a clear error, exit 125, no corruption.

The store lives on a small tmpfs (mounted here, unmounted in teardown). Each test fills it
during one operation, then checks the error, that nothing half-made is left (no image, no
staging dir, no blob that does not match its digest), and that the store works again once
space is freed.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import build_busybox, check_store, cleanup_with_cli, vl

pytestmark = pytest.mark.root

NOSPACE = (b"no space", b"No space", b"disk full", b"ENOSPC")


def random_tar(path: Path, mb: int) -> Path:
    """A tarball with `mb` MB of incompressible data."""
    data = path.with_suffix(".bin")
    data.write_bytes(os.urandom(mb * 1_000_000))
    with tarfile.open(path, "w") as t:
        t.add(data, arcname="blob.bin")
    data.unlink()
    return path


def free_bytes(d: Path) -> int:
    """Bytes free on the filesystem of `d`."""
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize


def fill(d: Path, leave: int) -> Path:
    """Fill the filesystem of `d` until `leave` bytes are free; returns the filler file."""
    f = d / "filler"
    want = max(0, free_bytes(d) - leave)
    with open(f, "wb") as out:
        while want > 0:
            n = min(want, 1 << 20)
            out.write(b"\0" * n)
            want -= n
    return f


def assert_clean_failure(r: subprocess.CompletedProcess, what: str) -> None:
    """Exit 125, one clear `Error:` line naming the cause, no traceback."""
    err = r.stderr
    assert r.returncode == 125, f"{what}: exit {r.returncode}\n{err.decode()}"
    assert any(w in err for w in NOSPACE), f"{what}: the error does not say the disk is full:\n{err.decode()}"
    assert b"Traceback" not in err, err.decode()


def store_root(small: Path) -> Path:
    """A store root on the small filesystem, with busybox."""
    r = small / "root"
    r.mkdir()
    build_busybox(r)
    return r


def test_import_on_a_full_disk(tmpfs, tmp_path):
    small = tmpfs("8m")
    root = store_root(small)
    before = vl(root, "images", "-q").stdout
    big = random_tar(tmp_path / "big.tar", 6)
    r = vl(root, "import", str(big), "big:1", check=False)
    assert_clean_failure(r, "import")
    check_store(root)
    assert vl(root, "images", "-q").stdout == before  # no half image
    assert sorted(os.listdir(root / "image" / "staging")) in ([], ["partial"])
    # once space is there again, the same store works: a small import and a container run
    small_tar = random_tar(tmp_path / "small.tar", 1)
    vl(root, "import", str(small_tar), "small:1")
    assert vl(root, "run", "--rm", "--network", "none", "busybox", "echo", "ok").stdout == b"ok\n"
    check_store(root)
    cleanup_with_cli(root, all_images=True)


def test_commit_on_a_full_disk(tmpfs):
    small = tmpfs("16m")
    root = store_root(small)
    vl(root, "run", "--name", "w", "--network", "none", "busybox", "sh", "-c",
       "head -c 3000000 /dev/urandom > /data; echo done > /mark")
    filler = fill(small, 1_000_000)
    before = vl(root, "images", "-q").stdout
    r = vl(root, "commit", "w", "full:1", check=False)
    assert_clean_failure(r, "commit")
    check_store(root)
    assert vl(root, "images", "-q").stdout == before
    assert sorted(os.listdir(root / "image" / "staging")) in ([], ["partial"])
    filler.unlink()
    # the container is intact and the commit works now
    vl(root, "commit", "w", "full:1")
    assert vl(root, "run", "--rm", "--network", "none", "full:1", "cat", "/mark").stdout == b"done\n"
    check_store(root)
    cleanup_with_cli(root, all_images=True)


def test_pull_on_a_full_disk(tmpfs, registry, tmp_path):
    src = tmp_path / "src"
    build_busybox(src)
    vl(src, "run", "--name", "mk", "--network", "none", "busybox", "sh", "-c", "head -c 4000000 /dev/urandom > /p")
    ref = f"{registry.host}/diskfull/pull:1"
    vl(src, "commit", "mk", ref)
    vl(src, "push", ref)
    want = vl(src, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
    small = tmpfs("16m")
    root = store_root(small)
    filler = fill(small, 2_000_000)
    r = vl(root, "pull", ref, check=False)
    assert_clean_failure(r, "pull")
    check_store(root)
    assert vl(root, "image", "inspect", ref, check=False).returncode != 0  # no half image
    filler.unlink()
    vl(root, "pull", ref)
    assert vl(root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == want
    assert vl(root, "run", "--rm", "--network", "none", ref, "sh", "-c", "wc -c < /p").stdout.strip() == b"4000000"
    check_store(root)
    cleanup_with_cli(root, all_images=True)
    cleanup_with_cli(src, all_images=True)


@pytest.mark.vm
def test_vm_disk_creation_on_a_full_disk(vm_store, tmp_path):
    # a new image (so its base disk is not cached yet), its disk built on a full scratch fs
    tar = random_tar(tmp_path / "vmimg.tar", 1)
    vl(vm_store, "import", str(tar), "diskfull:1")
    vl(vm_store, "image", "tag", "busybox", "diskfull-base:1")
    scratch = vm_store / "vm" / "tmp"
    disks_before = sorted(os.listdir(vm_store / "vm" / "disks"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0711", "tmpfs", str(scratch)], check=True)
    try:
        r = vl(vm_store, "vm", "prepare", "diskfull:1", check=False, timeout=600)
    finally:
        subprocess.run(["umount", str(scratch)], check=True)
    assert_clean_failure(r, "vm prepare")
    assert sorted(os.listdir(vm_store / "vm" / "disks")) == disks_before  # no half disk, no metadata
    assert os.listdir(scratch) == []
    # with space back, the same command builds the disk
    vl(vm_store, "vm", "prepare", "diskfull:1", timeout=600)
    assert len(os.listdir(vm_store / "vm" / "disks")) > len(disks_before)
    check_store(vm_store)
    vl(vm_store, "rmi", "diskfull:1", "diskfull-base:1")

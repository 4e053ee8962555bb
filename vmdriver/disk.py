"""Disks: an ext4 base built from an image's layers, qcow2 overlays, and checks of untrusted images.

Rules (SECURITY.md 5): the format is always explicit (`-f`, `-F`, XML `type=`), QEMU never
probes; `qemu-img info` runs under rlimits; an untrusted image with a backing file, an
external data file, extents or encryption is rejected; overlays never clobber a file.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vmdriver.errors import ArtifactError, UnsafeDisk

FORMATS = ("raw", "qcow2")
# Nova's QEMU_IMG_LIMITS: a crafted image must not make qemu-img burn the host.
QEMU_IMG_CPU_SECONDS = 30
QEMU_IMG_ADDRESS_SPACE = 1 << 30
MAX_VIRTUAL_SIZE = 64 << 30
MIN_ROOT_SIZE = 256 << 20
ROOT_HEADROOM = 512 << 20


def _limit_qemu_img() -> None:
    """preexec_fn: the rlimits every qemu-img run gets."""
    resource.setrlimit(resource.RLIMIT_CPU, (QEMU_IMG_CPU_SECONDS, QEMU_IMG_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (QEMU_IMG_ADDRESS_SPACE, QEMU_IMG_ADDRESS_SPACE))


def run_qemu_img(args: list[str], what: str, timeout: float = 120, limits: bool = True) -> str:
    """Run `qemu-img ARGS` (under the rlimits unless `limits` is off); ArtifactError with its stderr on failure.

    Only the conversion of a raw image that virtlab built itself runs without them:
    its worker threads need more address space than the 1 GiB cap allows.
    """
    try:
        r = subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, timeout=timeout,
            preexec_fn=_limit_qemu_img if limits else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtifactError(f"cannot {what}: {exc}") from exc
    if r.returncode != 0:
        raise ArtifactError(f"cannot {what}: {r.stderr.strip()[-400:] or f'qemu-img exited {r.returncode}'}")
    return r.stdout


@dataclass(frozen=True)
class DiskInfo:
    """What `qemu-img info` says about a disk image, opened with an explicit format."""

    path: Path
    format: str
    virtual_size: int
    actual_size: int


def inspect_untrusted(path: Path, fmt: str, max_virtual_size: int = MAX_VIRTUAL_SIZE) -> DiskInfo:
    """Check a disk image we did not build, opened as `fmt`; UnsafeDisk if it breaks a rule."""
    if fmt not in FORMATS:
        raise UnsafeDisk(f"disk {path}: format {fmt!r} is not allowed (use one of {', '.join(FORMATS)})")
    st = os.lstat(path) if os.path.lexists(path) else None
    if st is None:
        raise UnsafeDisk(f"disk {path}: no such file")
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise UnsafeDisk(f"disk {path}: not a regular file (symlinks and devices are refused)")
    try:
        out = run_qemu_img(["info", "--output=json", "-f", fmt, str(path)], f"inspect disk {path}", timeout=60)
    except ArtifactError as exc:
        raise UnsafeDisk(str(exc)) from exc
    try:
        info = json.loads(out)
    except ValueError as exc:
        raise UnsafeDisk(f"disk {path}: qemu-img info gave no JSON") from exc
    if info.get("format") != fmt:
        raise UnsafeDisk(f"disk {path}: opened as {fmt}, qemu-img reports {info.get('format')!r}")
    if info.get("backing-filename") or info.get("full-backing-filename") or info.get("backing-filename-format"):
        raise UnsafeDisk(f"disk {path}: has a backing file ({info.get('backing-filename')!r}); refused")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file") or specific.get("data-file-raw"):
        raise UnsafeDisk(f"disk {path}: has an external data file ({specific.get('data-file')!r}); refused")
    if specific.get("extents"):
        raise UnsafeDisk(f"disk {path}: has extents; refused")
    if info.get("encrypted") or specific.get("encrypt"):
        raise UnsafeDisk(f"disk {path}: is encrypted; refused")
    if info.get("snapshots"):
        raise UnsafeDisk(f"disk {path}: has internal snapshots; refused")
    vsize = int(info.get("virtual-size") or 0)
    if vsize <= 0 or vsize > max_virtual_size:
        raise UnsafeDisk(
            f"disk {path}: virtual size {vsize} bytes is outside 1..{max_virtual_size} (size cap)"
        )
    return DiskInfo(path, fmt, vsize, int(info.get("actual-size") or 0))


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes, inodes) of a directory tree, without following symlinks."""
    total, count = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            count += 1
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            total += st.st_blocks * 512 if n in filenames else 4096
    return total, count


def build_ext4(src: Path, dest_raw: Path, label: str = "virtlab-root") -> int:
    """Make a sparse raw ext4 image at `dest_raw` holding `src` (mkfs.ext4 -d, no loop device)."""
    used, inodes = tree_size(src)
    size = max(MIN_ROOT_SIZE, used * 2 + ROOT_HEADROOM)
    size = (size + (1 << 20) - 1) & ~((1 << 20) - 1)
    with open(dest_raw, "wb") as f:
        f.truncate(size)
    argv = [
        "mkfs.ext4", "-q", "-F", "-L", label, "-d", str(src),
        "-N", str(max(16384, inodes * 2)),
        "-E", "root_owner=0:0,lazy_itable_init=0",
        "-O", "^metadata_csum_seed",
        str(dest_raw),
    ]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        dest_raw.unlink(missing_ok=True)
        raise ArtifactError(f"cannot build ext4 from {src}: {r.stderr.strip()[-400:]}")
    return size


def raw_to_qcow2(raw: Path, dest: Path) -> None:
    """Convert our own raw image to a compact qcow2 (explicit formats on both sides)."""
    run_qemu_img(["convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", str(raw), str(dest)],
                 f"convert {raw} to qcow2", timeout=600, limits=False)


def create_overlay(base: Path, base_fmt: str, dest: Path) -> None:
    """Create `dest` as a qcow2 overlay on `base`; an existing `dest` is never overwritten."""
    if base_fmt not in FORMATS:
        raise ArtifactError(f"overlay on {base}: unknown base format {base_fmt!r}")
    if os.path.lexists(dest):
        raise ArtifactError(f"overlay {dest} already exists; refusing to overwrite it")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        run_qemu_img(
            ["create", "-q", "-f", "qcow2", "-F", base_fmt, "-b", str(base.resolve()), str(tmp)],
            f"create overlay {dest}",
        )
        os.chmod(tmp, 0o600)
        # link() fails if dest appeared meanwhile: O_EXCL semantics for the final name.
        try:
            os.link(tmp, dest)
        except FileExistsError as exc:
            raise ArtifactError(f"overlay {dest} already exists; refusing to overwrite it") from exc
    finally:
        tmp.unlink(missing_ok=True)


def check_overlay(path: Path, base: Path) -> None:
    """Check that an overlay we made still points at `base` as qcow2 and nothing else."""
    out = run_qemu_img(["info", "--output=json", "-f", "qcow2", str(path)], f"inspect overlay {path}", timeout=60)
    info = json.loads(out)
    if info.get("backing-filename") != str(base.resolve()) or info.get("backing-filename-format") != "qcow2":
        raise UnsafeDisk(f"overlay {path}: backing file is {info.get('backing-filename')!r}, expected {base}")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise UnsafeDisk(f"overlay {path}: has an external data file; refused")


def allocated_bytes(path: Path) -> int:
    """Bytes a file really takes on the host (sparse-aware); 0 if it is gone."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0

"""SECURITY.md corpus, VM cases 53-57, 59, 60: untrusted disks, overlays, boot files.

Oracle: a clear UnsafeDisk/ArtifactError (exit code 125) naming the file, formats
always explicit, and no host file named by an image is ever opened or changed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest
from vmd_unit_helpers import needs_qemu_img, qemu_img

from vmdriver import disk
from vmdriver.artifacts import check_boot_file
from vmdriver.errors import ArtifactError, UnsafeDisk

pytestmark = needs_qemu_img


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A 'host file' an image will try to name; it must stay unchanged."""
    s = tmp_path / "host" / "etc" / "shadow"
    s.parent.mkdir(parents=True)
    s.write_text("root:secret\n")
    return s


def _unchanged(sentinel: Path) -> None:
    assert sentinel.read_text() == "root:secret\n"


def test_53_qcow2_with_a_backing_file_is_rejected(tmp_path, sentinel):
    img = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(sentinel), str(img), "1M")
    with pytest.raises(UnsafeDisk, match="backing file") as ei:
        disk.inspect_untrusted(img, "qcow2")
    assert ei.value.exit_code == 125 and str(img) in str(ei.value)
    _unchanged(sentinel)


def test_53_backing_file_naming_a_device_is_rejected(tmp_path):
    img = tmp_path / "evil.qcow2"
    # -u: do not open the backing file while creating the image.
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "/dev/sda", str(img), "1M")
    with pytest.raises(UnsafeDisk, match="backing file"):
        disk.inspect_untrusted(img, "qcow2")


def test_54_qcow2_with_an_external_data_file_is_rejected(tmp_path, sentinel):
    img = tmp_path / "evil.qcow2"
    data = tmp_path / "data.raw"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={data}", str(img), "1M")
    # Point the data file at the "host" file afterwards, as an attacker would ship it.
    qemu_img("amend", "-q", "-f", "qcow2", "-o", f"data_file={sentinel}", str(img))
    with pytest.raises(UnsafeDisk, match="data file"):
        disk.inspect_untrusted(img, "qcow2")
    _unchanged(sentinel)


def test_55_raw_disk_with_a_qcow2_header_stays_raw(tmp_path, sentinel):
    # A guest wrote a qcow2 header (backing file = a host file) into its raw disk.
    img = tmp_path / "guest-written.raw"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", str(sentinel), str(img), "1M")
    info = disk.inspect_untrusted(img, "raw")
    assert info.format == "raw"
    # Raw: the file itself (rounded to sectors), not the 1 MiB the qcow2 header claims.
    assert abs(info.virtual_size - img.stat().st_size) < 1024 and info.virtual_size != 1 << 20
    _unchanged(sentinel)


def test_55_format_mismatch_is_never_probed(tmp_path):
    img = tmp_path / "plain.raw"
    img.write_bytes(b"\0" * 65536)
    with pytest.raises(UnsafeDisk):
        disk.inspect_untrusted(img, "qcow2")  # not a qcow2: qemu-img fails, we refuse


def test_56_size_bomb_is_rejected_by_the_cap(tmp_path):
    img = tmp_path / "bomb.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(img), "1P")
    with pytest.raises(UnsafeDisk, match="size cap"):
        disk.inspect_untrusted(img, "qcow2")
    assert img.stat().st_size < 64 << 20  # nothing was allocated on our side


def test_56_eight_exbibyte_header_is_rejected(tmp_path):
    img = tmp_path / "bomb8e.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(img), "1M")
    with open(img, "r+b") as f:  # the header's size field (offset 24, big endian)
        f.seek(24)
        f.write((8 << 60).to_bytes(8, "big"))
    with pytest.raises(UnsafeDisk, match="size cap|cannot inspect"):
        disk.inspect_untrusted(img, "qcow2")


def test_56_huge_l1_table_is_bounded(tmp_path):
    img = tmp_path / "l1.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(img), "1M")
    with open(img, "r+b") as f:  # l1_size (offset 36, 4 bytes): claim a 32 GiB L1 table
        f.seek(36)
        f.write((1 << 32 - 1).to_bytes(4, "big"))
    with pytest.raises(UnsafeDisk):
        disk.inspect_untrusted(img, "qcow2")


def test_56_qemu_img_runs_under_rlimits():
    out = subprocess.run(
        ["sh", "-c", "ulimit -t; ulimit -v"], capture_output=True, text=True, preexec_fn=disk._limit_qemu_img
    ).stdout.split()
    assert out == [str(disk.QEMU_IMG_CPU_SECONDS), str(disk.QEMU_IMG_ADDRESS_SPACE // 1024)]
    # ...and the limits are not applied to the caller.
    assert resource.getrlimit(resource.RLIMIT_CPU)[0] != disk.QEMU_IMG_CPU_SECONDS


def test_57_vmdk_and_other_formats_are_refused(tmp_path):
    img = tmp_path / "x.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", str(img), "1M")
    with pytest.raises(UnsafeDisk, match="not allowed"):
        disk.inspect_untrusted(img, "vmdk")
    # Declared raw, a VMDK descriptor is just bytes.
    assert disk.inspect_untrusted(img, "raw").format == "raw"


def test_57_backing_chain_loop_is_rejected(tmp_path):
    a, b = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", str(b), str(a), "1M")
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", str(a), str(b), "1M")
    with pytest.raises(UnsafeDisk, match="backing file"):
        disk.inspect_untrusted(a, "qcow2")


def test_59_symlinks_and_devices_are_not_disks(tmp_path, sentinel):
    link = tmp_path / "link.raw"
    link.symlink_to(sentinel)
    with pytest.raises(UnsafeDisk, match="not a regular file"):
        disk.inspect_untrusted(link, "raw")
    with pytest.raises(UnsafeDisk, match="not a regular file"):
        disk.inspect_untrusted(Path("/dev/null"), "raw")
    with pytest.raises(UnsafeDisk, match="no such file"):
        disk.inspect_untrusted(tmp_path / "missing.raw", "raw")


def test_59_kernel_or_initrd_symlink_device_or_outside_is_rejected(tmp_path, sentinel):
    allowed = tmp_path / "store" / "vm"
    (allowed / "kernels").mkdir(parents=True)
    good = allowed / "kernels" / "vmlinuz"
    good.write_bytes(b"k")
    assert check_boot_file(good, allowed) == good
    link = allowed / "kernels" / "evil"
    link.symlink_to(sentinel)
    with pytest.raises(ArtifactError, match="symlink"):
        check_boot_file(link, allowed)
    with pytest.raises(ArtifactError, match="not a regular file"):
        check_boot_file(Path("/dev/zero"), Path("/dev"))
    with pytest.raises(ArtifactError, match="outside"):
        check_boot_file(sentinel, allowed)
    # A parent folder that is a symlink out of the store is caught too.
    (allowed / "sneaky").symlink_to(sentinel.parent)
    with pytest.raises(ArtifactError, match="outside"):
        check_boot_file(allowed / "sneaky" / "shadow", allowed)


def test_60_overlay_creation_never_clobbers(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(base), "8M")
    ov = tmp_path / "overlay.qcow2"
    ov.write_bytes(b"precious")
    with pytest.raises(ArtifactError, match="already exists"):
        disk.create_overlay(base, "qcow2", ov)
    assert ov.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_overlay_has_an_explicit_backing_format(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(base), "8M")
    ov = tmp_path / "overlay.qcow2"
    disk.create_overlay(base, "qcow2", ov)
    info = json.loads(qemu_img("info", "--output=json", "-f", "qcow2", str(ov)))
    assert info["backing-filename"] == str(base.resolve())
    assert info["backing-filename-format"] == "qcow2"
    assert oct(ov.stat().st_mode & 0o777) == oct(0o600)
    disk.check_overlay(ov, base)
    other = tmp_path / "other.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(other), "8M")
    with pytest.raises(UnsafeDisk):
        disk.check_overlay(ov, other)


def test_ext4_base_from_a_directory_without_loop_devices(tmp_path):
    src = tmp_path / "rootfs"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hello").write_text("hi\n")
    os.symlink("/etc/shadow", src / "abs-link")  # stored as a link, never followed on the host
    raw = tmp_path / "root.raw"
    size = disk.build_ext4(src, raw)
    assert size >= disk.MIN_ROOT_SIZE and raw.stat().st_size == size
    listing = subprocess.run(["debugfs", "-R", "ls -l /", str(raw)], capture_output=True, text=True).stdout
    assert "etc" in listing and "abs-link" in listing
    cat = subprocess.run(["debugfs", "-R", "cat /etc/hello", str(raw)], capture_output=True, text=True).stdout
    assert cat == "hi\n"
    q = tmp_path / "base.qcow2"
    disk.raw_to_qcow2(raw, q)
    info = json.loads(qemu_img("info", "--output=json", "-f", "qcow2", str(q)))
    assert info["virtual-size"] == size and "backing-filename" not in info
    assert disk.allocated_bytes(q) < size // 4  # sparse: only used clusters

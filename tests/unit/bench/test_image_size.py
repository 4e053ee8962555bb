"""The bench image's size: allocated bytes under a tree, each inode once, links not followed."""

from __future__ import annotations

import os

from bench.image import dir_bytes
from runtime.image.fsutil import disk_usage


def _allocated(path) -> int:
    return os.lstat(path).st_blocks * 512


def test_dir_bytes_counts_hard_links_once_and_does_not_follow_symlinks(tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(os.urandom(200_000))
    os.link(root / "bin" / "busybox", root / "bin" / "sh")
    outside = tmp_path / "outside"
    outside.write_bytes(os.urandom(500_000))
    os.symlink(outside, root / "bin" / "big")
    want = sum(_allocated(p) for p in (root / "bin", root / "bin" / "busybox", root / "bin" / "big"))
    assert dir_bytes(root) == want
    assert dir_bytes(str(root)) == want
    assert dir_bytes(root) == disk_usage(root)[1]


def test_dir_bytes_of_a_missing_tree_is_zero(tmp_path):
    assert dir_bytes(tmp_path / "nothing") == 0

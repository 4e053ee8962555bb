"""Full profile: in-root existence checks and the units masked in images without kmod (no boots)."""

from __future__ import annotations

import os
from pathlib import Path

from vmdriver import full


def test_exists_in_root_resolves_symlinks_inside_the_root_only(tmp_path: Path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "kmod").write_text("x")
    os.symlink("usr/bin", root / "bin")  # merged /usr, as Debian does it
    os.symlink("/etc", root / "evil")  # absolute: must resolve to <root>/etc, never the host's
    assert full.exists_in_root(root, "bin/kmod")
    assert full.exists_in_root(root, "usr/bin/kmod")
    assert not full.exists_in_root(root, "sbin/modprobe")
    assert Path("/etc/passwd").exists() and not full.exists_in_root(root, "evil/passwd")
    assert not full.exists_in_root(root, "usr/bin/kmod/x")  # a file as a parent


def test_the_masked_units_are_part_of_the_disk_recipe(monkeypatch):
    before = full._recipe()
    monkeypatch.setattr(full, "NO_KMOD_MASKED", (*full.NO_KMOD_MASKED, "other.service"))
    assert full._recipe() != before

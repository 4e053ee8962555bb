"""VM names, domain names and store paths (corpus cases 44/58 for VMs)."""

from __future__ import annotations

import os

import pytest

from vmdriver.errors import InvalidSpec
from vmdriver.layout import Layout, check_traversable, domain_name, validate_name


@pytest.mark.parametrize("name", ["web", "a", "vm-1", "db_2.test", "A" * 63, "9lives"])
def test_valid_names(name):
    assert validate_name(name) == name
    assert domain_name(name) == "virtlab-" + name


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "..", ".", "-x", "_x", "a b", "a\nb", "a<b", "it's", "x&y", "A" * 64, "x" * 10_000, "é", None, 5],
)
def test_invalid_names_are_rejected_with_125(name):
    with pytest.raises(InvalidSpec) as ei:
        validate_name(name)
    assert ei.value.exit_code == 125
    assert "invalid VM name" in str(ei.value)


def test_layout_is_under_root_vm_and_traversable(tmp_path):
    lay = Layout(tmp_path / "r")
    lay.ensure()
    assert lay.vm_dir("web") == tmp_path / "r" / "vm" / "vms" / "web"
    for d in (lay.base, lay.kernels, lay.initramfs, lay.disks, lay.vms, lay.tmp, lay.locks):
        assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o711
    with pytest.raises(InvalidSpec):
        lay.vm_dir("../escape")


def test_check_traversable(tmp_path):
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    os.chmod(tmp_path / "a", 0o700)
    why = check_traversable(d, 64055)
    # The first private folder on the way is named (pytest's own may come before ours).
    assert why and "not traversable by others" in why
    assert str(d).startswith(why.split(" is not")[0])
    # Folders a user owns are always reachable for that user.
    assert check_traversable(d, os.stat(tmp_path).st_uid) is None

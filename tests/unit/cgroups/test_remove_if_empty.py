"""remove_if_empty: the cheap cgroup removal `delete` uses for a stopped container."""

from __future__ import annotations

import pytest

from runtime.oci.cgroups import CgroupError, remove_if_empty


def test_removes_empty_dirs_and_child_cgroups(tmp_path):
    a = tmp_path / "pids" / "virtlab" / "c1"
    b = tmp_path / "memory" / "virtlab" / "c1"
    (a / "sub" / "deeper").mkdir(parents=True)  # a child cgroup made inside the container
    b.mkdir(parents=True)
    assert remove_if_empty({"pids": str(a), "memory": str(b), "cpu": str(b)}, root=str(tmp_path)) is True
    assert not a.exists() and not b.exists()
    assert (tmp_path / "pids" / "virtlab").is_dir()  # not tagged as created by virtlab: kept


def test_reports_a_directory_it_cannot_remove(tmp_path):
    a = tmp_path / "pids" / "virtlab" / "c2"
    b = tmp_path / "memory" / "virtlab" / "c2"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    (b / "keep").write_text("x")  # stands for a cgroup that still has tasks (rmdir fails)
    assert remove_if_empty({"pids": str(a), "memory": str(b)}, root=str(tmp_path)) is False
    assert not a.exists() and b.exists()


def test_missing_dirs_are_fine(tmp_path):
    assert remove_if_empty({"pids": str(tmp_path / "pids" / "gone")}, root=str(tmp_path)) is True


@pytest.mark.parametrize("paths", [{}, {"pids": "/etc"}, {"pids": 3}, "x"])
def test_refuses_paths_outside_the_root(tmp_path, paths):
    with pytest.raises(CgroupError):
        remove_if_empty(paths, root=str(tmp_path))

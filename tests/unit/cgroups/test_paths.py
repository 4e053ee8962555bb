"""cgroupsPath parsing, mode detection and mount discovery."""

from __future__ import annotations

import pytest

from runtime.oci.cgroups import CgroupUnsupported, InvalidResources, detect_mode, open_manager
from runtime.oci.cgroups.hierarchy import base_dir, parse_cgroups_path, v1_mounts


def test_default_path():
    assert parse_cgroups_path(None, "abc") == (False, ["virtlab", "abc"])
    assert parse_cgroups_path("", "abc") == (False, ["virtlab", "abc"])


def test_absolute_and_relative():
    assert parse_cgroups_path("/cgrouptest", "x") == (False, ["cgrouptest"])
    assert parse_cgroups_path("testdir/cgrouptest/container", "x") == (True, ["testdir", "cgrouptest", "container"])
    assert parse_cgroups_path("//a/./b/", "x") == (False, ["a", "b"])


@pytest.mark.parametrize("path", ["/a/../../etc", "..", "a/..", "/a/b\nc", "/a/\x00"])
def test_bad_paths(path):
    with pytest.raises(InvalidResources):
        parse_cgroups_path(path, "x")


@pytest.mark.parametrize("path", ["/", "//", "."])
def test_root_cgroup_refused(path):
    with pytest.raises(InvalidResources, match="root cgroup"):
        parse_cgroups_path(path, "x")


def test_systemd_driver_is_a_clear_error():
    with pytest.raises(CgroupUnsupported, match="systemd cgroup driver"):
        parse_cgroups_path("system.slice:virtlab:abc", "abc")
    with pytest.raises(CgroupUnsupported, match="systemd"):
        parse_cgroups_path(":virtlab:abc", "abc")


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "", "x" * 300, "a\nb"])
def test_bad_container_ids(cid):
    with pytest.raises(InvalidResources):
        parse_cgroups_path(None, cid)


def test_base_dir():
    assert base_dir("/sys/fs/cgroup/memory", "/", False, "/p/q") == "/sys/fs/cgroup/memory"
    assert base_dir("/sys/fs/cgroup/memory", "/", True, "/p/q") == "/sys/fs/cgroup/memory/p/q"
    # a mount that shows only /p of the tree (cgroup namespace or bind mount)
    assert base_dir("/sys/fs/cgroup/memory", "/p", True, "/p/q") == "/sys/fs/cgroup/memory/q"


def test_relative_path_under_own_cgroup(fakefs, monkeypatch):
    fs = fakefs("hybrid")
    monkeypatch.setattr(
        "runtime.oci.cgroups.hierarchy.own_cgroups", lambda pid="self": {"memory": "/jobs/42", "": "/u", "pids": "/"}
    )
    mgr = open_manager("t/c", "c1", root=str(fs.root))
    assert mgr.paths["memory"] == str(fs.root / "memory" / "jobs" / "42" / "t" / "c")
    assert mgr.paths["pids"] == str(fs.root / "pids" / "t" / "c")
    assert mgr.paths[""] == str(fs.root / "unified" / "u" / "t" / "c")


def test_no_cgroups(tmp_path):
    with pytest.raises(CgroupUnsupported):
        detect_mode(str(tmp_path / "nothing"))
    with pytest.raises(CgroupUnsupported):
        detect_mode(str(tmp_path))


def test_fake_v1_mounts_from_dir_names(tmp_path):
    for name in ("cpu,cpuacct", "memory", "systemd", "unified", "notacontroller"):
        (tmp_path / name).mkdir()
    mounts = v1_mounts(str(tmp_path))
    assert mounts["cpu"][0] == mounts["cpuacct"][0] == str(tmp_path / "cpu,cpuacct")
    assert mounts["name=systemd"][0] == str(tmp_path / "systemd")
    assert "unified" not in mounts and "notacontroller" not in mounts


def test_real_mounts_match_proc_self_cgroup():
    """On any Linux host with v1 hierarchies, each mount found is a directory."""
    import os

    for ctrl, (mountpoint, _) in v1_mounts().items():
        assert os.path.isdir(mountpoint), ctrl

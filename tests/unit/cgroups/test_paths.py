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


MOUNTINFO = """\
24 30 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 24 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 /docker/abc /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
38 33 0:33 / /sys/fs/cgroup/systemd rw,nosuid shared:15 - cgroup cgroup rw,xattr,name=systemd
39 33 0:34 / /sys/fs/cgroup/net_cls\\040x rw,nosuid shared:16 - cgroup cgroup rw,net_cls
40 30 0:35 / /mnt/elsewhere rw - cgroup cgroup rw,pids
"""


def test_v1_mounts_from_mountinfo(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    mounts = v1_mounts("/sys/fs/cgroup", mountinfo=str(info))
    assert mounts["cpu"] == mounts["cpuacct"] == ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert mounts["memory"] == ("/sys/fs/cgroup/memory", "/docker/abc")
    assert mounts["name=systemd"] == ("/sys/fs/cgroup/systemd", "/")
    assert mounts["net_cls"] == ("/sys/fs/cgroup/net_cls x", "/")  # octal escapes undone
    assert "pids" not in mounts  # mounted, but not under the root we were given
    assert "rw" not in mounts and "xattr" not in mounts


def test_parse_proc_cgroup():
    from runtime.oci.cgroups.hierarchy import parse_proc_cgroup

    text = "12:cpu,cpuacct:/a\n4:memory:/process_api/x\n1:name=systemd:/\n0::/u\n"
    assert parse_proc_cgroup(text) == {
        "cpu": "/a", "cpuacct": "/a", "memory": "/process_api/x", "name=systemd": "/", "": "/u",
    }
    assert parse_proc_cgroup("garbage\n") == {}

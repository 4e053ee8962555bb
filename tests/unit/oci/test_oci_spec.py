"""config.json loading and validation, container ids, the default spec, namespace plans."""

import json

import pytest

from runtime.oci import linux, namespaces, spec
from runtime.oci.errors import SpecError


def minimal(**over):
    cfg = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
           "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}
    cfg.update(over)
    return cfg


def write_bundle(tmp_path, cfg):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


def test_load_valid(tmp_path):
    cfg = spec.load(write_bundle(tmp_path, minimal()))
    assert cfg["process"]["args"] == ["sh"]


def test_load_missing_config_names_the_path(tmp_path):
    with pytest.raises(SpecError, match="config.json: no such file"):
        spec.load(str(tmp_path))


def test_load_bad_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        spec.load(str(tmp_path))


def test_load_too_big(tmp_path):
    (tmp_path / "config.json").write_bytes(b" " * (spec.MAX_CONFIG_BYTES + 2))
    with pytest.raises(SpecError, match="larger than"):
        spec.load(str(tmp_path))


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c["process"].update(args=[]), "process.args"),
    (lambda c: c["process"].update(args="sh"), "process.args"),
    (lambda c: c["process"].update(cwd="relative"), "absolute"),
    (lambda c: c["process"]["user"].update(uid=-1), "uid"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "unknown namespace"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "listed twice"),
    (lambda c: c["linux"]["namespaces"].append({"type": "net", "path": "x"}), "unknown namespace"),
    (lambda c: c.update(mounts=[{"type": "tmpfs"}]), "no destination"),
    (lambda c: c["linux"].update(maskedPaths=["relative"]), "absolute"),
    (lambda c: c.update(hooks={"prestart": [{"path": "rel/hook"}]}), "must be absolute"),
])
def test_validate_rejects(mutate, message):
    cfg = minimal()
    mutate(cfg)
    with pytest.raises(SpecError, match=message):
        spec.validate(cfg)


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "", "x" * 2000, "-x", "a b", "a\nb"])
def test_bad_ids(cid):
    with pytest.raises(SpecError, match="invalid container id"):
        spec.validate_id(cid)


@pytest.mark.parametrize("cid", ["abc", "a.b_c-d+e", "3f974837-48aa-472c-975e-ed364d53123b"])
def test_good_ids(cid):
    assert spec.validate_id(cid) == cid


def test_default_spec_matches_runc_template():
    d = spec.default_spec()
    assert d["process"]["terminal"] is True
    assert d["process"]["noNewPrivileges"] is True
    assert d["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in d["mounts"]] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                       "/sys", "/sys/fs/cgroup"]
    assert {n["type"] for n in d["linux"]["namespaces"]} == {"pid", "network", "ipc", "uts", "mount"}
    assert "/proc/kcore" in d["linux"]["maskedPaths"]
    spec.validate(d)


def test_default_spec_rootless():
    d = spec.default_spec(rootless=True)
    assert {n["type"] for n in d["linux"]["namespaces"]} == {"pid", "ipc", "uts", "mount", "user"}
    assert d["linux"]["uidMappings"][0]["containerID"] == 0
    assert "resources" not in d["linux"]
    sysfs = [m for m in d["mounts"] if m["destination"] == "/sys"][0]
    assert "rbind" in sysfs["options"]
    spec.validate(d)


def test_namespace_plan_flags_and_join_order():
    cfg = minimal(linux={"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}, {"type": "network"},
                                        {"type": "user", "path": "/proc/1/ns/user"}, {"type": "uts"},
                                        {"type": "ipc", "path": "/proc/1/ns/ipc"}]})
    p = namespaces.plan(cfg)
    assert p.unshare == linux.CLONE_NEWNET | linux.CLONE_NEWUTS
    assert [t for t, _ in p.join] == ["user", "ipc", "mount"]  # user first, mount last
    assert not p.new_user and not p.new_pid


def test_namespace_plan_new_user_needs_mappings():
    with pytest.raises(SpecError, match="uidMappings"):
        namespaces.plan(minimal(linux={"namespaces": [{"type": "user"}]}))
    with pytest.raises(SpecError, match="need a user namespace"):
        namespaces.plan(minimal(linux={"namespaces": [], "uidMappings": [{"containerID": 0, "hostID": 1,
                                                                           "size": 1}]}))


def test_id_map_text():
    text = namespaces.id_map_text([{"containerID": 0, "hostID": 1000, "size": 10},
                                   {"containerID": 10, "hostID": 5000, "size": 1}])
    assert text == "0 1000 10\n10 5000 1\n"
    with pytest.raises(SpecError):
        namespaces.id_map_text([{"containerID": 0}])


def test_write_id_maps_records(tmp_path):
    from ocifakes import RecordingLinux

    h = RecordingLinux()
    cfg = minimal(linux={"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 7, "size": 1}],
                         "gidMappings": [{"containerID": 0, "hostID": 8, "size": 1}]})
    namespaces.write_id_maps(42, cfg, h)
    assert h.of("write_file") == [("write_file", "/proc/42/uid_map", "0 7 1\n"),
                                  ("write_file", "/proc/42/gid_map", "0 8 1\n")]


def test_join_checks_type(tmp_path):
    from ocifakes import RecordingLinux

    h = RecordingLinux()
    namespaces.join([("network", "/proc/self/ns/net"), ("mount", "/proc/self/ns/mnt")], h)
    assert h.of("setns") == [("setns", linux.CLONE_NEWNET), ("setns", linux.CLONE_NEWNS)]
    with pytest.raises(Exception, match="cannot open network namespace"):
        namespaces.join([("network", str(tmp_path / "missing"))], h)


def test_lpath_matches_posixpath():
    """runtime.oci.lpath (used where `os` is too costly to import) agrees with posixpath."""
    import posixpath

    from runtime.oci import lpath

    paths = ["", "/", "//", "///", "a", "/a/b/", "a//b", "/a/./b/../c", "../a", "a/../..", "//a/b", "///a/..",
             "/a/b/..", "./", "a/b/c/../../..", "/..", "/sys/fs/cgroup/blkio/virtlab/c1", "x/"]
    for p in paths:
        assert lpath.normpath(p) == posixpath.normpath(p), p
        assert lpath.dirname(p) == posixpath.dirname(p), p
        if p:
            assert lpath.abspath(p) == posixpath.abspath(p), p
        for q in ("b", "/c", "", "d/"):
            assert lpath.join(p, q) == posixpath.join(p, q), (p, q)
    assert lpath.join("/r", "c", "state.json") == "/r/c/state.json"
    assert lpath.isdir("/") and not lpath.isfile("/") and lpath.exists("/")
    assert lpath.isfile(__file__) and not lpath.isdir(__file__)
    assert not lpath.exists("/nonexistent/virtlab") and not lpath.exists("a\0b")


def test_start_and_delete_paths_do_not_import_os():
    """`import os` costs ~0.8 ms per command, `__future__` ~0.1 ms: the start/delete/state modules need neither."""
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[3])
    code = (f"import sys; sys.path.insert(0, {repo!r})\n"
            "from runtime.oci import cli, commands, cgroups  # noqa\n"
            "print('os' in sys.modules, '__future__' in sys.modules, 'runtime.oci.hooks' in sys.modules)")
    out = subprocess.run([getattr(sys, "_base_executable", sys.executable), "-SI", "-c", code],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


def test_syscall_seam_without_the_ctypes_package():
    """linux.Linux on runtime.oci.cfuncs: real calls work, and the ctypes package stays unloaded."""
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[3])
    code = (f"import sys, os; sys.path.insert(0, {repo!r})\n"
            "from runtime.oci import linux\n"
            "h = linux.Linux()\n"
            "caps = {l.split()[0]: int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('Cap')}\n"
            "e, p, i = h.capget()\n"
            "assert (e, p, i) == (caps['CapEff:'], caps['CapPrm:'], caps['CapInh:']), (e, p, i, caps)\n"
            "assert h.child_subreaper() == 0\n"
            "assert h.prctl(linux.PR_SET_CHILD_SUBREAPER, 1) == 0 and h.child_subreaper() == 1\n"
            "fd = h.pidfd_open(os.getpid()); os.close(fd)\n"
            "try:\n"
            "    h.pidfd_open(-5)\n"
            "except linux.SyscallError as e:\n"
            "    assert e.errno == 22, e.errno\n"
            "else:\n"
            "    raise AssertionError('pidfd_open(-5) succeeded')\n"
            "print('ctypes' in sys.modules)")
    out = subprocess.run([getattr(sys, "_base_executable", sys.executable), "-SI", "-c", code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def test_set_mount_flags_maps_ms_flags_like_a_bind_remount():
    """linux.set_mount_flags: mount(2) MS_* flags as mount_setattr attributes, everything else cleared."""
    import struct

    from runtime.oci import linux

    h = linux.Linux()
    seen = []
    h._syscall = lambda name, *args: seen.append((name, args)) or 0  # type: ignore[method-assign]
    cases = {
        linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | linux.MS_RELATIME:
            linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC,
        linux.MS_NOATIME | linux.MS_NODIRATIME: linux.MOUNT_ATTR_NOATIME | linux.MOUNT_ATTR_NODIRATIME,
        linux.MS_NOATIME | linux.MS_STRICTATIME: linux.MOUNT_ATTR_STRICTATIME,  # strictatime wins, as in mount(2)
        0: linux.MOUNT_ATTR_RELATIME,
    }
    for flags, want in cases.items():
        seen.clear()
        h.set_mount_flags(7, flags)
        (name, args), = seen
        assert name == "mount_setattr" and args[0] == 7
        attr_set, attr_clr, propagation, userns = struct.unpack("QQQQ", args[3])
        assert (attr_set, propagation, userns) == (want, 0, 0), hex(flags)
        assert attr_clr & linux.MOUNT_ATTR__ATIME == linux.MOUNT_ATTR__ATIME and attr_clr & linux.MOUNT_ATTR_RDONLY

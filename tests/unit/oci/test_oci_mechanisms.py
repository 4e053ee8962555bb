"""Each mechanism's logic through the recording fake: mounts, devices, caps, rlimits, seccomp, sysctl, paths."""

import errno
import os
import resource

import pytest
from ocifakes import RecordingLinux

from runtime.oci import (
    capabilities,
    container,
    create,
    devices,
    linux,
    mounts,
    namespaces,
    paths,
    rlimits,
    rootfs,
    seccomp,
)
from runtime.oci.errors import SecurityError, SpecError, SyscallError


@pytest.fixture
def rootfs_dir(tmp_path):
    r = tmp_path / "rootfs"
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (r / d).mkdir(parents=True)
    return r


@pytest.fixture
def root_fd(rootfs_dir):
    fd = os.open(rootfs_dir, os.O_PATH | os.O_DIRECTORY)
    yield fd
    os.close(fd)


# -- mount options ------------------------------------------------------------

def test_parse_options_flags_propagation_data():
    flags, prop, data = mounts.parse_options(["nosuid", "noexec", "ro", "rshared", "mode=755", "size=64k", "rw"])
    assert flags == linux.MS_NOSUID | linux.MS_NOEXEC  # rw clears the earlier ro
    assert prop == [linux.MS_SHARED | linux.MS_REC]
    assert data == "mode=755,size=64k"


def test_mountspec_bind_detection():
    m = mounts.MountSpec({"destination": "/data", "source": "/srv", "options": ["rbind", "ro"]})
    assert m.is_bind and m.flags & linux.MS_REC and m.flags & linux.MS_RDONLY
    assert mounts.MountSpec({"destination": "x", "type": "bind", "source": "/srv"}).destination == "/x"
    with pytest.raises(SpecError, match="needs a source"):
        mounts.MountSpec({"destination": "/d", "type": "bind"})


def test_mount_entry_goes_through_an_fd_inside_the_rootfs(root_fd, rootfs_dir):
    h = RecordingLinux()
    m = mounts.MountSpec({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]})
    mounts.mount_entry(m, root_fd, str(rootfs_dir), h)
    assert h.of("mount") == [("mount", "proc", str(rootfs_dir / "proc"), "proc", linux.MS_NOSUID, None)]


def test_mount_destination_symlink_stays_inside(root_fd, rootfs_dir):
    # An image symlink pointing at the host's / resolves inside the rootfs (CVE-2021-30465 class).
    os.symlink("/", rootfs_dir / "escape")
    os.symlink("../../../../../../etc", rootfs_dir / "up")
    h = RecordingLinux()
    mounts.mount_entry(mounts.MountSpec({"destination": "/escape/data", "type": "tmpfs", "source": "tmpfs"}),
                       root_fd, str(rootfs_dir), h)
    mounts.mount_entry(mounts.MountSpec({"destination": "/up/x", "type": "tmpfs", "source": "tmpfs"}),
                       root_fd, str(rootfs_dir), h)
    targets = [c[2] for c in h.of("mount")]
    assert targets == [str(rootfs_dir / "data"), str(rootfs_dir / "etc" / "x")]
    assert (rootfs_dir / "data").is_dir() and not os.path.exists("/data-should-not-exist")


def test_bind_of_file_creates_file_and_remounts_readonly(root_fd, rootfs_dir, tmp_path):
    src = tmp_path / "hosts"
    src.write_text("127.0.0.1 x\n")
    h = RecordingLinux()
    m = mounts.MountSpec({"destination": "/etc/hosts", "type": "bind", "source": str(src), "options": ["ro"]})
    mounts.mount_entry(m, root_fd, str(rootfs_dir), h)
    assert (rootfs_dir / "etc" / "hosts").is_file()
    calls = h.of("mount")
    assert calls[0][1] == str(src) and calls[0][4] == linux.MS_BIND
    assert calls[1][4] & linux.MS_REMOUNT and calls[1][4] & linux.MS_RDONLY


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_proc_must_be_a_real_directory(tmp_path, kind):
    r = tmp_path / "r"
    r.mkdir()
    if kind == "symlink":
        os.symlink("/etc", r / "proc")
    else:
        (r / "proc").write_text("")
    fd = os.open(r, os.O_PATH)
    try:
        with pytest.raises(SecurityError, match="ordinary directory"):
            mounts.mount_entry(mounts.MountSpec({"destination": "/proc", "type": "proc", "source": "proc"}),
                               fd, str(r), RecordingLinux())
    finally:
        os.close(fd)


def test_dev_symlink_is_never_followed(tmp_path):
    # CVE-2026-41579: /dev as an image symlink must not be used.
    r = tmp_path / "r"
    (r / "hostlike").mkdir(parents=True)
    os.symlink("/hostlike", r / "dev")
    fd = os.open(r, os.O_PATH)
    try:
        with pytest.raises(SecurityError):
            mounts.mount_entry(mounts.MountSpec({"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}),
                               fd, str(r), RecordingLinux())
    finally:
        os.close(fd)
    assert os.listdir(r / "hostlike") == []


# -- in-root resolution -------------------------------------------------------

@pytest.mark.parametrize("use_openat2", [True, False])
def test_open_in_root_confines(rootfs_dir, root_fd, monkeypatch, use_openat2):
    if not use_openat2:
        monkeypatch.setattr(paths, "_OPENAT2_OK", False)
    (rootfs_dir / "etc" / "passwd").write_text("inside\n")
    os.symlink("/etc", rootfs_dir / "abs")
    os.symlink("../../../../../etc/passwd", rootfs_dir / "rel")
    for p in ("../../../etc/passwd", "/abs/passwd", "rel", "tmp/../../etc/passwd"):
        fd = paths.open_in_root(root_fd, p)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == str(rootfs_dir / "etc" / "passwd")
        finally:
            os.close(fd)


def test_open_in_root_symlink_loop(rootfs_dir, root_fd, monkeypatch):
    monkeypatch.setattr(paths, "_OPENAT2_OK", False)
    os.symlink("b", rootfs_dir / "a")
    os.symlink("a", rootfs_dir / "b")
    with pytest.raises(OSError) as e:
        paths.open_in_root(root_fd, "a")
    assert e.value.errno == errno.ELOOP


def test_mkdir_all_and_ensure_file(rootfs_dir, root_fd):
    os.symlink("/tmp", rootfs_dir / "t")
    fd = paths.mkdir_all(root_fd, "/t/a/b")
    os.close(fd)
    assert (rootfs_dir / "tmp" / "a" / "b").is_dir()
    fd = paths.ensure_file(root_fd, "/etc/x/resolv.conf")
    os.close(fd)
    assert (rootfs_dir / "etc" / "x" / "resolv.conf").is_file()
    (rootfs_dir / "etc" / "file").write_text("")
    with pytest.raises((SecurityError, NotADirectoryError)):
        paths.mkdir_all(root_fd, "/etc/file/sub")


@pytest.mark.parametrize("use_openat2", [True, False])
def test_mkdir_all_existing_and_partial_paths_stay_inside(rootfs_dir, root_fd, monkeypatch, use_openat2):
    """The fast paths (existing destination, start below the deepest existing ancestor) stay confined."""
    if not use_openat2:
        monkeypatch.setattr(paths, "_OPENAT2_OK", False)
    os.symlink("/etc", rootfs_dir / "abs")  # absolute: must resolve to the rootfs' /etc
    os.symlink("../../../../../tmp", rootfs_dir / "up")  # climbing: clamped at the rootfs
    for path, real in (("/etc", "etc"), ("/abs", "etc"), ("/abs/new/deeper", "etc/new/deeper"),
                       ("/up/x", "tmp/x"), ("/up/x/y/z", "tmp/x/y/z")):
        fd = paths.mkdir_all(root_fd, path)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == str(rootfs_dir / real)
        finally:
            os.close(fd)
    assert not os.path.exists("/etc/new/deeper")
    (rootfs_dir / "etc" / "plain").write_text("")
    with pytest.raises((SecurityError, NotADirectoryError)):
        paths.mkdir_all(root_fd, "/abs/plain")  # exists, but is not a directory
    with pytest.raises((SecurityError, NotADirectoryError)):
        paths.mkdir_all(root_fd, "/abs/plain/below")


# -- devices -----------------------------------------------------------------

def test_devices_defaults_and_overrides():
    cfg = {"linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                                 {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}]}}
    devs = {d.path: d for d in devices.parse(cfg)}
    assert {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/fuse"} <= set(devs)
    assert devs["/dev/null"].mode == 0o600


@pytest.mark.parametrize("dev, message", [
    ({"path": "/etc/shadow", "type": "c", "major": 1, "minor": 3}, "under /dev"),
    ({"path": "/dev/../etc/x", "type": "c", "major": 1, "minor": 3}, "under /dev"),
    ({"path": "/dev/x", "type": "z", "major": 1, "minor": 3}, "unknown type"),
    ({"path": "/dev/x", "type": "c"}, "major and minor"),
])
def test_devices_rejects(dev, message):
    with pytest.raises(SpecError, match=message):
        devices.parse({"linux": {"devices": [dev]}})


def test_device_cgroup_rules_completed_like_runc():
    res = devices.cgroup_resources({"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                                              "devices": [{"path": "/dev/fuse", "type": "c", "major": 10,
                                                           "minor": 229}]}})
    rules = res["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}  # the config's deny-all comes first
    assert {"allow": True, "type": "c", "access": "m"} in rules
    assert rules[-1]["major"] == 10 and rules[-1]["minor"] == 229


def test_check_null(tmp_path):
    f = tmp_path / "null"
    f.write_text("")
    fd = os.open(f, os.O_PATH)
    try:
        with pytest.raises(SecurityError, match="1:3"):
            devices.check_null(fd)
    finally:
        os.close(fd)
    fd = os.open("/dev/null", os.O_PATH)
    try:
        devices.check_null(fd)
    finally:
        os.close(fd)


def test_mask_paths_refuses_a_fake_dev_null(rootfs_dir, root_fd):
    # CVE-2025-31133: the /dev/null used for masking must be the real char 1:3.
    (rootfs_dir / "dev" / "null").write_text("not a device")
    (rootfs_dir / "proc" / "kcore").write_text("")
    h = RecordingLinux()
    with pytest.raises(SecurityError):
        rootfs.mask_paths(root_fd, ["/proc/kcore"], h)
    assert h.of("mount") == []


def test_mask_paths_directory_gets_readonly_tmpfs(rootfs_dir, root_fd):
    (rootfs_dir / "proc" / "acpi").mkdir()
    h = RecordingLinux()
    rootfs.mask_paths(root_fd, ["/proc/acpi", "/proc/missing"], h)
    assert h.of("mount") == [("mount", "tmpfs", str(rootfs_dir / "proc" / "acpi"), "tmpfs", linux.MS_RDONLY, None)]


# -- capabilities --------------------------------------------------------------

def test_caps_parse_and_names():
    sets = capabilities.parse({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]})
    assert sets["bounding"] == 1 << 5 | 1 << 0
    assert capabilities.names(sets["bounding"]) == ["CAP_CHOWN", "CAP_KILL"]
    with pytest.raises(SpecError, match="CAP_TEST"):
        capabilities.parse({"bounding": ["CAP_TEST"]})


def test_caps_drop_bounding_and_apply_record():
    h = RecordingLinux()
    sets = capabilities.parse({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                               "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    capabilities.drop_bounding(sets, h)
    dropped = [c[2] for c in h.of("prctl") if c[1] == linux.PR_CAPBSET_DROP]
    assert 5 not in dropped and 0 in dropped and 21 in dropped
    h.calls.clear()
    capabilities.apply(sets, h)
    assert h.calls[0] == ("capset", 1 << 5, 1 << 5, 1 << 5)
    assert ("prctl", linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, 5) in h.calls


def test_caps_clamp_to_what_the_runtime_has():
    sets = capabilities.parse({"bounding": ["CAP_KILL", "CAP_SYS_RESOURCE"]})
    out, dropped = capabilities.clamp(sets, ~(1 << 24) & ((1 << 41) - 1))
    assert out["bounding"] == 1 << 5
    assert capabilities.names(dropped) == ["CAP_SYS_RESOURCE"]


# -- rlimits -----------------------------------------------------------------

def test_rlimits_parse_and_apply():
    limits = rlimits.parse([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
                            {"type": "RLIMIT_CORE", "soft": 2 ** 64 - 1, "hard": 2 ** 64 - 1}])
    seen = []
    rlimits.apply(limits, setrlimit=lambda r, v: seen.append((r, v)))
    assert seen == [(resource.RLIMIT_NOFILE, (1024, 2048)),
                    (resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))]


@pytest.mark.parametrize("rl, message", [
    ({"type": "RLIMIT_TEST", "soft": 1, "hard": 1}, "unknown rlimit"),
    ({"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}, "integers"),
    ({"type": "RLIMIT_NOFILE", "soft": "1", "hard": 1}, "integers"),
])
def test_rlimits_rejects(rl, message):
    with pytest.raises(SpecError, match=message):
        rlimits.parse([rl])


def test_rlimit_above_hard_limit_is_eperm_like_runc():
    def setrlimit(r, v):
        raise ValueError("not allowed to raise maximum limit")

    with pytest.raises(SyscallError, match="RLIMIT_NOFILE.*Operation not permitted") as e:
        rlimits.apply(rlimits.parse([{"type": "RLIMIT_NOFILE", "soft": 30000, "hard": 30000}]), setrlimit)
    assert e.value.errno == errno.EPERM


# -- seccomp -----------------------------------------------------------------

def test_seccomp_plan():
    p = seccomp.plan({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                      "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                                   {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},  # same as default: skipped
                                   {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                    "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                                   {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]})
    assert p["default"] == seccomp.ACT_ERRNO | errno.EPERM
    assert p["arches"] == ["x86_64"]
    assert [r[0] for r in p["rules"]] == [["read", "write"], ["personality"], ["chmod"]]
    assert p["rules"][1][2] == [(0, 4, 8, 0)]
    assert p["rules"][2][1] == seccomp.ACT_ERRNO | 5


@pytest.mark.parametrize("bad", [{"defaultAction": "SCMP_ACT_NOPE"},
                                 {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                                     {"names": ["x"], "action": "SCMP_ACT_ERRNO",
                                      "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
                                 {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                                     {"names": ["x"], "action": "SCMP_ACT_ERRNO",
                                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]},
                                 {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}])
def test_seccomp_plan_rejects(bad):
    with pytest.raises(SpecError):
        seccomp.plan(bad)


def test_seccomp_filter_builds_in_libseccomp():
    f = seccomp.Filter(seccomp.plan({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}))
    f.release()  # built, not loaded: loading is for the integration tests


# -- sysctl (CVE-2022-0811) ------------------------------------------------------

def plan_with(*types):
    return namespaces.plan({"linux": {"namespaces": [{"type": t} for t in types]}})


@pytest.mark.parametrize("key, value, message", [
    ("kernel.shm_rmid_forced", "1+kernel.core_pattern=|/x", "contains"),
    ("kernel.core_pattern", "|/x", "not namespaced"),
    ("kernel.shm_rmid_forced=1", "1", "not a plain sysctl name"),
    ("../../core_pattern", "1", "not a plain sysctl name"),
    ("net.ipv4.ip_forward", "1\nkernel.x=1", "contains"),
    ("vm.overcommit_memory", "1", "not namespaced"),
])
def test_sysctl_rejects(key, value, message):
    with pytest.raises(SpecError, match=message):
        create._check_sysctls({"linux": {"sysctl": {key: value}}}, plan_with("ipc", "network", "uts", "mount"))


def test_sysctl_needs_its_namespace():
    with pytest.raises(SpecError, match="needs its own network namespace"):
        create._check_sysctls({"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}, plan_with("mount"))
    create._check_sysctls({"linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000",
                                                   "fs.mqueue.msg_max": "10"}}}, plan_with("network", "ipc"))


def test_signal_parsing():
    assert container.parse_signal("KILL") == 9
    assert container.parse_signal("SIGTERM") == 15
    assert container.parse_signal("10") == 10
    for bad in ("NOPE", "0", "99"):
        with pytest.raises(Exception, match="signal"):
            container.parse_signal(bad)

"""The init is born in its cgroup2 directory (clone3 CLONE_INTO_CGROUP), and a process forked that way is sound."""

from __future__ import annotations

import ctypes
import os

import psutil
import pytest

from runtime.oci import linux
from runtime.oci.cgroups import detect_mode
from runtime.oci.errors import SyscallError

pytestmark = pytest.mark.root

CG = "/sys/fs/cgroup"


def _cgroup2_root() -> str:
    mode = detect_mode()
    if mode == "v1":
        pytest.skip("no cgroup2 hierarchy on this host")
    return CG if mode == "v2" else f"{CG}/unified"


@pytest.fixture
def cg2_dir():
    """A fresh cgroup2 directory, removed afterwards."""
    path = os.path.join(_cgroup2_root(), f"virtlab-birth-{os.getpid()}")
    os.mkdir(path)
    yield path
    os.rmdir(path)


def _child_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_is_born_in_the_cgroup_and_is_a_sound_python_process(cg2_dir):
    fd = os.open(cg2_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pid = linux.host().fork_into_cgroup(fd)
        if pid == 0:
            code = 1
            try:
                with open("/proc/self/cgroup") as f:
                    v2 = [line for line in f.read().splitlines() if line.startswith("0::")]
                # glibc keeps the thread's tid in its thread control block (mutex owners use it):
                # fork() has the kernel store the child's tid there, and so must this clone.
                libc = ctypes.CDLL(None)
                slot = ctypes.c_void_p(0)
                libc.prctl(linux.PR_GET_TID_ADDRESS, ctypes.byref(slot), 0, 0, 0)
                cached_tid = ctypes.c_int.from_address(slot.value).value
                ran = []
                import threading  # the interpreter's fork hooks ran: threads work in the child

                t = threading.Thread(target=ran.append, args=(1,))
                t.start()
                t.join()
                if v2 == [f"0::/{os.path.basename(cg2_dir)}"] and cached_tid == os.getpid() and ran == [1]:
                    code = 0
            finally:
                os._exit(code)
    finally:
        os.close(fd)
    assert _child_status(pid) == 0
    with open(os.path.join(cg2_dir, "cgroup.procs")) as f:
        assert f.read() == ""  # the child has gone; nothing else was put there


def _children() -> set[int]:
    """This process's children (pytest may have its own: a registry, helpers)."""
    return {p.pid for p in psutil.Process().children()}


def test_a_descriptor_that_is_not_a_cgroup_is_refused_and_no_child_is_made(tmp_path):
    before = _children()
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with pytest.raises(SyscallError, match="clone3 into cgroup"):
            if linux.host().fork_into_cgroup(fd) == 0:
                os._exit(0)  # must not happen: the caller would see two returns
    finally:
        os.close(fd)
    assert _children() <= before


def test_a_container_init_is_in_its_cgroups_from_the_start(rt, bundle):
    """With cgroups and a PID namespace the init runs in every one of its cgroups, cgroup2 included."""
    b = bundle(["cat", "/proc/self/cgroup"], resources=True)
    out = rt("run", "--bundle", b, "born", check=True).stdout
    lines = dict(line.split(":", 2)[1:] for line in out.splitlines())
    assert lines.get("") == "/virtlab/born", out
    assert lines.get("memory") in (None, "/virtlab/born"), out  # hybrid: its v1 cgroups too


def test_an_exec_process_is_in_every_cgroup_of_its_container(rt, bundle):
    """exec joins the v1 cgroups itself and forks the process into the cgroup2 directory."""
    rt("run", "-d", "--bundle", bundle(["sleep", "30"], resources=True), "ex-born", check=True)
    init = rt("exec", "ex-born", "cat", "/proc/1/cgroup", check=True).stdout
    mine = rt("exec", "ex-born", "cat", "/proc/self/cgroup", check=True).stdout
    assert mine == init and "0::/virtlab/ex-born" in mine.splitlines(), (init, mine)
    rt("delete", "--force", "ex-born", check=True)


def test_without_a_pid_namespace_the_init_is_moved_into_its_cgroups(rt, bundle):
    """No PID namespace, so no fork to be born from: the runtime moves the init in (the fallback)."""
    def no_pid_ns(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    out = rt("run", "--bundle", bundle(["cat", "/proc/self/cgroup"], mutate=no_pid_ns, resources=True),
             "moved", check=True).stdout
    lines = dict(line.split(":", 2)[1:] for line in out.splitlines())
    assert lines.get("") == "/virtlab/moved", out
    assert lines.get("memory") in (None, "/virtlab/moved"), out

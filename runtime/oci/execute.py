"""exec: start another process inside a running container.

The runtime forks C, which becomes non-dumpable (CVE-2016-9962), joins the
container's v1 cgroups and namespaces (user first, mount last), and forks D so that
the PID namespace applies, straight into the container's cgroup2 directory (see
create._init_born_in_cgroup: no process is moved there). D finalizes the process like the init does and execs
through the sealed launcher, so /proc/<pid>/exe never exposes the host
interpreter to the container (CVE-2019-5736).
"""

from __future__ import annotations

import os

from runtime.oci import linux, namespaces, process, state
from runtime.oci.channel import Channel
from runtime.oci.container import _reap
from runtime.oci.create import (
    _become_subreaper,
    _child_error,
    _join_self,
    _unset_subreaper,
    _write_pid_file,
    fork_into,
    v1_dirs,
)
from runtime.oci.errors import ExecError, OCIError, SpecError, StateError, SyscallError

_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "pid", "mount")


def exec_process(root: str, container_id: str, proc_dict: dict, console_socket: str | None = None,
                 pid_file: str | None = None, stdio=None, preserve_fds: int = 0, console_fd: int | None = None) -> int:
    """Start PROC_DICT in the container; return its host pid (a child of the caller, who may wait for it)."""
    st = state.load(root, container_id)
    if st["status"] not in (state.CREATED, state.RUNNING):
        raise StateError(container_id, st["status"], "exec")
    if not isinstance(proc_dict, dict):
        raise SpecError("invalid process: expected a JSON object")
    spec_proc = dict(proc_dict)
    proc = process.Process(spec_proc)
    if proc.terminal and not console_socket and console_fd is None:
        raise OCIError("cannot allocate a tty without --console-socket (the runtime detaches)")
    config = st.get("config") or {}
    unset_subreaper = _become_subreaper()  # D becomes our child when C exits
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:
        parent.close()
        _exec_child(child, st, config, proc, console_socket, stdio, preserve_fds, console_fd)
    child.close()
    # C reports D's pid and D reports "ready": D may well speak first, so take them in any order.
    target = 0
    ready = False
    try:
        while not (target and ready):
            msg = parent.recv()
            if msg is None or "error" in msg:
                if not target:
                    how = _reap_status(pid)
                    raise _child_error(msg, f"exec in container {container_id} failed: the joining process {how}")
                how = _reap_status(target)
                raise _child_error(msg, f"exec in container {container_id} failed: the process {how} before exec")
            if "pid" in msg:
                target = msg["pid"]
                _reap(pid)
            elif "ready" in msg:
                ready = True
    finally:
        parent.close()
        if unset_subreaper:
            _unset_subreaper()
    if pid_file:
        _write_pid_file(pid_file, target)
    return target


def _reap_status(pid: int) -> str:
    """Reap PID and describe how it ended."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "was gone"
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _exec_child(ch: Channel, st: dict, config: dict, proc, console_socket, stdio, preserve_fds, console_fd):
    code = 1
    try:
        h = linux.host()
        h.prctl(linux.PR_SET_DUMPABLE, 0)
        if stdio:
            for i, fd in enumerate(stdio):
                if fd is not None and fd != i:
                    os.dup2(fd, i)
        cgroup2_fd = _join_cgroups(st) if st.get("cgroup_paths") else -1
        sock = None
        if proc.terminal and console_socket:
            from runtime.oci import console

            sock = console.connect(console_socket)
        launcher_fd = process.new_launcher_fd()
        from runtime.oci.create import _build_seccomp, preload

        seccomp_filter = _build_seccomp(config, proc, launcher_fd)  # libseccomp from the host, before setns
        preload(proc, None)
        fds = _open_namespaces(st)
        try:
            for t in _ORDER:
                if t in fds:
                    try:
                        h.setns(fds[t], namespaces.FLAGS[t])
                    except SyscallError as e:
                        raise SyscallError(f"cannot join the {t} namespace of container {st['id']}: "
                                           f"{os.strerror(e.errno)}", e.errno) from None
        finally:
            for fd in fds.values():
                os.close(fd)
        try:
            pid, _ = fork_into(h, cgroup2_fd, move_self=True)  # where clone3 cannot, C moves there first
        finally:
            if cgroup2_fd >= 0:
                os.close(cgroup2_fd)
        if pid:
            ch.send(pid=pid)
            os._exit(0)
        _exec_grandchild(ch, config, proc, sock, console_fd, preserve_fds, launcher_fd, h,
                         "user" in (st.get("types") or []), seccomp_filter)
    except ExecError as e:
        code = e.exit_code
        ch.send(error=str(e), code=code)
    except OCIError as e:
        ch.send(error=str(e), code=e.exit_code)
    except OSError as e:
        ch.send(error=f"exec: {e}", code=125)
    except BaseException as e:  # noqa: BLE001 - report everything, then die
        ch.send(error=f"exec: {type(e).__name__}: {e}", code=125)
    os._exit(code)


def _join_cgroups(st: dict) -> int:
    """C joins the container's v1 cgroups itself; returns an fd of its cgroup2 directory for D, or -1.

    With a user namespace C is moved into all of them the usual way (the kernel checks the
    permissions of whoever forks into a cgroup, and C will no longer be host root).
    """
    from runtime.oci.cgroups import load_manager

    mgr = load_manager(st["cgroup_paths"])  # checks the paths are cgroup directories of this host
    if "user" in (st.get("types") or []):
        mgr.add(os.getpid())
        return -1
    _join_self(v1_dirs(mgr))
    if "" not in mgr.paths:
        return -1
    return os.open(mgr.paths[""], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # before setns(mnt)


def _open_namespaces(st: dict) -> dict[str, int]:
    """Open the init's namespace files before joining any (paths change once mnt is joined)."""
    pid = st["pid"]
    fds = {}
    try:
        for t in st.get("types") or []:
            path = f"/proc/{pid}/ns/{namespaces.PROC_NAMES[t]}"
            if t == "user" and os.stat(path).st_ino == os.stat("/proc/self/ns/user").st_ino:
                continue  # setns into one's own user namespace is EINVAL
            fds[t] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        for fd in fds.values():
            os.close(fd)
        raise OCIError(f"cannot open the namespaces of container {st['id']} (init {pid}): {e.strerror}") from None
    if state.proc_start_time(pid) != st.get("start_time"):
        for fd in fds.values():
            os.close(fd)
        raise StateError(st["id"], state.STOPPED, "exec")
    return fds


def _exec_grandchild(ch: Channel, config: dict, proc, sock, console_fd, preserve_fds, launcher_fd, h, userns,
                     seccomp_filter):
    """D: inside every namespace; finalize and exec."""
    if proc.terminal:
        from runtime.oci.create import Options, _setup_terminal

        _setup_terminal(proc, config, sock, Options(console_fd=console_fd), h)
    if proc.oom_score_adj is not None:
        process.set_oom_score_adj(proc.oom_score_adj)
    process.chdir_checked(proc.cwd)
    if seccomp_filter is not None and not proc.no_new_privileges:
        seccomp_filter.load()
        seccomp_filter = None
    program, env = process.finalize(proc, h, userns, keep_fds=preserve_fds,
                                    warn=lambda m: ch.send(warning=m))
    process.reset_signals()
    ch.send(ready=1)
    ch.close()
    if seccomp_filter is not None:
        seccomp_filter.load()
    try:
        process.exec_program(program, proc.args, env, launcher_fd, h)
    except ExecError as e:
        os.write(2, f"virtlab-runtime: {e}\n".encode())
        os._exit(e.exit_code)

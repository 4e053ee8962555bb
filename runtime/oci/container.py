"""The life of an existing container: start, kill, delete, pause, resume, ps.

Kept free of the create-side modules (ctypes, mounts, namespaces) so that these
verbs start fast; create lives in create.py, exec in execute.py.
"""

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import posix  # not os: see runtime.oci.lpath
import time

from runtime.oci import lpath, state
from runtime.oci.errors import OCIError, StateError

FIFO = "exec.fifo"


def _reap(pid: int) -> None:
    try:
        posix.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _remove_dir(path: str) -> None:
    """Remove a container's state directory (flat: state.json, exec.fifo, temporaries)."""
    try:
        names = posix.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            posix.unlink(lpath.join(path, name))
        except IsADirectoryError:
            import shutil

            shutil.rmtree(lpath.join(path, name), ignore_errors=True)
        except FileNotFoundError:
            pass
    try:
        posix.rmdir(path)
    except FileNotFoundError:
        pass


def start(root: str, container_id: str) -> dict:
    """Release a created container's init; run the poststart hooks."""
    st = state.load(root, container_id)
    state.check(st, "start")
    config = st.get("config") or {}
    if not config.get("process"):
        _kill_and_wait(st)
        raise OCIError(f"cannot start container {container_id}: its config has no process")
    if has_hooks(config, "prestart"):
        # The OCI spec runs prestart hooks as part of start, in the runtime namespace.
        from runtime.oci import hooks

        try:
            hooks.run(config.get("hooks"), "prestart", state.hook_state(st))
        except OCIError:
            # The spec: stop the container and continue with delete (poststop hooks included).
            delete(root, container_id, force=True)
            raise
    fifo = lpath.join(st["dir"], FIFO)
    try:
        fd = posix.open(fifo, posix.O_WRONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
    except OSError as e:  # ENXIO: nobody is waiting, the init is gone
        raise StateError(container_id, state.STOPPED, "start") if e.errno == 6 else \
            OCIError(f"cannot start container {container_id}: {e.strerror}") from None
    try:
        posix.write(fd, b"0")
    finally:
        posix.close(fd)
    posix.unlink(fifo)
    st["status"] = state.RUNNING
    if has_hooks(config, "poststart"):
        from runtime.oci import hooks

        hooks.run(config.get("hooks"), "poststart", state.hook_state(st), warn=_warn)
    return st


def has_hooks(config: dict | None, *kinds: str) -> bool:
    """True when the config has a hook of any of KINDS (asked before importing the hooks module)."""
    hooks = (config or {}).get("hooks") or {}
    return any(hooks.get(k) for k in kinds)


def _warn(message: str) -> None:
    posix.write(2, f"virtlab-runtime: warning: {message}\n".encode())


SIGNALS = {name[3:]: int(getattr(signal, name)) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper()}


def parse_signal(value) -> int:
    """A signal number from 'KILL', 'SIGKILL' or '9'."""
    if isinstance(value, int):
        return value
    s = str(value).upper().removeprefix("SIG")
    if s.isdigit():
        num = int(s)
    elif s in SIGNALS:
        num = SIGNALS[s]
    else:
        raise OCIError(f"unknown signal {value!r}")
    if not 0 < num < 65:
        raise OCIError(f"invalid signal number {num}")
    return num


def kill(root: str, container_id: str, sig, all_processes: bool = False) -> None:
    """Send a signal to the container's init (or to every process in its cgroup with all_processes)."""
    num = parse_signal(sig)
    st = state.load(root, container_id)
    if all_processes and st.get("cgroup_paths"):
        from runtime.oci.cgroups import load_manager

        mgr = load_manager(st["cgroup_paths"])
        if st["status"] == state.PAUSED and num == signal.SIGKILL:
            mgr.kill_all(num)
            mgr.thaw()
            return
        for pid in mgr.pids():
            try:
                posix.kill(pid, num)
            except ProcessLookupError:
                pass
        return
    state.check(st, "kill")
    signal_init(st, num, "kill")


def signal_init(st: dict, num: int, operation: str) -> None:
    """Signal the container's init through a pidfd, after checking it is still our init (no pid reuse race)."""
    pid = st["pid"]
    try:
        pidfd = posix.pidfd_open(pid)
    except ProcessLookupError:
        raise StateError(st["id"], state.STOPPED, operation) from None
    except OSError:  # no pidfd (old kernel): a plain kill, checked just before
        pidfd = -1
    try:
        if state.proc_start_time(pid) != st.get("start_time"):
            raise StateError(st["id"], state.STOPPED, operation)
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, num)
        else:
            posix.kill(pid, num)
    except ProcessLookupError:
        raise StateError(st["id"], state.STOPPED, operation) from None
    finally:
        if pidfd >= 0:
            posix.close(pidfd)


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Remove a stopped container (force: kill it first); runs the poststop hooks."""
    try:
        st = state.load(root, container_id)
    except state.ContainerNotFound:
        if force:  # as runc: forcing the delete of a container that is already gone succeeds
            _remove_dir(state.container_dir(root, container_id))
            return
        raise
    if st["status"] == state.CREATING and not st.get("pid"):
        if not force:
            raise StateError(container_id, state.CREATING, "delete")
        _remove_dir(st["dir"])
        return
    if st["status"] != state.STOPPED:
        if not force:
            raise StateError(container_id, st["status"], "delete")
        _kill_and_wait(st)
    mgr = None
    if st.get("cgroup_paths"):
        from runtime.oci import cgroups

        # Usually the cgroup is empty by now: rmdir it without loading the managers.
        mgr = None if cgroups.remove_if_empty(st["cgroup_paths"]) else cgroups.load_manager(st["cgroup_paths"])
    if mgr is not None:
        if mgr.pids():
            mgr.kill_all(signal.SIGKILL)
            if st.get("paused"):
                mgr.thaw()
    config = st.get("config") or {}
    try:
        if has_hooks(config, "poststop"):
            from runtime.oci import hooks

            st["status"] = state.STOPPED
            hooks.run(config.get("hooks"), "poststop", state.hook_state(st), warn=_warn)
    finally:
        if mgr is not None:
            _destroy_cgroup(mgr)
        _remove_dir(st["dir"])


def _destroy_cgroup(mgr) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            mgr.destroy()
            return
        except OCIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _kill_and_wait(st: dict, timeout: float = 10.0) -> None:
    pid = st["pid"]
    if st.get("paused") and st.get("cgroup_paths"):
        from runtime.oci.cgroups import load_manager

        load_manager(st["cgroup_paths"]).thaw()
    try:
        signal_init(st, signal.SIGKILL, "delete")
    except StateError:
        return  # already gone
    deadline = time.monotonic() + timeout
    poller = None
    try:
        pidfd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:
        pidfd = -1
    try:
        while state.proc_start_time(pid) == st.get("start_time"):
            try:
                if posix.waitpid(pid, posix.WNOHANG)[0]:
                    return
            except ChildProcessError:
                pass
            if time.monotonic() > deadline:
                raise OCIError(f"container {st['id']}: init {pid} did not die after SIGKILL")
            if pidfd < 0:
                time.sleep(0.002)
                continue
            if poller is None:
                import select

                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
            # Readable once the process has exited; the timeout still re-checks an exiting PID-namespace
            # init, which stops counting (PF_EXITING) before it becomes a zombie.
            poller.poll(2)
    finally:
        if pidfd >= 0:
            posix.close(pidfd)


def pause(root: str, container_id: str) -> None:
    """Freeze every process of a running container."""
    st = state.load(root, container_id)
    state.check(st, "pause")
    mgr = _loaded_manager(st, "pause")
    mgr.freeze()
    st["paused"] = True
    state.save(st)


def resume(root: str, container_id: str) -> None:
    """Thaw a paused container."""
    st = state.load(root, container_id)
    state.check(st, "resume")
    mgr = _loaded_manager(st, "resume")
    mgr.thaw()
    st["paused"] = False
    state.save(st)


def _loaded_manager(st: dict, operation: str):
    if not st.get("cgroup_paths"):
        raise OCIError(f"cannot {operation} container {st['id']}: it has no cgroup (no linux.resources "
                       "or cgroupsPath in its config)")
    from runtime.oci.cgroups import load_manager

    return load_manager(st["cgroup_paths"])


def ps(root: str, container_id: str) -> list[int]:
    """Host pids of the container's processes (from its cgroup, else the init and its descendants)."""
    st = state.load(root, container_id)
    if st["status"] == state.STOPPED:
        return []
    if st.get("cgroup_paths"):
        from runtime.oci.cgroups import load_manager

        return sorted(load_manager(st["cgroup_paths"]).pids())
    return _descendants(st["pid"])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in posix.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return sorted(out)

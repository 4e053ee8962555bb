"""create: the runtime side (P) and the init side (A, then B) of a new container.

Process model (no re-exec of the interpreter): the runtime process P forks an
intermediate A, which enters or creates the namespaces and forks the init B
(PID 1 of a new PID namespace), reports B's pid and exits. For `run` and the
Python API P is a child subreaper, so B becomes P's child and P can wait for it.
P makes the cgroup2 directory first and A forks B straight into it (see
_init_born_in_cgroup); P creates and limits the rest while B mounts what it can;
B joins its v1 cgroups itself where it may (see _init_can_join_itself), builds the rest of the rootfs, pivots,
finalizes the process, reports "ready", then waits on ROOT/<id>/exec.fifo (opened
before pivot_root and before any user namespace) for `start` to write one byte,
runs the startContainer hooks and execs the program through the sealed launcher.
P writes state.json and exits; B lives on.
"""

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import os
import time

from runtime.oci import linux, namespaces, process, spec, state
from runtime.oci.channel import Channel
from runtime.oci.container import FIFO, _reap, _remove_dir, has_hooks
from runtime.oci.errors import ExecError, OCIError, SpecError, SyscallError

_INIT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class Options:
    """Options of create that are not in config.json."""

    def __init__(self, pid_file=None, console_socket=None, no_pivot=False, stdio=None, preserve_fds=0,
                 console_fd=None, log=None, subreaper=True):
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.stdio = stdio
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd  # run: a socket end the init sends the pty master over
        self.log = log or (lambda level, msg: None)
        # Become the init's child subreaper, to wait for it (run, the API). The CLI's create exits
        # right away: the init then goes to the caller's subreaper (conmon, containerd-shim), as
        # with runc.
        self.subreaper = subreaper
        self.rootfs_fd = -1  # set in the child, before any user namespace
        self.fifo_fd = -1
        self.tree_fd = -1
        self.config: dict | None = None  # already loaded from the bundle (run)
        self.birth = False  # A waits for the cgroup2 dir to fork the init into (see _fork_init)


def _needs_cgroups(config: dict) -> bool:
    linux_cfg = config.get("linux") or {}
    return bool(linux_cfg.get("resources") or linux_cfg.get("cgroupsPath"))


def create(root: str, container_id: str, bundle: str, opts: Options) -> dict:
    """Create a container; return its state (status created)."""
    bundle = os.path.realpath(bundle)
    config = opts.config if opts.config is not None else spec.load(bundle)
    proc = process.Process(config["process"]) if config.get("process") else None
    plan = namespaces.plan(config)
    rfs = spec.rootfs_path(config, bundle)
    if proc and proc.terminal and not opts.console_socket and opts.console_fd is None:
        raise OCIError("cannot allocate a tty without --console-socket (the runtime detaches)")
    if config.get("linux", {}).get("seccomp"):
        from runtime.oci import seccomp

        seccomp.plan(config["linux"]["seccomp"])  # validate now, in the caller
    _check_sysctls(config, plan)
    st = state.init_state(root, container_id, bundle, config.get("annotations"))
    st.update(rootfs=rfs, created=_now(), owner="", config=config, types=sorted(plan.types))
    mgr = None
    init_pid = 0
    unset_subreaper = False
    try:
        fifo = os.path.join(st["dir"], FIFO)
        os.mkfifo(fifo, 0o600)
        if plan.new_user:
            os.chown(fifo, _host_id(config, "uidMappings"), _host_id(config, "gidMappings"))
        # The child's modules and the syscall seam are loaded before the fork. In A they cost more:
        # after a fork each page either process writes is copied, and P's cgroup setup runs then
        # (create 0.6-0.8 ms faster this way, 80 interleaved rounds). The API (the engine, which
        # has threads) must anyway: a child's import could wait forever on a module lock another
        # thread held at the fork. Before any namespace change too: the mapped root of a user
        # namespace may not be able to read the runtime's files.
        from runtime.oci import rootfs  # noqa: F401 - used by _init
        if has_hooks(config, "createContainer", "startContainer"):
            from runtime.oci import hooks  # noqa: F401 - likewise
        linux.host()
        if opts.subreaper:
            unset_subreaper = _become_subreaper()
        opts.birth = _init_born_in_cgroup(config, plan)
        parent, child = Channel.pair()
        pid = os.fork()
        if pid == 0:  # A, then B
            parent.close()
            _child_main(child, config, plan, proc, rfs, st, opts)
        child.close()
        try:
            if _needs_cgroups(config):
                # While A sets up the namespaces: create and limit the cgroup (the import is not cheap).
                from runtime.oci.devices import cgroup_resources

                mgr = _cgroup_manager(config, st["id"])
                st["cgroup_paths"] = mgr.paths
                if opts.birth:
                    parent.send(cgroup2=mgr.birth_dir())
                mgr.apply(cgroup_resources(config))
            init_pid = _parent_create(parent, pid, config, plan, st, opts, mgr)
        finally:
            parent.close()
    except BaseException:
        _abort(st, st.get("pid") or 0, mgr)
        raise
    finally:
        if unset_subreaper:
            _unset_subreaper()
    st["status"] = state.CREATED  # state.json (saved while the init mounts) needs no update: see state.refresh
    if opts.pid_file:
        _write_pid_file(opts.pid_file, init_pid)
    return st


def _become_subreaper() -> bool:
    """Make this process a child subreaper, so the init (A's child) becomes its child when A exits.

    Returns True when it was not one before: the caller then unsets it with _unset_subreaper()
    once the init is its child. A library call must not leave it set: orphans of everything the
    caller starts later (a daemon and the processes that daemon double-forks) would then stay
    its unreaped zombies.
    """
    h = linux.host()
    was = h.child_subreaper()
    if not was:
        h.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    return not was


def _unset_subreaper() -> None:
    linux.host().prctl(linux.PR_SET_CHILD_SUBREAPER, 0)


def _parent_create(ch: Channel, a_pid: int, config: dict, plan, st: dict, opts: Options, mgr) -> int:
    """The runtime's side of create: id maps, cgroup membership, state, hooks; returns the init's pid."""
    msg = ch.recv()
    if msg and "userns" in msg:
        namespaces.write_id_maps(msg["userns"], config)
        ch.send(maps=1)
        msg = ch.recv()
    if not msg or "pid" not in msg:
        _reap(a_pid)
        raise _child_error(msg, "container init failed before it started")
    init_pid = msg["pid"]
    born = bool(msg.get("born"))  # already in its cgroup2 dir
    st["pid"] = init_pid
    self_join = mgr is not None and _init_can_join_itself(mgr, plan)
    # The init's createContainer hooks may ask for the state: it must be saved before they run.
    save_first = has_hooks(config, "createContainer")
    try:
        if mgr is not None and not self_join:
            mgr.add(init_pid, skip=(mgr.paths[""],) if born else ())
        if not save_first:
            # The init waits for nothing else: it mounts while we reap A (whose exit unmaps a whole
            # interpreter) and record its start time.
            _send_go(ch, mgr if self_join else None)
    finally:
        if init_pid != a_pid:
            _reap(a_pid)
    st["start_time"] = state.proc_start_time(init_pid)
    proc = config.get("process") or {}
    if proc.get("oomScoreAdj") is not None:
        process.set_oom_score_adj(proc["oomScoreAdj"], str(init_pid))
    # The only save: `load` derives the status from the init and exec.fifo once the pid is known.
    state.save(st)
    if save_first:
        _send_go(ch, mgr if self_join else None)
    join_error = None
    while True:
        msg = ch.recv()
        if msg is None or "error" in msg:
            raise _child_error(msg, "container init exited during create")
        if "joined" in msg:
            if "" in mgr.paths and not born:
                # Where the init could not be born there (no PID namespace, no clone3): the one
                # write that waits for an RCU grace period, done while the init mounts.
                join_error = _join_cgroup2(mgr.paths[""], init_pid)
        elif "warning" in msg:
            opts.log("warning", msg["warning"])
        elif "hooks" in msg:
            try:
                from runtime.oci import hooks

                hooks.run(config.get("hooks"), "createRuntime", state.hook_state(st))
            except OCIError as e:
                ch.send(abort=str(e))
                raise
            ch.send(hooks_done=1)
        elif "ready" in msg:
            if join_error is not None:
                raise join_error
            return init_pid


def _send_go(ch: Channel, joiner) -> None:
    """Let the init go on; with JOINER (a manager) it joins that manager's v1 cgroups itself."""
    if joiner is None:
        ch.send(go=1)
        return
    ch.send(go=1, join=v1_dirs(joiner), cgroup_dirs=sorted(set(joiner.paths.values())))


def v1_dirs(mgr) -> list[str]:
    """The manager's cgroup v1 directories (its paths but the cgroup2 one, keyed ""), sorted."""
    return sorted({d for key, d in mgr.paths.items() if key})


def _init_born_in_cgroup(config: dict, plan) -> bool:
    """True when A forks the init straight into its cgroup2 directory (Linux.fork_into_cgroup).

    That needs a PID namespace (A forks B) and no user namespace (the kernel checks the
    cgroup.procs permissions of whoever forks); elsewhere the init is moved in as before.
    """
    return _needs_cgroups(config) and "user" not in plan.types and _forks_init(plan)


def _forks_init(plan) -> bool:
    """A PID namespace applies to children only: A forks B for a new one or one joined by path."""
    return plan.new_pid or any(t == "pid" for t, _ in plan.join)


def _fork_init(ch: Channel, h, birth: bool) -> tuple[int, bool]:
    """A forks B: into the cgroup2 dir P created when there is one; (pid, born there)."""
    fd = -1
    if birth:
        msg = ch.recv()
        if not msg or "cgroup2" not in msg:
            os._exit(1)  # P failed before it could make the cgroup: it reports why
        if msg["cgroup2"]:
            try:
                fd = os.open(msg["cgroup2"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                fd = -1
    try:
        return fork_into(h, fd)  # not born there (no clone3): P moves the init in
    finally:
        if fd >= 0:
            os.close(fd)


def fork_into(h, cgroup2_fd: int, move_self=False) -> tuple[int, bool]:
    """os.fork(), with the child born in the cgroup2 directory CGROUP2_FD (-1: none); (pid, born there).

    The child is born there with clone3(CLONE_INTO_CGROUP) (Linux.fork_into_cgroup) and no process
    is moved. Where the kernel cannot (before 5.7), a plain fork: with MOVE_SELF the caller first
    moves itself there (the child follows), else the caller's parent moves the child later.
    Used by create (A forks the init) and exec (C forks the process).
    """
    if cgroup2_fd >= 0:
        try:
            return h.fork_into_cgroup(cgroup2_fd), True
        except SyscallError:
            if move_self:
                fd = os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=cgroup2_fd)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
    return os.fork(), False


def _init_can_join_itself(mgr, plan) -> bool:
    """True when the init may move itself into its v1 cgroups (see _join_self).

    Writing a pid to cgroup.procs takes the kernel's global cgroup_threadgroup_rwsem, whose
    first writer waits for an RCU grace period; a single-threaded process writing "0" to a
    v1 ``tasks`` file skips that lock (Linux 6.1+). Not with a user namespace (the init is no
    longer host root), nor with a cgroup namespace (its root must be the final cgroup), nor
    when device rules live in cgroup2 (eBPF fallback: the init must be there before mknod).
    """
    return (getattr(mgr, "mode", "") in ("v1", "hybrid") and "devices" in mgr.paths
            and "user" not in plan.types and "cgroup" not in plan.types)


def _join_cgroup2(directory: str, pid: int) -> OCIError | None:
    """Write PID to DIRECTORY/cgroup.procs; the error to raise once the init has reported, if any."""
    try:
        fd = os.open(os.path.join(directory, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
    except OSError as e:
        return OCIError(f"cannot add process {pid} to cgroup {directory}: {e.strerror}")
    return None


def _join_self(directories: list[str]) -> None:
    """The init moves itself (its only thread) into each v1 cgroup directory: "0" to ``tasks``."""
    for d in directories:
        try:
            fd = os.open(os.path.join(d, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as e:
            raise SyscallError(f"cannot join cgroup {d}: {e.strerror}", e.errno) from None


def _cgroup_manager(config: dict, container_id: str):
    try:
        from runtime.oci.cgroups import open_manager
    except ImportError as e:  # pragma: no cover - the package ships with the runtime
        raise OCIError(f"linux.resources requested but the cgroup managers are unavailable: {e}") from None
    return open_manager((config.get("linux") or {}).get("cgroupsPath"), container_id)


def _host_id(config: dict, key: str) -> int:
    """The host id that container id 0 maps to (0 when unmapped)."""
    for m in (config.get("linux") or {}).get(key) or []:
        if int(m.get("containerID", -1)) <= 0 < int(m.get("containerID", 0)) + int(m.get("size", 0)):
            return int(m["hostID"]) - int(m["containerID"])
    return 0


def _child_error(msg: dict | None, default: str) -> OCIError:
    if not msg or "error" not in msg:
        return OCIError(default)
    code = msg.get("code", 125)
    if code in (126, 127):
        return ExecError(msg["error"], code)
    return OCIError(msg["error"])


def _abort(st: dict, init_pid: int, mgr) -> None:
    """Undo a failed create: kill the init, remove the cgroup and the state directory."""
    if init_pid:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(init_pid)
    if mgr is not None:
        _destroy_after_failure(mgr)
    _remove_dir(st["dir"])


def _destroy_after_failure(mgr) -> None:
    """Remove a failed container's cgroup; kill and reap stragglers (a grandchild) so it can go."""
    for attempt in range(50):
        try:
            mgr.destroy()
            return
        except OCIError:
            if attempt == 49:
                return  # best effort: the create error is the one to report
        try:
            for pid in mgr.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except OCIError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.002 * (attempt + 1))


def _write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


_IPC_EXACT = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
              "kernel.shmmni", "kernel.shm_rmid_forced")
_SYSCTL_KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


def _check_sysctls(config: dict, plan) -> None:
    """Only namespaced keys, and no separators smuggled into keys or values (CVE-2022-0811)."""
    for key, value in ((config.get("linux") or {}).get("sysctl") or {}).items():
        if not isinstance(value, str):
            raise SpecError(f"invalid config: sysctl {key} value must be a string")
        if not key or set(key) - _SYSCTL_KEY_CHARS or ".." in key or key.startswith((".", "/")):
            raise SpecError(f"invalid config: sysctl key {key!r} is not a plain sysctl name")
        for bad in ("=", "+", ",", "\n", "\0"):
            if bad in value:
                raise SpecError(f"invalid config: sysctl {key} value {value!r} contains {bad!r}")
        key = key.replace("/", ".")
        ns = None
        if key in _IPC_EXACT or key.startswith("fs.mqueue."):
            ns = "ipc"
        elif key.startswith("net."):
            ns = "network"
        elif key in ("kernel.hostname", "kernel.domainname"):
            ns = "uts"
        if ns is None:
            raise SpecError(f"invalid config: sysctl {key} is not namespaced; refusing to change the host")
        if ns not in plan.types:
            raise SpecError(f"invalid config: sysctl {key} needs its own {ns} namespace")


def _apply_sysctls(config: dict) -> None:
    for key, value in ((config.get("linux") or {}).get("sysctl") or {}).items():
        path = "/proc/sys/" + key.replace(".", "/") if "/" not in key else "/proc/sys/" + key
        try:
            linux.host().write_file(path, value)
        except OSError as e:
            raise SyscallError(f"cannot set sysctl {key}={value}: {e.strerror}", e.errno) from None


def _child_main(ch: Channel, config: dict, plan, proc, rfs: str, st: dict, opts: Options) -> None:
    """A: enter/create the namespaces, fork B; B: the container init. Never returns."""
    code = 1
    try:
        if opts.stdio:
            for i, fd in enumerate(opts.stdio):
                if fd is not None and fd != i:
                    os.dup2(fd, i)
        h = linux.host()
        # Not dumpable until the exec (CVE-2016-9962): nothing that enters the container before then
        # may ptrace the init or open its /proc/PID/exe (the host interpreter) or its fds.
        h.prctl(linux.PR_SET_DUMPABLE, 0)
        # Opened as the host's root, before any user namespace: see rootfs.prepare.
        opts.rootfs_fd = os.open(rfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        opts.fifo_fd = os.open(os.path.join(st["dir"], FIFO), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        if "user" in plan.types and "mount" in plan.types:
            try:
                opts.tree_fd = h.clone_tree(opts.rootfs_fd)  # see rootfs.prepare
            except SyscallError:
                opts.tree_fd = -1  # kernels before 5.2: the path-based bind mount remains
        user_joins = [j for j in plan.join if j[0] == "user"]
        if user_joins:
            namespaces.join(user_joins, h)
        if plan.new_user:
            h.unshare(linux.CLONE_NEWUSER)
            ch.send(userns=os.getpid())
            if not ch.recv():
                os._exit(1)
            try:
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            except OSError as e:
                raise SyscallError(f"cannot become root in the new user namespace (is 0 mapped?): {e.strerror}",
                                   e.errno) from None
        namespaces.join([j for j in plan.join if j[0] != "user"], h)
        h.unshare(plan.unshare & ~(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP))
        if _forks_init(plan):
            pid, born = _fork_init(ch, h, opts.birth)
            if pid:
                ch.send(pid=pid, born=born)
                os._exit(0)
        else:
            ch.send(pid=os.getpid())
        _init(ch, config, plan, proc, rfs, st, opts)
    except ExecError as e:
        code = e.exit_code
        ch.send(error=str(e), code=code)
    except OCIError as e:
        ch.send(error=str(e), code=e.exit_code)
    except OSError as e:
        ch.send(error=f"container init: {e}", code=125)
    except BaseException as e:  # noqa: BLE001 - the init must report every failure, then die
        ch.send(error=f"container init: {type(e).__name__}: {e}", code=125)
    os._exit(code)


def _on_signal_before_start(signum, _frame):
    os._exit(128 + signum)


def _init(ch: Channel, config: dict, plan, proc, rfs: str, st: dict, opts: Options) -> None:
    """B: the container init, from 'go' to exec."""
    from runtime.oci import rootfs  # already loaded by create(), before the fork

    for sig in _INIT_SIGNALS:
        signal.signal(sig, _on_signal_before_start)
    # What does not depend on the cgroup is done while P places us in it.
    h = linux.host()
    fifo_fd = opts.fifo_fd
    sock = None
    if proc and proc.terminal and opts.console_socket:
        from runtime.oci import console

        sock = console.connect(opts.console_socket)
    launcher_fd = process.new_launcher_fd()
    userns = "user" in plan.types
    seccomp_filter = _build_seccomp(config, proc, launcher_fd)  # libseccomp is loaded from the host, now
    cfg_hooks = config.get("hooks")
    preload(proc, config)
    prepared = None
    if "mount" in plan.types and not plan.unshare & linux.CLONE_NEWCGROUP:
        # The mounts before the first cgroup mount do not need our cgroup: do them while P creates it.
        prepared = rootfs.prepare(config, rfs, h, userns=userns, rootfs_fd=opts.rootfs_fd, tree_fd=opts.tree_fd,
                                  stop_before_cgroup=True)
    msg = ch.recv()
    if not msg or "go" not in msg:
        os._exit(1)
    cgroup_dirs = None
    if msg.get("join"):
        _join_self(msg["join"])
        ch.send(joined=1)
        cgroup_dirs = msg.get("cgroup_dirs")  # not all joined yet: /proc/self/cgroup may lag
    if plan.unshare & linux.CLONE_NEWCGROUP:
        h.unshare(linux.CLONE_NEWCGROUP)  # after P put us in our cgroup: that becomes our cgroup root
    if prepared is not None:
        root_fd = rootfs.mount_all(prepared, config, h, userns, cgroup_dirs=cgroup_dirs)
    elif "mount" in plan.types:
        root_fd = rootfs.mount_all(rootfs.prepare(config, rfs, h, userns=userns, rootfs_fd=opts.rootfs_fd,
                                                  tree_fd=opts.tree_fd), config, h, userns,
                                   cgroup_dirs=cgroup_dirs)
    else:
        # No mount namespace: mounting would change the host's mounts; only chroot, as runc skips the rootfs.
        ch.send(warning="no mount namespace: config mounts are ignored and the rootfs is only chroot'ed")
        root_fd = os.dup(opts.rootfs_fd)
    os.close(opts.rootfs_fd)
    if has_hooks(config, "createRuntime"):
        ch.send(hooks=1)
        reply = ch.recv()
        if not reply or "hooks_done" not in reply:
            os._exit(1)
    if has_hooks(config, "createContainer"):
        from runtime.oci import hooks

        hooks.run(cfg_hooks, "createContainer", state.hook_state(st))
    if "mount" in plan.types:
        rootfs.pivot(root_fd, h, opts.no_pivot)
    else:
        os.fchdir(root_fd)
        os.chroot(".")
    os.close(root_fd)
    if "uts" in plan.types:
        if config.get("hostname"):
            h.sethostname(config["hostname"])
        if config.get("domainname"):
            h.setdomainname(config["domainname"])
    elif config.get("hostname"):
        raise SpecError("invalid config: hostname needs a new uts namespace")
    _apply_sysctls(config)
    if "mount" in plan.types:
        rootfs.finish(config, h)
    if proc is None:  # no process: created, but `start` will refuse
        ch.send(ready=1)
        ch.close()
        _wait_for_start(fifo_fd)
        os._exit(1)
    if proc.terminal:
        _setup_terminal(proc, config, sock, opts, h)
    # The cwd check needs getcwd(2), which a seccomp profile may deny: check before loading it.
    process.chdir_checked(proc.cwd)
    if seccomp_filter is not None and not proc.no_new_privileges:
        seccomp_filter.load()  # needs CAP_SYS_ADMIN without no_new_privs: before the caps drop
        seccomp_filter = None
    program, env = process.finalize(proc, h, userns, keep_fds=opts.preserve_fds,
                                    warn=lambda m: ch.send(warning=m))
    ch.send(ready=1)
    ch.close()
    _wait_for_start(fifo_fd)
    os.close(fifo_fd)
    if has_hooks(config, "startContainer"):
        from runtime.oci import hooks  # loaded by create(), before the fork

        hooks.run(cfg_hooks, "startContainer", state.hook_state(dict(st, status=state.CREATED)))
    process.reset_signals()
    if seccomp_filter is not None:
        seccomp_filter.load()  # as late as possible: only the exec follows
    try:
        process.exec_program(program, proc.args, env, launcher_fd, h)
    except ExecError as e:
        os.write(2, f"virtlab-runtime: {e}\n".encode())
        os._exit(e.exit_code)


def preload(proc, config: dict | None) -> None:
    """Import now what is needed after pivot_root or setns(mnt), where the host's modules are out of reach."""
    import select  # noqa: F401 - _wait_for_start

    if proc is not None and proc.terminal:
        import socket  # noqa: F401

        from runtime.oci import console  # noqa: F401
    if has_hooks(config, "startContainer"):
        import subprocess  # noqa: F401 - hooks.run_one


def _build_seccomp(config: dict, proc, launcher_fd):
    """The container's seccomp filter, built now; None without linux.seccomp."""
    sc = (config.get("linux") or {}).get("seccomp")
    if not sc:
        return None
    from runtime.oci import seccomp

    # The launcher is exec'd with execveat: allow exactly that call even under a strict profile.
    extra = [(["execveat"], [(0, seccomp.OPS["SCMP_CMP_EQ"], launcher_fd, 0)])] if launcher_fd is not None else None
    return seccomp.Filter(seccomp.plan(sc), extra)


def _wait_for_start(fifo_fd: int) -> None:
    """Block until `start` writes its byte to exec.fifo."""
    import select

    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    while True:
        poller.poll()
        if os.read(fifo_fd, 1):
            return
        os._exit(1)  # the writer left without a byte: not a real start


def _setup_terminal(proc, config, sock, opts: Options, h) -> None:
    from runtime.oci import console

    master, slave = console.open_pty()
    console.set_size(slave, (config.get("process") or {}).get("consoleSize"))
    console.mount_console(slave, h)
    if sock is not None:
        console.send_master(sock, master)
        sock.close()
    elif opts.console_fd is not None:
        import socket

        s = socket.socket(fileno=opts.console_fd)
        console.send_master(s, master)
        s.close()
    os.close(master)
    console.make_controlling(slave, h)
    os.close(slave)

"""The container process: user and groups, umask, environment, cwd, and the final exec.

finalize() runs in the container (after pivot_root, or after joining the
namespaces for exec) and leaves the process ready to exec: bounding set dropped,
uid/gid switched with the capabilities kept, the five capability sets applied,
no_new_privs set, cwd checked to be inside the root (CVE-2024-21626), and every
fd above 2 closed except the ones passed on purpose.
"""

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import errno
import os

from runtime.oci import capabilities, launcher, linux, rlimits
from runtime.oci.errors import ExecError, SecurityError, SpecError, SyscallError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PASSWD_LIMIT = 1 << 20


class Process:
    """A parsed process section, ready to be applied."""

    def __init__(self, proc: dict):
        self.args: list[str] = list(proc.get("args") or [])
        if not self.args:
            raise SpecError("invalid config: process.args must not be empty")
        self.env: list[str] = list(proc.get("env") or [])
        self.cwd: str = proc.get("cwd") or "/"
        user = proc.get("user") or {}
        self.uid: int = int(user.get("uid", 0))
        self.gid: int = int(user.get("gid", 0))
        self.additional_gids: list[int] = [int(g) for g in user.get("additionalGids") or []]
        umask = user.get("umask")
        self.umask: int | None = int(umask) if umask is not None else None
        self.caps = capabilities.parse(proc.get("capabilities")) if proc.get("capabilities") is not None else None
        self.rlimits = rlimits.parse(proc.get("rlimits"))
        self.no_new_privileges: bool = bool(proc.get("noNewPrivileges"))
        self.terminal: bool = bool(proc.get("terminal"))
        self.oom_score_adj = proc.get("oomScoreAdj")
        if self.oom_score_adj is not None and not (-1000 <= int(self.oom_score_adj) <= 1000):
            raise SpecError(f"invalid config: oomScoreAdj {self.oom_score_adj} is outside -1000..1000")
        self.apparmor = proc.get("apparmorProfile") or ""
        self.selinux = proc.get("selinuxLabel") or ""

    def env_value(self, name: str) -> str | None:
        """The value of NAME in the process env (last one wins)."""
        value = None
        for e in self.env:
            k, _, v = e.partition("=")
            if k == name:
                value = v
        return value


def set_oom_score_adj(value, pid: str = "self") -> None:
    """Write /proc/PID/oom_score_adj."""
    with open(f"/proc/{pid}/oom_score_adj", "w") as f:
        f.write(str(int(value)))


def home_of(uid: int) -> str:
    """HOME for UID from the container's /etc/passwd (read bounded, no NSS), else '/'."""
    try:
        with open("/etc/passwd", "rb") as f:
            data = f.read(_PASSWD_LIMIT)
    except OSError:
        return "/"
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[2] == str(uid):
            return parts[5] or "/"
    return "/"


def set_user(p: Process, host=None, userns: bool = False) -> None:
    """Switch groups, gid and uid, keeping the permitted capabilities for apply_caps."""
    h = host or linux.host()
    h.prctl(linux.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(p.additional_gids)
    except PermissionError:
        if not userns or p.additional_gids:  # setgroups is denied in some user namespaces
            raise
    os.setresgid(p.gid, p.gid, p.gid)
    os.setresuid(p.uid, p.uid, p.uid)
    h.prctl(linux.PR_SET_KEEPCAPS, 0)


def chdir_checked(cwd: str) -> None:
    """chdir to CWD and make sure the result is inside the container's root (CVE-2024-21626)."""
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        raise ExecError(f"chdir to cwd ({cwd!r}) set in config.json failed: no such file or directory",
                        127) from None
    except NotADirectoryError:
        raise ExecError(f"chdir to cwd ({cwd!r}) set in config.json failed: not a directory", 126) from None
    except PermissionError:
        raise ExecError(f"chdir to cwd ({cwd!r}) set in config.json failed: permission denied", 126) from None
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise SecurityError(f"current working directory {cwd!r} is outside of the container root")


def lookup(args0: str, path_env: str | None) -> str:
    """Resolve the program like exec.LookPath in the container; raise ExecError like runc's messages."""
    if "/" in args0:
        _check_exec(args0, args0)
        return args0
    for d in (path_env if path_env is not None else DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", args0)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if not (st.st_mode & 0o170000 == 0o100000) or not st.st_mode & 0o111:
            continue
        return cand
    raise ExecError(f'exec: "{args0}": executable file not found in $PATH', 127)


def _check_exec(path: str, name: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ExecError(f"exec: {name}: no such file or directory", 127) from None
    except OSError as e:
        raise ExecError(f"exec: {name}: {(e.strerror or str(e)).lower()}", 126) from None
    if st.st_mode & 0o170000 == 0o040000:
        raise ExecError(f"exec: {name}: is a directory", 126)
    if not _may_execute(st):
        raise ExecError(f"exec: {name}: permission denied", 126)


def _may_execute(st: os.stat_result) -> bool:
    """Execute permission from the mode bits, like Go's exec.LookPath (no faccessat2: seccomp may deny it)."""
    mode = st.st_mode
    if os.geteuid() == 0:
        return bool(mode & 0o111)
    if st.st_uid == os.geteuid():
        return bool(mode & 0o100)
    if st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return bool(mode & 0o010)
    return bool(mode & 0o001)


def _stderr_warning(message: str) -> None:
    os.write(2, f"virtlab-runtime: warning: {message}\n".encode())


def finalize(p: Process, host=None, userns: bool = False, keep_fds: int = 0, warn=None) -> tuple[str, list[str]]:
    """Everything between 'namespaces joined' and exec; return (program path, env)."""
    h = host or linux.host()
    if p.rlimits:
        rlimits.apply(p.rlimits)
    if p.caps is not None:
        # A capability the runtime does not hold itself (e.g. one missing from the host's bounding
        # set) cannot be granted; keep the rest, as crun does, instead of failing in capset.
        p.caps, dropped = capabilities.clamp(p.caps, capabilities.available(h))
        if dropped:
            (warn or _stderr_warning)("capabilities not available to the runtime were dropped: "
                                      + ", ".join(capabilities.names(dropped)))
        capabilities.drop_bounding(p.caps, h)
    set_user(p, h, userns)
    if p.caps is not None:
        capabilities.apply(p.caps, h)
    if p.umask is not None:
        os.umask(p.umask & 0o777)
    # The cwd was entered and checked by the caller, as root and before seccomp (chdir_checked).
    env = list(p.env)
    if p.env_value("HOME") is None:
        env.append(f"HOME={home_of(p.uid)}")
    if p.no_new_privileges:
        h.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    program = lookup(p.args[0], p.env_value("PATH"))
    close_fds(keep_fds, h)
    return program, env


def close_fds(keep: int, host=None) -> None:
    """Close every fd above 2 + KEEP (the passed ones) that is not close-on-exec."""
    h = host or linux.host()
    first = 3 + keep
    # close_range with CLOSE_RANGE_CLOEXEC would keep our own control fds usable until exec;
    # marking them by hand keeps the fallback simple.
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(first, 1024)]
    for name in names:
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
    del h


def reset_signals() -> None:
    """Restore default dispositions Python changed (SIGPIPE, SIGXFSZ, SIGINT) and unblock all."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def exec_program(program: str, args: list[str], env: list[str], launcher_fd: int | None, host=None) -> None:
    """Exec the container program through the sealed launcher (CVE-2019-5736); never returns normally."""
    h = host or linux.host()
    if launcher_fd is not None:
        try:
            h.execveat(launcher_fd, [launcher.MARKER + program] + args, env)
        except SyscallError as e:
            raise ExecError(f"exec {program} through the launcher: {os.strerror(e.errno)}", 126) from None
    try:
        os.execve(program, args, dict(e.partition("=")[::2] for e in env))
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        raise ExecError(f"exec: {program}: {(e.strerror or str(e)).lower()}", code) from None


def new_launcher_fd() -> int | None:
    """A sealed launcher memfd (see launcher.py)."""
    return launcher.sealed_fd()

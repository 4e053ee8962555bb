"""Starting a container: the bundle (rootfs, /etc files, config.json) and the monitor.

launch() double-forks a launcher process that makes itself a child subreaper, has the OCI
runtime create the container with pipes (or a pty) as its stdio, then execs vl-monitor in
place of itself. The container's init is thus the monitor's child: the monitor gets its exit
status from waitpid, and it owns the read ends of the container's stdout and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from runtime.engine import inroot, linux, overlay, users
from runtime.engine import spec as specmod
from runtime.engine.errors import CannotInvoke, CommandNotFound, EngineError, InvalidArgument, RuntimeFailure
from runtime.engine.monitor import build
from runtime.engine.records import write_atomic

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

_ERRORS = {125: EngineError, 126: CannotInvoke, 127: CommandNotFound}


def prepare_bundle(engine: Any, rec: dict[str, Any]) -> None:
    """Mount the rootfs, write /etc/hosts, hostname, resolv.conf and config.json into the container dir."""
    from runtime.engine import network

    cid = rec["Id"]
    cdir = engine.store.path(cid)
    merged = cdir / "merged"
    if not overlay.is_mounted(merged):
        img = engine.images.resolve(rec["Image"])
        lowers = [Path(p) for p in engine.images.snapshot_dirs(img)]
        overlay.mount(lowers, cdir / "upper", cdir / "work", merged, volatile=bool(rec.get("AutoRemove")))
    uid, gid, groups, home = users.resolve(str(merged), rec["User"] or None)
    env = list(rec["Env"])
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    if rec["Spec"].get("tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    workdir = rec["WorkingDir"]
    _ensure_workdir(str(merged), workdir)
    netns = network.setup(engine, rec)
    etc = _etc_files(engine, rec, cdir)
    mounts = []
    managed_hosts = (rec.get("NetworkSettings") or {}).get("HostsPath")
    for name, dest in (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"), ("resolv.conf", "/etc/resolv.conf")):
        if name in etc:
            src = managed_hosts if name == "hosts" and managed_hosts else str(cdir / name)
            mounts.append({"destination": dest, "type": "bind", "source": src,
                           "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]})
    for m in rec.get("Mounts") or []:
        opts = ["rbind", "rprivate"] + ([] if m.get("RW", True) else ["ro"])
        mounts.append({"destination": m["Destination"], "type": "bind", "source": m["Source"], "options": opts})
    args = [rec["Path"], *rec["Args"]]
    if rec["Spec"].get("init"):
        init_bin = build.binary("init", engine.root)
        mounts.append({"destination": "/dev/init", "type": "bind", "source": init_bin,
                       "options": ["bind", "ro", "nosuid", "nodev"]})
        args = ["/dev/init", *args]
    config = specmod.oci_config(
        args=args, env=env, cwd=workdir, uid=uid, gid=gid, groups=groups,
        hostname=rec["Hostname"], tty=bool(rec["Spec"].get("tty")), norm=rec["Norm"],
        read_only=bool(rec["Spec"].get("read_only")), cgroups_path=rec["CgroupsPath"],
        netns=netns, mounts=mounts,
    )
    write_atomic(cdir / "config.json", json.dumps(config))
    policy = rec["Norm"]["restart"]
    write_atomic(cdir / "restart-policy", f"{policy['Name']} {policy['MaximumRetryCount']}\n")


def _ensure_workdir(rootfs: str, workdir: str) -> None:
    """Create the working directory inside the root (docker does), never following links out of it."""
    if workdir in ("", "/"):
        return
    root = inroot.open_root(rootfs)
    try:
        fd = inroot.mkdir_all(root, workdir)
        os.close(fd)
    except OSError as exc:
        raise InvalidArgument(f"cannot use working directory {workdir}: {exc.strerror}") from None
    finally:
        os.close(root)


def _etc_files(engine: Any, rec: dict[str, Any], cdir: Path) -> set[str]:
    """Write hosts, hostname and resolv.conf for the container; returns which ones to mount."""
    from runtime.engine import network

    net = rec["Norm"]["network"]
    if net == "host":
        hosts = _read_host("/etc/hosts") or "127.0.0.1\tlocalhost\n"
        hostname = os.uname().nodename + "\n"
    else:
        hostname = rec["Hostname"] + "\n"
        hosts = network.hosts(engine, rec)
    write_atomic(cdir / "hosts", hosts, 0o644)
    write_atomic(cdir / "hostname", hostname, 0o644)
    write_atomic(cdir / "resolv.conf", _resolv_conf(net) if net in ("none", "host") else network.resolv_conf(engine, rec),
                 0o644)
    return {"hosts", "hostname", "resolv.conf"}


def _read_host(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def _resolv_conf(net: str) -> str:
    """The host's resolv.conf for `host`; for `none`, without loopback nameservers.

    In a `none` netns every nameserver fails at once (no route, or nothing listens on the
    container's own lo), so no lookup stalls; networks write theirs (network.resolv_conf).
    """
    text = _read_host("/etc/resolv.conf")
    if net == "host":
        return text
    lines = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1 and (parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _hook_argv(engine: Any, cid: str, fds: str) -> list[str]:
    return [sys.executable, "-m", "runtime.engine.hook", str(engine.root), cid, fds]


def launch(engine: Any, rec: dict[str, Any], rt: Any) -> tuple[int, dict[str, float]]:
    """Create the container under a new monitor; returns (init pid, phase timestamps)."""
    cid = rec["Id"]
    cdir = engine.store.path(cid)
    spec = rec["Spec"]
    monitor = build.binary("monitor", engine.root)
    tty = bool(spec.get("tty"))
    interactive = bool(spec.get("stdin_open"))
    # the stdio is kept for restarts even under policy "no": `update --restart` may change it later
    keep = not rec.get("AutoRemove")
    sync_r, sync_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: fork again so the monitor is not our child (no zombie in long-lived callers)
        try:
            os.close(sync_r)
            os.close(go_w)
            launcher_pid = os.fork()
            if launcher_pid == 0:
                os.close(go_r)
                # The container's init is forked from the launcher and waits for `start` with every fd
                # it inherited: it must not keep the CLI's container lock (flock) if the CLI dies there.
                for fd in list(engine.store.held):
                    with contextlib.suppress(OSError):
                        os.close(fd)
                _launcher(rt, cid, cdir, monitor, sync_w, tty, interactive, keep, bool(rec.get("AutoRemove")),
                          _hook_argv(engine, cid, ""))
            os.write(sync_w, f"launcher {launcher_pid}\n".encode())
            # Stay its parent (so its pid cannot be reaped and reused) until the caller holds a pidfd of it.
            os.read(go_r, 1)
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(sync_w)
    os.close(go_r)
    try:
        data, dead = _await_monitor(sync_r, go_w)
    finally:
        os.close(sync_r)
        os.waitpid(pid, 0)
    lines = data.decode(errors="replace").splitlines()
    created = [ln for ln in lines if ln.startswith("created ")]
    if not created or "ok" not in lines:
        err = next((ln for ln in lines if ln.startswith("error ")), None)
        if err:
            _, code, msg = err.split(" ", 2)
            raise _ERRORS.get(int(code), RuntimeFailure)(msg.replace("\\n", "\n"))
        if dead:
            raise RuntimeFailure(f"the monitor of container {rec['Name']} died before it was ready")
        raise RuntimeFailure(f"the monitor of container {rec['Name']} did not start: {data[-300:]!r}")
    _, cpid, t0, t1 = created[0].split()
    return int(cpid), {"runtime_create_begin": float(t0), "runtime_create_end": float(t1)}


def _await_monitor(sync_r: int, go_w: int) -> tuple[bytes, bool]:
    """Read the launcher's and monitor's reports until "ok"; returns (what was read, whether it died).

    EOF alone cannot tell that the monitor died: the container's init, forked by the launcher, holds
    the pipe's write end while it waits for `start`, which only we would send. So we also watch a
    pidfd of the launcher process (the monitor is exec'd in its place): when it ends before "ok",
    what it wrote is drained and the start fails instead of waiting forever. Closes `go_w`.
    """
    import select

    data = b""
    pidfd = -1
    poller = select.poll()
    poller.register(sync_r, select.POLLIN)
    try:
        while True:
            events = dict(poller.poll())
            if sync_r in events:
                chunk = os.read(sync_r, 4096)
                if not chunk:
                    return data, pidfd >= 0 and _ended(pidfd)
                data += chunk
                if go_w >= 0:
                    data, launcher_pid = _take_launcher_line(data)
                    if launcher_pid:
                        with contextlib.suppress(OSError):  # no pidfds: only EOF then, as before
                            pidfd = os.pidfd_open(launcher_pid)
                            poller.register(pidfd, select.POLLIN)
                        os.close(go_w)  # the first child may exit now
                        go_w = -1
                if data.endswith(b"ok\n"):
                    return data, False
            elif pidfd in events:  # it ended; what it wrote before is still in the pipe
                os.set_blocking(sync_r, False)
                with contextlib.suppress(BlockingIOError):
                    while chunk := os.read(sync_r, 4096):
                        data += chunk
                return data, not data.endswith(b"ok\n")
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        if go_w >= 0:
            os.close(go_w)


def _take_launcher_line(data: bytes) -> tuple[bytes, int]:
    """Split the first child's "launcher PID" line out of `data` (it may come after the launcher's own)."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        if line.startswith(b"launcher "):
            del lines[i]
            return b"\n".join(lines), int(line.split()[1])
    return data, 0


def _ended(pidfd: int) -> bool:
    import select

    return bool(select.select([pidfd], [], [], 0)[0])


def _launcher(rt: Any, cid: str, cdir: Path, monitor: str, sync_w: int, tty: bool, interactive: bool,
              keep: bool, autoremove: bool, hook: list[str]) -> None:
    """The grandchild: subreaper, runtime create, then exec the monitor. Never returns."""
    try:
        os.setsid()
        # The monitor must not hold the CLI's stdio open (a caller reading our output would never see EOF).
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            if fd != sync_w:
                os.dup2(null, fd)
        os.close(null)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        os.chdir(cdir)
        pid_file = cdir / "init.pid"
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        margs: list[str] = [monitor, str(cdir), "0"]
        inherit: list[int] = [sync_w]
        t0 = time.time()
        if tty:
            master = _create_with_console(rt, cid, cdir, pid_file)
            margs += ["--out", str(master), "--tty"]
            inherit.append(master)
            if interactive:
                in_w = os.dup(master)
                margs += ["--in", str(in_w)]
                inherit.append(in_w)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if interactive:
                in_r, in_w = os.pipe()
            else:
                in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
            rt.create(cid, cdir, pid_file, (in_r, out_w, err_w))
            margs += ["--out", str(out_r), "--err", str(err_r)]
            inherit += [out_r, err_r]
            if in_w >= 0:
                margs += ["--in", str(in_w)]
                inherit.append(in_w)
            if keep:  # the restart hook creates the next init with the same stdio
                for fd in (in_r, out_w, err_w):
                    margs += ["--keep", str(fd)]
                    inherit.append(fd)
                hook = hook[:-1] + [f"{in_r},{out_w},{err_w}"]
            else:
                for fd in (in_r, out_w, err_w):
                    os.close(fd)
        t1 = time.time()
        cpid = int(pid_file.read_text().strip())
        margs[2] = str(cpid)
        margs += ["--sync", str(sync_w)]
        if autoremove:
            margs.append("--autoremove")
        margs += ["--", *hook]
        for fd in inherit:
            os.set_inheritable(fd, True)
        _close_others({0, 1, 2, *inherit})  # the caller's fds must not live on in the monitor
        os.write(sync_w, f"created {cpid} {t0:.6f} {t1:.6f}\n".encode())
        os.execv(monitor, margs)
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent, then die
        code = getattr(exc, "exit_code", 125)
        msg = str(exc).replace("\n", "\\n") or type(exc).__name__
        with contextlib.suppress(OSError):
            os.write(sync_w, f"error {code} {msg}\n".encode())
    os._exit(1)


def _close_others(keep: set[int]) -> None:
    """Close every fd but `keep` (inherited ones too: pytest's, a shell's, a caller's pipes)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _create_with_console(rt: Any, cid: str, cdir: Path, pid_file: Path) -> int:
    """runtime create with --console-socket; returns the pty master the runtime sends back."""
    # a short path: the store path may be longer than sun_path allows
    import socket

    path = f"/run/vl-console-{cid[:16]}-{os.getpid()}.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        srv.bind(path)
        os.chmod(path, 0o600)
        srv.listen(1)
        srv.settimeout(30)
        devnull = os.open(os.devnull, os.O_RDWR)
        proc = rt.create_async(cid, cdir, pid_file, (devnull, devnull, devnull), console_socket=path)
        os.close(devnull)
        master = -1
        try:
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
                master = fds[0]
        except OSError:
            pass
        proc.wait()
        if proc.returncode != 0:
            raise rt.create_error(cid, cdir)
        if master < 0:
            raise RuntimeFailure(f"the runtime sent no terminal for container {cid[:12]}")
        return master
    finally:
        srv.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

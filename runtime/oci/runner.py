"""Foreground `run` and `exec`: wait for the process, forward signals, proxy a terminal.

The runtime is the child subreaper of the container process, so it can waitpid()
it; signals it receives are forwarded, and the exit status is passed through
(128+N for a signal, as shells and docker do).
"""

from __future__ import annotations

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import os

from runtime.oci import container
from runtime.oci.create import Options, create

_FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
            signal.SIGWINCH)


def exit_code(status: int) -> int:
    """A shell-style exit code from a wait status."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_foreground(root: str, cid: str, bundle: str, opts: Options, keep: bool = False) -> int:
    """create + start + wait + delete; returns the container's exit code."""
    master_rx = None
    from runtime.oci import spec

    opts.config = spec.load(os.path.realpath(bundle))  # read once: create uses it too
    if not opts.console_socket and (opts.config.get("process") or {}).get("terminal"):
        import socket

        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        opts.console_fd = b.detach()
        master_rx = a
    pid_box = [0]
    handlers = _forward_signals(pid_box)
    try:
        try:
            st = create(root, cid, bundle, opts)
        finally:
            if opts.console_fd is not None:
                os.close(opts.console_fd)
        pid_box[0] = st["pid"]
        try:
            container.start(root, cid)
            if master_rx is not None:
                from runtime.oci import console

                master = console.recv_master(master_rx)
                master_rx.close()
                status = _proxy_and_wait(master, st["pid"])
            else:
                status = _wait(st["pid"])
        finally:
            if not keep:
                container.delete(root, cid, force=True)
    finally:
        _restore(handlers)
    return exit_code(status)


def exec_foreground(root: str, cid: str, proc: dict, console_socket, pid_file, preserve_fds: int) -> int:
    """exec without --detach: wait for the process; its exit code is ours."""
    from runtime.oci import execute

    master_rx = console_fd = None
    if proc.get("terminal") and not console_socket:
        import socket

        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        console_fd = b.detach()
        master_rx = a
    pid_box = [0]
    handlers = _forward_signals(pid_box)
    try:
        try:
            pid = execute.exec_process(root, cid, proc, console_socket=console_socket, pid_file=pid_file,
                                       preserve_fds=preserve_fds, console_fd=console_fd)
        finally:
            if console_fd is not None:
                os.close(console_fd)
        pid_box[0] = pid
        if master_rx is not None:
            from runtime.oci import console

            master = console.recv_master(master_rx)
            master_rx.close()
            return exit_code(_proxy_and_wait(master, pid))
        return exit_code(_wait(pid))
    finally:
        _restore(handlers)


def _forward_signals(pid_box: list[int]) -> dict:
    def forward(signum, _frame):
        if pid_box[0]:
            try:
                os.kill(pid_box[0], signum)
            except ProcessLookupError:
                pass

    return {sig: signal.signal(sig, forward) for sig in _FORWARD}


def _restore(handlers: dict) -> None:
    for sig, old in handlers.items():
        signal.signal(sig, old)


def _wait(pid: int) -> int:
    while True:
        try:
            wpid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255 << 8
        if wpid == pid:
            return status


def _proxy_and_wait(master: int, pid: int) -> int:
    """Copy stdin to the pty master and the master to stdout until the process exits."""
    import select
    import termios
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        fds = [master, 0]
        status = None
        while True:
            if status is None:
                wpid, st = os.waitpid(pid, os.WNOHANG)
                if wpid == pid:
                    status = st
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed
                    data = b""
                if not data:
                    break
                os.write(1, data)
            elif status is not None:
                break
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
        if status is None:
            status = _wait(pid)
        return status
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)

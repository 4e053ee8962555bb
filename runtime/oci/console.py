"""process.terminal: a pty made in the container's devpts, its master sent over the console socket.

The master travels as SCM_RIGHTS over a unix socket (--console-socket, as runc);
the slave becomes the process's controlling terminal and stdio, and is
bind-mounted on /dev/console.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

from runtime.oci import linux, paths
from runtime.oci.errors import OCIError

TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def connect(path: str):
    """Connect to the console socket at PATH (before pivot_root: it is a host path)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise OCIError(f"cannot connect to console socket {path}: {e.strerror}") from None
    return sock


def open_pty() -> tuple[int, int]:
    """Open a pty pair from /dev/ptmx of the current root; return (master, slave)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        try:
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
            slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def set_size(fd: int, size: dict | None) -> None:
    """Apply process.consoleSize {height, width}."""
    if size:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(size.get("height", 0)),
                                                         int(size.get("width", 0)), 0, 0))


def send_master(sock, master: int) -> None:
    """Send the pty master over the console socket (SCM_RIGHTS), as runc does."""
    import socket

    socket.send_fds(sock, [b"/dev/ptmx"], [master])


def recv_master(sock) -> int:
    """Receive a pty master from a console socket connection."""
    import socket

    _msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OCIError("console socket: no file descriptor received")
    return fds[0]


def make_controlling(slave: int, host=None) -> None:
    """setsid, make SLAVE the controlling terminal, and put it on 0, 1 and 2."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)


def mount_console(slave: int, host=None) -> None:
    """Bind-mount the pty slave onto /dev/console (created if missing)."""
    h = host or linux.host()
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = paths.ensure_file(root_fd, "/dev/console", host=h)
        except OSError:
            return  # no writable /dev: runc also skips the console mount then
        try:
            h.mount(paths.fd_path(slave), paths.fd_path(fd), None, linux.MS_BIND, None)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)

"""The client side of a monitor's attach socket: several clients see the same output.

Frames from the monitor: [type, 0, 0, 0, len32be] + payload; type 1 stdout, 2 stderr,
3 exit code (ASCII), 4 hello. The first byte a client sends is its mode (see monitor.c);
everything after it is the container's stdin.
"""

from __future__ import annotations

import _socket  # the C module: `socket` builds its enums at import (~1.5 ms of every `run`)
import contextlib
import os
import select
import struct
import sys
from pathlib import Path

from runtime.engine.errors import EngineError

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import BinaryIO

STDOUT, STDERR, EXIT, HELLO = 1, 2, 3, 4
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


class StreamLost(EngineError):
    """The attach socket closed without an exit frame: the monitor is gone."""


def connect(cdir: Path, mode: str, timeout: float = 5.0) -> _socket.socket:
    """Connect to the container's attach socket and register `mode`; returns after the hello frame."""
    dfd = os.open(cdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        # via the dir fd: the store path may be longer than sun_path allows
        sock.connect(f"/proc/self/fd/{dfd}/attach.sock")
    except OSError as exc:
        sock.close()
        raise EngineError(f"cannot attach to {cdir.name[:12]}: the container is not running ({exc.strerror})") from None
    finally:
        os.close(dfd)
    sock.settimeout(timeout)
    try:
        sock.sendall(mode.encode())
        hdr = _recv_exact(sock, 8)
    except OSError:
        hdr = None
    if not hdr or hdr[0] != HELLO:
        sock.close()
        raise EngineError(f"cannot attach to {cdir.name[:12]}: the monitor did not answer")
    sock.settimeout(None)
    return sock


def _recv_exact(sock: _socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def parse_detach_keys(spec: str | None) -> bytes:
    """docker's --detach-keys: 'ctrl-p,ctrl-q', 'ctrl-a,x' -> bytes."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = b""
    for key in spec.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6 and key[5].isalpha():
            out += bytes([ord(key[5].lower()) - ord("a") + 1])
        elif key.startswith("ctrl-") and key[5:] in ("@", "[", "\\", "]", "^", "_"):
            out += bytes([0x40 ^ ord(key[5:]) & 0x1F or 0])
        elif len(key) == 1:
            out += key.encode()
        else:
            raise EngineError(f"invalid --detach-keys {spec!r}")
    return out


def stream(sock: _socket.socket, stdin: int | None = None, stdout: BinaryIO | None = None,
           stderr: BinaryIO | None = None, detach_keys: bytes = DEFAULT_DETACH_KEYS, raw_tty: bool = False) -> int | None:
    """Copy frames to stdout/stderr and stdin to the socket; returns the exit code, or None if detached.

    Raises StreamLost when the socket ends without an exit frame (the monitor died).
    """
    out = stdout or sys.stdout.buffer
    err = stderr or sys.stderr.buffer
    old_term = None
    tty_fd = stdin
    if raw_tty and stdin is not None and os.isatty(stdin):
        import termios
        import tty as ttymod

        old_term = termios.tcgetattr(stdin)
        ttymod.setraw(stdin)
    buf = b""
    matched = 0
    try:
        fds = [sock.fileno()] + ([stdin] if stdin is not None else [])
        while True:
            ready, _, _ = select.select(fds, [], [])
            if stdin is not None and stdin in ready:
                data = os.read(stdin, 4096)
                if not data:
                    with contextlib.suppress(OSError):
                        sock.shutdown(_socket.SHUT_WR)
                    fds.remove(stdin)
                    stdin = None
                else:
                    if detach_keys and raw_tty:
                        for b in data:
                            matched = matched + 1 if b == detach_keys[matched] else (1 if b == detach_keys[0] else 0)
                            if matched == len(detach_keys):
                                return None
                    sock.sendall(data)
            if sock.fileno() in ready:
                chunk = sock.recv(65536)
                if not chunk:
                    code = _parse_frames(buf, out, err)
                    if code is None:
                        raise StreamLost("the attach stream ended without an exit code: the monitor is gone")
                    return code
                buf += chunk
                code = None
                buf, code = _drain(buf, out, err)
                if code is not None:
                    return code
    finally:
        if old_term is not None and tty_fd is not None:
            import termios

            termios.tcsetattr(tty_fd, termios.TCSADRAIN, old_term)


def _drain(buf: bytes, out: BinaryIO, err: BinaryIO) -> tuple[bytes, int | None]:
    while len(buf) >= 8:
        kind = buf[0]
        (n,) = struct.unpack(">I", buf[4:8])
        if len(buf) < 8 + n:
            break
        payload, buf = buf[8 : 8 + n], buf[8 + n :]
        if kind == EXIT:
            out.flush()
            err.flush()
            return buf, int(payload or b"255")
        target = err if kind == STDERR else out
        if kind in (STDOUT, STDERR):
            target.write(payload)
            target.flush()
    return buf, None


def _parse_frames(buf: bytes, out: BinaryIO, err: BinaryIO) -> int | None:
    _, code = _drain(buf, out, err)
    return code

"""The host side of the guest agent: a line protocol over a virtio-serial port.

Request:  `EXEC <id> <nargs> <timeout>` then one base64 line per argument.
Reply:    `OUT <id>`, base64 of stdout, `ERR <id>`, base64 of stderr, `END <id> <exit code>`.
Also `PING <id>` -> `PONG <id>`, and `STOP <id> <grace>` -> `STOPPING <id>` (the guest
stops its entrypoint, then powers off). The guest may send empty lines (its idle agent
waits in a write that the kernel unblocks when a host connects); they are skipped. The
guest side is vmdriver/guest/lib.sh.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from vmdriver.errors import AgentError


@dataclass(frozen=True)
class ExecResult:
    """What a command run by the guest agent returned."""

    exit_code: int
    stdout: bytes
    stderr: bytes


class AgentClient:
    """One connection to a guest's agent socket (QEMU listens on it)."""

    def __init__(self, path: Path, timeout: float = 60) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.deadline = time.monotonic() + timeout
        try:
            self.sock.settimeout(max(0.1, timeout))
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise AgentError(f"cannot connect to the guest agent at {path}: {exc.strerror or exc}") from exc
        self.buf = b""

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> bytes:
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise AgentError(f"the guest agent at {self.path} did not answer in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError as exc:
                raise AgentError(f"the guest agent at {self.path} did not answer in time") from exc
            if not chunk:
                raise AgentError(f"the guest agent at {self.path} closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def _expect(self, verb: str, rid: str) -> list[str]:
        """Skip lines until `<verb> <rid> ...` (stale replies of an earlier client are dropped)."""
        while True:
            parts = self._line().decode(errors="replace").split()
            if len(parts) >= 2 and parts[0] == verb and parts[1] == rid:
                return parts

    def ping(self, retry_for: float = 5.0) -> None:
        """Check that the agent answers; retry a little, the agent may not be up yet."""
        end = min(self.deadline, time.monotonic() + retry_for)
        while True:
            rid = os.urandom(4).hex()
            self.sock.sendall(f"PING {rid}\n".encode())
            saved = self.deadline
            self.deadline = min(saved, time.monotonic() + 0.5)
            try:
                self._expect("PONG", rid)
                return
            except AgentError:
                if time.monotonic() > end:
                    raise
            finally:
                self.deadline = saved

    def exec(self, argv: list[str], timeout: float) -> ExecResult:
        """Run argv in the guest (in the image's root) and return its exit code and output."""
        if not argv:
            raise AgentError("exec needs a command")
        rid = os.urandom(4).hex()
        req = [f"EXEC {rid} {len(argv)} {max(0, int(timeout))}"]
        req += [base64.b64encode(a.encode()).decode() for a in argv]
        self.sock.sendall(("\n".join(req) + "\n").encode())
        self._expect("OUT", rid)
        out = base64.b64decode(self._line())
        self._expect("ERR", rid)
        err = base64.b64decode(self._line())
        end = self._expect("END", rid)
        try:
            code = int(end[2])
        except (IndexError, ValueError) as exc:
            raise AgentError(f"the guest agent sent a bad END line: {' '.join(end)!r}") from exc
        return ExecResult(code, out, err)

    def stop(self, grace: int) -> None:
        """Ask the guest to stop its entrypoint (TERM, then KILL after `grace` s) and power off."""
        rid = os.urandom(4).hex()
        self.sock.sendall(f"STOP {rid} {int(grace)}\n".encode())
        self._expect("STOPPING", rid)

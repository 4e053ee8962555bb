"""A pair of pipes carrying one JSON object per line between the runtime and the container init."""

import os

from runtime.oci import ljson as json


class Channel:
    """One direction to read, one to write; EOF means the other side died."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    @classmethod
    def pair(cls) -> "tuple[Channel, Channel]":
        """Two connected channels: (parent side, child side)."""
        a_r, b_w = os.pipe()
        b_r, a_w = os.pipe()
        return cls(a_r, a_w), cls(b_r, b_w)

    def send(self, **msg) -> None:
        """Send one message; a dead peer is not an error here (the reader finds out)."""
        try:
            os.write(self.wfd, json.dumps(msg).encode() + b"\n")
        except BrokenPipeError:
            pass

    def recv(self) -> dict | None:
        """The next message, or None at EOF."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        """Close both fds (idempotent)."""
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = -1

"""Readiness and exit, seen from the host: markers the guest init writes on its serial console.

The host polls the console log (a file QEMU appends to) and timestamps the first
marker line past a given offset with `time.time()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

READY = b"VIRTLAB_READY"
EXIT = b"VIRTLAB_EXIT"
POLL = 0.005


def read_from(log: Path, offset: int) -> bytes:
    """What the console log holds past `offset` (nothing while QEMU has not created it yet)."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


def wait_marker(
    log: Path,
    marker: bytes,
    timeout: float,
    offset: int = 0,
    alive: Callable[[], bool] | None = None,
) -> tuple[float, str] | None:
    """Wait for a line starting with `marker` in `log` after byte `offset`.

    Returns (host time when it was seen, the line), or None on timeout or when
    `alive()` says the VM is gone (checked a few times a second).
    """
    deadline = time.monotonic() + timeout
    buf = b""
    pos = offset
    next_alive = 0.0
    while True:
        chunk = read_from(log, pos)
        if chunk:
            now = time.time()
            pos += len(chunk)
            buf += chunk
            idx = buf.find(marker)
            if idx >= 0:
                end = buf.find(b"\n", idx)
                while end < 0:
                    # The rest of the line follows within microseconds; read it, keep `now`.
                    time.sleep(POLL)
                    more = read_from(log, pos)
                    pos += len(more)
                    buf += more
                    end = buf.find(b"\n", idx)
                    if time.monotonic() > deadline:
                        end = len(buf)
                return now, buf[idx:end].decode(errors="replace").strip()
            buf = buf[-len(marker):]
        t = time.monotonic()
        if t > deadline:
            return None
        if alive is not None and t > next_alive:
            next_alive = t + 0.25
            if not alive():
                # One more read: the marker may have been written just before the exit.
                alive = None
                deadline = t
                continue
        time.sleep(POLL)


def parse_exit(text: str) -> int | None:
    """The code in the last `VIRTLAB_EXIT <rc>` line of console text, if any."""
    code = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("VIRTLAB_EXIT"):
            parts = line.split()
            if len(parts) > 1 and parts[1].lstrip("-").isdigit():
                code = int(parts[1])
    return code


def output_between_markers(text: str) -> str:
    """The workload's own console output: after the ready line, before the exit line."""
    out: list[str] = []
    started = False
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("VIRTLAB_READY"):
            started = True
            out.clear()
            continue
        if s.startswith("VIRTLAB_EXIT"):
            started = False
            continue
        if started:
            out.append(line.replace("\r\n", "\n"))
    return "".join(out)

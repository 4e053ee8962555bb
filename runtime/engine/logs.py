"""The container log the monitor writes: CRI lines "<RFC3339Nano> <stream> <F|P> <text>"."""

from __future__ import annotations

import calendar
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

LOG = "container.log"


@dataclass
class Entry:
    """One log line: the host time the monitor read it, the stream, the text, and whether it was cut."""

    ts: float
    stream: str
    text: str
    partial: bool = False


def parse_ts(s: str) -> float:
    """'2026-11-28T06:10:00.123456789Z' -> epoch seconds (float)."""
    base = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = s[20:-1] if len(s) > 20 else ""
    return base + (int(frac) / 10 ** len(frac) if frac else 0.0)


def parse_line(line: str) -> Entry | None:
    """A log line -> Entry (None for a malformed line)."""
    parts = line.split(" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = parse_ts(parts[0])
    except ValueError:
        return None
    return Entry(ts, parts[1], parts[3] if len(parts) > 3 else "", parts[2] == "P")


def read(cdir: Path, follow: bool = False, since: float | None = None, until: float | None = None,
         tail: int | None = None, alive: Callable[[], bool] | None = None) -> Iterator[Entry]:
    """Entries of the log, oldest first; with `follow`, keep reading while `alive()` is true."""
    path = cdir / LOG
    try:
        f = open(path, encoding="utf-8", errors="replace", newline="\n")
    except FileNotFoundError:
        if not follow:
            return
        f = None
    buf: deque[Entry] | None = deque(maxlen=tail) if tail is not None and tail >= 0 else None
    pending = ""

    def keep(e: Entry) -> bool:
        return (since is None or e.ts >= since) and (until is None or e.ts <= until)

    if f is not None:
        for raw in f:
            if not raw.endswith("\n"):
                pending = raw
                break
            e = parse_line(raw[:-1])
            if e and keep(e):
                if buf is not None:
                    buf.append(e)
                else:
                    yield e
        if buf is not None:
            yield from buf
    if not follow:
        if f:
            f.close()
        return
    yield from _tail(path, f, pending, alive, keep, until=until)


def follow_lines(cdir: Path, alive: Callable[[], bool], deadline: float) -> Iterator[Entry]:
    """Every entry, then new ones as they come, until the monitor ends or the monotonic deadline."""
    yield from _tail(cdir / LOG, None, "", alive, lambda e: True, deadline=deadline, delay=0.001)


def _tail(path: Path, f, pending: str, alive: Callable[[], bool] | None, keep: Callable[[Entry], bool],
          until: float | None = None, deadline: float | None = None, delay: float = 0.01) -> Iterator[Entry]:
    """Follow the log from where `f` is (opening `path` once it exists), until the monitor ends
    (`alive()` false: what it wrote last is read too), an entry after `until`, or the deadline."""
    try:
        while deadline is None or time.monotonic() < deadline:
            if f is None:
                try:
                    f = open(path, encoding="utf-8", errors="replace", newline="\n")
                except FileNotFoundError:
                    if alive and not alive():
                        return
                    time.sleep(delay)
                    continue
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    e = parse_line(pending[:-1])
                    pending = ""
                    if e and until is not None and e.ts > until:
                        return  # `logs -f --until`: nothing later will be shown
                    if e and keep(e):
                        yield e
                continue
            if until is not None and time.time() > until:
                return  # entries carry the host time they were read at: none can come before `until` now
            if alive and not alive():
                rest = f.read()  # anything written between the last read and the exit
                for raw in (pending + rest).splitlines():
                    e = parse_line(raw)
                    if e and keep(e):
                        yield e
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.01)
    finally:
        if f is not None:
            f.close()

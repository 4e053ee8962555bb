"""top: the host's `ps` output, filtered to the container's processes (as docker top does)."""

from __future__ import annotations

import subprocess
from typing import Any

from runtime.engine.errors import EngineError, InvalidArgument


def top(engine: Any, ref: str, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """(titles, rows) of `ps ps_args` (default -ef) for the container's pids."""
    pids = set(engine.pids(ref))
    args = ps_args or ["-ef"]
    for a in args:
        if len(a) > 200 or "\0" in a:
            raise InvalidArgument("invalid ps options")
    r = subprocess.run(["ps", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise EngineError(f"ps {' '.join(args)} failed: {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise EngineError(f"couldn't find PID field in ps output: {lines[0]}")
    pid_col = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            rows.append(fields)
    return titles, rows

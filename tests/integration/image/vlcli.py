"""Run the real `virtlab` command against a store root (exit codes and output as a user sees them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VIRTLAB = Path(sys.executable).with_name("virtlab")


def vl(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`virtlab --root ROOT ARGS...`; with `check`, fail the test on a non-zero exit, showing stderr."""
    r = subprocess.run([str(VIRTLAB), "--root", str(root), *args], input=input, capture_output=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"virtlab {' '.join(args)} exited {r.returncode}:\n{r.stdout.decode()}\n"
                             f"{r.stderr.decode()}")
    return r


def out(r: subprocess.CompletedProcess) -> str:
    """stdout as text."""
    return r.stdout.decode()

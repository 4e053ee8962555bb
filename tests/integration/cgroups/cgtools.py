"""Helpers for the cgroup integration tests: gated children and a manager factory that cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid


class Child:
    """A process that waits on stdin until it is in its cgroup, then execs ``argv``."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(
            ["sh", "-c", 'read _; exec "$@"', "sh", *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.pid = self.proc.pid

    def go(self) -> None:
        self.proc.stdin.write(b"\n")
        self.proc.stdin.close()
        self.proc.stdin = None  # communicate() would flush it

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout)

    def output(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.stdin:
            self.proc.stdin.close()
            self.proc.stdin = None
        self.proc.communicate(timeout=10)


def proc_cgroup(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    return out


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def unique_id(prefix: str = "vltest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


PY = sys.executable
MEMHOG = (
    "import time\n"
    "chunks = []\n"
    "for i in range(400):\n"
    "    b = bytearray(1 << 20)\n"
    "    b[::4096] = b'x' * 256\n"
    "    chunks.append(b)\n"
    "print('survived', flush=True)\n"
)


def check_freeze_stops_a_busy_child(cg, mgr, while_frozen=None) -> None:
    """A busy child of ``mgr`` gets no CPU time while the cgroup is frozen, and runs again after thaw."""
    child = cg.child(mgr, ["sh", "-c", "while :; do :; done"])
    child.go()
    assert wait_for(lambda: cpu_ticks(child.pid) > 0)
    mgr.freeze()
    assert mgr.state() == "frozen"
    if while_frozen is not None:
        while_frozen()
    before = cpu_ticks(child.pid)
    time.sleep(0.3)
    assert cpu_ticks(child.pid) == before
    mgr.thaw()
    assert mgr.state() == "thawed"
    assert wait_for(lambda: cpu_ticks(child.pid) > before, timeout=5)

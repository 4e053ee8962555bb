"""`make demo`: check the host, build the default images, run the quick suite, print the table and the report's path.

Each step is the `virtlab` command a user would type, run as a subprocess, so the demo
shows nothing the CLI cannot. A step whose command is not built yet is reported as
missing, plainly; the demo never prints a number it did not measure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The console script next to the interpreter: the same `virtlab` the user runs.
VIRTLAB = [str(Path(sys.executable).parent / "virtlab")]


def step(title: str) -> None:
    """Print a step heading."""
    print(f"\n==> {title}", flush=True)


def virtlab(*args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run one virtlab command, streaming its output unless `capture`."""
    return subprocess.run([*VIRTLAB, *args], cwd=REPO, text=True, capture_output=capture)


def available(command: str) -> bool:
    """Whether `virtlab COMMAND` is built (the root command says so for missing packages)."""
    r = virtlab(command, "--help", capture=True)
    return r.returncode == 0


def main() -> int:
    """Run the demo; the exit code is non-zero only when a built step fails."""
    missing: list[str] = []
    step("virtlab doctor")
    if virtlab("doctor").returncode != 0:
        print("demo: the host is not ready for the quick suite (see the lines marked fail)", file=sys.stderr)
        return 1

    step("building the default image: busybox (offline, from busybox-static)")
    if available("image"):
        if virtlab("image", "build", "busybox").returncode != 0:
            return 1
    else:
        missing.append("image store (virtlab image build)")
        print("missing: the image store is not built yet")

    run_dir = None
    step("running the quick suite: native, container and VM, every row of the table")
    if available("bench"):
        out = REPO / "results"
        r = subprocess.run([*VIRTLAB, "bench", "run", "--suite", "quick", "--out", str(out)], cwd=REPO,
                           text=True, stdout=subprocess.PIPE)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            print(f"demo: the quick suite failed (exit {r.returncode})", file=sys.stderr)
            return r.returncode
        lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
        run_dir = lines[-1] if lines and os.path.isdir(lines[-1]) else None
    else:
        missing.append("harness (virtlab bench run)")
        print("missing: the harness is not built yet, so nothing was measured")

    step("the comparison report")
    if run_dir and available("report"):
        if virtlab("report", run_dir).returncode != 0:
            return 1
        print(f"\nreport: {Path(run_dir) / 'report.html'}")
    elif run_dir:
        missing.append("reports (virtlab report)")
        print(f"missing: the report generator is not built yet; raw results are in {run_dir}")
    else:
        print("no results, so no report")

    if missing:
        print("\nnot built yet: " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""virtlab-runtime against runc: create+start+delete and run of a busybox /bin/true bundle.

A/B interleaved in one run (the order flips every round), medians and their ratio, plus
the peak RSS of the runtime process (wait4), the median of each command of the lifecycle, and
each program's floor: `runc --version` against the launcher's interpreter running nothing
(`python3.11 -SI -c pass`, and "floor-exit": the same ended with os._exit, as every command
ends), which every virtlab-runtime command pays. Targets: ratio <= 1.0 and peak RSS < 30 MiB.
Run it with `pytest -m bench -s tests/bench/test_runtime_bench.py` or as a script:
`.venv/bin/python tests/bench/test_runtime_bench.py [ROUNDS]` (prints a table and a JSON line).
The same comparison with hyperfine (not interleaved per round, but easy to repeat):

    hyperfine -N --warmup 5 'runc --root R1 run -b BUNDLE a' 'virtlab-runtime --root R2 run -b BUNDLE b'
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.root]

VENV_BIN = Path(sys.executable).parent
RUNC = shutil.which("runc") or "/usr/sbin/runc"


def make_bundle(where: Path) -> Path:
    """A busybox bundle with virtlab-runtime's default spec (= runc's template), /bin/true, no tty."""
    from runtime.oci.spec import default_spec

    rootfs = where / "bundle" / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
    subprocess.run(["chroot", str(rootfs), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (rootfs / d).mkdir(exist_ok=True)
    cfg = default_spec()
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    (where / "bundle" / "config.json").write_text(json.dumps(cfg))
    return where / "bundle"


def timed(argv: list[str], quiet: bool = False) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys, reaped descendants included) of one command."""
    actions = []
    if quiet:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        actions = [(os.POSIX_SPAWN_DUP2, null, 1)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if quiet:
        os.close(null)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited with {os.waitstatus_to_exitcode(status)}")
    return dt, usage.ru_utime + usage.ru_stime


STEPS: dict[tuple[str, str], list[float]] = {}  # (runtime, command) -> wall seconds, for the per-command table


def lifecycle(runtime: str, root: str, bundle: Path, cid: str) -> tuple[float, float]:
    """create + start + delete --force, as three runtime invocations."""
    total, cpu = 0.0, 0.0
    for argv in ([runtime, "--root", root, "create", "--bundle", str(bundle), cid],
                 [runtime, "--root", root, "start", cid],
                 [runtime, "--root", root, "delete", "--force", cid]):
        dt, c = timed(argv)
        STEPS.setdefault((runtime, argv[3]), []).append(dt)
        total += dt
        cpu += c
    return total, cpu


def floor(runtime: str, root: str, bundle: Path, cid: str) -> tuple[float, float]:
    """The cost of starting the program at all: `runc --version`, or the interpreter with nothing to do.

    For virtlab-runtime that is `python3.11 -SI -c pass` (the launcher's interpreter and flags),
    which every virtlab-runtime command pays before its first line of Python.
    """
    if os.path.basename(runtime) == "runc":
        return timed([runtime, "--version"], quiet=True)
    with open(runtime) as f:
        shebang = f.readline()[2:].split()
    return timed(shebang + ["-c", "pass"])


def floor_exit(runtime: str, root: str, bundle: Path, cid: str) -> tuple[float, float]:
    """The floor as the runtime pays it: the interpreter, then os._exit (cli.run() skips the teardown).

    `python3.11 -SI -c pass` also finalizes the interpreter (~0.9 ms here), which no command does.
    """
    if os.path.basename(runtime) == "runc":
        return timed([runtime, "--version"], quiet=True)
    with open(runtime) as f:
        shebang = f.readline()[2:].split()
    return timed(shebang + ["-c", "import posix; posix._exit(0)"])


def run_once(runtime: str, root: str, bundle: Path, cid: str) -> tuple[float, float]:
    """One `run` (create, start, wait, delete)."""
    return timed([runtime, "--root", root, "run", "--bundle", str(bundle), cid])


def peak_rss_mib(runtime: str, root: str, bundle: Path, cid: str) -> float:
    """Peak RSS of `run` measured by GNU time (a small parent, so its own pages do not count)."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", runtime, "--root", root, "run", "--bundle", str(bundle), cid],
                         capture_output=True, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def compare(rounds: int = 30, warmup: int = 3) -> dict:
    """Interleaved A/B rounds; returns medians, ratios and peak RSS."""
    work = Path(tempfile.mkdtemp(prefix="virtlab-bench-oci-"))
    try:
        bundle = make_bundle(work)
        ours = str(work / "virtlab-runtime")
        subprocess.run([str(VENV_BIN / "virtlab-runtime"), "install-launcher", ours], check=True)
        runtimes = {"runc": (RUNC, str(work / "runc-root")), "virtlab": (ours, str(work / "vl-root")),
                    "virtlab-console-script": (str(VENV_BIN / "virtlab-runtime"), str(work / "vl2-root"))}
        samples: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        names = list(runtimes)
        for i in range(warmup + rounds):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                exe, root = runtimes[name]
                for op, fn in (("create+start+delete", lifecycle), ("run", run_once), ("floor", floor),
                               ("floor-exit", floor_exit)):
                    dt, c = fn(exe, root, bundle, f"b{i}")
                    if i >= warmup:
                        samples.setdefault((name, op), []).append(dt)
                        cpu.setdefault((name, op), []).append(c)
        med = {f"{n}/{op}": statistics.median(v) for (n, op), v in samples.items()}
        med_cpu = {f"{n}/{op}": statistics.median(v) for (n, op), v in cpu.items()}
        peak = {n: max(peak_rss_mib(exe, root, bundle, f"rss{k}") for k in range(3))
                for n, (exe, root) in runtimes.items()}
        ops = ("create+start+delete", "run")
        steps = {f"{n}/{cmd}": statistics.median(STEPS[(exe, cmd)][warmup:])
                 for n, (exe, _root) in runtimes.items() for cmd in ("create", "start", "delete")}
        result = {"rounds": rounds, "median_s": med, "median_cpu_s": med_cpu, "peak_rss_mib": peak,
                  "median_step_s": steps,
                  "ratio": {op: med[f"virtlab/{op}"] / med[f"runc/{op}"] for op in ops},
                  "ratio_cpu": {op: med_cpu[f"virtlab/{op}"] / med_cpu[f"runc/{op}"] for op in ops},
                  "ratio_console_script": {op: med[f"virtlab-console-script/{op}"] / med[f"runc/{op}"] for op in ops},
                  "loadavg": os.getloadavg()}
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(result: dict) -> str:
    """A small text table of a comparison."""
    lines = [f"rounds: {result['rounds']} (interleaved), load average {result['loadavg'][0]:.1f}"]
    for key, value in sorted(result["median_s"].items()):
        lines.append(f"  {key:45s} {value * 1000:8.1f} ms wall  {result['median_cpu_s'][key] * 1000:8.1f} ms cpu")
    for key, value in sorted(result.get("median_step_s", {}).items()):
        lines.append(f"  step {key:40s} {value * 1000:8.1f} ms wall")
    for op, r in result["ratio"].items():
        lines.append(f"  ratio virtlab/runc {op:25s} {r:6.2f}")
    for op, r in result["ratio_cpu"].items():
        lines.append(f"  cpu ratio virtlab/runc {op:21s} {r:6.2f}")
    for op, r in result["ratio_console_script"].items():
        lines.append(f"  ratio console-script/runc {op:18s} {r:6.2f}")
    for name, mib in result["peak_rss_mib"].items():
        lines.append(f"  peak RSS {name:35s} {mib:6.1f} MiB")
    return "\n".join(lines)


def test_runtime_vs_runc():
    if not os.path.exists(RUNC):
        pytest.skip("runc is not installed")
    result = compare(rounds=int(os.environ.get("VIRTLAB_BENCH_ROUNDS", "20")))
    print(report(result))
    print(json.dumps(result))
    assert result["peak_rss_mib"]["virtlab"] < 30


if __name__ == "__main__":
    res = compare(rounds=int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    print(report(res))
    print(json.dumps(res))

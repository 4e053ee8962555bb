"""`virtlab bench`: run suites, list past runs, and say which backends this host can run.

`bench run` prints progress and a summary on stderr and, as the last line of stdout,
the path of the run's results directory (so scripts can do `run_dir=$(virtlab bench run | tail -1)`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from bench.cli import root_of


@click.group("bench")
def bench() -> None:
    """Run benchmark suites: containers vs VMs vs native, on this machine."""


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "bytes":
        for u in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024 or u == "GiB":
                return f"{value:.1f} {u}" if u != "B" else f"{value:.0f} B"
            value /= 1024
    if unit == "bool":
        return "yes" if value >= 0.5 else "no"
    return f"{value:.4g} {unit}"


def print_summary(summary: list[dict], console) -> None:
    """A compact table of the repeated measurements: median and 95% CI per metric and backend."""
    from rich.table import Table

    table = Table(title="medians (95% bootstrap CI); the report has the whole table", box=None)
    for col in ("metric", "backend", "n", "median", "95% CI", "flags"):
        table.add_column(col, overflow="fold")
    for row in summary:
        if row["n"] < 2 or row["metric"].startswith(("density.", "isolation.", "disk.")):
            continue
        ci = f"{_fmt(row['ci_low'], row['unit'])} .. {_fmt(row['ci_high'], row['unit'])}"
        flags = []
        if row["outliers"]:
            flags.append(f"{len(row['outliers'])} outlier(s)")
        if row["cv"] is not None and row["cv"] > 0.10:
            flags.append(f"CV {row['cv']:.0%}")
        table.add_row(row["metric"], row["backend"], str(row["n"]), _fmt(row["median"], row["unit"]), ci,
                      ", ".join(flags))
    console.print(table)


@bench.command("run")
@click.option("--suite", "suite_name", type=click.Choice(["quick", "table", "full"]), default="quick", show_default=True,
              help="What to run: quick (busybox, micro VM, small N), table (debian, both VM profiles), full.")
@click.option("--backends", "backend_list", metavar="A,B", help="Only these backends (native, container, vm-micro, "
              "vm-full, podman, runc, qemu-direct).")
@click.option("--workloads", "workload_list", metavar="X,Y", help="Only these workloads (boot, disk, cpu, memory, "
              "fileio, syscall, forkexec, network, http, density, isolation).")
@click.option("--repeat", type=click.IntRange(1, 10000), help="Measured repetitions per workload (overrides the suite).")
@click.option("--warmups", type=click.IntRange(0, 1000), help="Warm-up repetitions, not recorded (overrides the suite).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Parent directory of the run's results directory.")
@click.option("--run-id", help="Name of the results directory (default: UTC time + random suffix).")
@click.option("--seed", type=int, default=20261128, show_default=True,
              help="Seed of the bootstrap and of the random order (recorded in environment.json).")
@click.option("--order", type=click.Choice(["alternate", "random", "fixed"]), default=None,
              help="Backend order in each round: alternate (A,B then B,A), random (seeded) or fixed.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
@click.option("--print-run-dir", is_flag=True, help="Print only the run directory on stdout (the default already "
              "prints it as the last line).")
@click.pass_context
def run(ctx: click.Context, suite_name: str, backend_list: str | None, workload_list: str | None, repeat: int | None,
        warmups: int | None, out: str, run_id: str | None, seed: int, order: str | None, no_progress: bool,
        print_run_dir: bool) -> None:
    """Run a suite and write results/<run-id>/ (samples.csv, environment.json, raw/).

    The last line on stdout is the results directory. SIGINT stops cleanly: every
    instance is destroyed and environment.json says incomplete: true (exit 130).
    """
    from bench import backends as backends_mod
    from bench import suites
    from bench import workloads as workloads_mod
    from bench.runner import Runner

    suite = suites.get(suite_name)
    suite.backends = tuple(backends_mod.parse_list(backend_list, suite.backends))
    suite.workloads = tuple(workloads_mod.parse_list(workload_list, suite.workloads))
    if repeat is not None:
        suite.repeat = repeat
        for p in suite.params.values():
            if isinstance(p, dict) and "repeat" in p:
                p["repeat"] = repeat
    if warmups is not None:
        suite.warmups = warmups
    if order:
        suite.order = order
    runner = Runner(suite, root_of(ctx), out, run_id=run_id, seed=seed, argv=["virtlab", *sys.argv[1:]],
                    progress=not no_progress)
    try:
        outcome = runner.run()
    except BaseException:
        if runner.results.path.exists():
            # Printed even when interrupted: the partial results are worth finding.
            click.echo(str(runner.results.path))
        raise
    if not print_run_dir and getattr(runner, "summary", None):
        print_summary(runner.summary, runner.console)
    for note in runner.notes:
        runner.console.print(f"note: {note}", highlight=False)
    if outcome.errors:
        runner.console.print(f"{len(outcome.errors)} error(s); see {outcome.run_dir / 'raw' / 'errors.log'}",
                             highlight=False)
    click.echo(str(outcome.run_dir))


@bench.command("ls")
@click.option("--out", "out", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Where the results directories are.")
def ls(out: str) -> None:
    """List the results directories under --out (run id, suite, state, samples, backends used)."""
    from bench.errors import ResultsError
    from bench.results import list_runs, read_environment

    rows = [("RUN ID", "SUITE", "STARTED", "STATE", "SAMPLES", "BACKENDS")]
    for run_dir in list_runs(out):
        try:
            env = read_environment(run_dir)
        except ResultsError as exc:
            rows.append((run_dir.name, "?", "?", f"unreadable: {exc}", "?", ""))
            continue
        try:
            with open(run_dir / "samples.csv") as f:
                n = max(0, sum(1 for _ in f) - 1)
        except OSError:
            n = 0
        state = "interrupted" if env.get("interrupted") else ("incomplete" if env.get("incomplete") else "complete")
        used = [name for name, b in (env.get("backends") or {}).items() if b.get("used")]
        started = str(env.get("started") or "")[:19].replace("T", " ")
        rows.append((run_dir.name, str(env.get("suite")), started, state, str(n), ",".join(used)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5])


@bench.command("backends")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def backends(ctx: click.Context, as_json: bool) -> None:
    """Which backends this host can run, and why not."""
    import json
    import tempfile

    from bench import backends as backends_mod

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in backends_mod.NAMES:
            b = backends_mod.create(name, Path(root_of(ctx)), work)
            try:
                ok, reason = b.available()
            except Exception as exc:  # noqa: BLE001 - availability checks must not crash the listing
                ok, reason = False, f"check failed: {exc}"
            rows.append({"name": name, "kind": b.kind, "available": ok, "reason": reason})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None)
    for col in ("BACKEND", "KIND", "AVAILABLE", "REASON"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], "yes" if r["available"] else "no", r["reason"])
    Console().print(table)

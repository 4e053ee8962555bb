"""The runner: prepare the backends, run each workload on each of them, write the results.

Order of events for one run:

1. create `<out>/<run-id>/` and write environment.json with `incomplete: true`;
2. build the bench image and prepare every available backend (artifacts are cached);
3. for each workload: `repeated` ones set up one instance per backend, then run
   warm-up rounds and measured rounds, each round visiting the backends in an
   interleaved order (A,B then B,A, ... or a seeded random order); `once` ones run
   one measurement per backend. Every sample is flushed to samples.csv at once;
4. flag outliers (modified Z-score), write raw/summary.json, and rewrite
   environment.json with `incomplete: false`.

SIGINT or SIGTERM at any point: stop, destroy every instance and what prepare made
for the run, and leave environment.json with `incomplete: true` and `interrupted: true`.
A failing workload on one backend is recorded (environment.json `errors`) and the run
goes on with the others.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import backends as backends_mod
from bench import environment, image, stats
from bench import workloads as workloads_mod
from bench.backends.base import Backend
from bench.errors import BenchError, Interrupted
from bench.results import ResultsDir, read_samples, write_json_atomic
from bench.sample import Sample, utc_now_iso
from bench.suites import Suite, check
from bench.workloads.base import Context, Workload


@dataclass
class Outcome:
    """What a run produced."""

    run_dir: Path
    incomplete: bool
    interrupted: bool
    samples: int
    errors: list[dict[str, str]] = field(default_factory=list)


def _console():
    from rich.console import Console

    return Console(stderr=True)


class Runner:
    """One benchmark run of a suite over a set of backends."""

    def __init__(self, suite: Suite, root: Path | str, out: Path | str, run_id: str | None = None,
                 seed: int = stats.DEFAULT_SEED, argv: list[str] | None = None, console: Any = None,
                 progress: bool = True) -> None:
        check(suite)
        self.suite = suite
        self.root = Path(root)
        self.results = ResultsDir(out, run_id)
        self.seed = seed
        self.argv = list(argv if argv is not None else sys.argv)
        self.console = console or _console()
        self.show_progress = progress
        self.work = self.root / "cache" / "bench" / "work" / self.results.run_id
        self.backends: list[Backend] = []
        self.usable: list[Backend] = []
        self.errors: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.env: dict[str, Any] = {}
        self._interrupted = False
        self._signalled = 0
        self._progress = None
        self._task = None
        self.bench_image: image.BenchImage | None = None

    # ------------------------------------------------------------ helpers

    def log(self, message: str) -> None:
        """A line above the progress bar (stderr)."""
        if self._progress is not None:
            self._progress.console.print(message, highlight=False)
        else:
            self.console.print(message, highlight=False)

    def _check_signal(self) -> None:
        """Raise KeyboardInterrupt if a signal came, even if another package's except clause swallowed it."""
        if self._signalled:
            raise KeyboardInterrupt(f"signal {self._signalled}")

    def _advance(self, n: float = 1, description: str | None = None) -> None:
        self._check_signal()
        if self._progress is not None and self._task is not None:
            kw: dict[str, Any] = {"advance": n}
            if description:
                kw["description"] = description
            self._progress.update(self._task, **kw)

    def _describe(self, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)

    def _failed(self, b: Backend, w: Workload, exc: BaseException, repetition: int = 0) -> None:
        """Record the failure, and NaN samples with an `error` so the report shows what is missing and why.

        A negative `repetition` is a warm-up: the sample says so (`warmup: true`) and counts as repetition 0.
        """
        self._error(b.name, w.name, exc)
        msg = str(exc) or type(exc).__name__
        meta: dict = {"kind": b.kind, "error": msg[-500:], "warmup": repetition < 0}
        if b.kind == "vm":
            meta["accel"] = b.accel or "unknown"
        better = {m.metric: m.better for m in getattr(getattr(w, "spec", None), "metrics", [])}
        try:
            self.results.add([Sample(self.results.run_id, b.name, w.name, metric, math.nan, unit, max(repetition, 0),
                                     {**meta, **({"better": better[metric]} if metric in better else {})})
                              for metric, unit in w.failure_metrics()])
        except BenchError:
            pass

    def _error(self, backend: str, workload: str, exc: BaseException) -> None:
        msg = str(exc) or type(exc).__name__
        self.errors.append({"backend": backend, "workload": workload, "error": msg})
        from rich.markup import escape

        # Error text (a guest console, a tool's stderr) may contain [brackets]: never markup.
        first = msg.strip().splitlines()[0] if msg.strip() else msg
        self.log(f"[red]error[/red] {escape(workload)} on {escape(backend)}: {escape(first[:300])}")
        with open(self.results.raw_path("errors.log"), "a") as f:
            f.write(f"{utc_now_iso()} {backend} {workload}: {msg}\n")
            f.write("".join(traceback.format_exception(exc)) + "\n")

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signalled = signum
        raise KeyboardInterrupt(f"signal {signum}")

    def _write_env(self, **updates: Any) -> None:
        self.env.update(updates)
        self.env["errors"] = self.errors
        self.env["notes"] = self.notes
        self.env["backends"] = {b.name: self._backend_info(b) for b in self.backends}
        self.results.write_environment(self.env)

    def _backend_info(self, b: Backend) -> dict[str, Any]:
        ok, reason = getattr(b, "_availability", (False, "not checked"))
        info = {"kind": b.kind, "available": ok, "reason": reason, "used": b in self.usable}
        try:
            info.update(b.info())
        except Exception as exc:  # noqa: BLE001 - info is descriptive only
            info["info_error"] = str(exc)
        if b.prepared is not None:
            info["shared_bytes"] = b.prepared.shared_bytes
            info["image"] = b.prepared.image
        if b.kind == "vm":
            info["accel"] = b.accel
        return info

    def _steps(self, workloads: list[Workload], ctx: Context) -> int:
        total = len(self.backends)
        for w in workloads:
            n = sum(1 for b in self.usable if w.applies(b)[0])
            if w.mode == "repeated":
                total += n * (1 + self.suite.warmups + self.suite.repeat_for(w.name))
            else:
                total += n * max(1, w.steps(ctx))
        return total

    # ------------------------------------------------------------ phases

    def _start(self) -> None:
        self.results.create()
        self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        from bench.backends import KIND

        has_vm = any(KIND.get(n) == "vm" for n in self.suite.backends)
        env = environment.capture(self.root / "cache", self.argv, self.suite.name, root=self.root, probe_accel=has_vm)
        env.update({
            "started": utc_now_iso(), "finished": None, "incomplete": True, "interrupted": False,
            "seed": self.seed, "order": self.suite.order, "warmups": self.suite.warmups, "repeat": self.suite.repeat,
            "suite_params": self.suite.params, "image": self.suite.image, "images": {}, "store_root": str(self.root),
        })
        self.env = env
        vm_memory = (self.suite.params.get("vm") or {}).get("memory_mib")
        for name in self.suite.backends:
            opts = {"memory_mib": int(vm_memory)} if vm_memory and KIND.get(name) == "vm" else {}
            b = backends_mod.create(name, self.root, self.work, **opts)
            b._availability = b.available()  # type: ignore[attr-defined]
            self.backends.append(b)
        self._write_env()

    def _prepare(self) -> None:
        from rich.markup import escape

        self._describe("preparing the bench image")
        try:
            self.bench_image = image.ensure(self.root, self.suite.image)
            self.env["images"] = {self.bench_image.ref: self.bench_image.digest}
            self.env["image_source"] = self.bench_image.source
        except BenchError as exc:
            self._error("*", "prepare", exc)
        for b in self.backends:
            ok, reason = b._availability  # type: ignore[attr-defined]
            self._describe(f"preparing {b.name}")
            if not ok:
                self.log(f"[yellow]skip[/yellow] {b.name}: {escape(reason)}")
            elif self.bench_image is None and b.kind != "native":
                self.log(f"[yellow]skip[/yellow] {b.name}: no bench image")
            else:
                try:
                    t0 = time.monotonic()
                    b.prepare(self.bench_image)
                    self.usable.append(b)
                    self.log(f"[green]ready[/green] {b.name}: {escape(reason)} (prepared in {time.monotonic() - t0:.1f}s)")
                except BenchError as exc:
                    b._availability = (False, f"prepare failed: {exc}")  # type: ignore[attr-defined]
                    self._error(b.name, "prepare", exc)
                except Exception as exc:  # noqa: BLE001 - another package's failure must not stop the run
                    b._availability = (False, f"prepare failed: {exc}")  # type: ignore[attr-defined]
                    self._error(b.name, "prepare", exc)
            self._advance(1)
        self._write_env()

    def _run_repeated(self, w: Workload, targets: list[Backend], ctx: Context) -> None:
        states: dict[str, Any] = {}
        active: list[Backend] = []
        reps = self.suite.repeat_for(w.name)
        try:
            for b in targets:
                self._describe(f"{w.name}: setting up {b.name}")
                try:
                    states[b.name] = w.setup(b, ctx)
                    active.append(b)
                except Exception as exc:  # noqa: BLE001 - record, go on with the other backends
                    self._check_signal()
                    self._failed(b, w, exc)
                    self._advance(self.suite.warmups + reps)
                self._advance(1)
            rounds = self.suite.warmups + reps
            orders = stats.interleaved_order([b.name for b in active], rounds, self.suite.order, self.seed)
            by_name = {b.name: b for b in active}
            budget = (self.suite.params.get("budget_s") or {}).get(w.name)
            t0 = time.monotonic()
            failed: set[str] = set()
            # Stateless workloads (boot) go on after a failed repetition, up to a few in a row;
            # the others stop on that backend, since their instance may be gone.
            max_failures = 3 if getattr(w, "retry_after_failure", False) else 1
            failures: dict[str, int] = defaultdict(int)
            for r, order in enumerate(orders):
                rep = r - self.suite.warmups
                if budget and rep >= 1 and time.monotonic() - t0 > budget:
                    skipped = rounds - r
                    self.notes.append(f"{w.name}: stopped after {rep} measured round(s) of {reps}: "
                                      f"the suite's budget of {budget}s for this row was used")
                    self.log(f"[yellow]budget[/yellow] {w.name}: {rep} of {reps} rounds (budget {budget}s)")
                    self._advance(skipped * len(active))
                    break
                for name in order:
                    self._check_signal()
                    b = by_name[name]
                    label = "warm-up" if rep < 0 else f"{rep + 1}/{reps}"
                    self._describe(f"{w.name} on {b.name} ({label})")
                    if name in failed:
                        self._advance(1)
                        continue
                    try:
                        samples = w.measure(b, states.get(name), ctx, rep)
                        if rep >= 0:
                            for s in samples:
                                s.metadata["round"] = r
                                s.metadata["position"] = order.index(name)
                            self.results.add(samples)
                        failures[name] = 0
                    except Exception as exc:  # noqa: BLE001
                        self._check_signal()  # an interrupt wrapped in another package's error is still one
                        self._failed(b, w, exc, rep)
                        failures[name] += 1
                        if failures[name] >= max_failures:
                            failed.add(name)
                        # The shared instance may be what broke: the next workload gets a fresh one.
                        key = w.pool_key(b) if hasattr(w, "pool_key") else name
                        pooled = ctx.pool.pop(key, None) if getattr(w, "pooled", False) else None
                        if pooled is not None:
                            try:
                                pooled.destroy()
                            except Exception as err:  # noqa: BLE001
                                self._error(name, w.name, err)
                    self._advance(1)
        finally:
            for b in active:
                try:
                    w.teardown(b, states.get(b.name))
                except Exception as exc:  # noqa: BLE001
                    self._error(b.name, w.name, exc)

    def _run_once(self, w: Workload, targets: list[Backend], ctx: Context) -> None:
        steps = max(1, w.steps(ctx))
        for b in targets:
            self._describe(f"{w.name} on {b.name}")
            done = 0.0

            def advance(n: float, _b: Backend = b) -> None:
                nonlocal done
                if done + n <= steps:
                    done += n
                    self._advance(n)

            ctx.advance = advance
            try:
                samples = w.run_once(b, ctx)
                self.results.add(samples)
            except Exception as exc:  # noqa: BLE001
                self._check_signal()
                self._failed(b, w, exc)
            self._advance(steps - done)

    def _finish(self) -> list[dict[str, Any]]:
        """Flag outliers in the samples, and write raw/summary.json (medians, p95, CIs, warnings)."""
        self.results.close()
        samples = read_samples(self.results.path)
        groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            groups[(s.backend, s.workload, s.metric)].append(i)
        summary = []
        flagged = list(samples)
        for (backend, workload, metric), idx in groups.items():
            values = [samples[i].value for i in idx]
            if workload in ("density",) and metric == "density.mem_used":
                continue
            summ = stats.summarize(values, seed=self.seed)
            if len(values) >= 3:
                flags = stats.outlier_flags(values)
                for j, i in enumerate(idx):
                    meta = dict(samples[i].metadata, outlier=flags[j])
                    s = samples[i]
                    flagged[i] = Sample(s.run_id, s.backend, s.workload, s.metric, s.value, s.unit, s.repetition, meta,
                                        s.timestamp)
            summary.append({"backend": backend, "workload": workload, "metric": metric, "unit": samples[idx[0]].unit,
                            **summ.to_dict()})
        self.results.rewrite(flagged)
        write_json_atomic(self.results.raw_path("summary.json"), summary)
        return summary

    def _cleanup(self) -> None:
        for b in self.backends:
            try:
                b.cleanup()
            except Exception as exc:  # noqa: BLE001
                self._error(b.name, "cleanup", exc)
        from bench.backends.hostfs import umount_under

        umount_under(self.work)
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ main

    def run(self, workload_names: list[str] | None = None) -> Outcome:
        """Run the suite; returns the outcome. Raises Interrupted (exit 130) after cleaning up on SIGINT."""
        names = workload_names or list(self.suite.workloads)
        workloads = [workloads_mod.create(n) for n in names]
        old_int = signal.getsignal(signal.SIGINT)
        old_term = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        summary: list[dict[str, Any]] = []
        try:
            self._start()
            ctx = Context(run_id=self.results.run_id, params=self.suite.params, seed=self.seed,
                          raw_dir=self.results.raw, log=self.log)
            with self._make_progress() as progress:
                self._progress = progress
                self._task = progress.add_task("preparing", total=len(self.backends))
                self._prepare()
                progress.update(self._task, total=self._steps(workloads, ctx) , completed=len(self.backends))
                for w in workloads:
                    if not getattr(w, "pooled", False):
                        for err in ctx.drain_pool():
                            self.log(f"[red]error[/red] destroying a pooled instance: {err}")
                    targets = [b for b in self.usable if w.applies(b)[0]]
                    if not targets:
                        continue
                    if w.mode == "repeated":
                        self._run_repeated(w, targets, ctx)
                    else:
                        self._run_once(w, targets, ctx)
                ctx.drain_pool()
                self._describe("done")
            self._progress = None
        except KeyboardInterrupt:
            self._interrupted = True
            self._progress = None
        finally:
            # A second Ctrl-C must not cut the cleanup short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                if self.results._csv_file is not None or self.results.path.exists():
                    self._cleanup()
                    if not self._interrupted:
                        summary = self._finish()
                    self.results.close()
                    if self.env:
                        self._write_env(finished=utc_now_iso(), incomplete=self._interrupted,
                                        interrupted=self._interrupted)
            finally:
                signal.signal(signal.SIGINT, old_int)
                signal.signal(signal.SIGTERM, old_term)
        self.summary = summary
        outcome = Outcome(self.results.path, self._interrupted, self._interrupted, self.results.count, self.errors)
        if self._interrupted:
            raise Interrupted(f"interrupted: instances destroyed, partial results in {self.results.path}")
        return outcome

    def _make_progress(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=self.console, disable=not self.show_progress,
                        transient=False)


def default_out() -> Path:
    """Where results go by default: ./results."""
    return Path(os.getcwd()) / "results"

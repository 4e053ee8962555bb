"""Read results directories (samples.csv + environment.json only) into one validated table.

Every value read here is untrusted: names are kept as literal strings (rendering escapes
them), numbers that are missing, NaN or infinite are kept but marked not ok, and every
oddity found becomes a `problem` that the report shows instead of hiding.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports.errors import BadResults, HostMixError, ResultsNotFound

REQUIRED_COLUMNS = ("run_id", "backend", "workload", "metric", "value", "unit", "repetition", "metadata", "timestamp")

# Backends named by docs/contracts.md and their kinds, used when environment.json does not say.
DEFAULT_KINDS = {
    "native": "native",
    "container": "container",
    "podman": "container",
    "runc": "container",
    "vm-micro": "vm",
    "vm-full": "vm",
    "qemu-direct": "vm",
}
KINDS = ("native", "container", "vm")

_TIME = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6,
         "µs": 1e-6, "ns": 1e-9, "min": 60.0}
_BYTES = {"b": 1.0, "byte": 1.0, "bytes": 1.0, "kb": 1e3, "kib": 1024.0, "mb": 1e6, "mib": 1024.0**2,
          "gb": 1e9, "gib": 1024.0**3, "tb": 1e12, "tib": 1024.0**4}
# The unit family each metric must carry (docs/contracts.md); anything else is flagged.
_EXPECTED = (
    ("startup.", "time"),
    ("disk.", "bytes"),
    ("density.mem_per_instance", "bytes"),
    ("density.pss_per_instance", "bytes"),
    ("density.mem_used", "bytes"),
)
MAX_PROBLEMS_PER_RUN = 50


@dataclass
class Run:
    """One results directory: where it is, what its environment says, and what is wrong with it."""

    path: Path
    run_id: str
    env: dict
    hostname: str
    accel: str | None
    accel_reason: str | None
    incomplete: bool
    n_rows: int = 0
    problems: list[str] = field(default_factory=list)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (backend, workload) -> why it failed
    host: str = ""  # the comparison group this run belongs to (hostname, plus accel when needed)

    def note(self, message: str) -> None:
        """Record a problem with this run (bounded, so a broken file cannot flood the report)."""
        if len(self.problems) < MAX_PROBLEMS_PER_RUN:
            self.problems.append(message)
        elif len(self.problems) == MAX_PROBLEMS_PER_RUN:
            self.problems.append("... more problems not shown")


@dataclass
class Results:
    """Every run read, and all their samples in one long table with derived columns.

    Derived columns: `host` (comparison group), `kind`, `accel`, `ok` (a finite value
    from a successful measurement), `meta` (the parsed metadata dict), `error` (why a
    sample failed, if it says), `base_value` and `base_unit` (seconds and bytes normalised).
    """

    runs: list[Run]
    samples: pd.DataFrame

    def hosts(self) -> list[str]:
        """Comparison groups in the order their first run was given."""
        seen: list[str] = []
        for run in self.runs:
            if run.host not in seen:
                seen.append(run.host)
        return seen

    def runs_of(self, host: str) -> list[Run]:
        """The runs of one comparison group."""
        return [r for r in self.runs if r.host == host]

    def for_host(self, host: str) -> pd.DataFrame:
        """The samples of one comparison group only."""
        return self.samples[self.samples["host"] == host]


def require_single_host(frame: pd.DataFrame) -> str | None:
    """Return the one host of `frame`, or raise HostMixError: ratios never mix hosts."""
    hosts = sorted(set(frame["host"])) if len(frame) else []
    if len(hosts) > 1:
        raise HostMixError(f"refusing to mix hosts in one comparison: {', '.join(hosts)}")
    return hosts[0] if hosts else None


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Results directories named by `paths`; a folder of runs (like results/) expands to its runs."""
    if not paths:
        raise ResultsNotFound("no results directory given")
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ResultsNotFound(f"no such results directory: {path}")
        if not path.is_dir():
            raise ResultsNotFound(f"not a results directory (a file): {path}")
        if _is_run_dir(path):
            found = [path]
        else:
            found = sorted(p for p in path.iterdir() if p.is_dir() and _is_run_dir(p))
            if not found:
                raise ResultsNotFound(f"no samples.csv or environment.json in {path} or its subfolders")
        for p in found:
            if p.resolve() not in {q.resolve() for q in out}:
                out.append(p)
    return out


def _is_run_dir(path: Path) -> bool:
    return (path / "samples.csv").is_file() or (path / "environment.json").is_file()


def load(paths: list[str | Path]) -> Results:
    """Read and validate every results directory in `paths` into one Results."""
    runs: list[Run] = []
    frames: list[pd.DataFrame] = []
    for path in expand_paths(paths):
        run, frame = _load_run(path)
        runs.append(run)
        frames.append(frame)
    _assign_hosts(runs)
    for run, frame in zip(runs, frames, strict=True):
        frame["host"] = run.host
    samples = pd.concat(frames, ignore_index=True) if frames else _empty_frame()
    return Results(runs=runs, samples=samples)


def _read_environment(path: Path) -> dict:
    env_path = path / "environment.json"
    if not env_path.is_file():
        return {}
    try:
        env = json.loads(env_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadResults(f"cannot read {env_path}: {exc}") from exc
    if not isinstance(env, dict):
        raise BadResults(f"cannot read {env_path}: the top level is not a JSON object")
    return env


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _load_run(path: Path) -> tuple[Run, pd.DataFrame]:
    env = _read_environment(path)
    host = _dict(env.get("host"))
    accel = _dict(env.get("accelerator"))
    run_id = _text(env.get("run_id")) or path.name
    run = Run(
        path=path,
        run_id=run_id,
        env=env,
        hostname=_text(host.get("hostname")) or "",
        accel=_text(accel.get("accel")),
        accel_reason=_text(accel.get("reason")),
        incomplete=bool(env.get("incomplete")) or not env.get("finished"),
    )
    if not env:
        run.note("environment.json is missing: host, versions and accelerator are unknown")
    frame = _read_samples(path, run)
    run.n_rows = len(frame)
    for item in env.get("errors") or [] if isinstance(env.get("errors"), list) else []:
        item = _dict(item)
        if item.get("backend") and item.get("workload"):
            message = str(item.get("error") or "failed")
            run.errors[(str(item["backend"]), str(item["workload"]))] = message
            where = f"{item['workload']} on {item['backend']}"
            run.note(message if where in message else f"{where} failed: {message}")
    notes = env.get("notes")
    for note in notes if isinstance(notes, list) else []:
        if note:
            run.note(f"note from the harness: {note}")
    if env.get("incomplete"):
        run.note("the run was interrupted (environment.json says incomplete): some rows may be missing")
    elif env and not env.get("finished"):
        run.note("the run has no finish time: it may have crashed before the end")
    return run, frame


def _empty_frame() -> pd.DataFrame:
    cols = [*REQUIRED_COLUMNS, "kind", "accel", "ok", "meta", "error", "base_value", "base_unit", "host"]
    return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})


def _read_samples(path: Path, run: Run) -> pd.DataFrame:
    csv_path = path / "samples.csv"
    if not csv_path.is_file():
        run.note("samples.csv is missing: nothing was measured in this run")
        frame = _empty_frame()
        return frame.drop(columns=["host"])
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        run.note("samples.csv is empty: nothing was measured in this run")
        return _empty_frame().drop(columns=["host"])
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise BadResults(f"cannot read {csv_path}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise BadResults(f"cannot read {csv_path}: missing columns {', '.join(missing)}")
    frame = raw[list(REQUIRED_COLUMNS)].copy()
    blank = (frame["backend"].str.strip() == "") | (frame["metric"].str.strip() == "")
    if blank.any():
        run.note(f"{int(blank.sum())} sample(s) name no backend or no metric; they were left out")
        frame = frame[~blank].reset_index(drop=True)
    _derive(frame, run)
    return frame


def _kind_of(backend: str, env: dict) -> str:
    declared = _dict(_dict(env.get("backends")).get(backend)).get("kind")
    if declared in KINDS:
        return str(declared)
    if backend in DEFAULT_KINDS:
        return DEFAULT_KINDS[backend]
    if backend.startswith("vm"):
        return "vm"
    return "unknown"


def _parse_meta(text: str) -> dict | None:
    if not text:
        return {}
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def _normalise(metric: str, value: float, unit: str) -> tuple[float, str, bool]:
    """(value in base unit, base unit, unit matches what the metric needs)."""
    u = unit.strip()
    family = next((fam for prefix, fam in _EXPECTED if metric.startswith(prefix)), None)
    if u.lower() in _BYTES or u in _BYTES:
        out = (value * _BYTES[u.lower()], "bytes", family in (None, "bytes"))
    elif u in _TIME or u.lower() in _TIME:
        out = (value * _TIME.get(u, _TIME.get(u.lower(), 1.0)), "s", family in (None, "time"))
    else:
        out = (value, u, family is None)
    return out


def _derive(frame: pd.DataFrame, run: Run) -> None:
    """Add the derived columns and note every problem with the rows of one run."""
    env = run.env
    values = pd.to_numeric(frame["value"].str.strip(), errors="coerce")
    frame["repetition"] = pd.to_numeric(frame["repetition"], errors="coerce")
    metas, errors, bad_meta = [], [], 0
    for text in frame["metadata"]:
        meta = _parse_meta(text)
        if meta is None:
            bad_meta += 1
            meta = {}
        metas.append(meta)
        err = meta.get("error")
        errors.append(str(err) if err not in (None, "", False) else None)
    if bad_meta:
        run.note(f"{bad_meta} sample(s) have metadata that is not a JSON object; it was ignored")
    frame["meta"] = metas
    frame["error"] = errors
    kinds = {b: _kind_of(b, env) for b in set(frame["backend"])}
    frame["kind"] = frame["backend"].map(kinds)
    backends_env = _dict(env.get("backends"))
    accels = []
    for backend, kind, meta in zip(frame["backend"], frame["kind"], metas, strict=True):
        acc = meta.get("accel") or _dict(backends_env.get(backend)).get("accel")
        if not acc and kind == "vm":
            acc = run.accel
        accels.append(str(acc) if acc else None)
    frame["accel"] = accels

    base_values, base_units, oks = [], [], []
    wrong_units: Counter[str] = Counter()
    nonfinite: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for metric, value, unit, err in zip(frame["metric"], values, frame["unit"], errors, strict=True):
        finite = value is not None and not math.isnan(value) and math.isfinite(value)
        bv, bu, unit_ok = _normalise(metric, float(value) if finite else math.nan, unit)
        ok = finite and unit_ok and err is None
        if not unit_ok:
            wrong_units[f"{metric} [{unit or 'no unit'}]"] += 1
        if not finite and err is None:
            nonfinite[metric] += 1
        if err is not None:
            failed[metric] += 1
        base_values.append(bv)
        base_units.append(bu)
        oks.append(ok)
    frame["value"] = values
    frame["base_value"] = base_values
    frame["base_unit"] = base_units
    frame["ok"] = oks
    for name, count in sorted(wrong_units.items()):
        run.note(f"{count} sample(s) of {name} carry a unit that does not fit the metric; they were left out")
    for name, count in sorted(nonfinite.items()):
        run.note(f"{count} sample(s) of {name} have no finite value (empty, NaN or Inf); they were left out")
    for name, count in sorted(failed.items()):
        run.note(f"{count} sample(s) of {name} record a failed measurement")
    other_ids = sorted(set(frame["run_id"]) - {run.run_id})
    if other_ids and env:
        run.note(f"samples.csv names other run ids than environment.json: {', '.join(other_ids[:5])}")


def workload_of(metric: str) -> str:
    """The workload that produces `metric` (docs/contracts.md): startup.* -> boot, perf.cpu -> cpu, ..."""
    head, _, rest = metric.partition(".")
    if head == "startup":
        return "boot"
    if head == "perf":
        return rest.split(".")[0]
    return head


def _assign_hosts(runs: list[Run]) -> None:
    """Give each run its comparison group: the hostname, split further by accelerator.

    Runs without a hostname stay alone (their own group), since nothing proves they
    share a machine with anything else.
    """
    accels_by_host: dict[str, set[str | None]] = {}
    for run in runs:
        if run.hostname:
            accels_by_host.setdefault(run.hostname, set()).add(run.accel)
    for run in runs:
        if not run.hostname:
            run.host = f"unknown host (run {run.run_id})"
        elif len(accels_by_host[run.hostname]) > 1:
            run.host = f"{run.hostname} ({run.accel or 'no accelerator'})"
        else:
            run.host = run.hostname

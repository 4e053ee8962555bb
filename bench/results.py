"""The results directory: samples.csv (one Sample per row), environment.json and raw/.

The format is the only contract between bench/ and reports/ (docs/contracts.md,
"Results directory"). Samples are appended and flushed one by one, so a run that is
interrupted keeps every sample measured before the interruption; environment.json is
rewritten atomically at the start and at the end, with `incomplete` true until the end.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import ResultsError
from bench.sample import FIELDS, Sample, utc_now_iso

SCHEMA = 1
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus 6 random hex digits (20261128T061500Z-3fa2c1)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsDir:
    """One run's results directory, `<out>/<run-id>/`, written as the run goes."""

    def __init__(self, out: Path | str, run_id: str | None = None) -> None:
        self.run_id = run_id if run_id is not None else new_run_id()
        if not _RUN_ID.match(self.run_id):
            raise ResultsError(f"invalid run id {self.run_id!r}: letters, digits, '.', '_' and '-' only")
        self.path = Path(out).absolute() / self.run_id
        self.raw = self.path / "raw"
        self.samples_path = self.path / "samples.csv"
        self.environment_path = self.path / "environment.json"
        self._csv_file: Any = None
        self._writer: csv.DictWriter | None = None
        self.count = 0

    def create(self) -> ResultsDir:
        """Make the directory (it must not exist yet) and write the samples.csv header."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir()
            self.raw.mkdir()
        except FileExistsError as exc:
            raise ResultsError(f"results directory {self.path} already exists") from exc
        except OSError as exc:
            raise ResultsError(f"cannot create results directory {self.path}: {exc.strerror}") from exc
        self._csv_file = open(self.samples_path, "w", newline="")  # noqa: SIM115 - kept open for the run
        self._writer = csv.DictWriter(self._csv_file, fieldnames=list(FIELDS), lineterminator="\n")
        self._writer.writeheader()
        self._csv_file.flush()
        return self

    def add(self, samples: Sample | list[Sample]) -> None:
        """Append samples and flush them to disk at once."""
        if self._writer is None or self._csv_file is None:
            raise ResultsError(f"results directory {self.path} is not open for writing")
        for s in [samples] if isinstance(samples, Sample) else samples:
            if s.run_id != self.run_id:
                raise ResultsError(f"sample of run {s.run_id} written into run {self.run_id}")
            self._writer.writerow(s.to_row())
            self.count += 1
        self._csv_file.flush()

    def raw_path(self, *parts: str) -> Path:
        """A path under raw/ for logs, consoles and tool output (parents created)."""
        p = self.raw.joinpath(*parts)
        if not p.resolve().is_relative_to(self.raw.resolve()):
            raise ResultsError(f"raw path {p} escapes {self.raw}")
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_environment(self, env: dict[str, Any]) -> None:
        """Write environment.json (atomically), stamping schema and run id."""
        env = dict(env)
        env["schema"] = SCHEMA
        env["run_id"] = self.run_id
        write_json_atomic(self.environment_path, env)

    def rewrite(self, samples: list[Sample]) -> None:
        """Replace samples.csv with `samples` atomically (used to add outlier flags at the end)."""
        self.close()
        tmp = self.samples_path.with_name(".samples.csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(FIELDS), lineterminator="\n")
            writer.writeheader()
            for s in samples:
                writer.writerow(s.to_row())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.samples_path)

    def close(self) -> None:
        """Close samples.csv (idempotent)."""
        if self._csv_file is not None:
            self._csv_file.flush()
            os.fsync(self._csv_file.fileno())
            self._csv_file.close()
        self._csv_file = None
        self._writer = None


def read_samples(run_dir: Path | str) -> list[Sample]:
    """Read every Sample of a results directory (for tests, `bench ls` and checks)."""
    path = Path(run_dir) / "samples.csv"
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != FIELDS:
                raise ResultsError(f"{path}: unexpected header {reader.fieldnames}")
            return [Sample.from_row(row) for row in reader]
    except FileNotFoundError as exc:
        raise ResultsError(f"no samples.csv in {run_dir}") from exc


def read_environment(run_dir: Path | str) -> dict[str, Any]:
    """Read environment.json of a results directory."""
    path = Path(run_dir) / "environment.json"
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise ResultsError(f"no environment.json in {run_dir}") from exc
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from exc


def list_runs(out: Path | str) -> list[Path]:
    """The results directories under `out`, oldest first (those with an environment.json)."""
    base = Path(out)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / "environment.json").is_file())


__all__ = [
    "SCHEMA",
    "ResultsDir",
    "list_runs",
    "new_run_id",
    "read_environment",
    "read_samples",
    "utc_now_iso",
    "write_json_atomic",
]

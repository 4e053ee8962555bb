"""Fixtures for the report tests: results directories written by resultgen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import resultgen  # noqa: E402


@pytest.fixture
def make_run(tmp_path):
    """Write a results directory under tmp_path; keyword arguments go to resultgen.write_run."""
    counter = {"n": 0}

    def make(name: str | None = None, **kwargs) -> Path:
        counter["n"] += 1
        path = tmp_path / "results" / (name or f"run-{counter['n']}")
        kwargs.setdefault("run_id", path.name)
        return resultgen.write_run(path, **kwargs)

    return make

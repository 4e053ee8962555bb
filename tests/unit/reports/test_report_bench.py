"""Benchmark: a report of about 16,000 samples (target: a few seconds, imports included).

Run with `pytest -m bench tests/unit/reports/test_report_bench.py`; not part of `make test`.
"""

from __future__ import annotations

import pytest
import resultgen

from reports.build import make_report

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "big"
    resultgen.write_run(path, run_id="big", reps=400)
    assert len(resultgen.read_samples(path)) > 10_000
    return path


def test_report_of_16k_samples(benchmark, big_run, tmp_path):
    out = benchmark.pedantic(make_report, args=([big_run],), kwargs={"out": tmp_path / "out"}, rounds=3,
                             iterations=1, warmup_rounds=0)
    assert len(out.written) == 2

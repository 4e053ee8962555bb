import csv
import json
import math

import pytest

from bench.errors import ConfigError, ResultsError
from bench.results import ResultsDir, list_runs, new_run_id, read_environment, read_samples
from bench.sample import FIELDS, Sample


def mk(run_id="r1", **kw):
    base = dict(run_id=run_id, backend="native", workload="boot", metric="startup.ready", value=0.5, unit="s")
    base.update(kw)
    return Sample(**base)


def test_sample_needs_a_unit_and_a_number():
    with pytest.raises(ConfigError, match="no unit"):
        mk(unit="")
    with pytest.raises(ConfigError, match="not a number"):
        mk(value="fast")
    with pytest.raises(ConfigError, match="no metric"):
        mk(metric="")


def test_sample_copies_metadata():
    meta = {"a": 1}
    s = mk(metadata=meta)
    meta["a"] = 2
    assert s.metadata == {"a": 1}


def test_sample_row_round_trip_is_exact():
    s = mk(value=0.1 + 0.2, repetition=3, metadata={"better": "lower", "nested": {"x": [1, 2]}})
    back = Sample.from_row(s.to_row())
    assert back == s
    assert back.value == 0.1 + 0.2


def test_sample_timestamp_is_iso_utc():
    assert mk().timestamp.endswith("Z") and "T" in mk().timestamp


def test_nan_is_written_and_read_back():
    s = mk(value=float("nan"))
    assert not s.finite
    assert s.to_row()["value"] == "nan"
    assert math.isnan(Sample.from_row(s.to_row()).value)


def test_results_dir_layout_and_header(tmp_path):
    rd = ResultsDir(tmp_path, "run-1").create()
    rd.add([mk("run-1"), mk("run-1", backend="runc")])
    rd.write_environment({"incomplete": True})
    rd.close()
    assert (tmp_path / "run-1" / "raw").is_dir()
    with open(tmp_path / "run-1" / "samples.csv") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == FIELDS
    assert len(rows) == 3
    assert read_environment(tmp_path / "run-1") == {"incomplete": True, "schema": 1, "run_id": "run-1"}
    assert [s.backend for s in read_samples(tmp_path / "run-1")] == ["native", "runc"]
    assert list_runs(tmp_path) == [tmp_path / "run-1"]


def test_samples_are_on_disk_before_close(tmp_path):
    rd = ResultsDir(tmp_path, "live").create()
    rd.add(mk("live"))
    assert len(read_samples(tmp_path / "live")) == 1
    rd.close()


def test_results_dir_refuses_existing_and_bad_ids(tmp_path):
    ResultsDir(tmp_path, "x").create().close()
    with pytest.raises(ResultsError, match="already exists"):
        ResultsDir(tmp_path, "x").create()
    for bad in ("../up", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ResultsError, match="invalid run id"):
            ResultsDir(tmp_path, bad)


def test_sample_of_another_run_is_refused(tmp_path):
    rd = ResultsDir(tmp_path, "mine").create()
    with pytest.raises(ResultsError, match="written into run mine"):
        rd.add(mk("other"))
    rd.close()


def test_raw_path_cannot_escape(tmp_path):
    rd = ResultsDir(tmp_path, "r").create()
    assert rd.raw_path("logs", "a.txt").parent.is_dir()
    with pytest.raises(ResultsError, match="escapes"):
        rd.raw_path("..", "..", "etc")
    rd.close()


def test_rewrite_replaces_samples(tmp_path):
    rd = ResultsDir(tmp_path, "r").create()
    rd.add([mk("r"), mk("r")])
    rd.rewrite([mk("r", metadata={"outlier": True})])
    got = read_samples(tmp_path / "r")
    assert len(got) == 1 and got[0].metadata == {"outlier": True}


def test_environment_json_is_valid_json_with_nan_free_values(tmp_path):
    rd = ResultsDir(tmp_path, "r").create()
    rd.write_environment({"a": [1, 2], "b": None})
    rd.close()
    json.loads((tmp_path / "r" / "environment.json").read_text())


def test_run_ids_sort_by_time_and_are_unique():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i.split("-")[0]) == 16 for i in ids)


def test_unreadable_results_are_reported(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "environment.json").write_text("{nope")
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_environment(tmp_path / "bad")
    with pytest.raises(ResultsError, match="no samples.csv"):
        read_samples(tmp_path / "bad")
    (tmp_path / "bad" / "samples.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ResultsError, match="unexpected header"):
        read_samples(tmp_path / "bad")

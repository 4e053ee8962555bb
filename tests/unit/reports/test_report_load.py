"""Reading results directories: validation, problems flagged, hosts kept apart."""

from __future__ import annotations

import json

import pytest
import resultgen

from reports.errors import BadResults, HostMixError, ReportError, ResultsNotFound
from reports.load import expand_paths, load, require_single_host


def test_reads_a_run_and_derives_columns(make_run):
    path = make_run()
    res = load([path])
    assert [r.run_id for r in res.runs] == [path.name]
    df = res.samples
    assert set(df["host"]) == {"lab1"}
    assert set(df[df["backend"] == "vm-micro"]["accel"]) == {"tcg"}
    assert set(df[df["backend"] == "podman"]["kind"]) == {"container"}
    assert df["ok"].all()
    assert res.runs[0].problems == []
    assert not res.runs[0].incomplete


def test_errors_carry_exit_code_125(tmp_path):
    with pytest.raises(ResultsNotFound) as exc:
        load([tmp_path / "nope"])
    assert exc.value.exit_code == 125 and "no such results directory" in str(exc.value)
    assert issubclass(BadResults, ReportError) and issubclass(HostMixError, ReportError)


def test_empty_folder_is_not_a_results_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsNotFound, match="no samples.csv"):
        load([tmp_path / "empty"])
    with pytest.raises(ResultsNotFound):
        load([])


def test_a_folder_of_runs_expands_to_its_runs(make_run, tmp_path):
    a = make_run("a")
    b = make_run("b", hostname="lab2")
    assert expand_paths([tmp_path / "results"]) == [a, b]
    # the same run named twice is read once
    assert expand_paths([a, a, tmp_path / "results"]) == [a, b]


def test_missing_columns_are_refused(make_run):
    path = make_run()
    text = resultgen.sample_lines(path)
    header = text[0].replace(",unit", "")
    resultgen.write_sample_lines(path, [header, *text[1:]])
    with pytest.raises(BadResults, match="missing columns unit"):
        load([path])


def test_bad_environment_json_is_refused(make_run):
    path = make_run()
    (path / "environment.json").write_text("{not json")
    with pytest.raises(BadResults, match="environment.json"):
        load([path])
    (path / "environment.json").write_text("[1, 2]")
    with pytest.raises(BadResults, match="not a JSON object"):
        load([path])


def test_missing_environment_is_flagged_and_kept_alone(make_run):
    a = make_run("a")
    b = make_run("b")
    (b / "environment.json").unlink()
    res = load([a, b])
    assert res.hosts() == ["lab1", "unknown host (run b)"]
    assert any("environment.json is missing" in p for p in res.runs[1].problems)


def test_header_only_samples_is_an_empty_run(make_run):
    path = make_run()
    header = resultgen.sample_lines(path)[0]
    (path / "samples.csv").write_text(header + "\n")
    res = load([path])
    assert len(res.samples) == 0
    (path / "samples.csv").write_text("")
    res = load([path])
    assert any("empty" in p for p in res.runs[0].problems)


def test_nonfinite_values_and_bad_metadata_are_flagged(make_run):
    path = make_run(nonfinite=True)
    lines = resultgen.sample_lines(path)
    lines.append('x,container,boot,startup.ready,0.1,s,7,"not json",2026-11-28T06:00:00Z')
    resultgen.write_sample_lines(path, lines)
    res = load([path])
    df = res.samples
    bad = df[~df["ok"]]
    assert len(bad) == 4  # nan, inf, empty, -inf
    problems = " ".join(res.runs[0].problems)
    assert "no finite value" in problems and "not a JSON object" in problems
    assert "other run ids" in problems


def test_units_are_normalised_and_wrong_units_left_out(make_run):
    path = make_run(only_rows=("startup",))
    lines = resultgen.sample_lines(path)
    lines.append("x,container,boot,startup.ready,250,ms,9,{},2026-11-28T06:00:00Z")
    lines.append("x,container,disk,disk.shared_bytes,3,MiB,0,{},2026-11-28T06:00:00Z")
    lines.append("x,container,disk,disk.instance_bytes,3,s,0,{},2026-11-28T06:00:00Z")
    resultgen.write_sample_lines(path, lines)
    df = load([path]).samples
    ms = df[(df["unit"] == "ms")]
    assert ms["base_value"].iloc[0] == pytest.approx(0.25) and ms["base_unit"].iloc[0] == "s"
    mib = df[df["unit"] == "MiB"]
    assert mib["base_value"].iloc[0] == 3 * 1024 * 1024 and bool(mib["ok"].iloc[0])
    wrong = df[(df["metric"] == "disk.instance_bytes")]
    assert not wrong["ok"].any()


def test_failed_samples_keep_their_error(make_run):
    path = make_run(zero_ok_row="startup")
    df = load([path]).samples
    failed = df[(df["backend"] == "vm-full") & (df["metric"] == "startup.ready")]
    assert len(failed) == 8 and not failed["ok"].any()
    assert failed["error"].iloc[0].startswith("timeout")


def test_incomplete_run_is_flagged(make_run):
    res = load([make_run(incomplete=True)])
    assert res.runs[0].incomplete
    assert any("interrupted" in p for p in res.runs[0].problems)


def test_hosts_are_kept_apart_and_never_mixed(make_run):
    a = make_run("a", hostname="lab1")
    b = make_run("b", hostname="lab2")
    c = make_run("c", hostname="lab1")
    res = load([a, b, c])
    assert res.hosts() == ["lab1", "lab2"]
    assert {r.run_id for r in res.runs_of("lab1")} == {"a", "c"}
    assert require_single_host(res.for_host("lab2")) == "lab2"
    with pytest.raises(HostMixError, match="lab1, lab2"):
        require_single_host(res.samples)


def test_same_host_with_different_accelerators_is_split(make_run):
    a = make_run("a", accel="tcg")
    b = make_run("b", accel="kvm")
    res = load([a, b])
    assert res.hosts() == ["lab1 (tcg)", "lab1 (kvm)"]


def test_declared_kind_wins_and_unknown_names_are_kept_literal(make_run):
    path = make_run(evil=True)
    env = json.loads((path / "environment.json").read_text())
    assert env["host"]["hostname"].endswith("</script>")
    res = load([path])
    evil = res.samples[res.samples["backend"].str.contains("<script>")]
    assert set(evil["kind"]) == {"container"}
    assert res.hosts()[0] == "lab1<script>alert(3)</script>"


def test_harness_notes_are_shown(make_run):
    path = make_run(only_rows=("startup",))
    env = json.loads((path / "environment.json").read_text())
    env["notes"] = ["podman needs --ulimit nofile=1024:1024 here", None]
    (path / "environment.json").write_text(json.dumps(env))
    assert "note from the harness: podman needs --ulimit nofile=1024:1024 here" in load([path]).runs[0].problems


def test_rows_without_backend_or_metric_are_left_out(make_run):
    path = make_run(only_rows=("startup",))
    lines = resultgen.sample_lines(path)
    lines += [",,,,1.0,s,0,{},t", "x,container,boot,,1.0,s,0,{},t", "x,container,boot,startup.ready,1e400,s,0,{},t"]
    resultgen.write_sample_lines(path, lines)
    res = load([path])
    assert "" not in set(res.samples["backend"]) and "" not in set(res.samples["metric"])
    problems = " ".join(res.runs[0].problems)
    assert "2 sample(s) name no backend or no metric" in problems
    assert "1 sample(s) of startup.ready have no finite value" in problems  # 1e400 overflows to inf

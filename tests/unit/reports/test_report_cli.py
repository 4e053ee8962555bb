"""`virtlab report`: files written, the rich summary, docker-style exit codes on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reports.cli import report

VIRTLAB = Path(sys.executable).parent / "virtlab"


def test_report_writes_both_formats_and_prints_the_table(make_run, tmp_path):
    run = make_run()
    out = tmp_path / "out"
    result = CliRunner().invoke(report, [str(run), "--out", str(out)], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    text = result.output
    for word in ("Startup", "Disk use", "Performance", "Instances per host", "Isolation", "holds, with nuance",
                 "vm-micro (tcg)", str(out / "report.html"), str(out / "report.md")):
        assert word in text, word


def test_report_in_chinese(make_run, tmp_path):
    result = CliRunner().invoke(report, [str(make_run()), "--out", str(tmp_path / "o"), "--lang", "zh",
                                         "--format", "md"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "秒级" in result.output and "基本成立，但有前提" in result.output
    assert not (tmp_path / "o" / "report.html").exists()


def test_names_with_markup_are_printed_literally(make_run, tmp_path):
    result = CliRunner().invoke(report, [str(make_run(evil=True)), "--out", str(tmp_path / "o")],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<script>alert('x')</script>|pwn" in result.output


def _virtlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VIRTLAB), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/results"], "no such results directory: /nonexistent/results"),
        (["{run}", "--format", "pdf"], "unknown report format: pdf"),
        (["{run}", "--out", "{file}"], "it is a file, not a directory"),
        (["{bad}"], "missing columns"),
    ],
)
def test_bad_input_exits_125_with_a_clear_message(make_run, tmp_path, args, message):
    run = make_run()
    bad = make_run("bad")
    (bad / "samples.csv").write_text("run_id,backend\nx,y\n")
    afile = tmp_path / "afile"
    afile.write_text("")
    argv = [a.format(run=run, bad=bad, file=afile) for a in args]
    r = _virtlab("report", *argv)
    assert r.returncode == 125, r.stderr
    assert message in r.stderr
    assert not (run / "report.html").exists()


def test_no_directory_is_a_usage_error():
    r = _virtlab("report")
    assert r.returncode == 125
    assert "RESULTS_DIR" in r.stderr

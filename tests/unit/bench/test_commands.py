"""`virtlab bench` through the real console script: exit codes and the last line of stdout."""

import json
import subprocess
import sys
from pathlib import Path

VIRTLAB = str(Path(sys.executable).parent / "virtlab")


def vl(tmp_path, *args):
    return subprocess.run([VIRTLAB, "--root", str(tmp_path / "root"), "bench", *args], capture_output=True, text=True,
                          timeout=300)


def test_bad_suite_backend_workload_and_repeat_exit_125(tmp_path):
    for args, needle in [(["run", "--suite", "huge"], "huge"), (["run", "--backends", "xen"], "unknown backend"),
                         (["run", "--workloads", "nap"], "unknown workload"), (["run", "--repeat", "0"], "0"),
                         (["run", "--backends", ","], "no backend"), (["run", "--run-id", "../escape"], "invalid run id"),
                         (["run", "--order", "sideways"], "sideways"), (["run", "--seed", "x"], "x")]:
        r = vl(tmp_path, *args, "--out", str(tmp_path / "out"))
        assert r.returncode == 125, (args, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_run_prints_the_run_dir_last_and_ls_lists_it(tmp_path):
    r = vl(tmp_path, "run", "--backends", "native", "--workloads", "boot,cpu", "--repeat", "2", "--out",
           str(tmp_path / "out"), "--run-id", "cli-1", "--no-progress")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last == str(tmp_path / "out" / "cli-1")
    assert (Path(last) / "samples.csv").is_file()
    r2 = vl(tmp_path, "run", "--backends", "native", "--workloads", "boot", "--out", str(tmp_path / "out"),
            "--run-id", "cli-1")
    assert r2.returncode == 125 and "already exists" in r2.stderr
    ls = vl(tmp_path, "ls", "--out", str(tmp_path / "out"))
    assert "cli-1" in ls.stdout and "complete" in ls.stdout


def test_backends_lists_every_backend_with_a_reason(tmp_path):
    r = vl(tmp_path, "backends", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["name"] for x in rows] == ["native", "container", "vm-micro", "vm-full", "podman", "runc", "qemu-direct"]
    assert all(x["reason"] for x in rows)
    assert rows[0]["available"] is True


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = vl(tmp_path, "run", "--backends", "native", "--workloads", "boot", "--out", str(f))
    assert r.returncode == 125
    assert f.read_text() == "x"


def test_summary_table_survives_missing_values():
    from rich.console import Console

    from bench.commands import _fmt, print_summary

    rows = [{"metric": "startup.ready", "backend": "vm-micro", "n": 2, "median": 3.2, "ci_low": None, "ci_high": 4.0,
             "unit": "s", "outliers": [1], "cv": 0.3, "warnings": []},
            {"metric": "perf.cpu", "backend": "native", "n": 0, "median": None, "ci_low": None, "ci_high": None,
             "unit": "events/s", "outliers": [], "cv": None, "warnings": ["no valid measurement"]}]
    console = Console(record=True, width=120)
    print_summary(rows, console)
    text = console.export_text()
    assert "3.20 s" in text and "1 outlier(s)" in text and "CV 30%" in text
    assert _fmt(0.0123, "s") == "12.3 ms" and _fmt(3 * 1024 * 1024, "bytes") == "3.0 MiB" and _fmt(1, "bool") == "yes"
    assert _fmt(float("nan"), "s") == "-"

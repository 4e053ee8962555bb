"""hyperfine and the harness measure the same operations; their medians must agree (issue 7).

Timing comparisons, so they live in the bench tier (`make bench`), never in `make test`:
on a loaded shared host they need a quiet moment. `python -m bench.crosscheck` prints the same.
"""

import shutil

import pytest

from bench import crosscheck

pytestmark = [pytest.mark.bench, pytest.mark.root, pytest.mark.skipif(not shutil.which("hyperfine"), reason="requires hyperfine")]


def test_native_cpu_agrees_with_hyperfine(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    c = crosscheck.check_native_cpu(tmp_path / "root", work, runs=16, events=1000)
    assert c.harness_n == 16 and c.hyperfine_n == 16
    assert c.agrees, c.to_dict()


def test_runc_startup_agrees_with_hyperfine(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    c = crosscheck.check_runc_startup(tmp_path / "root", work, runs=16)
    assert c.agrees, c.to_dict()
    assert not (work / "crosscheck-bundle").exists()


def test_run_cmd_does_not_add_polling_latency():
    """The bug the cross-check found: subprocess.run(timeout=...) polls, adding up to 50 ms."""
    import time

    from bench.backends.base import run_cmd

    t0 = time.monotonic()
    for _ in range(20):
        run_cmd(["sleep", "0.011"], 10)
    per = (time.monotonic() - t0) / 20
    assert per < 0.011 + 0.008, per
    import subprocess

    with pytest.raises(subprocess.TimeoutExpired):
        run_cmd(["sleep", "5"], 0.2)


def test_podman_startup_agrees_with_hyperfine(tmp_path):
    import shutil as sh

    if not sh.which("podman"):
        pytest.skip("requires podman")
    work = tmp_path / "work"
    work.mkdir()
    c = crosscheck.check_podman_startup(tmp_path / "root", work, runs=16)
    assert c.agrees, c.to_dict()


def test_native_cpu_agrees_with_gnu_time(tmp_path):
    import os

    if not os.path.exists("/usr/bin/time"):
        pytest.skip("requires /usr/bin/time")
    work = tmp_path / "work"
    work.mkdir()
    c = crosscheck.check_native_cpu_time(tmp_path / "root", work, runs=10, events=5000)
    assert c.harness_n == 10 and c.hyperfine_n == 10
    assert c.agrees, c.to_dict()


def test_native_network_agrees_with_iperf3(tmp_path):
    if not shutil.which("iperf3"):
        pytest.skip("requires iperf3")
    work = tmp_path / "work"
    work.mkdir()
    c = crosscheck.check_native_network_iperf3(tmp_path / "root", work, runs=10, mb=256)
    assert c.agrees, c.to_dict()

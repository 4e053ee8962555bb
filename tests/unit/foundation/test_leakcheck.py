"""The leak check itself: a test that leaves something behind must fail, naming it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[2] / "conftest.py").read_text()


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("VIRTLAB_LEAKCHECK", "fail")
    pytester.makeconftest(CONFTEST)
    return pytester


def _kill_leftover(marker: str) -> None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            os.kill(int(pid), signal.SIGKILL)


def test_a_leaked_process_fails_the_test_that_leaked_it(inner):
    marker = f"virtlab-leak-{os.getpid()}"
    inner.makepyfile(
        test_leaky=f"""
import subprocess

def test_clean():
    pass

def test_leaks_a_process():
    subprocess.Popen(["bash", "-c", "exec -a {marker} sleep 30"])
"""
    )
    try:
        result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    finally:
        _kill_leftover(marker)
    result.assert_outcomes(passed=2, errors=1)
    out = result.stdout.str()
    assert "test_leaky.py::test_leaks_a_process left these behind" in out
    assert marker in out
    assert "test_clean left" not in out


def test_a_clean_test_session_passes(inner):
    inner.makepyfile(test_ok="def test_ok():\n    assert 1 + 1 == 2\n")
    inner.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)

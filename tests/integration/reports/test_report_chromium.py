"""The HTML report in a real browser: headless Chromium, no console errors, a non-blank page.

Chromium runs as root with --no-sandbox (these machines run tests as root), with its
profile, HOME and TMPDIR inside tmp_path, in its own process group that is killed after.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "reports"))

import resultgen  # noqa: E402

from reports.build import make_report  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="requires chromium (Debian package chromium)"),
]


def _group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes still in process group `pgid`."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            alive.append(int(entry))
    return alive


def run_chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on `url` and make sure none of its processes outlive the call."""
    work = tmp_path / "chromium"
    for sub in ("profile", "home"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    # Chromium's singleton socket lives in TMPDIR and a unix socket path must stay under 108
    # bytes, which pytest's tmp_path can exceed: use a short private folder, removed after.
    short_tmp = Path(tempfile.mkdtemp(prefix="vl-chr-"))
    env = {**os.environ, "HOME": str(work / "home"), "TMPDIR": str(short_tmp),
           "XDG_CONFIG_HOME": str(work / "home"), "XDG_CACHE_HOME": str(work / "home")}
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={work / 'profile'}", "--enable-logging=stderr", "--v=0", *extra, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(short_tmp, ignore_errors=True)
    assert not _group_alive(proc.pid), "chromium processes outlived the test"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def console_lines(stderr: str) -> list[str]:
    """Chromium's log lines for console messages (errors, CSP violations, exceptions)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def pixel_spread(png: Path) -> float:
    """Standard deviation of the screenshot's pixels: near 0 for a blank page."""
    import matplotlib.pyplot as plt

    img = plt.imread(io.BytesIO(png.read_bytes()), format="png")
    return float(np.std(img[..., :3]))


@pytest.fixture
def report_dir(tmp_path):
    results = tmp_path / "results"
    resultgen.write_run(results / "a", run_id="a", hostname="lab1", reps=6)
    resultgen.write_run(results / "b", run_id="b", hostname="lab2", accel="kvm", scale=0.5, seed=3,
                        evil=True, nonfinite=True, zero_ok_row="startup", incomplete=True)
    return results


def test_console_detection_works(tmp_path):
    page = tmp_path / "canary.html"
    page.write_text('<html><body><script>console.error("virtlab-canary")</script></body></html>')
    r = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("virtlab-canary" in line for line in console_lines(r.stderr)), r.stderr[-2000:]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_opens_without_console_errors_and_is_not_blank(tmp_path, report_dir, lang):
    out = tmp_path / f"report-{lang}"
    make_report([report_dir / "a", report_dir / "b"], out=out, formats="html", lang=lang)
    page = out / "report.html"
    shot = tmp_path / f"shot-{lang}.png"
    r = run_chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1300,3000",
                     "--hide-scrollbars")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_lines(r.stderr) == []
    assert shot.is_file() and pixel_spread(shot) > 0.05

    dom = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console_lines(dom.stderr) == []
    text = dom.stdout
    # the hostile names arrive as text, never as elements
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert('x')&lt;/script&gt;|pwn" in text
    assert "lab2&lt;script&gt;alert(3)&lt;/script&gt;" in text
    assert text.count("data:image/png;base64,") >= 10

"""The real `virtlab` launcher on `run` lines: output and exit codes, and that a plain line skips click.

The click-free path (bench.entry) and click's must be indistinguishable from outside except for
what the process imports, so this checks the outside on both kinds of line and, with
`python -X importtime`, that the plain ones really did not load click (behaviour, not timing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VIRTLAB = str(Path(sys.executable).parent / "virtlab")
NEVER_WITHOUT_NETWORK = ("pyroute2", "rich", "httpx", "pandas", "matplotlib", "libvirt", "jinja2", "psutil",
                         "zstandard", "socket", "shutil", "selectors", "datetime")


@pytest.fixture
def root(tmp_path):
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    root = tmp_path / "root"
    root.mkdir()
    build_busybox(ImageStore(root / "image"), ref="busybox:latest")
    yield root
    from runtime.engine import Engine

    eng = Engine(root)
    for c in eng.list(all=True):
        eng.remove(c.id, force=True, volumes=True)
    if (root / "network").is_dir():
        from runtime.network import NetworkManager

        NetworkManager(root / "network").teardown()


def virtlab(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([VIRTLAB, "--root", str(root), *args], capture_output=True, text=True, input=stdin,
                          timeout=120)


def imported(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the launcher under `python -X importtime`; its result and the modules it imported."""
    r = subprocess.run([sys.executable, "-SI", "-X", "importtime", VIRTLAB, "--root", str(root), *args],
                       capture_output=True, text=True, timeout=120)
    mods = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}
    return r, mods


@pytest.mark.parametrize("args, out, code", [
    (["run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 3"], "", 3),
    (["run", "--rm", "--network", "none", "-e", "A=1", "busybox", "sh", "-c", "echo $A"], "1\n", 0),
    (["run", "--rm", "--network=none", "-eA=2", "--env=B=3", "busybox", "sh", "-c", "echo $A$B"], "23\n", 0),
    (["run", "--rm", "--net", "none", "-w", "/etc", "busybox", "pwd"], "/etc\n", 0),
    (["run", "--rm", "--network", "none", "-u1:2", "busybox", "id", "-u"], "1\n", 0),
    (["run", "--rm", "--network", "none", "--entrypoint", "echo", "busybox", "-n", "x", "y"], "x y", 0),
    (["run", "--rm", "--network", "none", "--", "busybox", "sh", "-c", "echo $0", "--rm"], "--rm\n", 0),
    (["run", "--rm", "--network", "none", "busybox", "/no/such/command"], None, 127),
])
def test_plain_run_lines(root, args, out, code):
    r = virtlab(root, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    if out is not None:
        assert r.stdout == out


def test_stdin_with_i(root):
    r = virtlab(root, "run", "--rm", "-i", "--network", "none", "busybox", "cat", stdin="hello\n")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr


USAGE = "Usage: virtlab run [OPTIONS] IMAGE [COMMAND]...\nTry 'virtlab run --help' for help.\n\n"


@pytest.mark.parametrize("args, message", [
    (["run", "--bogus", "busybox", "true"], USAGE + "Error: No such option '--bogus'"),
    (["run", "--rm", "--network", "none", "--stop-timeout", "bad", "busybox", "true"],
     USAGE + "Error: Invalid value for '--stop-timeout': 'bad' is not a valid integer."),
    (["run", "--rm", "-p"], "Error: Option '-p' requires an argument.\n"),  # click prints no usage here
    (["run"], USAGE + "Error: Missing argument 'IMAGE'.\n"),
])
def test_lines_click_refuses_get_clicks_message_and_125(root, args, message):
    r = virtlab(root, *args)
    assert r.returncode == 125, (r.stdout, r.stderr)
    assert r.stderr.startswith(message)


def test_an_engine_error_is_125_with_its_message(root):
    r = virtlab(root, "run", "--rm", "--network", "none", "no-such-image", "true")
    assert r.returncode == 125
    assert r.stderr.startswith("Error: ") and "no-such-image" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_still_comes_from_click(root):
    r = virtlab(root, "run", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: virtlab run [OPTIONS] IMAGE [COMMAND]...")
    assert "--stop-timeout INTEGER" in r.stdout and "--sig-proxy / --no-sig-proxy" in r.stdout


@pytest.mark.parametrize("network", ["none", "bridge"])
def test_a_plain_run_does_not_import_click(root, network):
    r, mods = imported(root, "run", "--rm", "--network", network, "busybox", "sh", "-c", "echo ok")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout == "ok\n"
    assert "runtime.engine.engine" in mods  # this process ran the container
    assert "bench.entry" in mods
    assert not {m for m in mods if m == "click" or m.startswith("click.")}
    assert "bench.cli" not in mods
    if network == "none":  # as tests/integration/engine/test_run_path.py asks of click's path
        assert not sorted(m for m in mods if m.split(".")[0] in NEVER_WITHOUT_NETWORK)


def test_a_line_for_click_does_import_click(root):
    """The check above can fail: the same harness sees click where the line goes to click."""
    r, mods = imported(root, "run", "--rm", "--network", "none", "--bogus", "busybox", "true")
    assert r.returncode == 125
    assert "click" in mods and "bench.cli" in mods

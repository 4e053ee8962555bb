"""`virtlab run`'s process: what it loads, its output and its exit codes.

Behaviour, not timing: a `--network none` run loads none of the network libraries or the
report stack, and passes the container's output and exit code through.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VIRTLAB = str(Path(sys.executable).parent / "virtlab")
# Never in the process that runs a `--network none` container.
NEVER = ("pyroute2", "rich", "httpx", "pandas", "matplotlib", "libvirt", "jinja2", "psutil",
         "zstandard", "socket", "shutil", "selectors")

# Runs the CLI as the console script does, and records the modules of the process that ends
# with the container's exit code (the one the shell waits for) when it ends.
HARNESS = """
import json, os, sys
out, argv = sys.argv[1], sys.argv[2:]
me, real_exit = os.getpid(), os._exit
def _exit(code):
    if os.getpid() == me:
        with open(out, "w") as f:
            json.dump(sorted(sys.modules), f)
    real_exit(code)
os._exit = _exit
sys.argv = ["virtlab", *argv]
from bench.cli import main
main()
"""


def _run_recording(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, set]:
    out = tmp_path / "modules.json"
    r = subprocess.run([sys.executable, "-c", HARNESS, str(out), *args], capture_output=True, text=True,
                       env=env, timeout=120)
    return r, set(json.loads(out.read_text())) if out.exists() else set()


def test_the_run_process_loads_no_network_libraries(engine, store_root, tmp_path):
    r, mods = _run_recording(tmp_path, "--root", str(store_root), "run", "--rm", "--network", "none",
                             "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert mods, "the run process recorded nothing"
    assert "runtime.engine.engine" in mods  # it is the process that ran the container
    loaded = sorted(m for m in mods if m.split(".")[0] in NEVER)
    assert loaded == []
    assert engine.list(all=True) == []  # --rm removed it


@pytest.mark.parametrize("args, code", [
    (["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo hi; exit 7"], 7),
    (["run", "--rm", "--network", "none", "busybox", "/no/such/command"], 127),
    (["run", "--rm", "--network", "none", "no-such-image", "true"], 125),
    (["run", "--no-such-flag", "busybox", "true"], 125),
    (["run"], 125),
    (["run", "--help"], 0),
    (["run", "--rm", "--network", "none", "--memory", "bogus", "busybox", "true"], 125),
])
def test_run_exit_codes(engine, store_root, args, code):
    r = subprocess.run([VIRTLAB, "--root", str(store_root), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == code, (r.stdout, r.stderr)
    if code == 7:
        assert r.stdout == "hi\n"
    assert engine.list(all=True) == []


def test_run_detached_prints_the_id_and_the_container_runs(engine, store_root):
    r = subprocess.run([VIRTLAB, "--root", str(store_root), "run", "-d", "--network", "none", "busybox",
                        "sleep", "30"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    assert engine.record(cid)["State"]["Status"] == "running"

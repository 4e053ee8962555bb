"""`virtlab run`'s process: what it loads, and the parse-in-a-child handoff (runtime.cli.handoff).

Behaviour, not timing: the process that runs the container never loads click, the network
libraries or the report stack, and the handoff gives the same output and exit codes as the
ordinary in-process path (VIRTLAB_HANDOFF=0).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

VIRTLAB = str(Path(sys.executable).parent / "virtlab")
# Never in the process that runs a `--network none` container.
NEVER = ("click", "pyroute2", "rich", "httpx", "pandas", "matplotlib", "libvirt", "jinja2", "psutil",
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


def test_the_run_process_loads_no_click_and_no_network_libraries(engine, store_root, tmp_path):
    r, mods = _run_recording(tmp_path, "--root", str(store_root), "run", "--rm", "--network", "none",
                             "busybox", "sh", "-c", "echo out; echo err >&2; exit 3",
                             env=dict(os.environ, VIRTLAB_HANDOFF="1"))  # whatever the host's load
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert mods, "the run process recorded nothing"
    assert "runtime.engine.engine" in mods  # it is the process that ran the container
    loaded = sorted(m for m in mods if m.split(".")[0] in NEVER)
    assert loaded == []
    assert engine.list(all=True) == []  # --rm removed it


def test_without_handoff_the_same_run_loads_click(engine, store_root, tmp_path):
    env = dict(os.environ, VIRTLAB_HANDOFF="0")
    r, mods = _run_recording(tmp_path, "--root", str(store_root), "run", "--rm", "--network", "none",
                             "busybox", "true", env=env)
    assert r.returncode == 0, r.stderr
    assert "click" in mods  # one process parsed and ran: that click stays out is the handoff's doing
    loaded = sorted(m for m in mods if m.split(".")[0] in NEVER and m.split(".")[0] != "click")
    assert loaded == []  # the rest holds in one process too


@pytest.mark.parametrize("args, code", [
    (["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo hi; exit 7"], 7),
    (["run", "--rm", "--network", "none", "busybox", "/no/such/command"], 127),
    (["run", "--rm", "--network", "none", "no-such-image", "true"], 125),
    (["run", "--no-such-flag", "busybox", "true"], 125),
    (["run"], 125),
    (["run", "--help"], 0),
    (["run", "--rm", "--network", "none", "--memory", "bogus", "busybox", "true"], 125),
])
def test_handoff_and_in_process_runs_agree(engine, store_root, args, code):
    results = []
    for handoff in ("1", "0"):
        env = dict(os.environ, VIRTLAB_HANDOFF=handoff)
        r = subprocess.run([VIRTLAB, "--root", str(store_root), *args], capture_output=True, text=True, env=env,
                           timeout=120)
        ids = re.compile(r"\b[0-9a-f]{12}\b")  # each run makes its own container
        results.append((r.returncode, ids.sub("ID", r.stdout), ids.sub("ID", r.stderr)))
    assert results[0][0] == code, results[0]
    assert results[0] == results[1]
    assert engine.list(all=True) == []


def test_handoff_run_detached_prints_the_id_and_the_container_runs(engine, store_root):
    r = subprocess.run([VIRTLAB, "--root", str(store_root), "run", "-d", "--network", "none", "busybox",
                        "sleep", "30"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    assert engine.record(cid)["State"]["Status"] == "running"


def test_parameters_that_cannot_be_handed_over_run_in_the_parser(engine, store_root):
    """A parameter marshal cannot carry (a future option type): the parser runs it, the parent follows."""
    code = (
        "import sys\n"
        f"sys.argv = ['virtlab', '--root', {str(store_root)!r}, 'run', '--rm', '--network', 'none', 'busybox',"
        " 'sh', '-c', 'echo from-parser; exit 4']\n"
        "import runtime.cli.handoff as h\n"
        "send = h.send\n"
        "h.send = lambda p: send(dict(p, o=dict(p['o'], unmarshallable=object())))\n"
        "from bench.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, VIRTLAB_HANDOFF="1"))
    assert (r.returncode, r.stdout) == (4, "from-parser\n"), r.stderr
    assert engine.list(all=True) == []

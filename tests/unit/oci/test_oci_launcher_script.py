"""`virtlab-runtime install-launcher`: the lean -SI script, and cli.run() (exit without teardown)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[3])
RUNTIME = [sys.executable, "-c", "import sys; from runtime.oci.cli import main; sys.exit(main())"]


def _launcher(tmp_path) -> str:
    dest = str(tmp_path / "vlrt")
    subprocess.run(RUNTIME + ["install-launcher", dest], check=True)
    return dest


def test_launcher_is_an_isolated_executable_script(tmp_path):
    dest = _launcher(tmp_path)
    assert os.access(dest, os.X_OK)
    first = open(dest).readline()
    assert first.startswith("#!/") and first.rstrip().endswith(" -SI")
    assert not os.path.exists(dest + ".tmp")


def test_launcher_output_is_flushed_through_a_pipe(tmp_path):
    out = subprocess.run([_launcher(tmp_path), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("virtlab-runtime version ")
    out = subprocess.run([_launcher(tmp_path), "--root", str(tmp_path / "state"), "list"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_launcher_errors_keep_runc_exit_codes(tmp_path):
    out = subprocess.run([_launcher(tmp_path), "--root", str(tmp_path / "state"), "state", "nope"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 125 and "container nope does not exist" in out.stderr
    out = subprocess.run([_launcher(tmp_path), "frobnicate"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 125 and "unknown command" in out.stderr


def test_launcher_imports_no_heavy_modules(tmp_path):
    """The start path stays lean: no re, enum, signal package, json package or typing."""
    probe = tmp_path / "probe.py"
    state_dir = str(tmp_path / "state")
    probe.write_text(
        f"import sys\nsys.path.insert(0, {REPO!r})\nsys.argv = ['x', '--root', {state_dir!r}, 'state', 'nope']\n"
        "from runtime.oci import cli\ncode = cli.main()\n"
        "import runtime.oci.create, runtime.oci.runner, runtime.oci.cgroups\n"
        "print(sorted(m for m in ('re', 'enum', 'signal', 'json', 'typing', 'math') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-SI", str(probe)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

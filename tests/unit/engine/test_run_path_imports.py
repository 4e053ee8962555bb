"""`virtlab run` loads neither `typing` nor `dataclasses` (nor `inspect`, which dataclasses pulls in).

Both are ~7-10 ms of a ~60 ms `run --rm`. A fresh `python -SI -X importtime` does what the
launcher's click-free path does up to the container work (bench.entry.parse, runcore.spec,
spec.normalise, an Engine over an empty store) and imports the modules the rest of a
`run --rm --network none` loads (the list is from `-X importtime` of the real launcher; the root
test below runs that launcher itself). Checks what is imported, never how long it takes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
NEVER = ("typing", "dataclasses", "inspect")
# What a `run --rm --network none` imports after runtime.cli.runcore (runcore.run and the engine
# import them inside functions).
LATER = (
    "runtime.engine.engine", "runtime.image.store", "runtime.engine.volumes", "runtime.engine.attach",
    "runtime.engine.launcher", "runtime.oci.api", "runtime.engine.network", "runtime.oci.cgroups.base",
    "runtime.oci.cgroups.hierarchy", "runtime.oci.paths", "runtime.image.rootpath",
)
CHILD = """
import sys
sys.path[0:0] = [{repo!r}]
import bench.entry
root, params = bench.entry.parse(["--root", sys.argv[1], "run", "--rm", "--network", "none", "-v", "/srv:/srv:ro",
                                  "--restart", "no", "--memory", "64m", "busybox", "true"])
from runtime.cli import runcore
o = dict(params)
spec = runcore.spec(o.pop("image"), o.pop("command"), o)
from runtime.engine import spec as specmod
specmod.normalise(spec)
runcore.engine(root)
for name in {later!r}:
    __import__(name)
"""


def imported(*argv: str) -> set[str]:
    """The modules a fresh `python -SI -X importtime ARGV` imported (it must succeed)."""
    r = subprocess.run([sys.executable, "-SI", "-X", "importtime", *argv], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def test_run_path_imports_no_typing_or_dataclasses(tmp_path):
    mods = imported("-c", CHILD.format(repo=str(REPO), later=LATER), str(tmp_path / "root"))
    assert "runtime.engine.spec" in mods and "runtime.oci.api" in mods  # it did load the run path
    assert not mods & set(NEVER), sorted(mods & set(NEVER))


@pytest.mark.root
def test_real_launcher_imports_no_typing_or_dataclasses(tmp_path):
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    root = tmp_path / "root"
    root.mkdir()
    build_busybox(ImageStore(root / "image"), ref="busybox:latest")
    launcher = str(Path(sys.executable).parent / "virtlab")
    mods = imported(launcher, "--root", str(root), "run", "--rm", "--network", "none", "busybox", "true")
    assert "runtime.engine.launcher" in mods
    assert not mods & set(NEVER), sorted(mods & set(NEVER))

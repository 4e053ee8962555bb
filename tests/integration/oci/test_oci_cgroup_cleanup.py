"""A create or run that fails after the cgroup was made must remove the cgroup (no leaked directories)."""

from __future__ import annotations

import glob
import os

import pytest

pytestmark = pytest.mark.root

CG = "/sys/fs/cgroup"


def _leftovers(name: str) -> list[str]:
    """Every cgroup directory called NAME under virtlab-leak/ in any hierarchy (v1, hybrid or v2)."""
    return glob.glob(f"{CG}/virtlab-leak/{name}") + glob.glob(f"{CG}/*/virtlab-leak/{name}")


@pytest.fixture
def cgname(request, rt):
    """A unique cgroup leaf name; the leaf and its virtlab-leak/ parents are removed even if the test fails."""
    name = f"{request.node.name[:40]}-{os.getpid()}"
    yield name
    rt.cleanup()  # a container that was (wrongly) created must go before its cgroup can
    for path in sorted(_leftovers(name), key=len, reverse=True):
        os.rmdir(path)
    for parent in glob.glob(f"{CG}/virtlab-leak") + glob.glob(f"{CG}/*/virtlab-leak"):
        try:
            os.rmdir(parent)
        except OSError:
            pass  # another test's leaf is still there


def _with_cgroup(name, extra=None):
    def mutate(c):
        c["linux"]["cgroupsPath"] = f"/virtlab-leak/{name}"
        c["linux"]["resources"]["pids"] = {"limit": 100}
        if extra:
            extra(c)
    return mutate


def test_failing_create_runtime_hook_removes_the_cgroup(rt, bundle, cgname):
    b = bundle(["true"], resources=True, mutate=_with_cgroup(
        cgname, lambda c: c.update(hooks={"createRuntime": [{"path": "/bin/false"}]})))
    r = rt("create", "-b", b, "hookfail")
    assert r.returncode == 125 and "createRuntime hook #0" in r.stderr
    assert _leftovers(cgname) == []
    assert os.listdir(rt.root) == []


def test_init_failure_removes_the_cgroup(rt, bundle, cgname):
    b = bundle(["true"], resources=True,
               mutate=_with_cgroup(cgname, lambda c: c["process"].update(cwd="/does/not/exist")))
    r = rt("create", "-b", b, "cwdfail")
    assert r.returncode != 0 and "cwd" in r.stderr
    assert _leftovers(cgname) == []
    assert os.listdir(rt.root) == []


def test_run_of_a_missing_program_removes_the_cgroup(rt, bundle, cgname):
    b = bundle(["/no/such/program"], resources=True, mutate=_with_cgroup(cgname))
    r = rt("run", "-b", b, "execfail")
    assert r.returncode == 127 and "no such file or directory" in r.stderr.lower()
    assert _leftovers(cgname) == []
    assert os.listdir(rt.root) == []


def test_invalid_resources_remove_the_cgroup(rt, bundle, cgname):
    b = bundle(["true"], resources=True,
               mutate=_with_cgroup(cgname, lambda c: c["linux"]["resources"].update(pids={"limit": 0})))
    r = rt("create", "-b", b, "badres")
    assert r.returncode == 125 and "pids.limit 0" in r.stderr
    assert _leftovers(cgname) == []
    assert os.listdir(rt.root) == []

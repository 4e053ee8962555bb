"""`virtlab vm` flags and exit codes, against libvirt's test driver (no boots)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmdriver.cli import parse_memory
from vmdriver.errors import InvalidSpec

VIRTLAB = str(Path(sys.executable).parent / "virtlab")


@pytest.mark.parametrize("text,mib", [("128", 128), ("128m", 128), ("128MiB", 128), ("1g", 1024), ("2G", 2048),
                                      ("65536k", 64), ("1048576b", 1)])
def test_parse_memory(text, mib):
    assert parse_memory(text) == mib


@pytest.mark.parametrize("text", ["", "abc", "-1m", "1.5g", "100k", "12t"])
def test_parse_memory_rejects(text):
    with pytest.raises(InvalidSpec):
        parse_memory(text)


def _vl(tmp_path, *args):
    env = dict(os.environ, VIRTLAB_LIBVIRT_URI="test:///default", VIRTLAB_ACCEL="tcg")
    return subprocess.run([VIRTLAB, "--root", str(tmp_path / "root"), "vm", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--name", "a/b", "busybox", "true"], "invalid VM name"),
        (["create", "--name", "x<y>", "busybox"], "invalid VM name"),
        (["run", "--memory", "lots", "busybox"], "invalid memory size"),
        (["run", "--cpus", "0", "busybox"], "cpus"),
        (["run", "--profile", "huge", "busybox"], "huge"),
        (["start", "nosuch"], "no such VM: nosuch"),
        (["exec", "nosuch", "true"], "no such VM: nosuch"),
        (["rm", "nosuch"], "no such VM: nosuch"),
        (["run", "--disk", "/dev/null", "--name", "d1", "busybox"], "not a regular file"),
        (["run", "--profile", "full", "debian"], "use -d"),
        (["run", "-d", "--rm", "busybox"], "--rm and -d"),
    ],
)
def test_errors_exit_125_with_a_message(tmp_path, args, message):
    r = _vl(tmp_path, *args)
    assert r.returncode == 125, r.stderr
    assert message in r.stderr
    vms = tmp_path / "root" / "vm" / "vms"
    assert not vms.exists() or list(vms.iterdir()) == []


def test_ps_on_an_empty_store(tmp_path):
    r = _vl(tmp_path, "ps", "-a")
    assert r.returncode == 0 and r.stdout.split()[:2] == ["NAME", "STATE"]
    r = _vl(tmp_path, "ps", "--format", "json")
    assert r.returncode == 0 and r.stdout.strip() == "[]"


def test_rm_force_of_a_missing_vm_is_fine(tmp_path):
    assert _vl(tmp_path, "rm", "-f", "ghost").returncode == 0

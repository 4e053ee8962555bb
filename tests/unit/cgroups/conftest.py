"""Fixtures of the cgroup manager's unit tests: a fake cgroupfs (see cgfake.py) and a fixed host."""

from __future__ import annotations

import os
import posix
from pathlib import Path

import pytest
from cgfake import V2_FILES, FakeCgroupFS


@pytest.fixture
def fakefs(tmp_path, monkeypatch):
    """A factory: fakefs("v2") -> FakeCgroupFS whose mkdirs behave like cgroupfs."""
    made: list[FakeCgroupFS] = []
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        for fs in made:
            if str(path).startswith(str(fs.root) + "/"):
                fs.populate(str(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(posix, "mkdir", mkdir)  # the cgroup helpers call posix (no os on delete's path)
    real_rmdir = os.rmdir

    def rmdir(path, *args, **kwargs):
        # cgroupfs removes a directory that holds only control files (no child cgroups).
        if any(str(path).startswith(str(fs.root) + "/") for fs in made) and os.path.isdir(path):
            procs = Path(path, "cgroup.procs")
            if procs.exists() and procs.read_text().strip():
                raise OSError(16, "Device or resource busy", str(path))
            if not any(e.is_dir() for e in os.scandir(path)):
                for e in os.scandir(path):
                    os.unlink(e.path)
        real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    monkeypatch.setattr(posix, "rmdir", rmdir)

    from runtime.oci.cgroups import files

    real_write = files.write

    def write(path, value):
        # cgroup.subtree_control takes "+c -d" requests and adds the files to the children.
        if os.path.basename(path) == "cgroup.subtree_control" and any(str(path).startswith(str(fs.root)) for fs in made):
            real_write(path, "")  # fails like the real one when the file is missing
            current = set(FakeCgroupFS.read(path + ".state").split()) if os.path.exists(path + ".state") else set()
            for word in str(value).split():
                (current.add if word[0] == "+" else current.discard)(word[1:])
            text = " ".join(sorted(current))
            Path(path).write_text(text)
            Path(path + ".state").write_text(text)
            parent = os.path.dirname(path)
            for entry in os.scandir(parent):
                if entry.is_dir():
                    for c in current:
                        for name, content in V2_FILES.get(c, {}).items():
                            f = Path(entry.path) / name
                            if not f.exists():
                                f.write_text(content)
                    Path(entry.path, "cgroup.controllers").write_text(text)
            return
        real_write(path, value)

    monkeypatch.setattr(files, "write", write)
    # The fake tree is not where this process lives: relative paths start at the top.
    monkeypatch.setattr("runtime.oci.cgroups.hierarchy.own_cgroups", lambda pid="self": {})

    def factory(mode: str, **kwargs) -> FakeCgroupFS:
        fs = FakeCgroupFS(tmp_path / f"cgroup-{mode}-{len(made)}", mode, **kwargs)
        made.append(fs)
        return fs

    return factory


@pytest.fixture
def record_writes(monkeypatch):
    """Call it to start recording every control-file write as (file name, value); it returns the list."""

    def start() -> list[tuple[str, str]]:
        from runtime.oci.cgroups import files

        written: list[tuple[str, str]] = []
        real = files.write

        def write(path, value):
            written.append((os.path.basename(path), str(value)))
            real(path, value)

        monkeypatch.setattr(files, "write", write)
        return written

    return start


@pytest.fixture
def fail_writes(monkeypatch):
    """Call it with ``when(path, value)`` and a reason: matching control-file writes then fail as the kernel's would."""

    def install(when, reason: str) -> None:
        from runtime.oci.cgroups import files
        from runtime.oci.cgroups.errors import CgroupError

        real = files.write

        def write(path, value):
            if when(path, value):
                raise CgroupError(f"cannot write {value!r} to {path}: {reason}")
            real(path, value)

        monkeypatch.setattr(files, "write", write)

    return install


@pytest.fixture(autouse=True)
def host(monkeypatch):
    """Managers see a fixed host: 2 CPUs, one memory node, 2MB and 1GB huge pages."""
    from runtime.oci.cgroups.resources import HostFacts

    facts = HostFacts(cpus=frozenset({0, 1}), mems=frozenset({0}), hugepage_sizes=frozenset({"2MB", "1GB"}))
    monkeypatch.setattr(HostFacts, "from_system", classmethod(lambda cls, sysfs="/sys": facts))
    return facts


"""Fixtures of the cgroup integration tests: managers and children that are always cleaned up."""

from __future__ import annotations

import signal

import pytest
from cgtools import Child, unique_id

from runtime.oci.cgroups import CgroupError, open_manager


@pytest.fixture
def cg():
    """Factory: cg(cgroups_path=None, root=...) -> manager; kills, reaps and removes everything after."""
    managers = []
    children: list[Child] = []

    class Factory:
        def __call__(self, cgroups_path=None, root="/sys/fs/cgroup", container_id=None):
            mgr = open_manager(cgroups_path, container_id or unique_id(), root=root)
            managers.append(mgr)
            return mgr

        def child(self, mgr, argv) -> Child:
            c = Child(argv)
            children.append(c)
            mgr.add(c.pid)
            return c

    yield Factory()
    # Every step runs even when an earlier one fails, so a broken test still removes its cgroups.
    errors = []
    for mgr in managers:
        for step in (mgr.thaw, lambda m=mgr: m.kill_all(signal.SIGKILL)):
            try:
                step()
            except CgroupError:
                pass
    for c in children:
        try:
            c.stop()
        except Exception as exc:  # cleanup must go on
            errors.append(exc)
    for mgr in managers:
        try:
            mgr.destroy()
        except CgroupError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]

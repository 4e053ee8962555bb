"""What a CLI killed half-way leaves is found and removed by the ordinary commands (ps -a, create, rm)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time

import pytest

from runtime.engine import ContainerSpec
from runtime.engine.errors import NoSuchContainer
from runtime.engine.names import new_id

pytestmark = pytest.mark.root


def _half_made(engine, name: str, image_id: str) -> str:
    """A container directory as a create killed after its name and hold (before its record) leaves it."""
    engine.store.ensure()
    cid = new_id()
    cdir = engine.store.path(cid)
    cdir.mkdir(mode=0o700)
    (cdir / "lock").touch()
    for d in ("upper", "work", "merged"):
        (cdir / d).mkdir()
    engine.store.reserve_name(name, cid)
    (cdir / "image").write_text(image_id)
    engine.images.hold(image_id, f"container:{cid}")
    return cid


def test_a_killed_create_is_swept_and_its_name_hold_freed(engine, image_store):
    img = image_store.resolve("busybox")
    cid = _half_made(engine, "half", img.id)
    assert engine.list(all=True) == []  # ps -a sweeps it
    assert not engine.store.path(cid).exists()
    assert engine.store.name_owner("half") is None
    assert image_store.holders(img.id) == []


def test_create_takes_a_name_a_killed_create_left(engine, image_store):
    cid = _half_made(engine, "taken", image_store.resolve("busybox").id)
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", name="taken"))
    assert engine.store.name_owner("taken") == c.id
    assert not engine.store.path(cid).exists()


def test_a_create_in_progress_is_left_alone(engine, image_store):
    cid = _half_made(engine, "busy", image_store.resolve("busybox").id)
    fd = os.open(engine.store.path(cid) / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # its create still runs
    try:
        engine.list(all=True)
        with pytest.raises(Exception, match="already in use"):
            engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", name="busy"))
        assert engine.store.path(cid).exists() and engine.store.name_owner("busy") == cid
    finally:
        os.close(fd)
    engine.list(all=True)
    assert not engine.store.path(cid).exists()


def test_a_new_container_dir_is_never_seen_unlocked(engine):
    """A create's directory appears in containers/ with its lock already held: a sweep never takes it."""
    cid = new_id()
    with engine.store.creating(cid) as cdir:
        assert cdir == engine.store.path(cid) and cdir.is_dir()
        assert engine.store.try_lock(cdir) is None
        assert engine.sweep() == []
        assert cdir.is_dir()
    assert engine.sweep() == [cid]  # no record was written: a leftover once the lock is free


def test_creates_racing_sweeps_all_succeed(engine):
    """Eight-CLI load once lost creates: a sweep took the dir between its mkdir and its lock."""
    stop = threading.Event()

    def sweeper():
        while not stop.is_set():
            engine.sweep()

    t = threading.Thread(target=sweeper)
    t.start()
    try:
        ids = [engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none")).id for _ in range(20)]
    finally:
        stop.set()
        t.join()
    assert sorted(engine.store.ids()) == sorted(ids)
    for cid in ids:
        engine.remove(cid)


def test_a_verb_waiting_on_a_removed_container_finds_it_gone(engine):
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none"))
    entered = threading.Event()
    outcome = []

    def second():
        entered.set()
        try:
            with engine.store.locked(c.id):
                outcome.append("locked")
        except NoSuchContainer:
            outcome.append("gone")

    with engine.store.locked(c.id):
        t = threading.Thread(target=second)
        t.start()
        entered.wait()
        time.sleep(0.2)  # the second verb now waits in flock on the same lock file
        trash = engine.store.scratch / f"rm-{c.id}"
        engine.store.ensure()
        os.rename(engine.store.path(c.id), trash)  # what rm does under the lock
    t.join()
    assert outcome == ["gone"]
    engine.sweep()


def test_rm_leaves_nothing_in_scratch_and_stale_scratch_is_swept(engine):
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none"))
    engine.remove(c.id)
    assert os.listdir(engine.store.scratch) == []
    # what an rm and a commit killed half-way leave there
    trash = engine.store.scratch / f"rm-{new_id()}"
    (trash / "upper").mkdir(parents=True)
    (trash / "lock").touch()  # rm renames the container's dir, its lock with it
    (engine.store.scratch / "commit-1-abcd.tar").write_bytes(b"x" * 1024)
    locked = engine.store.scratch / "commit-2-ef01.tar"
    locked.write_bytes(b"")
    fd = os.open(locked, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a commit that still runs
    try:
        engine.list(all=True)
        assert os.listdir(engine.store.scratch) == ["commit-2-ef01.tar"]
    finally:
        os.close(fd)
    engine.sweep()
    assert os.listdir(engine.store.scratch) == []


def test_an_interrupted_start_is_undone(engine):
    """created, not finalized, nobody holds the lock: the start's CLI died; its netns and mounts go."""
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none"))
    from runtime.engine import launcher

    rec = engine.store.load(c.id)
    launcher.prepare_bundle(engine, rec)  # what a start does before the runtime: rootfs, netns
    rec["Finalized"] = False
    engine.store.save(rec)
    netns = f"/run/netns/vl-{c.id[:12]}"
    assert os.path.exists(netns) and os.path.ismount(engine.store.path(c.id) / "merged")
    st = engine.inspect(c.id)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 128 and "interrupted" in st["Error"]
    assert not os.path.exists(netns) and not os.path.ismount(engine.store.path(c.id) / "merged")
    assert json.loads((engine.store.path(c.id) / "record.json").read_text())["Finalized"] is True
    engine.start(c.id)
    assert engine.wait(c.id) == 0

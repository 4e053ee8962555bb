"""A container pins its image in the image store: holder "container:<id>", and no hold, no container."""

from __future__ import annotations

import os
import shutil

import pytest

from runtime.engine import ContainerSpec
from runtime.engine.errors import EngineError

pytestmark = pytest.mark.root


def test_create_holds_the_image_and_rm_releases_it(engine, image_store):
    img = image_store.resolve("busybox")
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", name="holder"))
    assert image_store.holders(img.id) == [f"container:{c.id}"]
    with pytest.raises(Exception, match=c.id[:12]):
        image_store.remove(img)
    engine.remove(c.id)
    assert image_store.holders(img.id) == []


def test_a_hold_that_fails_fails_the_create_and_leaves_nothing(engine, image_store):
    img = image_store.resolve("busybox")
    hold_dir = image_store.hold_dir
    shutil.rmtree(hold_dir, ignore_errors=True)
    hold_dir.write_bytes(b"")  # a file where the holds folder should be: every hold fails
    try:
        with pytest.raises(EngineError, match="cannot hold image") as exc:
            engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", name="noheld"))
        assert exc.value.exit_code == 125
        assert engine.list(all=True) == []
        assert engine.store.name_owner("noheld") is None
        assert [n for n in os.listdir(engine.root / "containers") if not n.startswith(".")
                and os.path.isdir(engine.root / "containers" / n) and len(n) == 64] == []
    finally:
        hold_dir.unlink()
        hold_dir.mkdir(mode=0o700)
    assert image_store.holders(img.id) == []

"""Fixtures for the engine's root tests: a fresh store with a busybox image, and an Engine on it.

The image is built by runtime.image offline from the host's busybox-static, in the test's own store.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _real_store(root: Path):
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    store = ImageStore(root / "image")
    build_busybox(store, ref="busybox:latest")
    return store


@pytest.fixture
def store_root(tmp_path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    yield root
    # last, after the containers are gone: the store's bridges, veths and firewall table
    if (root / "network").is_dir():
        from runtime.network import NetworkManager

        NetworkManager(root / "network").teardown()


@pytest.fixture
def image_store(store_root):
    return _real_store(store_root)


@pytest.fixture
def engine(store_root, image_store):
    from runtime.engine import Engine

    eng = Engine(store_root, image_store=image_store)
    yield eng
    for c in eng.list(all=True):
        try:
            eng.remove(c.id, force=True, volumes=True)
        except Exception as exc:  # noqa: BLE001 - keep cleaning; the leak check reports the rest
            print(f"cleanup of {c.id[:12]} failed: {exc}")

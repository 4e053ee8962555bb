"""Fixtures for image tests: a fake host tree with sentinels, and fresh stores below it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.image.limits import Limits
from runtime.image.store import ImageStore


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A fake host tree with sentinels that escapes would hit: host/etc/unbroken, host/root/.ssh."""
    h = tmp_path / "host"
    (h / "etc").mkdir(parents=True)
    (h / "etc" / "unbroken").write_text("unbroken\n")
    (h / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (h / "root" / ".ssh").mkdir(parents=True)
    (h / "root" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA owner\n")
    os.chmod(h / "etc" / "passwd", 0o644)
    return h


@pytest.fixture
def store(host: Path) -> ImageStore:
    """A fresh store deep below the fake host, so `../../..` escapes would land in it."""
    return ImageStore(host / "var" / "lib" / "virtlab" / "image", limits=Limits())


@pytest.fixture
def small_store(host: Path) -> ImageStore:
    """A store with tiny limits, to exercise them cheaply."""
    limits = Limits(max_layer_bytes=1 << 20, max_blob_bytes=1 << 20, max_entries=50, max_path_bytes=200,
                    max_depth=20, max_json_bytes=64 << 10, max_header_bytes=4096)
    return ImageStore(host / "var" / "lib" / "virtlab" / "image", limits=limits)

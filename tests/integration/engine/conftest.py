"""Fixtures for the engine's root tests: a fresh store with a busybox image, and an Engine on it.

The image comes from runtime.image (built offline from the host's busybox-static) when that
package is available; until then from a one-layer store kept in the test's own directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def make_busybox_rootfs(dest: Path) -> None:
    """A minimal busybox rootfs: /bin/busybox plus its applet links, /etc/passwd and /etc/group."""
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "home"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", dest / "bin" / a)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")


@dataclass
class _Image:
    id: str
    config: dict
    layers: list = field(default_factory=list)


class DirImageStore:
    """A one-image store over a directory (only used while runtime.image is not available)."""

    def __init__(self, rootfs: Path):
        self.rootfs = rootfs
        cfg = {"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
               "rootfs": {"type": "layers", "diff_ids": []}}
        self.image = _Image("sha256:" + hashlib.sha256(json.dumps(cfg).encode()).hexdigest(), cfg)
        self.holds: set[tuple[str, str]] = set()

    def resolve(self, ref: str) -> _Image:
        if ref in ("busybox", "busybox:latest") or (ref.startswith("sha256:") and self.image.id.startswith(ref)):
            return self.image
        from runtime.engine.errors import ImageUnavailable

        raise ImageUnavailable(f"unable to find image '{ref}' locally")

    def snapshot_dirs(self, img: _Image) -> list[Path]:
        return [self.rootfs]

    def hold(self, image_id: str, holder: str) -> None:
        self.holds.add((image_id, holder))

    def release(self, image_id: str, holder: str) -> None:
        self.holds.discard((image_id, holder))


def _real_store(root: Path):
    try:
        from runtime.image.build import build_busybox
        from runtime.image.store import ImageStore
    except ImportError:
        return None
    store = ImageStore(root / "image")
    build_busybox(store, ref="busybox:latest")
    return store


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("busybox") / "rootfs"
    make_busybox_rootfs(d)
    return d


@pytest.fixture
def store_root(tmp_path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def image_store(store_root, busybox_rootfs):
    return _real_store(store_root) or DirImageStore(busybox_rootfs)


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

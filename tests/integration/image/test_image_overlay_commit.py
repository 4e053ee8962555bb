"""Snapshots as real overlayfs lowerdirs, and a container-style upper dir committed back as a layer (case 52)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile

import pytest

from runtime.image import diff
from runtime.image.build import build_busybox
from runtime.image.store import ImageStore

pytestmark = pytest.mark.root


def _layer(*files: tuple[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data.encode()))
    return buf.getvalue()


@pytest.fixture
def mounted(tmp_path):
    """Mount overlays and always unmount them."""
    mounts = []

    def mount(lowers, upper, work, target):
        target.mkdir(parents=True, exist_ok=True)
        opts = f"lowerdir={':'.join(str(p) for p in reversed(lowers))},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
        mounts.append(target)
        return target

    yield mount
    for m in reversed(mounts):
        subprocess.run(["umount", str(m)], check=False)


def test_overlay_of_snapshots_then_commit(tmp_path, mounted):
    store = ImageStore(tmp_path / "image")
    base = build_busybox(store)
    two = store.commit(base, io.BytesIO(_layer(("app/config", "v1"), ("app/data/keep", "k"), ("etc/motd", "hi"))),
                       "two:1")
    three = store.commit(two, io.BytesIO(_layer(("etc/.wh.motd", ""), ("app/data/.wh..wh..opq", ""),
                                                ("app/data/new", "n"))), "three:1")
    lowers = store.snapshot_dirs(three)
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    root = mounted(lowers, upper, work, tmp_path / "merged")
    # The image as a container sees it: whiteouts and the opaque dir are honoured by the kernel.
    assert (root / "bin" / "busybox").is_file()
    assert not (root / "etc" / "motd").exists()
    assert sorted(os.listdir(root / "app" / "data")) == ["new"]
    assert (root / "app" / "config").read_text() == "v1"
    # Now change things as a container would.
    (root / "app" / "config").write_text("v2")
    os.unlink(root / "etc" / "passwd")
    subprocess.run(["rm", "-rf", str(root / "app" / "data")], check=True)
    (root / "app" / "data").mkdir()
    (root / "app" / "data" / "fresh").write_text("f")
    os.link(root / "app" / "config", root / "app" / "config.hardlink")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "app" / "sock"))
    s.close()
    subprocess.run(["umount", str(root)], check=True)
    layer = diff.write_layer_file(upper, tmp_path / "layer.tar")
    with tarfile.open(layer) as tf:
        names = tf.getnames()
        assert "etc/.wh.passwd" in names and "app/data/.wh..wh..opq" in names
        assert "app/sock" not in names
        assert tf.getmember("app/config.hardlink").islnk() or tf.getmember("app/config").islnk()
    again = diff.write_layer_file(upper, tmp_path / "layer2.tar")
    assert again.read_bytes() == layer.read_bytes()  # deterministic
    committed = store.commit(three, layer, "committed:1", comment="from a container")
    flat = tmp_path / "flat"
    store.flatten(committed, flat)
    assert (flat / "app" / "config").read_text() == "v2"
    assert not (flat / "etc" / "passwd").exists()
    assert sorted(os.listdir(flat / "app" / "data")) == ["fresh"]
    assert os.stat(flat / "app" / "config").st_ino == os.stat(flat / "app" / "config.hardlink").st_ino
    # And the committed image mounts again with the kernel's view matching the flattened one.
    up2, wk2 = tmp_path / "u2", tmp_path / "w2"
    up2.mkdir()
    wk2.mkdir()
    root2 = mounted(store.snapshot_dirs(committed), up2, wk2, tmp_path / "merged2")
    assert sorted(os.listdir(root2 / "app" / "data")) == ["fresh"]
    assert not (root2 / "etc" / "passwd").exists()
    assert (root2 / "bin" / "sh").is_symlink()

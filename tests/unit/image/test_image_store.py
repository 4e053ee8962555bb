"""The store's behaviour: formats, tags and removal, holds, GC, commit, flatten, concurrency, crashes."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard
from imgtools import entry, gz, make_tar

from runtime.image import build, oci
from runtime.image.errors import ImageError, ImageInUse, ImageNotFound, InvalidReference
from runtime.image.store import ImageStore

REPO = Path(__file__).resolve().parents[3]
ROOTFS = make_tar(entry("dir", "bin"), entry("file", "bin/hello", "hi", mode=0o755), entry("file", "etc/os", "x"))


@pytest.mark.parametrize("codec", ["tar", "gzip", "xz", "zstd", "bzip2"])
def test_import_every_compression(store, codec):
    data = {"tar": ROOTFS, "gzip": gz(ROOTFS), "xz": lzma.compress(ROOTFS),
            "zstd": zstandard.ZstdCompressor().compress(ROOTFS), "bzip2": bz2.compress(ROOTFS)}[codec]
    img = store.import_tar(io.BytesIO(data), f"fmt:{codec}")
    snap = store.snapshot_dirs(img)[0]
    assert (snap / "bin" / "hello").read_text() == "hi"
    layer = img.layers[0]
    expected_type = {"gzip": "tar+gzip", "zstd": "tar+zstd"}.get(codec, "tar")
    assert layer.media_type == f"application/vnd.oci.image.layer.v1.{expected_type}"
    assert store.blob_path(layer.digest).stat().st_size == layer.size
    # The same content dedups to one snapshot whatever the compression.
    assert len(os.listdir(store.snap_dir)) == 1


def test_import_from_path_and_same_layer_dedup(store, tmp_path):
    p = tmp_path / "rootfs.tar.gz"
    p.write_bytes(gz(ROOTFS))
    a = store.import_tar(p, "a:1")
    b = store.import_tar(str(p), "b:1")
    assert a.layers == b.layers
    assert len(os.listdir(store.blob_dir)) == 5  # one layer, two configs, two manifests
    assert store.resolve("a:1").refs == ["a:1"]


def test_import_refuses_bad_reference_before_reading(store):
    with pytest.raises(InvalidReference):
        store.import_tar(io.BytesIO(ROOTFS), "Bad/Name")


def test_resolve_by_name_digest_id_prefix(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "app:v1")
    assert store.resolve("app:v1").id == img.id
    assert store.resolve(f"app@{img.digest}").id == img.id
    assert store.resolve(img.id).id == img.id
    assert store.resolve(img.short_id).id == img.id
    assert store.resolve(img.id[7:19]).id == img.id
    with pytest.raises(ImageNotFound, match="no such image: app:v2"):
        store.resolve("app:v2")
    with pytest.raises(ImageNotFound):
        store.resolve("app")  # app:latest does not exist
    with pytest.raises(ImageNotFound):
        store.resolve(f"other@{img.digest}")


def test_tags_and_rmi_semantics(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "app:v1")
    store.tag(img, "app:v2")
    store.tag(img, "mirror/app:latest")
    assert sorted(store.resolve("app:v1").refs) == ["app:v1", "app:v2", "mirror/app:latest"]
    assert store.untag("app:v2") == [("Untagged", "app:v2")]
    assert store.exists("app:v1") and not store.exists("app:v2")
    assert len(os.listdir(store.snap_dir)) == 1
    actions = store.remove(store.resolve(img.short_id))
    assert ("Untagged", "app:v1") in actions and ("Untagged", "mirror/app:latest") in actions
    assert ("Deleted", img.id) in actions
    assert store.images() == []
    assert os.listdir(store.blob_dir) == [] and os.listdir(store.snap_dir) == []


def test_last_tag_removes_image(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "solo:1")
    assert store.untag("solo:1") == [("Untagged", "solo:1"), ("Deleted", img.id)]
    assert store.images() == [] and os.listdir(store.blob_dir) == []


def test_held_image_needs_force(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "held:1")
    store.hold(img.id, "c0ffee")
    store.hold(img.id, "c0ffee")  # idempotent
    assert store.holders(img.id) == ["c0ffee"]
    with pytest.raises(ImageInUse, match="container c0ffee"):
        store.untag("held:1")
    with pytest.raises(ImageInUse):
        store.remove(img)
    store.tag(img, "held:2")
    assert store.untag("held:1") == [("Untagged", "held:1")]  # not the last name: fine
    actions = store.untag("held:2", force=True)
    assert actions == [("Untagged", "held:2")]
    # Still there, dangling, with its layers, because the container uses it.
    left = store.images()
    assert [i.id for i in left] == [img.id] and left[0].refs == []
    assert store.snapshot_dirs(left[0])[0].is_dir()
    store.release(img.id, "c0ffee")
    store.release(img.id, "c0ffee")  # idempotent
    actions, freed = store.prune()
    assert ("Deleted", img.id) in actions and freed > 0
    assert store.images() == []


def test_hold_validates(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "h:1")
    for bad in ("../x", "", "a/b", "x" * 200):
        with pytest.raises(InvalidReference):
            store.hold(img.id, bad)
    with pytest.raises(ImageNotFound):
        store.hold("sha256:" + "0" * 64, "c1")
    with pytest.raises(InvalidReference):
        store.hold("sha256:../../x", "c1")


def test_retag_leaves_old_image_dangling(store):
    a = store.import_tar(io.BytesIO(ROOTFS), "x:1")
    b = store.import_tar(io.BytesIO(make_tar(entry("file", "other", "y"))), "x:1")
    ids = {i.id: i.refs for i in store.images()}
    assert ids == {a.id: [], b.id: ["x:1"]}
    actions, _ = store.prune()
    assert actions == [("Deleted", a.id)]
    assert [i.id for i in store.images()] == [b.id]


def test_prune_all_keeps_held(store):
    a = store.import_tar(io.BytesIO(ROOTFS), "a:1")
    b = store.import_tar(io.BytesIO(make_tar(entry("file", "b", "b"))), "b:1")
    store.hold(b.id, "ctr1")
    actions, _ = store.prune(all_unused=True)
    assert ("Untagged", "a:1") in actions and ("Deleted", a.id) in actions
    assert [i.id for i in store.images()] == [b.id]
    store.release(b.id, "ctr1")


def test_commit_adds_layer_and_history(store, tmp_path):
    base = store.import_tar(io.BytesIO(ROOTFS), "base:1")
    upper = tmp_path / "upper.tar"
    upper.write_bytes(make_tar(entry("file", "etc/os", "changed"), entry("file", "bin/.wh.hello")))
    img = store.commit(base, upper, "derived:1", config_changes={"Cmd": ["/bin/true"]}, comment="c", author="me")
    assert len(img.layers) == 2 and img.layers[0] == base.layers[0]
    assert img.config["config"]["Cmd"] == ["/bin/true"]
    assert img.config["history"][-1]["comment"] == "c" and img.config["author"] == "me"
    flat = tmp_path / "flat"
    store.flatten(img, flat)
    assert (flat / "etc" / "os").read_text() == "changed"
    assert not (flat / "bin" / "hello").exists()
    dirs = store.snapshot_dirs(img)
    assert len(dirs) == 2 and all(d.is_dir() for d in dirs)
    dangling = store.commit(img, io.BytesIO(make_tar(entry("file", "z", "z"))), None)
    assert dangling.refs == [] and store.resolve(dangling.id).id == dangling.id


def test_flatten_refuses_non_empty_dest(store, tmp_path):
    img = store.import_tar(io.BytesIO(ROOTFS), "f:1")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "junk").write_text("x")
    with pytest.raises(ImageError, match="not empty"):
        store.flatten(img, tmp_path / "dest")


def test_snapshot_recreated_from_blob(store):
    img = store.import_tar(io.BytesIO(gz(ROOTFS)), "s:1")
    snap = store.snapshot_dirs(img)[0]
    import shutil

    shutil.rmtree(snap.parent)
    again = store.snapshot_dirs(img)[0]
    assert (again / "bin" / "hello").read_text() == "hi"


def test_gc_sweeps_orphans_and_dead_staging(store):
    store.import_tar(io.BytesIO(ROOTFS), "keep:1")
    orphan = store.blob_dir / ("f" * 64)
    orphan.write_bytes(b"orphan")
    dead = store.staging_dir / "999999999-layer-dead"
    dead.mkdir()
    (dead / "junk").write_bytes(b"x" * 10000)
    live = store.staging_dir / f"{os.getpid()}-layer-live"
    live.mkdir()
    (store.partial_dir / ("e" * 64)).write_bytes(b"partial download")
    store.gc()
    assert not orphan.exists() and not dead.exists() and live.exists()
    assert (store.partial_dir / ("e" * 64)).exists()
    store.gc(partial=True)
    assert not (store.partial_dir / ("e" * 64)).exists()
    live.rmdir()
    assert store.resolve("keep:1")


def test_store_layout_is_oci_and_private(store):
    store.import_tar(io.BytesIO(ROOTFS), "l:1")
    assert (store.path / "oci-layout").read_text() == '{"imageLayoutVersion":"1.0.0"}'
    import json

    index = json.loads((store.path / "index.json").read_text())
    assert index["manifests"][0]["annotations"][oci.REF_NAME] == "l:1"
    for d in (store.path, store.blob_dir, store.snap_dir, store.staging_dir):
        assert oct(d.stat().st_mode & 0o777) == "0o700"


def test_empty_store_reads_without_creating(tmp_path):
    s = ImageStore(tmp_path / "nothing" / "image")
    assert s.images() == []
    with pytest.raises(ImageNotFound):
        s.resolve("busybox")
    assert not (tmp_path / "nothing").exists()


def test_busybox_build_is_static_and_idempotent(store):
    assert build.elf_is_static("/bin/busybox")
    assert not build.elf_is_static(sys.executable)
    assert not build.elf_is_static(__file__)
    a = build.build_busybox(store)
    b = build.build_busybox(store)
    assert a.id == b.id and a.refs == ["busybox:latest"]
    assert a.config["config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in a.config["config"]["Env"])
    snap = store.snapshot_dirs(a)[0]
    assert os.readlink(snap / "bin" / "sh") == "/bin/busybox"
    assert (snap / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    assert oct((snap / "tmp").stat().st_mode & 0o7777) == "0o1777"


def test_apt_mirror_parses_both_formats(tmp_path):
    one = tmp_path / "sources.list"
    one.write_text("# comment\ndeb http://deb.debian.org/debian-security bookworm-security main\n"
                   "deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert build.apt_mirror((str(one),)) == "http://mirror.example/debian"
    d = tmp_path / "d"
    d.mkdir()
    (d / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n")
    assert build.apt_mirror((str(tmp_path / "missing"), str(d))) == "http://deb.debian.org/debian"


_IMPORTER = """
import io, sys
from runtime.image.store import ImageStore
import tarfile
s = ImageStore(sys.argv[1])
def tar(n):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tf:
        ti = tarfile.TarInfo(f'f{n}'); data = (sys.argv[2] * 1000).encode(); ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
for i in range(int(sys.argv[3])):
    s.import_tar(io.BytesIO(tar(i)), f"{sys.argv[2]}:{i}")
    if i % 2:
        s.untag(f"{sys.argv[2]}:{i}")
"""


def test_parallel_processes_on_one_store(store):
    store.ensure()
    procs = [subprocess.Popen([sys.executable, "-c", _IMPORTER, str(store.path), name, "6"], cwd=REPO)
             for name in ("p", "q", "r")]
    for p in procs:
        assert p.wait(timeout=120) == 0
    names = sorted(r for i in store.images() for r in i.refs)
    assert names == sorted(f"{n}:{i}" for n in "pqr" for i in (0, 2, 4))
    for img in store.images():
        assert store.snapshot_dirs(img)[0].is_dir()
    store.gc()
    assert len(os.listdir(store.snap_dir)) == 9


_SLOW_IMPORT = """
import sys
from runtime.image.store import ImageStore
ImageStore(sys.argv[1]).import_tar('-', 'crash:1')
"""


def test_crash_during_import_leaves_store_consistent(store):
    store.import_tar(io.BytesIO(ROOTFS), "before:1")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_IMPORT, str(store.path)], stdin=subprocess.PIPE, cwd=REPO)
    data = make_tar(*[entry("file", f"d/f{i}", os.urandom(4096)) for i in range(200)])
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline and not [n for n in os.listdir(store.staging_dir) if n != "partial"]:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert [r for i in store.images() for r in i.refs] == ["before:1"]
    store.gc()
    assert os.listdir(store.staging_dir) == ["partial"]
    assert len(os.listdir(store.snap_dir)) == 1


def test_engine_style_holder_names(store):
    """The engine holds images as `container:<id>`."""
    img = store.import_tar(io.BytesIO(ROOTFS), "eng:1")
    store.hold(img.id, "container:0123456789abcdef0123")
    with pytest.raises(ImageInUse, match="container 0123456789ab is using"):
        store.untag("eng:1")
    store.release(img.id, "container:0123456789abcdef0123")
    assert store.holders(img.id) == []


def test_image_disk_usage(store):
    img = store.import_tar(io.BytesIO(gz(ROOTFS)), "du:1")
    use = store.image_disk_usage(img)
    assert use["blobs"] > 0 and use["snapshots"] > 0 and use["total"] == use["blobs"] + use["snapshots"]
    assert use["total"] <= store.disk_usage()["total"]


def test_openat2_fast_path_is_used_here(store, monkeypatch):
    from runtime.image import rootpath

    calls = []
    real = rootpath._openat2

    def counting(*args):
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(rootpath, "_openat2", counting)
    monkeypatch.setattr(rootpath, "USE_OPENAT2", True)
    store.import_tar(io.BytesIO(make_tar(entry("file", "a/b/c/d", "x"), entry("file", "a/b/e", "y"))), "o2:1")
    if not rootpath.USE_OPENAT2:
        pytest.skip("this kernel has no openat2 (the walk was used)")
    assert "a/b/c" in calls or "a/b" in calls


def test_tags_never_carry_digests(store):
    img = store.import_tar(io.BytesIO(ROOTFS), "t:1")
    for bad in (f"x@{img.digest}", f"x:1@{img.digest}"):
        with pytest.raises(InvalidReference, match="digest"):
            store.tag(img, bad)
        with pytest.raises(InvalidReference, match="digest"):
            store.import_tar(io.BytesIO(ROOTFS), bad)


def test_truncated_zstd_and_xz_refused(store):
    import lzma

    data = make_tar(*[entry("file", f"f{i}", os.urandom(3000)) for i in range(20)])
    for comp in (zstandard.ZstdCompressor().compress(data), lzma.compress(data)):
        for cut in (len(comp) // 2, len(comp) - 3):
            with pytest.raises(ImageError, match="truncated"):
                store.import_tar(io.BytesIO(comp[:cut]), "cut:1")
    multi = zstandard.ZstdCompressor().compress(data[:20000]) + zstandard.ZstdCompressor().compress(data[20000:])
    img = store.import_tar(io.BytesIO(multi), "frames:1")
    assert img.layers[0].diff_id == store.import_tar(io.BytesIO(data), "plain:1").layers[0].diff_id

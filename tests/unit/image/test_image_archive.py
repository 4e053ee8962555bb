"""save/load: round trips, docker-archive shapes, and hostile archives (corpus case 31 and friends)."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
from imgtools import entry, gz, make_tar

from runtime.image import archive, build, oci
from runtime.image.digest import of_bytes
from runtime.image.errors import ImageError, LimitExceeded

ROOTFS = make_tar(entry("file", "bin/hello", "hi", mode=0o755))


def _saved(store, *names) -> bytes:
    buf = io.BytesIO()
    archive.save(store, list(names), buf)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
    return buf.getvalue()


def test_save_has_oci_layout_and_docker_manifest(store):
    img = store.import_tar(io.BytesIO(gz(ROOTFS)), "app:v1")
    m = _members(_saved(store, "app:v1"))
    assert json.loads(m["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(m["index.json"])
    assert index["manifests"][0]["digest"] == img.digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/app:v1"
    docker = json.loads(m["manifest.json"])
    assert docker[0]["RepoTags"] == ["app:v1"]
    assert docker[0]["Config"] == f"blobs/sha256/{img.id[7:]}"
    assert json.loads(m["repositories"]) == {"app": {"v1": img.id[7:]}}
    for name, data in m.items():
        if name.startswith("blobs/"):
            assert of_bytes(data) == "sha256:" + name.rsplit("/", 1)[1]


def test_save_load_round_trip_keeps_id_and_tags(store, tmp_path):
    build.build_busybox(store)
    img = store.resolve("busybox")
    store.tag(img, "localhost:5000/x/bb:2")
    data = _saved(store, "busybox", "localhost:5000/x/bb:2")
    from runtime.image.store import ImageStore

    other = ImageStore(tmp_path / "other" / "image")
    loaded = archive.load(other, io.BytesIO(data))
    assert len(loaded) == 1
    got = other.resolve("busybox:latest")
    assert got.id == img.id and got.digest == img.digest
    assert sorted(got.refs) == ["busybox:latest", "localhost:5000/x/bb:2"]
    # Loading again is harmless; a gzip-compressed archive is accepted too.
    archive.load(other, io.BytesIO(gz(data)))
    assert len(other.images()) == 1


def test_load_legacy_docker_archive(store):
    """The pre-25 `docker save` shape: <id>/layer.tar, <config>.json, and a symlinked duplicate layer."""
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [of_bytes(ROOTFS), of_bytes(ROOTFS)]}}
    cfg_bytes = json.dumps(cfg).encode()
    cid = of_bytes(cfg_bytes)[7:]
    l1, l2 = "1" * 64, "2" * 64
    manifest = [{"Config": f"{cid}.json", "RepoTags": ["legacy:1"], "Layers": [f"{l1}/layer.tar", f"{l2}/layer.tar"]}]
    data = _tar({f"{cid}.json": cfg_bytes, f"{l1}/layer.tar": ROOTFS, f"{l1}/VERSION": b"1.0",
                 "manifest.json": json.dumps(manifest).encode()}, links={f"{l2}/layer.tar": f"../{l1}/layer.tar"})
    (img, names), = archive.load(store, io.BytesIO(data))
    assert names == ["legacy:1"] and img.id == f"sha256:{cid}"
    assert (store.snapshot_dirs(img)[0] / "bin" / "hello").read_text() == "hi"


def _refused(store, data: bytes, match: str, exc=ImageError):
    with pytest.raises(exc, match=match) as ei:
        archive.load(store, io.BytesIO(data))
    assert ei.value.exit_code == 125
    assert store.images() == []
    assert os.listdir(store.blob_dir) == [] and os.listdir(store.snap_dir) == []
    assert os.listdir(store.staging_dir) == ["partial"]


@pytest.mark.parametrize("layer_path", ["../x", "/etc/passwd", "blobs/sha256/../../../etc/passwd", "a" * 64 + "/../x"])
def test_case31_docker_manifest_paths_outside_the_archive(store, layer_path):
    store.ensure()
    cfg_bytes = json.dumps({"rootfs": {"type": "layers", "diff_ids": [of_bytes(ROOTFS)]}}).encode()
    cid = of_bytes(cfg_bytes)[7:]
    manifest = [{"Config": f"blobs/sha256/{cid}", "RepoTags": ["evil:1"], "Layers": [layer_path]}]
    data = _tar({f"blobs/sha256/{cid}": cfg_bytes, "manifest.json": json.dumps(manifest).encode()})
    _refused(store, data, "not a blob of the archive")


def test_case31_missing_blob_leaves_no_partial_image(store):
    store.ensure()
    good = store.import_tar(io.BytesIO(ROOTFS), "good:1")
    data = _saved(store, "good:1")
    store.remove(good)
    m = _members(data)
    del m[f"blobs/sha256/{good.layers[0].digest[7:]}"]
    _refused(store, _tar(m), "does not contain")


def test_multi_image_archive_is_all_or_nothing(store):
    store.ensure()
    a = store.import_tar(io.BytesIO(ROOTFS), "a:1")
    b = store.import_tar(io.BytesIO(make_tar(entry("file", "other", "x"))), "b:1")
    m = _members(_saved(store, "a:1", "b:1"))
    store.remove(a)
    store.remove(b)
    m[f"blobs/sha256/{b.layers[0].digest[7:]}"] = make_tar(entry("file", "other", "tampered"))
    _refused(store, _tar(m), "digest|size")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "blobs/sha256/short", "blobs/sha256/" + "A" * 64,
                                  "x/../../etc"])
def test_unexpected_members_are_refused(store, name):
    store.ensure()
    _refused(store, _tar({name: b"data", "index.json": b"{}"}), "unexpected archive member")


def test_symlink_members_other_than_legacy_layers_refused(store):
    store.ensure()
    _refused(store, _tar({"index.json": b"{}"}, links={"manifest.json": "/etc/passwd"}), "not a regular file")
    _refused(store, _tar({}, links={"1" * 64 + "/layer.tar": "../../../etc/shadow"}), "links to")


def test_oversized_and_ambiguous_index(small_store):
    store = small_store
    store.ensure()
    _refused(store, _tar({"index.json": b" " * (70 << 10)}), "over the limit", LimitExceeded)
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [], "layers": []}
    _refused(store, _tar({"index.json": json.dumps(doc).encode(), "oci-layout": b"{}"}), "ambiguous")


def test_descriptor_size_lie_in_archive(store):
    store.ensure()
    img = store.import_tar(io.BytesIO(ROOTFS), "s:1")
    m = _members(_saved(store, "s:1"))
    store.remove(img)
    index = json.loads(m["index.json"])
    index["manifests"][0]["size"] += 1
    m["index.json"] = json.dumps(index).encode()
    _refused(store, _tar(m), "descriptor says")


def test_not_an_archive(store):
    store.ensure()
    _refused(store, b"this is not a tar file at all" * 20, "tar|archive")
    _refused(store, _tar({"oci-layout": b"{}"}), "neither index.json")


def test_save_unknown_image(store):
    with pytest.raises(ImageError, match="no such image"):
        archive.save(store, ["nothing:here"], io.BytesIO())


def test_save_to_path_is_atomic(store, tmp_path):
    store.import_tar(io.BytesIO(ROOTFS), "p:1")
    out = tmp_path / "out.tar"
    archive.save_to_path(store, ["p:1"], out)
    assert "index.json" in _members(out.read_bytes())
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # a user's file, as `docker save -o` makes it
    with pytest.raises(ImageError):
        archive.save_to_path(store, ["p:1", "missing:1"], tmp_path / "bad.tar")
    assert sorted(os.listdir(tmp_path)) == ["host", "out.tar"]


def test_archive_total_size_and_member_count_capped(host):
    from runtime.image.limits import Limits
    from runtime.image.store import ImageStore

    store = ImageStore(host / "capped" / "image", limits=Limits(max_archive_bytes=100_000, max_archive_members=5))
    store.ensure()
    files = {f"blobs/sha256/{i:064x}": b"z" * 40_000 for i in range(3)}
    _refused(store, gz(_tar(files)), "more than 100000 bytes", LimitExceeded)
    files = {f"blobs/sha256/{i:064x}": b"z" for i in range(6)}
    _refused(store, _tar(files), "more than 5 members", LimitExceeded)


def test_huge_pax_header_in_archive_refused_before_allocation(small_store):
    small_store.ensure()
    ti = tarfile.TarInfo("p")
    ti.type, ti.size = tarfile.XHDTYPE, 1 << 34
    data = ti.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 4096
    _refused(small_store, data, "extended header", LimitExceeded)


def test_history_with_junk_entries(store):
    from runtime.image.describe import history_rows, inspect_image

    base = store.import_tar(io.BytesIO(ROOTFS), "h:1")
    cfg = dict(base.config, history=[1, "x", {"created_by": 42, "comment": None}, None])
    img = store.write_image(cfg, base.layers, "junk:1")
    rows = history_rows(store, img)
    assert [r["created_by"] for r in rows] == ["42"]
    assert inspect_image(store, "junk:1")["Comment"] == ""

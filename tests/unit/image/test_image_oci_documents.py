"""Image documents from untrusted sources (corpus cases 26-30, 32, 34)."""

from __future__ import annotations

import io
import json
import os

import pytest
from imgtools import entry, gz, make_tar

from runtime.image import oci
from runtime.image.digest import of_bytes
from runtime.image.errors import DigestMismatch, ImageError, InvalidArchive, LimitExceeded

D = "sha256:" + "b" * 64


def manifest(**over) -> dict:
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
           "config": {"mediaType": oci.OCI_CONFIG, "digest": D, "size": 10},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D, "size": 5}]}
    doc.update(over)
    return doc


def b(doc) -> bytes:
    return json.dumps(doc).encode()


def test_good_manifest_parses():
    assert oci.parse_manifest(b(manifest()))["layers"][0]["size"] == 5


def test_case26_blob_not_matching_digest_is_not_kept(store):
    data = gz(make_tar(entry("file", "f", "x")))
    with pytest.raises(DigestMismatch):
        store.ensure()
        store.ingest_layer(io.BytesIO(data), digest="sha256:" + "c" * 64)
    assert os.listdir(store.blob_dir) == [] and os.listdir(store.snap_dir) == []


def test_case26_uncompressed_not_matching_diff_id_is_not_kept(store):
    data = gz(make_tar(entry("file", "f", "x")))
    with pytest.raises(DigestMismatch, match="uncompressed"):
        store.ingest_layer(io.BytesIO(data), digest=of_bytes(data), diff_id="sha256:" + "c" * 64)
    assert os.listdir(store.blob_dir) == [] and os.listdir(store.snap_dir) == []


def test_case27_descriptor_size_lie_is_refused(store):
    data = gz(make_tar(entry("file", "f", "x")))
    with pytest.raises(DigestMismatch, match="descriptor says"):
        store.ingest_layer(io.BytesIO(data), digest=of_bytes(data), size=len(data) - 1)
    assert os.listdir(store.blob_dir) == []


def test_case28_oversized_and_nested_documents():
    big = manifest(annotations={"x": "y" * (5 << 20)})
    with pytest.raises(LimitExceeded, match="over the limit"):
        oci.parse_manifest(b(big))
    bomb = b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(ImageError):
        oci.parse_manifest(bomb)
    nested = b(manifest(annotations={"x": json.loads("[" * 80 + "]" * 80)}))
    with pytest.raises(LimitExceeded, match="nested"):
        oci.parse_manifest(nested)
    with pytest.raises(LimitExceeded):
        oci.parse_manifest(b(manifest(config={"mediaType": oci.OCI_CONFIG, "digest": D, "size": 5 << 20})))


def test_case29_manifest_index_ambiguity_refused():
    doc = manifest(manifests=[{"mediaType": oci.OCI_MANIFEST, "digest": D, "size": 1}])
    with pytest.raises(InvalidArchive, match="ambiguous"):
        oci.parse_manifest(b(doc))
    with pytest.raises(InvalidArchive, match="ambiguous"):
        oci.parse_index(b(doc))


def test_case29_media_type_must_match_content_type():
    with pytest.raises(InvalidArchive, match="differs from the Content-Type"):
        oci.parse_manifest(b(manifest()), content_type=oci.DOCKER_MANIFEST)
    no_type = manifest()
    del no_type["mediaType"]
    with pytest.raises(InvalidArchive, match="mediaType"):
        oci.parse_manifest(b(no_type))
    assert oci.parse_manifest(b(no_type), content_type=oci.OCI_MANIFEST)


def test_case30_index_without_host_platform():
    idx = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        {"mediaType": oci.OCI_MANIFEST, "digest": D, "size": 1, "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": oci.OCI_MANIFEST, "digest": D, "size": 1, "platform": {"os": "windows", "architecture": "amd64"}},
    ]}
    doc = oci.parse_index(b(idx))
    os_name, arch = oci.host_platform()
    if arch == "s390x":
        pytest.skip("host is s390x")
    with pytest.raises(InvalidArchive, match=f"no matching manifest for linux/{arch}"):
        oci.pick_platform(doc)


def test_case32_foreign_layer_urls_refused():
    doc = manifest()
    doc["layers"][0]["urls"] = ["https://evil.example/layer.tgz"]
    with pytest.raises(InvalidArchive, match="foreign layer"):
        oci.parse_manifest(b(doc))


@pytest.mark.parametrize("bad_desc", [
    {"mediaType": oci.OCI_CONFIG, "digest": "sha256:../../../etc/passwd", "size": 1},
    {"mediaType": oci.OCI_CONFIG, "digest": D, "size": -1},
    {"mediaType": oci.OCI_CONFIG, "digest": D, "size": "12"},
    {"mediaType": oci.OCI_CONFIG, "digest": D, "size": True},
    {"digest": D, "size": 1},
    "not a descriptor",
])
def test_bad_descriptors_refused(bad_desc):
    with pytest.raises(InvalidArchive):
        oci.parse_manifest(b(manifest(config=bad_desc)))


def test_unknown_layer_media_type_refused():
    doc = manifest()
    doc["layers"][0]["mediaType"] = "application/x-evil"
    with pytest.raises(InvalidArchive, match="unsupported layer mediaType"):
        oci.parse_manifest(b(doc))


def test_config_diff_ids_must_match_layers():
    cfg = {"rootfs": {"type": "layers", "diff_ids": [D, D]}}
    with pytest.raises(InvalidArchive, match="2 diff_ids for 1 layers"):
        oci.parse_config(b(cfg), 1)
    with pytest.raises(InvalidArchive):
        oci.parse_config(b({"rootfs": {"type": "layers", "diff_ids": ["sha256:../x"]}}), 1)


def test_case34_hostile_config_fields_are_only_data(store):
    """WorkingDir=/proc/self/fd/7, Volumes with ../, huge Env, control characters: stored and shown, never acted on."""
    img = store.import_tar(io.BytesIO(make_tar(entry("file", "f", "x"))), "base:1")
    changes = {"WorkingDir": "/proc/self/fd/7", "Volumes": {"../../../etc": {}}, "User": "0:0",
               "Env": [f"E{i}=" + "v" * 100 for i in range(2000)], "Labels": {"x": "\x1b[31mred\x07"},
               "StopSignal": "SIGBOGUS"}
    with open(store.blob_path(img.layers[0].digest), "rb") as f:
        out = store.commit(img, f, "hostile:1", config_changes=changes)
    from runtime.image.describe import inspect_image

    doc = inspect_image(store, "hostile:1")
    assert doc["Config"]["WorkingDir"] == "/proc/self/fd/7"
    assert doc["Config"]["Labels"]["x"] == "\x1b[31mred\x07"
    assert json.loads(json.dumps(doc))["Id"] == out.id
    assert not (store.path.parent.parent.parent / "etc" / "x").exists()


def test_corrupt_blob_in_store_is_detected(store):
    img = store.import_tar(io.BytesIO(make_tar(entry("file", "f", "x"))), "c:1")
    path = store.blob_path(img.id)
    path.write_bytes(path.read_bytes() + b" ")
    store._cache.clear()
    with pytest.raises(InvalidArchive, match="corrupt"):
        store.read_blob(img.id)

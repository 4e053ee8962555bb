"""OCI and docker image documents: media types, strict parsing of manifests, indexes and configs.

Everything here treats its input as hostile: sizes are capped before parsing,
digests are validated before use, a document that could be read both as a
manifest and as an index is refused (CVE-2021-41190), and foreign layers (`urls`)
are refused rather than fetched from elsewhere.
"""

from __future__ import annotations

import json
import os

from runtime.image import digest as dg
from runtime.image.compress import LAYER_MEDIA_TYPES
from runtime.image.errors import InvalidArchive, LimitExceeded
from runtime.image.limits import DEFAULT, Limits

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
REF_NAME = "org.opencontainers.image.ref.name"
MAX_JSON_DEPTH = 64


def canonical(doc: dict) -> bytes:
    """Deterministic JSON bytes for a document we write (sorted keys, no spaces)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _depth(obj, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        raise LimitExceeded(f"JSON document nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(obj, dict):
        return max((_depth(v, level + 1) for v in obj.values()), default=level)
    if isinstance(obj, list):
        return max((_depth(v, level + 1) for v in obj), default=level)
    return level


def load_json(data: bytes, what: str, limits: Limits = DEFAULT) -> dict:
    """Parse an untrusted JSON object after checking its size; nesting bombs are refused."""
    if len(data) > limits.max_json_bytes:
        raise LimitExceeded(f"{what} is {len(data)} bytes, over the limit of {limits.max_json_bytes}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArchive(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArchive(f"{what} is not a JSON object")
    _depth(doc)
    return doc


def descriptor(d: object, what: str, limits: Limits = DEFAULT, max_size: int | None = None) -> dict:
    """Validate one descriptor: mediaType string, strict digest, a sane size; no foreign `urls`."""
    if not isinstance(d, dict):
        raise InvalidArchive(f"{what}: descriptor is not an object")
    mt = d.get("mediaType")
    if not isinstance(mt, str) or not mt or len(mt) > 255:
        raise InvalidArchive(f"{what}: descriptor has no valid mediaType")
    try:
        dg.validate(d.get("digest"))
    except Exception as exc:
        raise InvalidArchive(f"{what}: {exc}") from exc
    size = d.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArchive(f"{what}: descriptor size {size!r} is not a non-negative integer")
    cap = limits.max_blob_bytes if max_size is None else max_size
    if size > cap:
        raise LimitExceeded(f"{what}: descriptor size {size} is over the limit of {cap}")
    if d.get("urls"):
        raise InvalidArchive(f"{what}: foreign layer with urls is not downloaded (refusing to fetch from elsewhere)")
    return d


def kind_of(doc: dict, what: str, content_type: str | None = None) -> str:
    """'manifest' or 'index'; refuses ambiguous documents and a mediaType that disagrees with the transport."""
    has_index = "manifests" in doc
    has_manifest = "layers" in doc or "config" in doc
    if has_index and has_manifest:
        raise InvalidArchive(f"{what}: document has both manifests and layers/config (ambiguous, CVE-2021-41190)")
    mt = doc.get("mediaType")
    if content_type and mt and mt != content_type:
        raise InvalidArchive(f"{what}: mediaType {mt!r} differs from the Content-Type {content_type!r}")
    mt = mt or content_type
    if has_index:
        if mt is not None and mt not in INDEX_TYPES:
            raise InvalidArchive(f"{what}: index has mediaType {mt!r}")
        return "index"
    if has_manifest:
        if mt not in MANIFEST_TYPES:
            raise InvalidArchive(f"{what}: manifest has missing or unsupported mediaType {mt!r}")
        return "manifest"
    raise InvalidArchive(f"{what}: neither an image manifest nor an index")


def parse_manifest(data: bytes, what: str = "manifest", limits: Limits = DEFAULT, content_type: str | None = None) -> dict:
    """Parse and validate an image manifest (OCI or docker schema 2)."""
    doc = load_json(data, what, limits)
    if kind_of(doc, what, content_type) != "manifest":
        raise InvalidArchive(f"{what}: expected an image manifest, got an index")
    if doc.get("schemaVersion") != 2:
        raise InvalidArchive(f"{what}: schemaVersion must be 2")
    descriptor(doc.get("config"), f"{what} config", limits, max_size=limits.max_json_bytes)
    if doc["config"]["mediaType"] not in CONFIG_TYPES:
        raise InvalidArchive(f"{what}: unsupported config mediaType {doc['config']['mediaType']!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArchive(f"{what}: layers is not a list")
    if len(layers) > limits.max_layers:
        raise LimitExceeded(f"{what}: {len(layers)} layers, over the limit of {limits.max_layers}")
    for i, layer in enumerate(layers):
        descriptor(layer, f"{what} layer {i}", limits)
        if layer["mediaType"] not in LAYER_MEDIA_TYPES:
            raise InvalidArchive(f"{what} layer {i}: unsupported layer mediaType {layer['mediaType']!r}")
    return doc


def parse_index(data: bytes, what: str = "index", limits: Limits = DEFAULT, content_type: str | None = None) -> dict:
    """Parse and validate an image index (OCI index or docker manifest list)."""
    doc = load_json(data, what, limits)
    if kind_of(doc, what, content_type) != "index":
        raise InvalidArchive(f"{what}: expected an index, got a manifest")
    ms = doc.get("manifests")
    if not isinstance(ms, list):
        raise InvalidArchive(f"{what}: manifests is not a list")
    if len(ms) > 10_000:
        raise LimitExceeded(f"{what}: more than 10000 manifests")
    for i, m in enumerate(ms):
        descriptor(m, f"{what} entry {i}", limits, max_size=limits.max_json_bytes)
    return doc


def parse_config(data: bytes, n_layers: int, what: str = "image config", limits: Limits = DEFAULT) -> dict:
    """Parse and validate an image config; its diff_ids must match the manifest's layer count."""
    doc = load_json(data, what, limits)
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArchive(f"{what}: rootfs.type must be 'layers'")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != n_layers:
        raise InvalidArchive(f"{what}: {len(diff_ids) if isinstance(diff_ids, list) else 'no'} diff_ids for "
                             f"{n_layers} layers")
    for d in diff_ids:
        try:
            dg.validate(d)
        except Exception as exc:
            raise InvalidArchive(f"{what}: {exc}") from exc
    cfg = doc.get("config")
    if cfg is not None and not isinstance(cfg, dict):
        raise InvalidArchive(f"{what}: config is not an object")
    return doc


def host_platform() -> tuple[str, str]:
    """(os, architecture) in OCI terms for this host."""
    machine = os.uname().machine.lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
    return "linux", arch


def pick_platform(index: dict, what: str = "index") -> dict:
    """The index entry for this host's platform; a clear error when there is none."""
    os_name, arch = host_platform()
    candidates = []
    for m in index["manifests"]:
        p = m.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == arch and m["mediaType"] in MANIFEST_TYPES:
            candidates.append(m)
    if not candidates:
        raise InvalidArchive(f"{what}: no matching manifest for {os_name}/{arch} in the manifest list entries")
    return candidates[0]

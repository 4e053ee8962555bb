"""`save` and `load`: one tar that is both an OCI image layout and a docker archive.

`save` writes `oci-layout`, `index.json` and `blobs/sha256/*` (what skopeo, umoci and
podman read as `oci-archive:`), plus docker's `manifest.json` and `repositories`
pointing at the same blobs (what `docker load` and podman's `docker-archive:` read),
like `docker save` since Docker 25.

`load` accepts ours, OCI archives, and docker archives old and new. Member names
are never used as paths: only an allowlist (`blobs/sha256/<hex>`, `<hex>/layer.tar`,
`<hex>.json`, the JSON files) is kept, each under a name of our choosing in a
staging dir. Every document is size-capped and parsed strictly, every layer is
verified and unpacked through the confined extractor, and the image is recorded only
once all of it is in the store.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from runtime.image import digest as dg
from runtime.image import fsutil, oci, reference
from runtime.image.compress import decompressing
from runtime.image.errors import ImageError, InvalidArchive, LimitExceeded
from runtime.image.store import Image, ImageStore

_BLOB_RE = re.compile(r"blobs/sha256/([a-f0-9]{64})")
_LEGACY_LAYER_RE = re.compile(r"([a-f0-9]{64})(?:/layer|)\.tar")
_LEGACY_CONFIG_RE = re.compile(r"([a-f0-9]{64})\.json")
_LEGACY_META_RE = re.compile(r"[a-f0-9]{64}/(json|VERSION)")
_DOCS = ("oci-layout", "index.json", "manifest.json", "repositories")


# ------------------------------------------------------------------ save


def _member(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = size, 0o644, 0, 0, 0
    return ti


def _dir(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
    return ti


def save(store: ImageStore, names: list[str], out) -> list[Image]:
    """Write the images named by `names` to the binary stream `out` as one OCI + docker archive."""
    images: list[tuple[Image, list[str]]] = []
    for n in names:
        img = store.resolve(n)
        tags: list[str] = []
        try:
            r = reference.parse(n)
            if not r.digest and reference.parse(n).name in img.refs:
                tags = [r.name]
        except ImageError:
            pass
        if not tags and not reference.looks_like_id(n):
            tags = [t for t in img.refs if "@" not in t]
        for prev, prev_tags in images:
            if prev.digest == img.digest:
                prev_tags.extend(t for t in tags if t not in prev_tags)
                break
        else:
            images.append((img, tags))
    index: list[dict] = []
    manifest_json: list[dict] = []
    repositories: dict[str, dict[str, str]] = {}
    blobs: list[str] = []
    for img, tags in images:
        for d in (img.digest, img.id, *(lyr.digest for lyr in img.layers)):
            if d not in blobs:
                blobs.append(d)
        base = {"mediaType": img.manifest_media_type, "digest": img.digest, "size": img.manifest_size}
        entries: list[str | None] = list(tags) or [None]
        for t in entries:
            desc: dict = dict(base)
            if t:
                full = reference.parse(t)
                desc["annotations"] = {
                    "io.containerd.image.name": f"{full.registry}/{full.remote_path}:{full.tag}",
                    oci.REF_NAME: full.tag,
                }
            index.append(desc)
        manifest_json.append({"Config": f"blobs/sha256/{dg.hex_of(img.id)}", "RepoTags": tags,
                              "Layers": [f"blobs/sha256/{dg.hex_of(lyr.digest)}" for lyr in img.layers]})
        for t in tags:
            r = reference.parse(t)
            repositories.setdefault(r.repository, {})[r.tag or "latest"] = dg.hex_of(img.id)
    docs = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": oci.canonical({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": index}),
        "manifest.json": json.dumps(manifest_json, separators=(",", ":")).encode(),
        "repositories": json.dumps(repositories, separators=(",", ":")).encode(),
    }
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in ("blobs", "blobs/sha256"):
            tf.addfile(_dir(name))
        for d in blobs:
            path = store.blob_path(d)
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                tf.addfile(_member(f"blobs/sha256/{dg.hex_of(d)}", size), f)
        for name, data in docs.items():
            tf.addfile(_member(name, len(data)), io.BytesIO(data))
    return [img for img, _ in images]


def save_to_path(store: ImageStore, names: list[str], path: str | os.PathLike) -> list[Image]:
    """`save` into a file, atomically (a user's output file: 0666 less the umask, as docker save -o)."""
    with fsutil.atomic_file(Path(path), mode=0o666, suffix="partial") as f:
        return save(store, names, f)


# ------------------------------------------------------------------ load


class _Staged:
    """Archive members kept by their allowlisted names, in a staging dir under safe file names."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, Path] = {}
        self.aliases: dict[str, str] = {}

    def path(self, name: str) -> Path:
        name = self.aliases.get(name, name)
        p = self.files.get(name)
        if p is None:
            raise InvalidArchive(f"archive references {name[:100]!r}, which it does not contain")
        return p

    def read_json(self, name: str, limit: int, what: str):
        p = self.path(name)
        if p.stat().st_size > limit:
            raise LimitExceeded(f"{what} in the archive is over the limit of {limit} bytes")
        try:
            return json.loads(p.read_bytes())
        except (ValueError, RecursionError) as exc:
            raise InvalidArchive(f"{what} in the archive is not valid JSON: {exc}") from exc


def _allowed(name: str) -> bool:
    return (name in _DOCS or bool(_BLOB_RE.fullmatch(name)) or bool(_LEGACY_LAYER_RE.fullmatch(name))
            or bool(_LEGACY_CONFIG_RE.fullmatch(name)) or bool(_LEGACY_META_RE.fullmatch(name)))


def _stage(stream, st: Path, store: ImageStore) -> _Staged:
    staged = _Staged(st)
    limits = store.limits
    dec, _ = decompressing(stream, "archive")
    try:
        from runtime.image.extract import bounded_tarinfo

        tf = tarfile.open(fileobj=cast(Any, dec), mode="r|", errorlevel=2, tarinfo=bounded_tarinfo(limits))
    except tarfile.ReadError as exc:
        raise InvalidArchive(f"not a tar archive: {exc}") from exc
    count = total = 0
    try:
        for m in tf:
            count += 1
            if count > limits.max_archive_members:
                raise LimitExceeded(f"archive has more than {limits.max_archive_members} members")
            name = m.name[2:] if m.name.startswith("./") else m.name
            if m.isdir():
                continue
            if m.issym() and _LEGACY_LAYER_RE.fullmatch(name):
                # Old docker save links duplicate layers: ../<id>/layer.tar. Resolve by name only.
                target = m.linkname[3:] if m.linkname.startswith("../") else m.linkname
                if not _LEGACY_LAYER_RE.fullmatch(target):
                    raise InvalidArchive(f"archive member {name!r} links to {m.linkname[:100]!r}")
                staged.aliases[name] = target
                continue
            if not _allowed(name):
                if m.isreg() and m.size <= 0:
                    continue
                raise InvalidArchive(f"unexpected archive member {name[:100]!r}: not an image archive (a root "
                                     "filesystem tarball is imported with `virtlab import`)")
            if not m.isreg():
                raise InvalidArchive(f"archive member {name!r} is not a regular file")
            cap = limits.max_json_bytes if (name in _DOCS or name.endswith((".json", "/json", "/VERSION"))) \
                else limits.max_blob_bytes
            if m.size > cap and not _BLOB_RE.fullmatch(name):
                raise LimitExceeded(f"archive member {name!r} is {m.size} bytes, over the limit of {cap}")
            if m.size > limits.max_blob_bytes:
                raise LimitExceeded(f"archive member {name!r} is {m.size} bytes, over the limit")
            if name in staged.files:
                raise InvalidArchive(f"archive has {name!r} twice")
            total += m.size
            if total > limits.max_archive_bytes:
                raise LimitExceeded(f"archive holds more than {limits.max_archive_bytes} bytes")
            dst = st / f"m{len(staged.files)}"
            src = tf.extractfile(m)
            if src is None:
                raise InvalidArchive(f"cannot read archive member {name!r}")
            with open(dst, "xb") as f:
                left = m.size
                while left:
                    try:
                        chunk = src.read(min(left, 1 << 20))
                    except tarfile.ReadError as exc:
                        raise InvalidArchive(f"archive is truncated in {name!r}") from exc
                    if not chunk:
                        raise InvalidArchive(f"archive is truncated in {name!r}")
                    f.write(chunk)
                    left -= len(chunk)
            staged.files[name] = dst
            tf.members.clear()  # type: ignore[attr-defined]  # stream mode would keep every header
    except tarfile.ReadError as exc:
        raise InvalidArchive(f"invalid archive: {exc}") from exc
    return staged


def _repo_tags_by_config(staged: _Staged, limits) -> dict[str, list[str]]:
    if "manifest.json" not in staged.files:
        return {}
    doc = staged.read_json("manifest.json", limits.max_json_bytes, "manifest.json")
    if not isinstance(doc, list):
        raise InvalidArchive("manifest.json is not a list")
    out: dict[str, list[str]] = {}
    for e in doc:
        cfg = e.get("Config") if isinstance(e, dict) else None
        m = _BLOB_RE.fullmatch(cfg or "") or _LEGACY_CONFIG_RE.fullmatch(cfg or "")
        if m:
            out.setdefault(f"sha256:{m.group(1)}", []).extend(t for t in (e.get("RepoTags") or []) if isinstance(t, str))
    return out


def _load_oci(store: ImageStore, staged: _Staged, say) -> list[tuple[bytes, list[str]]]:
    limits = store.limits
    raw = staged.path("index.json").read_bytes()
    index = oci.parse_index(raw, "index.json of the archive", limits)
    tags_by_config = _repo_tags_by_config(staged, limits)
    loaded: list[tuple[bytes, list[str]]] = []
    seen: dict[str, list[str]] = {}
    for i, desc in enumerate(index["manifests"]):
        if desc["digest"] in seen:
            names = seen[desc["digest"]]
            names.extend(n for n in _names_for(desc, []) if n not in names)
            continue
        mdata = _blob_bytes(staged, desc, limits)
        if desc["mediaType"] in oci.INDEX_TYPES:
            sub = oci.parse_index(mdata, f"nested index {i}", limits, content_type=desc["mediaType"])
            desc = oci.pick_platform(sub, f"nested index {i}")
            mdata = _blob_bytes(staged, desc, limits)
        manifest = oci.parse_manifest(mdata, f"manifest {desc['digest']}", limits, content_type=desc["mediaType"])
        cfg_bytes = _blob_bytes(staged, manifest["config"], limits)
        config = oci.parse_config(cfg_bytes, len(manifest["layers"]), f"config {manifest['config']['digest']}",
                                  limits)
        for j, layer in enumerate(manifest["layers"]):
            diff_id = config["rootfs"]["diff_ids"][j]
            if store.has_blob(layer["digest"]) and store.has_snapshot(diff_id):
                say(f"{layer['digest'][7:19]}: Already exists")
                continue
            say(f"{layer['digest'][7:19]}: Loading layer")
            with open(staged.path(f"blobs/sha256/{dg.hex_of(layer['digest'])}"), "rb") as f:
                store.ingest_layer(f, digest=layer["digest"], size=layer["size"], diff_id=diff_id,
                                   media_type=layer["mediaType"], what=f"layer {layer['digest']}")
        store.put_blob_bytes(cfg_bytes)
        names = _names_for(desc, tags_by_config.get(manifest["config"]["digest"], []))
        seen[desc["digest"]] = names
        loaded.append((mdata, names))
    return loaded


def _names_for(desc: dict, docker_tags: list[str]) -> list[str]:
    names = []
    ann = desc.get("annotations") or {}
    for cand in (ann.get("io.containerd.image.name"), ann.get(oci.REF_NAME), *docker_tags):
        if not isinstance(cand, str) or not cand:
            continue
        try:
            r = reference.parse(cand)
        except ImageError:
            continue  # a bare tag such as "latest" names no repository
        if r.tag and r.name not in names:  # a bare tag such as "latest" parses as a repository without a tag
            names.append(r.name)
    return names


def _blob_bytes(staged: _Staged, desc: dict, limits) -> bytes:
    d = dg.validate(desc["digest"])
    p = staged.path(f"blobs/sha256/{dg.hex_of(d)}")
    size = p.stat().st_size
    if size > limits.max_json_bytes:
        raise LimitExceeded(f"document {d} is {size} bytes, over the limit of {limits.max_json_bytes}")
    data = p.read_bytes()
    if len(data) != desc["size"]:
        raise InvalidArchive(f"blob {d}: size is {len(data)} bytes, descriptor says {desc['size']}")
    if dg.of_bytes(data) != d:
        raise InvalidArchive(f"blob {d}: content does not match its digest")
    return data


def _load_docker(store: ImageStore, staged: _Staged, say) -> list[tuple[bytes, list[str]]]:
    limits = store.limits
    doc = staged.read_json("manifest.json", limits.max_json_bytes, "manifest.json")
    if not isinstance(doc, list) or not doc:
        raise InvalidArchive("manifest.json is not a non-empty list")
    loaded = []
    for i, e in enumerate(doc):
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str) or not isinstance(e.get("Layers"), list):
            raise InvalidArchive(f"manifest.json entry {i} has no Config or Layers")
        for p in [e["Config"], *e["Layers"]]:
            if not isinstance(p, str) or not (_BLOB_RE.fullmatch(p) or _LEGACY_LAYER_RE.fullmatch(p)
                                              or _LEGACY_CONFIG_RE.fullmatch(p)):
                raise InvalidArchive(f"manifest.json entry {i} points at {str(p)[:100]!r} (not a blob of the archive)")
        cfg_path = staged.path(e["Config"])
        cfg_bytes = cfg_path.read_bytes() if cfg_path.stat().st_size <= limits.max_json_bytes else None
        if cfg_bytes is None:
            raise LimitExceeded(f"config {e['Config']} is over the limit of {limits.max_json_bytes} bytes")
        m = _BLOB_RE.fullmatch(e["Config"]) or _LEGACY_CONFIG_RE.fullmatch(e["Config"])
        if m is None or dg.of_bytes(cfg_bytes) != f"sha256:{m.group(1)}":
            raise InvalidArchive(f"config {e['Config']} does not match its digest")
        config = oci.parse_config(cfg_bytes, len(e["Layers"]), f"config {e['Config']}", limits)
        layers = []
        for j, lp in enumerate(e["Layers"]):
            diff_id = config["rootfs"]["diff_ids"][j]
            say(f"{diff_id[7:19]}: Loading layer")
            with open(staged.path(lp), "rb") as f:
                layers.append(store.ingest_layer(f, diff_id=diff_id, what=f"layer {lp}"))
        tags = [reference.parse(t).name for t in (e.get("RepoTags") or []) if isinstance(t, str)]
        loaded.append((store.make_manifest(cfg_bytes, layers), tags))
    return loaded


def load(store: ImageStore, stream, say: Callable[[str], None] | None = None) -> list[tuple[Image, list[str]]]:
    """Load every image of an OCI or docker archive from `stream`; all or nothing per archive."""
    say = say or (lambda msg: None)
    with store.writing(), store.staging("load") as st:
        staged = _stage(stream, st, store)
        if "index.json" in staged.files:
            pending = _load_oci(store, staged, say)
        elif "manifest.json" in staged.files:
            pending = _load_docker(store, staged, say)
        else:
            raise InvalidArchive("archive has neither index.json (OCI) nor manifest.json (docker)")
        # Everything is verified and in the store: only now do the images appear, all together.
        out = []
        for mdata, names in pending:
            img = store.add_manifest(mdata, names[0] if names else None)
            for n in names[1:]:
                img = store.add_manifest(mdata, n)
            out.append((img, names))
        return out

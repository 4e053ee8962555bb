"""The image store: an OCI image layout on disk plus unpacked layer snapshots.

Layout under the store directory (0700: setuid files and device nodes unpacked from
images stay out of other users' reach):

    oci-layout, index.json     an OCI image layout; index.json entries carry the
                               `org.opencontainers.image.ref.name` of each tag
                               (an entry without one is a dangling image)
    blobs/sha256/<hex>         content-addressed blobs, verified on write and read
    snapshots/<diff-id hex>/   fs/ (one layer unpacked as an overlayfs lowerdir) + meta.json
    holds/<image-id hex>/<holder>   containers pinning an image
    staging/<pid>-<token>/     work in progress; renamed into place when complete
    staging/partial/<hex>      interrupted downloads, resumed with Range requests
    locks/                     index.lock (index and holds), gc.lock (writers shared, GC exclusive)

Every update is written to staging, fsynced and renamed, so a crash at any point
leaves either the old or the new state; leftovers in staging are swept by GC.
Reference counting is by reachability: a blob or snapshot lives while an index
entry reaches it, and images stay while a container holds them.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from runtime.image import digest as dg
from runtime.image import oci, reference
from runtime.image.compress import GZIP, MEDIA_TYPES, NONE, ZSTD, PeekReader, decompressing, detect
from runtime.image.errors import (
    AmbiguousImage,
    ImageError,
    ImageInUse,
    ImageNotFound,
    InvalidArchive,
    InvalidReference,
)
from runtime.image.fsutil import atomic_write, disk_usage, fsync_dir, rmtree
from runtime.image.limits import DEFAULT, Limits
from runtime.image.locks import flock
from runtime.image.values import Frozen, Value

HOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # e.g. "container:<id>"; never "/" or a dot-dir


def _shown(holder: str) -> str:
    """A holder as messages show it: the container ID, 12 digits, without a `container:` prefix."""
    return holder.split(":", 1)[-1][:12]


class Layer(Frozen):
    """One layer of an image: blob digest (as stored), uncompressed diff_id, blob size, media type."""

    __slots__ = ("digest", "diff_id", "size", "media_type")

    def __init__(self, digest: str, diff_id: str, size: int, media_type: str) -> None:
        self.digest = digest
        self.diff_id = diff_id
        self.size = size
        self.media_type = media_type


class Image(Value):
    """An image in the store. `id` is the config digest, `digest` the manifest digest."""

    __slots__ = ("id", "digest", "manifest", "config", "layers", "manifest_media_type", "manifest_size", "refs")

    def __init__(self, id: str, digest: str, manifest: dict, config: dict, layers: list[Layer],
                 manifest_media_type: str = oci.OCI_MANIFEST, manifest_size: int = 0,
                 refs: list[str] | None = None) -> None:
        self.id = id
        self.digest = digest
        self.manifest = manifest
        self.config = config
        self.layers = layers
        self.manifest_media_type = manifest_media_type
        self.manifest_size = manifest_size
        self.refs: list[str] = [] if refs is None else refs

    @property
    def short_id(self) -> str:
        """The 12-hex-digit ID shown by `images`."""
        return self.id[len("sha256:") :][:12]

    @property
    def created(self) -> str:
        """The config's creation time (RFC 3339), or an empty string."""
        c = self.config.get("created")
        return c if isinstance(c, str) else ""


def _tag_ref(ref: str) -> str:
    """Validate a name to tag an image with: a reference with a tag, never a digest."""
    r = reference.parse(ref)
    if r.digest:
        raise InvalidReference(f"refusing to create a tag with a digest reference: {ref}")
    return r.name


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with nanosecond-style precision, like Go."""
    import datetime as _dt  # only import/commit stamp images: `run` need not load it

    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _syncfs(fd: int) -> None:
    """Flush the filesystem holding `fd` (one call instead of an fsync per unpacked file)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs(fd)
    except (OSError, AttributeError):
        os.sync()


class ImageStore:
    """Content-addressed image store in an OCI layout; safe across processes (file locks)."""

    def __init__(self, path: str | os.PathLike, limits: Limits = DEFAULT,
                 warn: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.limits = limits
        self.warn = warn or (lambda msg: None)
        self.blob_dir = self.path / "blobs" / "sha256"
        self.snap_dir = self.path / "snapshots"
        self.hold_dir = self.path / "holds"
        self.staging_dir = self.path / "staging"
        self.partial_dir = self.staging_dir / "partial"
        self.lock_dir = self.path / "locks"
        self._cache: dict[str, Image] = {}
        self._created: list[tuple[str, str]] | None = None  # ("blob"|"snap", hex) added by the current writer

    # ----------------------------------------------------------------- setup

    def ensure(self) -> None:
        """Create the layout (idempotent). Directories are 0700."""
        if (self.path / "oci-layout").exists() and self.partial_dir.is_dir():
            return
        for d in (self.path, self.blob_dir.parent, self.blob_dir, self.snap_dir, self.hold_dir, self.staging_dir,
                  self.partial_dir, self.lock_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        if not (self.path / "oci-layout").exists():
            atomic_write(self.path / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', mode=0o600)
        if not (self.path / "index.json").exists():
            self._write_index([])

    @contextmanager
    def _index_lock(self, shared: bool = False):
        self.ensure()
        with flock(self.lock_dir / "index.lock", shared=shared):
            yield

    @contextmanager
    def _gc_lock(self, shared: bool = True):
        self.ensure()
        with flock(self.lock_dir / "gc.lock", shared=shared):
            yield

    @contextmanager
    def writing(self):
        """Hold the shared GC lock while adding content; on failure remove what this block added and nothing uses.

        This is what makes a refused import, load or pull leave no half-imported image behind.
        """
        prev, self._created = self._created, []
        created = self._created
        try:
            with self._gc_lock():
                yield
        except BaseException:
            self._created = prev
            self._discard(created)
            raise
        finally:
            self._created = prev

    def _note(self, kind: str, hexd: str) -> None:
        if self._created is not None:
            self._created.append((kind, hexd))

    def _discard(self, created: list[tuple[str, str]]) -> None:
        if not created:
            return
        with self._gc_lock(shared=False), self._index_lock():
            blobs, snaps = self._reachable(self._read_index())
            for kind, hexd in created:
                if kind == "blob" and hexd not in blobs:
                    rmtree(self.blob_dir / hexd)
                    self._cache.pop(f"sha256:{hexd}", None)
                elif kind == "snap" and hexd not in snaps:
                    rmtree(self.snap_dir / hexd)

    @contextmanager
    def staging(self, prefix: str = "work"):
        """A private staging directory, removed afterwards whatever happens."""
        self.ensure()
        d = self.staging_dir / f"{os.getpid()}-{prefix}-{os.urandom(6).hex()}"
        d.mkdir(mode=0o700)
        try:
            yield d
        finally:
            rmtree(d)

    # ----------------------------------------------------------------- index

    def _read_index(self) -> list[dict]:
        try:
            data = (self.path / "index.json").read_bytes()
        except FileNotFoundError:
            return []
        doc = json.loads(data)
        return list(doc.get("manifests", []))

    def _write_index(self, entries: list[dict]) -> None:
        doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": entries}
        atomic_write(self.path / "index.json", json.dumps(doc, indent=1, sort_keys=True).encode(), mode=0o600)

    @staticmethod
    def _ref_of(entry: dict) -> str | None:
        return (entry.get("annotations") or {}).get(oci.REF_NAME)

    # ----------------------------------------------------------------- blobs

    def blob_path(self, digest: str) -> Path:
        """Where the blob with `digest` lives (the digest is validated first)."""
        return self.blob_dir / dg.hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        """True if the blob is in the store."""
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str, max_bytes: int | None = None) -> bytes:
        """Read a whole (small) blob and verify it against its digest."""
        limit = self.limits.max_json_bytes if max_bytes is None else max_bytes
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError as exc:
            raise ImageError(f"blob {digest} is missing from the store") from exc
        if len(data) > limit:
            raise InvalidArchive(f"blob {digest} is larger than {limit} bytes")
        if dg.of_bytes(data) != digest:
            raise InvalidArchive(f"blob {digest} is corrupt in the store (content does not match its digest)")
        return data

    def put_blob_bytes(self, data: bytes) -> str:
        """Store a small blob; return its digest."""
        d = dg.of_bytes(data)
        path = self.blob_path(d)
        if not path.exists():
            self.ensure()
            atomic_write(path, data, mode=0o600)
            self._note("blob", dg.hex_of(d))
        return d

    def put_blob_file(self, src: Path, expected: str, size: int | None = None) -> None:
        """Move a verified staging file into place as blob `expected` (hashes it again first)."""
        h = dg.HashingReader(open(src, "rb"), what=f"blob {expected}")
        try:
            h.drain()
        finally:
            h.raw.close()
        h.verify(expected, size)
        dst = self.blob_path(expected)
        if dst.exists():
            return
        with open(src, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(src, 0o600)
        os.replace(src, dst)
        fsync_dir(self.blob_dir)
        self._note("blob", dg.hex_of(expected))

    # ---------------------------------------------------------------- layers

    def has_snapshot(self, diff_id: str) -> bool:
        """True if the layer with this diff_id is unpacked."""
        return (self.snap_dir / dg.hex_of(diff_id) / "meta.json").is_file()

    def ingest_layer(self, raw, *, digest: str | None = None, size: int | None = None,
                     diff_id: str | None = None, media_type: str | None = None, what: str = "layer") -> Layer:
        """Stream a layer blob into the store and unpack it into a snapshot, in one pass.

        `raw` is the blob as it arrives (tar, gzip, zstd; xz and bzip2 are stored as
        plain tar). Given `digest`/`size`/`diff_id`, the content must match them. On any
        error nothing is kept.
        """
        with self.staging("layer") as st:
            peek = PeekReader(raw)
            kind = detect(peek.head)
            if media_type is not None:
                from runtime.image.compress import LAYER_MEDIA_TYPES

                declared = LAYER_MEDIA_TYPES.get(media_type)
                if declared is None:
                    raise InvalidArchive(f"{what}: unsupported layer media type {media_type!r}")
                if declared != kind:
                    raise InvalidArchive(f"{what}: media type {media_type!r} says {declared}, content is {kind}")
            keep_raw = kind in (NONE, GZIP, ZSTD)
            from runtime.image.extract import apply_layer  # tarfile and friends: only when unpacking
            blob_tmp = st / "blob"
            snap = st / "snap"
            fs = snap / "fs"
            fs.mkdir(parents=True, mode=0o755)
            os.chmod(snap, 0o700)
            with open(blob_tmp, "wb") as blob_f:
                rawr = dg.HashingReader(peek, limit=self.limits.max_blob_bytes, sink=blob_f if keep_raw else None,
                                        what=what)
                dec, _ = decompressing(rawr, what)
                diffr = dg.HashingReader(dec, limit=self.limits.max_layer_bytes, sink=None if keep_raw else blob_f,
                                         what=f"{what} (uncompressed)")
                fd = os.open(fs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    stats = apply_layer(diffr, fd, mode="overlay", limits=self.limits, warn=self.warn)
                    diffr.drain()
                    rawr.drain()
                    rawr.verify(digest, size)
                    diffr.verify(diff_id)
                    _syncfs(fd)
                finally:
                    os.close(fd)
                blob_f.flush()
                os.fsync(blob_f.fileno())
            blob_digest = rawr.digest if keep_raw else diffr.digest
            blob_size = rawr.count if keep_raw else diffr.count
            real_diff = diffr.digest
            apparent, allocated = disk_usage(fs)
            meta = {"diff_id": real_diff, "content_bytes": stats.bytes, "apparent_bytes": apparent,
                    "disk_bytes": allocated, "entries": stats.entries}
            atomic_write(snap / "meta.json", json.dumps(meta).encode())
            dst = self.blob_path(blob_digest)
            if not dst.exists():
                os.replace(blob_tmp, dst)
                fsync_dir(self.blob_dir)
                self._note("blob", dg.hex_of(blob_digest))
            self._place_snapshot(snap, real_diff)
        mt = media_type or MEDIA_TYPES[kind if keep_raw else NONE]
        return Layer(blob_digest, real_diff, blob_size, mt)

    def _place_snapshot(self, snap: Path, diff_id: str) -> None:
        dst = self.snap_dir / dg.hex_of(diff_id)
        if (dst / "meta.json").exists():
            return
        if dst.exists():
            rmtree(dst)  # an incomplete leftover without meta.json
        try:
            os.rename(snap, dst)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return  # another process placed the same layer first
        fsync_dir(self.snap_dir)
        self._note("snap", dg.hex_of(diff_id))

    def ensure_snapshot(self, layer: Layer) -> Path:
        """The unpacked snapshot dir of `layer`, unpacking it again from its blob if it is gone."""
        base = self.snap_dir / dg.hex_of(layer.diff_id)
        if (base / "meta.json").is_file():
            return base / "fs"
        try:
            f = open(self.blob_path(layer.digest), "rb")
        except FileNotFoundError as exc:
            raise ImageError(f"layer {layer.digest} is missing from the store (pull or load the image again)") \
                from exc
        with self._gc_lock(), f:
            self.ingest_layer(f, digest=layer.digest, size=layer.size, diff_id=layer.diff_id,
                              media_type=layer.media_type, what=f"layer {layer.digest}")
        return base / "fs"

    def snapshot_dirs(self, img: Image) -> list[Path]:
        """Unpacked layers of `img`, lowest first: overlayfs lowerdirs (reverse them for `lowerdir=`)."""
        return [self.ensure_snapshot(layer) for layer in img.layers]

    def snapshot_meta(self, diff_id: str) -> dict:
        """meta.json of an unpacked layer (sizes), or {} when it is not unpacked."""
        try:
            return json.loads((self.snap_dir / dg.hex_of(diff_id) / "meta.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return {}

    def flatten(self, img: Image, dest: Path, devices: bool = False) -> None:
        """Apply every layer of `img` (whiteouts honoured) into the empty directory `dest`."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise ImageError(f"cannot flatten {img.short_id} into {dest}: directory is not empty")
        from runtime.image.extract import apply_layer

        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for layer in img.layers:
                with open(self.blob_path(layer.digest), "rb") as f:
                    rawr = dg.HashingReader(f, what=f"layer {layer.digest}")
                    dec, _ = decompressing(rawr, f"layer {layer.digest}")
                    diffr = dg.HashingReader(dec, limit=self.limits.max_layer_bytes, what=f"layer {layer.diff_id}")
                    apply_layer(diffr, fd, mode="apply", limits=self.limits, devices=devices, warn=self.warn)
                    diffr.drain()
                    rawr.drain()
                    rawr.verify(layer.digest)
                    diffr.verify(layer.diff_id)
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- images

    def load_image(self, manifest_digest: str) -> Image:
        """Read (and verify) the manifest and config of a stored image."""
        cached = self._cache.get(manifest_digest)
        if cached is not None:
            return cached
        data = self.read_blob(manifest_digest)
        manifest = oci.parse_manifest(data, f"manifest {manifest_digest}", self.limits)
        config = oci.parse_config(self.read_blob(manifest["config"]["digest"]), len(manifest["layers"]),
                                  f"config of {manifest_digest}", self.limits)
        layers = [Layer(d["digest"], diff, d["size"], d["mediaType"])
                  for d, diff in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True)]
        img = Image(id=manifest["config"]["digest"], digest=manifest_digest, manifest=manifest, config=config,
                    layers=layers, manifest_media_type=manifest["mediaType"], manifest_size=len(data))
        self._cache[manifest_digest] = img
        return img

    def _entries_images(self, entries: Iterable[dict]) -> list[Image]:
        seen: dict[str, Image] = {}
        for e in entries:
            d = e.get("digest")
            if not isinstance(d, str):
                continue
            if d in seen:
                img = seen[d]
            else:
                try:
                    img = self.load_image(d).replace(refs=[])
                except (ImageError, InvalidReference) as exc:
                    self.warn(f"skipping broken image {d}: {exc}")
                    continue
                seen[d] = img
            ref = self._ref_of(e)
            if ref and ref not in img.refs:
                img.refs.append(ref)
        return list(seen.values())

    def images(self) -> list[Image]:
        """Every image in the store (tagged and dangling), each with its refs."""
        if not (self.path / "index.json").exists():
            return []
        return self._entries_images(self._read_index())

    def refs(self, img: Image) -> list[str]:
        """The names (`repo:tag`) that point at `img`."""
        names = (self._ref_of(e) for e in self._read_index() if e.get("digest") == img.digest)
        return [n for n in names if n]

    def resolve(self, text: str) -> Image:
        """Find an image by `name[:tag]`, `name@sha256:...`, full ID or unique ID prefix."""
        if not isinstance(text, str) or not text:
            raise ImageNotFound(str(text))
        entries = self._read_index() if (self.path / "index.json").exists() else []
        ref = None
        try:
            ref = reference.parse(text)
        except InvalidReference:
            if not reference.looks_like_id(text):
                raise
        if ref is not None:
            if ref.digest:
                hits = [e for e in entries if e.get("digest") == ref.digest]
                for img in self._entries_images(hits):
                    repos = {reference.parse(r).repository for r in img.refs}
                    if ref.repository in repos or not img.refs:
                        img.refs = self.refs(img)
                        return img
            else:
                name = ref.name
                hits = [e for e in entries if self._ref_of(e) == name]
                found = self._entries_images(hits)
                if found:
                    found[0].refs = self.refs(found[0])
                    return found[0]
        if reference.looks_like_id(text):
            prefix = text[len("sha256:") :] if text.startswith("sha256:") else text
            matches: dict[str, Image] = {}
            for img in self._entries_images(entries):
                if img.id[len("sha256:") :].startswith(prefix):
                    matches.setdefault(img.id, img)
            if len(matches) > 1:
                raise AmbiguousImage(f"image ID prefix {text!r} matches {len(matches)} images")
            if matches:
                return next(iter(matches.values()))
        raise ImageNotFound(text)

    def exists(self, text: str) -> bool:
        """True if `text` resolves to an image."""
        try:
            self.resolve(text)
            return True
        except ImageNotFound:
            return False

    def image_disk_usage(self, img: Image) -> dict:
        """Bytes on disk for `img` (allocated, shared layers included): blobs, snapshots and their total."""
        blobs = 0
        for d in {img.digest, img.id, *(lyr.digest for lyr in img.layers)}:
            try:
                blobs += self.blob_path(d).stat().st_blocks * 512
            except FileNotFoundError:
                pass
        snaps = sum(self.snapshot_meta(d).get("disk_bytes", 0) for d in {lyr.diff_id for lyr in img.layers})
        return {"blobs": blobs, "snapshots": snaps, "total": blobs + snaps}

    def image_size(self, img: Image) -> int:
        """Uncompressed size of the image's content (what docker shows as SIZE)."""
        total = 0
        for layer in img.layers:
            meta = self.snapshot_meta(layer.diff_id)
            total += meta.get("apparent_bytes", layer.size)
        return total

    # ------------------------------------------------------- writing images

    def write_image(self, config: dict | bytes, layers: list[Layer], ref: str | None,
                    manifest_media_type: str = oci.OCI_MANIFEST, config_media_type: str = oci.OCI_CONFIG,
                    annotations: dict | None = None) -> Image:
        """Store config (a dict, or exact bytes to keep an ID) and a manifest for `layers`, and tag it `ref`."""
        data = self.make_manifest(config, layers, manifest_media_type, config_media_type, annotations)
        return self.add_manifest(data, ref)

    def make_manifest(self, config: dict | bytes, layers: list[Layer], manifest_media_type: str = oci.OCI_MANIFEST,
                      config_media_type: str = oci.OCI_CONFIG, annotations: dict | None = None) -> bytes:
        """Store the config blob and return the bytes of a manifest for it and `layers` (not yet recorded)."""
        config_bytes = config if isinstance(config, bytes) else oci.canonical(config)
        config_digest = self.put_blob_bytes(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_media_type,
            "config": {"mediaType": config_media_type, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": lyr.media_type, "digest": lyr.digest, "size": lyr.size} for lyr in layers],
        }
        if annotations:
            manifest["annotations"] = annotations
        return oci.canonical(manifest)

    def add_manifest(self, manifest_bytes: bytes, ref: str | None) -> Image:
        """Record a manifest whose config and layers are in the store; tag it `ref` (None: dangling)."""
        mdigest = self.put_blob_bytes(manifest_bytes)
        img = self.load_image(mdigest)
        for layer in img.layers:
            if not self.has_blob(layer.digest):
                raise ImageError(f"layer {layer.digest} of {mdigest} is not in the store")
        name = reference.parse(ref).name if ref else None
        with self._index_lock():
            entries = self._read_index()
            desc = {"mediaType": img.manifest_media_type, "digest": mdigest, "size": len(manifest_bytes)}
            if name:
                moved = [e for e in entries if self._ref_of(e) == name and e.get("digest") != mdigest]
                entries = [e for e in entries if self._ref_of(e) != name]
                for old in moved:
                    # Like docker, the image that lost its last name stays as a dangling <none> image.
                    if not any(e.get("digest") == old["digest"] for e in entries):
                        entries.append({k: v for k, v in old.items() if k != "annotations"})
                desc["annotations"] = {oci.REF_NAME: name}
                # The image is now named: drop a dangling entry for the same manifest.
                entries = [e for e in entries if not (e.get("digest") == mdigest and not self._ref_of(e))]
                entries.append(desc)
            elif not any(e.get("digest") == mdigest for e in entries):
                entries.append(desc)
            self._write_index(entries)
        return img.replace(refs=self.refs(img))

    def import_tar(self, src, ref: str | None, config_changes: dict | None = None, message: str = "") -> Image:
        """A rootfs tarball (tar, gz, xz, zst, bz2; a path, `-` for stdin, or a binary stream) as a one-layer image."""
        if ref:
            _tag_ref(ref)
        with self.writing():
            if isinstance(src, (str, os.PathLike)) and str(src) != "-":
                with open(src, "rb") as f:
                    layer = self.ingest_layer(f, what=f"import of {src}")
            else:
                import sys

                stream = sys.stdin.buffer if str(src) == "-" else src
                layer = self.ingest_layer(stream, what="import from stdin")
            os_name, arch = oci.host_platform()
            config = {
                "architecture": arch,
                "os": os_name,
                "created": now_rfc3339(),
                "config": dict(config_changes or {}),
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": now_rfc3339(), "created_by": "virtlab import", "comment": message or "imported"}],
            }
            return self.write_image(config, [layer], ref)

    def commit(self, base: Image | None, layer_tar, ref: str | None, config_changes: dict | None = None,
               comment: str = "", author: str = "", created_by: str = "virtlab commit") -> Image:
        """A new image: `base` plus one layer made from a container's upper dir (a tar path or stream)."""
        import copy  # here, not at the top: `copy` loads weakref, and `run` commits no image

        if ref:
            _tag_ref(ref)
        with self.writing():
            if isinstance(layer_tar, (str, os.PathLike)):
                with open(layer_tar, "rb") as f:
                    layer = self.ingest_layer(f, what="commit layer")
            else:
                layer = self.ingest_layer(layer_tar, what="commit layer")
            os_name, arch = oci.host_platform()
            config: dict = copy.deepcopy(base.config) if base else {"architecture": arch, "os": os_name, "config": {},
                                                               "rootfs": {"type": "layers", "diff_ids": []}}
            config["created"] = now_rfc3339()
            if author:
                config["author"] = author
            cfg: dict = dict(config.get("config") or {})
            cfg.update(config_changes or {})
            config["config"] = cfg
            config["rootfs"] = {"type": "layers", "diff_ids": [*config["rootfs"]["diff_ids"], layer.diff_id]}
            entry = {"created": config["created"], "created_by": created_by}
            if comment:
                entry["comment"] = comment
            if author:
                entry["author"] = author
            config["history"] = [*config.get("history", []), entry]
            layers = [*(base.layers if base else []), layer]
            return self.write_image(config, layers, ref)

    # ------------------------------------------------------- tags and removal

    def tag(self, img: Image, ref: str) -> None:
        """Point `ref` at `img` (moving it from another image if needed)."""
        _tag_ref(ref)
        data = self.read_blob(img.digest)
        self.add_manifest(data, ref)

    def _holders_locked(self, image_id: str) -> list[str]:
        d = self.hold_dir / dg.hex_of(image_id)
        try:
            return sorted(os.listdir(d))
        except FileNotFoundError:
            return []

    def holders(self, image_id: str) -> list[str]:
        """Who holds the image (container IDs)."""
        return self._holders_locked(image_id)

    def untag(self, ref: str, force: bool = False) -> list[tuple[str, str]]:
        """Remove one name. The last name of an unheld image removes the image. Returns docker-style actions."""
        name = reference.parse(ref).name
        with self._gc_lock(shared=False), self._index_lock():
            entries = self._read_index()
            hit = [e for e in entries if self._ref_of(e) == name]
            if not hit:
                raise ImageNotFound(ref)
            mdigest = hit[0]["digest"]
            img = self.load_image(mdigest)
            others = [e for e in entries if e.get("digest") == mdigest and self._ref_of(e) and self._ref_of(e) != name]
            holders = self._holders_locked(img.id)
            if not others and holders and not force:
                raise ImageInUse(f'conflict: unable to remove repository reference "{ref}" (must force) - '
                                 f"container {_shown(holders[0])} is using its referenced image {img.short_id}")
            entries = [e for e in entries if self._ref_of(e) != name]
            actions = [("Untagged", name)]
            if not others:
                if holders:
                    if not any(e.get("digest") == mdigest for e in entries):
                        entries.append({"mediaType": img.manifest_media_type, "digest": mdigest,
                                        "size": img.manifest_size})
                else:
                    entries = [e for e in entries if e.get("digest") != mdigest]
                    if not any(self._same_id(e, img.id) for e in entries):
                        actions.append(("Deleted", img.id))
            self._write_index(entries)
            self._gc_locked()
        return actions

    def _same_id(self, entry: dict, image_id: str) -> bool:
        try:
            return self.load_image(entry["digest"]).id == image_id
        except ImageError:
            return False

    def remove(self, img: Image, force: bool = False) -> list[tuple[str, str]]:
        """Remove an image and all its names. A held image needs `force` and then stays as dangling."""
        with self._gc_lock(shared=False), self._index_lock():
            entries = self._read_index()
            mine = [e for e in entries if self._same_id(e, img.id)]
            if not mine:
                raise ImageNotFound(img.id)
            holders = self._holders_locked(img.id)
            if holders and not force:
                raise ImageInUse(f"conflict: unable to delete {img.short_id} (must be forced) - image is being used "
                                 f"by container {_shown(holders[0])}")
            actions = [("Untagged", str(self._ref_of(e))) for e in mine if self._ref_of(e)]
            rest = [e for e in entries if not self._same_id(e, img.id)]
            if holders:
                rest.append({"mediaType": img.manifest_media_type, "digest": img.digest, "size": img.manifest_size})
            else:
                actions.append(("Deleted", img.id))
            self._write_index(rest)
            self._gc_locked()
        return actions

    # ------------------------------------------------------------------ holds

    def hold(self, image_id: str, holder: str) -> None:
        """Pin an image for `holder` (a container ID): it cannot be removed without force."""
        if not HOLDER_RE.fullmatch(holder or ""):
            raise InvalidReference(f"invalid holder name {holder!r}")
        dg.validate(image_id)
        with self._index_lock():
            if not any(self._same_id(e, image_id) for e in self._read_index()):
                raise ImageNotFound(image_id)
            d = self.hold_dir / dg.hex_of(image_id)
            d.mkdir(mode=0o700, exist_ok=True)
            # An empty file is all-or-nothing, so no temp file and rename. No fsync either: a hold
            # must outlive its holder's record, and a killed process loses nothing of the page
            # cache; the engine does not fsync its container records, so a hold that survived a
            # power loss without its record would buy nothing.
            os.close(os.open(d / holder, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))

    def release(self, image_id: str, holder: str) -> None:
        """Drop `holder`'s pin (idempotent)."""
        if not HOLDER_RE.fullmatch(holder or ""):
            raise InvalidReference(f"invalid holder name {holder!r}")
        d = self.hold_dir / dg.hex_of(image_id)
        with self._index_lock():
            try:
                os.unlink(d / holder)
            except FileNotFoundError:
                pass
            try:
                os.rmdir(d)
            except OSError:
                pass

    # -------------------------------------------------------------------- GC

    def _reachable(self, entries: list[dict]) -> tuple[set[str], set[str]]:
        blobs: set[str] = set()
        snaps: set[str] = set()
        for e in entries:
            try:
                img = self.load_image(e["digest"])
            except (ImageError, KeyError, InvalidReference):
                continue
            blobs.add(img.digest)
            blobs.add(img.id)
            for layer in img.layers:
                blobs.add(layer.digest)
                snaps.add(layer.diff_id)
        return {dg.hex_of(b) for b in blobs}, {dg.hex_of(s) for s in snaps}

    def _gc_locked(self, partial: bool = False) -> int:
        """Delete blobs and snapshots no index entry reaches, and dead staging dirs. Caller holds both locks."""
        blobs, snaps = self._reachable(self._read_index())
        freed = 0
        for name in os.listdir(self.blob_dir):
            if name not in blobs:
                p = self.blob_dir / name
                try:
                    freed += p.lstat().st_blocks * 512
                except FileNotFoundError:
                    continue
                rmtree(p)
                self._cache.pop(f"sha256:{name}", None)
        for name in os.listdir(self.snap_dir):
            if name not in snaps:
                p = self.snap_dir / name
                freed += disk_usage(p)[1]
                rmtree(p)
        for name in os.listdir(self.staging_dir):
            p = self.staging_dir / name
            if name == "partial":
                if partial:
                    for part in os.listdir(p):
                        freed += (p / part).lstat().st_blocks * 512
                        rmtree(p / part)
                continue
            pid = name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                continue
            freed += disk_usage(p)[1] if p.is_dir() else 0
            rmtree(p)
        for name in os.listdir(self.hold_dir):
            if not os.listdir(self.hold_dir / name):
                os.rmdir(self.hold_dir / name)
        return freed

    def gc(self, partial: bool = False) -> int:
        """Collect unreachable blobs, snapshots and dead staging work; return bytes freed."""
        with self._gc_lock(shared=False), self._index_lock():
            return self._gc_locked(partial)

    def prune(self, all_unused: bool = False) -> tuple[list[tuple[str, str]], int]:
        """Remove dangling images (with `all_unused`, every image no container holds), then GC."""
        actions: list[tuple[str, str]] = []
        with self._gc_lock(shared=False), self._index_lock():
            entries = self._read_index()
            keep = []
            for e in entries:
                try:
                    img = self.load_image(e["digest"])
                except ImageError:
                    continue
                unused = not self._holders_locked(img.id)
                if unused and (all_unused or not self._ref_of(e)):
                    name = self._ref_of(e)
                    if name:
                        actions.append(("Untagged", name))
                    if ("Deleted", img.id) not in actions:
                        actions.append(("Deleted", img.id))
                    continue
                keep.append(e)
            # Keep the "Deleted" only for IDs that are really gone.
            kept_ids = {self.load_image(e["digest"]).id for e in keep}
            actions = [a for a in actions if not (a[0] == "Deleted" and a[1] in kept_ids)]
            self._write_index(keep)
            freed = self._gc_locked()
        return actions, freed

    def disk_usage(self) -> dict:
        """Bytes on disk: blobs, snapshots, staging, and the total (each inode counted once)."""
        out = {}
        for key, p in (("blobs", self.blob_dir), ("snapshots", self.snap_dir), ("staging", self.staging_dir)):
            out[key] = disk_usage(p)[1] if p.exists() else 0
        out["total"] = out["blobs"] + out["snapshots"] + out["staging"]
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


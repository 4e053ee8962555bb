"""The bench image: a base image (busybox or debian) plus one layer holding the probe.

`virtlab-bench/<base>` is made through the image store's commit API, so containers,
VMs and the peers run the same bytes: the engine and the VM driver take the image
reference, runc gets the flattened rootfs, podman imports the same rootfs as a tarball.

Until the image store exists on a host (runtime.image not importable), the busybox
variant is assembled here from the host's busybox-static plus the probe; environment.json
records which source was used. The debian variant needs the image store.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import probe
from bench.errors import ConfigError

BASES = ("busybox", "debian")
# The store references each base is looked up under, in order (the image store builds debian:bookworm).
BASE_REFS = {"busybox": ("busybox:latest",), "debian": ("debian:bookworm", "debian:latest")}
BUSYBOX_APPLETS = ("sh", "sleep", "true", "false", "cat", "echo", "ls", "mkdir", "rm", "ps", "mount", "umount",
                   "env", "id", "hostname", "uname", "wc", "grep", "head", "tail", "dd", "sync", "df", "du", "ip",
                   "ifconfig", "ping", "wget", "nc", "httpd", "free", "top", "kill", "cp", "mv", "ln", "chmod")  # fmt: skip


@dataclass(frozen=True)
class BenchImage:
    """The image every backend runs, in the forms the backends need."""

    ref: str
    digest: str
    rootfs: Path
    tarball: Path
    source: str
    size_bytes: int


def dir_bytes(path: Path | str) -> int:
    """Bytes allocated on disk under `path` (st_blocks, hard links counted once, symlinks not followed)."""
    from runtime.image.fsutil import disk_usage  # lazy: this module must import where runtime.image is absent

    return disk_usage(path, skip_errors=True)[1]


def _tar_dir(src: Path, dest: Path) -> str:
    """A deterministic tar of `src` (sorted, mtime 0, root-owned); returns its sha256."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(src.rglob("*"), key=lambda p: str(p.relative_to(src)))
        for p in paths:
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(src)))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    os.replace(tmp, dest)
    h = hashlib.sha256()
    with open(dest, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _self_built_busybox(dest: Path, probe_bin: Path | None) -> None:
    """Assemble a minimal busybox rootfs (host busybox-static + the probe) into an empty `dest`."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise ConfigError("cannot build the busybox bench image: busybox-static is not installed")
    for d in ("bin", "usr/bin", "etc", "tmp", "var/tmp", "proc", "sys", "dev", "root", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "var/tmp", 0o1777)
    shutil.copy2(busybox, dest / "bin/busybox")
    for applet in BUSYBOX_APPLETS:
        os.symlink("busybox", dest / "bin" / applet)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    if probe_bin is not None:
        shutil.copy2(probe_bin, dest / probe.IN_IMAGE.lstrip("/"))


def _probe_layer(probe_bin: Path, dest: Path) -> None:
    """A layer tarball with just /usr/bin/virtlab-probe (root-owned, mode 0755, mtime 0)."""
    data = probe_bin.read_bytes()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("usr", "usr/bin"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        info = tarfile.TarInfo(probe.IN_IMAGE.lstrip("/"))
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))


def _store_busybox(store, cache: Path):
    """The store's busybox: built by runtime.image.build when it exists, else imported from busybox-static here."""
    try:
        from runtime.image.build import build_busybox
    except ImportError:
        pass
    else:
        return build_busybox(store)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        _self_built_busybox(rootfs, None)
        tarball = Path(tmp) / "busybox.tar"
        _tar_dir(rootfs, tarball)
        return store.import_tar(tarball, "virtlab-bench/busybox-base:latest")


def _from_store(root: Path, base: str, probe_bin: Path, cache: Path) -> BenchImage:
    """Commit base + probe layer in the image store, then flatten it for runc and tar it for podman."""
    from runtime.image.errors import ImageError
    from runtime.image.store import ImageStore

    store = ImageStore(root / "image")
    tag = probe.source_digest()[:12]
    ref = f"virtlab-bench/{base}:{tag}"
    try:
        img = store.resolve(ref)
    except ImageError:
        base_img = None
        for candidate in BASE_REFS[base]:
            try:
                base_img = store.resolve(candidate)
                break
            except ImageError:
                continue
        if base_img is None:
            if base != "busybox":
                raise ConfigError(f"image {BASE_REFS[base][0]} is not in the store: build it with "
                                  f"`virtlab image build {base}`") from None
            base_img = _store_busybox(store, cache)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            layer = Path(tmp) / "probe-layer.tar"
            _probe_layer(probe_bin, layer)
            img = store.commit(base_img, layer, ref, comment="virtlab bench: the probe payload")
    store.tag(img, f"virtlab-bench/{base}:latest")
    key = img.id.split(":", 1)[-1][:16]
    out = cache / "images" / key
    rootfs, tarball = out / "rootfs", out / "rootfs.tar"
    if not tarball.is_file():
        out.mkdir(parents=True, exist_ok=True)
        if rootfs.exists():
            shutil.rmtree(rootfs)
        rootfs.mkdir()
        store.flatten(img, rootfs)
        _tar_dir(rootfs, tarball)
    return BenchImage(ref=ref, digest=img.id, rootfs=rootfs, tarball=tarball, source="image-store",
                      size_bytes=dir_bytes(rootfs))


def _self_built(base: str, probe_bin: Path, cache: Path) -> BenchImage:
    if base != "busybox":
        raise ConfigError(f"the {base} bench image needs the image store (runtime.image), which is not installed")
    key = probe.source_digest()[:12]
    out = cache / "images" / f"selfbuilt-busybox-{key}"
    rootfs, tarball, digest_file = out / "rootfs", out / "rootfs.tar", out / "digest"
    if not digest_file.is_file():
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        rootfs.mkdir()
        _self_built_busybox(rootfs, probe_bin)
        digest_file.write_text(_tar_dir(rootfs, tarball))
    return BenchImage(ref=f"virtlab-bench/{base}:{key}", digest=digest_file.read_text().strip(), rootfs=rootfs,
                      tarball=tarball, source="self-built: host busybox-static + probe (image store not available)",
                      size_bytes=dir_bytes(rootfs))


def store_available() -> bool:
    """Whether the image store package is importable on this checkout."""
    try:
        import runtime.image.store  # noqa: F401
    except ImportError:
        return False
    return True


def ensure(root: Path | str, base: str = "busybox") -> BenchImage:
    """The bench image for `base`, built and cached on first use under `<root>/cache/bench/`."""
    if base not in BASES:
        raise ConfigError(f"unknown base image {base!r}: use {' or '.join(BASES)}")
    root = Path(root)
    cache = root / "cache" / "bench"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    probe_bin = probe.build(cache)
    if store_available():
        return _from_store(root, base, probe_bin, cache)
    return _self_built(base, probe_bin, cache)



"""Build (once, cached by digest) what a VM boots from: kernel, initramfs and a qcow2 base disk."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmdriver import disk
from vmdriver.errors import ArtifactError, InvalidSpec
from vmdriver.layout import FileLock, Layout

PROFILES = ("micro", "full")


@dataclass(frozen=True)
class Artifacts:
    """The files a VM of one image and profile boots from, shared by all its VMs."""

    image: str
    image_id: str
    profile: str
    kernel: Path | None
    initrd: Path | None
    base_disk: Path
    base_format: str
    kernel_version: str
    image_config: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    firmware: str | None = None  # full profile: the UEFI code image (read-only pflash)
    nvram_template: str | None = None  # full profile: the UEFI variables template

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings)."""
        d = asdict(self)
        for k in ("kernel", "initrd", "base_disk"):
            d[k] = str(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Artifacts:
        """The inverse of to_json."""
        d = dict(d)
        for k in ("kernel", "initrd", "base_disk"):
            d[k] = Path(d[k]) if d.get(k) else None
        return cls(**d)

    @property
    def shared_bytes(self) -> int:
        """Bytes on the host shared by every VM of this image: kernel + initramfs + base disk."""
        return sum(disk.allocated_bytes(p) for p in (self.kernel, self.initrd, self.base_disk) if p)


def _image_runtime_config(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of an OCI image config the guest init needs."""
    c = config.get("config") or {}
    return {
        "Entrypoint": list(c.get("Entrypoint") or []),
        "Cmd": list(c.get("Cmd") or []),
        "Env": [str(e) for e in (c.get("Env") or [])],
        "WorkingDir": str(c.get("WorkingDir") or "/"),
        "User": str(c.get("User") or ""),
    }


def ensure_base_disk(layout: Layout, image: Any, profile: str) -> tuple[Path, int]:
    """The qcow2 base disk of `image` (built once per image ID and profile)."""
    final = layout.disks / f"{image.digest_hex}.qcow2"
    with FileLock(layout.locks / f"disk-{image.digest_hex}.lock"):
        if final.is_file():
            return final, disk.allocated_bytes(final)
        with tempfile.TemporaryDirectory(dir=layout.tmp, prefix="disk-") as tmp:
            t = Path(tmp)
            rootfs = t / "rootfs"
            rootfs.mkdir()
            image.flatten(rootfs)
            raw = t / "root.raw"
            disk.build_ext4(rootfs, raw)
            shutil.rmtree(rootfs)
            out = t / "base.qcow2"
            disk.raw_to_qcow2(raw, out)
            raw.unlink()
            os.chmod(out, 0o644)
            os.rename(out, final)
    return final, disk.allocated_bytes(final)


def prepare(root: Path, image_ref: str, profile: str = "micro", prefer_host_kernel: bool = True) -> Artifacts:
    """Everything a VM of `image_ref` needs, built once and cached by digest."""
    if profile not in PROFILES:
        raise InvalidSpec(f"unknown profile {profile!r} (use micro or full)")
    from vmdriver import imagesrc

    layout = Layout(root)
    layout.ensure()
    image = imagesrc.resolve(root, image_ref)
    cfg = _image_runtime_config(image.config)
    meta_path = layout.disks / f"{image.digest_hex}.{profile}.json"
    if profile == "micro":
        from vmdriver.initramfs import ensure_initramfs
        from vmdriver.kernel import ensure_kernel

        kernel = ensure_kernel(layout, prefer_host=prefer_host_kernel)
        initrd = ensure_initramfs(layout, kernel)
        base, base_bytes = ensure_base_disk(layout, image, profile)
        art = Artifacts(
            image=image_ref, image_id=image.id, profile=profile, kernel=kernel.boot_image, initrd=initrd,
            base_disk=base, base_format="qcow2", kernel_version=kernel.version, image_config=cfg,
            sizes={
                "kernel": disk.allocated_bytes(kernel.boot_image),
                "initrd": disk.allocated_bytes(initrd),
                "base_disk": base_bytes,
            },
        )
    else:
        from vmdriver.full import prepare_full

        art = prepare_full(layout, image, image_ref, cfg)
    tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(art.to_json(), indent=2) + "\n")
    os.replace(tmp, meta_path)
    return art


def check_boot_file(path: Path, allowed: Path) -> Path:
    """A kernel or initrd must be a regular file (not a symlink or device) inside `allowed`."""
    import stat

    try:
        st = os.lstat(path)
    except OSError as exc:
        raise ArtifactError(f"boot file {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise ArtifactError(f"boot file {path} is a symlink; refused")
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactError(f"boot file {path} is not a regular file; refused")
    real = Path(os.path.realpath(path))
    base = Path(os.path.realpath(allowed))
    if base not in real.parents:
        raise ArtifactError(f"boot file {path} is outside {allowed}; refused")
    return path

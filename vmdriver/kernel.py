"""The guest kernel: the host's /boot kernel when there is one, else Debian's cloud kernel.

Debian's `linux-image-cloud-amd64` is downloaded with `apt-get download` (with the
versioned package it depends on) and unpacked with `dpkg-deb -x`, never installed.
Results are cached under <root>/vm/kernels/<version>/.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vmdriver.errors import ArtifactError
from vmdriver.layout import FileLock, Layout

CLOUD_META_PACKAGE = "linux-image-cloud-amd64"
VERSION_RE = re.compile(r"[0-9][A-Za-z0-9.+_-]{0,100}")


@dataclass(frozen=True)
class GuestKernel:
    """A guest kernel in the store and the module tree that matches it."""

    version: str
    vmlinuz: Path
    modules_dir: Path  # .../lib/modules/<version>
    source: str  # "host /boot" or the Debian package name and version


def host_kernel_paths(boot: Path = Path("/boot"), modules: Path = Path("/lib/modules")) -> tuple[Path, Path] | None:
    """The running kernel's image and modules if this host has them, else None."""
    release = platform.release()
    vmlinuz = boot / f"vmlinuz-{release}"
    mods = modules / release
    if vmlinuz.is_file() and (mods / "modules.dep").is_file():
        return vmlinuz, mods
    return None


def _ready(d: Path) -> GuestKernel | None:
    """The cached kernel in `d` if it was completely unpacked."""
    marker = d / "source"
    if not marker.is_file():
        return None
    version = d.name
    mods = d / "tree" / "lib" / "modules" / version
    if not (d / "vmlinuz").is_file():
        return None
    if not mods.is_dir():
        mods = Path("/lib/modules") / version
    return GuestKernel(version, d / "vmlinuz", mods, marker.read_text().strip())


def ensure_kernel(layout: Layout, prefer_host: bool = True) -> GuestKernel:
    """Return the guest kernel, copying or downloading it into the store once."""
    layout.ensure()
    with FileLock(layout.locks / "kernel.lock"):
        host = host_kernel_paths() if prefer_host else None
        if host is not None:
            vmlinuz, mods = host
            d = layout.kernels / platform.release()
            got = _ready(d)
            if got is None:
                d.mkdir(mode=0o711, exist_ok=True)
                # A copy, so that libvirt relabels our file and never /boot's.
                shutil.copyfile(vmlinuz, d / "vmlinuz.tmp")
                os.chmod(d / "vmlinuz.tmp", 0o644)
                os.replace(d / "vmlinuz.tmp", d / "vmlinuz")
                (d / "source").write_text("host /boot\n")
                got = _ready(d)
            assert got is not None
            return got
        cached = sorted((k for k in (_ready(d) for d in layout.kernels.iterdir() if d.is_dir()) if k), key=lambda k: k.version)
        if cached:
            return cached[-1]
        return _download_cloud_kernel(layout)


def _run(argv: list[str], cwd: Path, what: str) -> str:
    """Run a host tool, raising ArtifactError with its stderr on failure."""
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArtifactError(f"cannot {what}: {exc}") from exc
    if r.returncode != 0:
        raise ArtifactError(f"cannot {what}: {r.stderr.strip()[-500:]}")
    return r.stdout


def _download_cloud_kernel(layout: Layout) -> GuestKernel:
    """apt-get download the cloud kernel and unpack it into the store."""
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise ArtifactError(f"no guest kernel: /boot has none for this host and {tool} is missing")
    with tempfile.TemporaryDirectory(dir=layout.tmp, prefix="kernel-") as tmp:
        t = Path(tmp)
        os.chmod(t, 0o755)  # apt-get download drops privileges to _apt when it can
        _run(["apt-get", "download", "-q", CLOUD_META_PACKAGE], t, f"download {CLOUD_META_PACKAGE}")
        meta = next(t.glob(f"{CLOUD_META_PACKAGE}_*.deb"))
        depends = _run(["dpkg-deb", "-f", str(meta), "Depends"], t, f"read {meta.name}")
        m = re.search(r"(linux-image-[0-9][A-Za-z0-9.+-]*)\s*\(=\s*([^)\s]+)\)", depends)
        if not m:
            raise ArtifactError(f"cannot find the versioned kernel package in {meta.name}: Depends: {depends.strip()}")
        pkg, pkgver = m.group(1), m.group(2)
        _run(["apt-get", "download", "-q", f"{pkg}={pkgver}"], t, f"download {pkg}")
        deb = next(t.glob(f"{pkg}_*.deb"))
        tree = t / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)], t, f"unpack {deb.name}")
        images = sorted((tree / "boot").glob("vmlinuz-*"))
        if not images:
            raise ArtifactError(f"{deb.name} holds no /boot/vmlinuz-*")
        version = images[0].name.removeprefix("vmlinuz-")
        if not VERSION_RE.fullmatch(version):
            raise ArtifactError(f"unexpected kernel version in {deb.name}: {version!r}")
        mods = tree / "lib" / "modules" / version
        if not (mods / "modules.dep").is_file():
            # Debian ships no modules.dep: depmod writes it at install time.
            _run(["depmod", "-b", str(tree), version], t, f"run depmod for {version}")
        os.replace(images[0], t / "vmlinuz")
        os.chmod(t / "vmlinuz", 0o644)
        (t / "source").write_text(f"{pkg} {pkgver}\n")
        final = layout.kernels / version
        if final.exists():
            shutil.rmtree(final)
        # Keep only what the driver uses: the image, the module tree and its indexes.
        shutil.rmtree(tree / "usr", ignore_errors=True)
        shutil.rmtree(tree / "boot", ignore_errors=True)
        os.chmod(t, 0o711)
        os.rename(t, final)
        t.mkdir()  # TemporaryDirectory wants something to remove
    got = _ready(final)
    if got is None:
        raise ArtifactError(f"kernel {version} was unpacked but is incomplete in {final}")
    return got

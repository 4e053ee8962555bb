"""The guest kernel: the host's /boot kernel when there is one, else Debian's cloud kernel.

Debian's `linux-image-cloud-amd64` is downloaded with `apt-get download` (with the
versioned package it depends on) and unpacked with `dpkg-deb -x`, never installed.
Results are cached under <root>/vm/kernels/<version>/.

Micro guests boot the kernel's uncompressed ELF (`vmlinux`, extracted from the bzImage
once) through its PVH entry point when it has one. A bzImage decompresses itself above
16 MiB into a buffer of its `init_size` (51.5 MiB for Debian's 6.1 cloud kernel), so it
cannot boot in less than ~68 MiB of RAM; the ELF is loaded in place and needs only its
own extent (it ends at 62 MiB), so 64 MiB guests boot.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import struct
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
    pvh_elf: Path | None = None  # the uncompressed ELF with a PVH entry, when extractable

    @property
    def boot_image(self) -> Path:
        """What micro guests boot: the PVH ELF when there is one, else the bzImage."""
        return self.pvh_elf or self.vmlinuz


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
    elf = d / "vmlinux"
    return GuestKernel(version, d / "vmlinuz", mods, marker.read_text().strip(), elf if elf.is_file() else None)


def ensure_kernel(layout: Layout, prefer_host: bool = True) -> GuestKernel:
    """Return the guest kernel (and its PVH ELF), copying or downloading it into the store once."""
    layout.ensure()
    with FileLock(layout.locks / "kernel.lock"):
        k = _ensure_kernel_locked(layout, prefer_host)
        if k.pvh_elf is None:
            elf = ensure_pvh_elf(k.vmlinuz.parent)
            if elf is not None:
                k = GuestKernel(k.version, k.vmlinuz, k.modules_dir, k.source, elf)
        return k


def _ensure_kernel_locked(layout: Layout, prefer_host: bool) -> GuestKernel:
    """ensure_kernel without its lock: the host's kernel, a cached one, or a fresh download."""
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
        for deb in t.glob("*.deb"):
            deb.unlink()
        os.chmod(t, 0o711)
        os.rename(t, final)
        t.mkdir()  # TemporaryDirectory wants something to remove
    got = _ready(final)
    if got is None:
        raise ArtifactError(f"kernel {version} was unpacked but is incomplete in {final}")
    return got


# ---------------------------------------------------------------- bzImage -> PVH ELF

XEN_ELFNOTE_PHYS32_ENTRY = 18
MAX_VMLINUX = 512 << 20
NO_ELF_MARKER = "vmlinux.none"


def bzimage_payload(data: bytes) -> bytes:
    """The compressed kernel inside a bzImage (boot protocol >= 2.08), size trailer included."""
    if len(data) < 0x270 or data[0x202:0x206] != b"HdrS":
        raise ArtifactError("not a bzImage (no HdrS boot header)")
    version = struct.unpack_from("<H", data, 0x206)[0]
    if version < 0x208:
        raise ArtifactError(f"bzImage boot protocol {version:#x} has no payload fields (needs 2.08)")
    setup_sects = data[0x1F1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + off
    if length < 8 or start + length > len(data):
        raise ArtifactError("bzImage payload lies outside the file")
    return data[start:start + length]


def _cli(argv: list[str], data: bytes) -> bytes:
    """Decompress with a host tool (stdin -> stdout); its output is checked by the caller."""
    if not shutil.which(argv[0]):
        raise ArtifactError(f"the kernel is compressed with {argv[0]}, and {argv[0]} is not installed")
    r = subprocess.run(argv, input=data, capture_output=True, timeout=120)
    return r.stdout


def decompress_payload(payload: bytes) -> bytes:
    """Decompress a bzImage payload by its magic; the 4-byte trailer is the expected size."""
    body, want = payload[:-4], struct.unpack_from("<I", payload, len(payload) - 4)[0]
    if want > MAX_VMLINUX:
        raise ArtifactError(f"bzImage claims a {want >> 20} MiB kernel; refused")
    if body[:2] == b"\x1f\x8b":
        import zlib

        out = zlib.decompressobj(wbits=31).decompress(body, MAX_VMLINUX)
    elif body[:6] == b"\xfd7zXZ\x00":
        import lzma

        out = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(body, MAX_VMLINUX)
    elif body[:3] == b"\x5d\x00\x00":
        import lzma

        out = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(body, MAX_VMLINUX)
    elif body[:3] == b"BZh":
        import bz2

        out = bz2.BZ2Decompressor().decompress(body, MAX_VMLINUX)
    elif body[:4] == b"\x28\xb5\x2f\xfd":
        out = _cli(["zstd", "-dcq"], body)
    elif body[:4] == b"\x02\x21\x4c\x18":  # LZ4 legacy frame (CONFIG_KERNEL_LZ4)
        out = _cli(["lz4", "-dcq"], body)
    else:
        raise ArtifactError(f"unknown bzImage compression (magic {body[:4].hex()})")
    if len(out) != want:
        raise ArtifactError(f"decompressed kernel is {len(out)} bytes, its trailer says {want}")
    return out


def pvh_elf_info(data: bytes) -> tuple[int, int] | None:
    """(PVH entry, end of the highest loaded segment) of an ELF64 kernel; None without a PVH note."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    if phentsize < 56 or phoff + phentsize * phnum > len(data):
        return None
    entry, end = None, 0
    for i in range(phnum):
        p_type, _flags, off, _vaddr, paddr, filesz, memsz, _align = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1:  # PT_LOAD
            end = max(end, paddr + memsz)
        elif p_type == 4 and off + filesz <= len(data):  # PT_NOTE
            pos, stop = off, off + filesz
            while pos + 12 <= stop:
                namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
                desc = pos + 12 + (namesz + 3) // 4 * 4
                if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY and descsz >= 4:
                    entry = struct.unpack_from("<I", data, desc)[0]
                pos = desc + (descsz + 3) // 4 * 4
    return None if entry is None else (entry, end)


def ensure_pvh_elf(kdir: Path) -> Path | None:
    """Extract <kdir>/vmlinux from <kdir>/vmlinuz once; None (and why, in vmlinux.none) if impossible."""
    final = kdir / "vmlinux"
    if final.is_file():
        return final
    if (kdir / NO_ELF_MARKER).is_file():
        return None
    try:
        elf = decompress_payload(bzimage_payload((kdir / "vmlinuz").read_bytes()))
        if pvh_elf_info(elf) is None:
            raise ArtifactError("the kernel ELF has no PVH entry note (CONFIG_PVH is off)")
    except ArtifactError as exc:
        # The bzImage still boots guests of ~72 MiB and more; remember why, so we do not retry.
        (kdir / NO_ELF_MARKER).write_text(f"{exc}\n")
        return None
    tmp = kdir / f"vmlinux.{os.getpid()}.tmp"
    tmp.write_bytes(elf)
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)
    return final


def bzimage_min_memory_mib(vmlinuz: Path) -> int:
    """RAM a bzImage needs to decompress itself: its load address plus init_size, in MiB (0: unknown)."""
    try:
        with open(vmlinuz, "rb") as f:
            head = f.read(0x270)
    except OSError:
        return 0
    if len(head) < 0x270 or head[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", head, 0x206)[0] < 0x20A:
        return 0
    pref = struct.unpack_from("<Q", head, 0x258)[0]
    init_size = struct.unpack_from("<I", head, 0x260)[0]
    return -(-(pref + init_size) // (1 << 20))

"""The micro profile's initramfs: static busybox, the virtio modules, and virtlab's init.

Built by us (a newc cpio writer, gzip), cached by a hash of everything in it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import subprocess
from pathlib import Path

from vmdriver.errors import ArtifactError
from vmdriver.kernel import GuestKernel
from vmdriver.layout import FileLock, Layout

GUEST_DIR = Path(__file__).resolve().parent / "guest"
# What the micro guest needs: disk, console + agent port, network, and fw_cfg (config).
WANTED_MODULES = ("virtio", "virtio_ring", "virtio_pci", "virtio_blk", "virtio_console", "virtio_net", "qemu_fw_cfg")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def find_static_busybox() -> Path:
    """The host's busybox if it is statically linked (busybox-static), else ArtifactError."""
    for c in BUSYBOX_CANDIDATES:
        p = Path(c)
        if p.is_file() and is_static_elf(p):
            return p
    raise ArtifactError("no static busybox on this host: install busybox-static")


def is_static_elf(path: Path) -> bool:
    """True when `path` is an ELF64 file without a PT_INTERP segment (no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = struct.unpack_from("<Q", head, 32)[0]
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        if struct.unpack_from("<I", table, i * phentsize)[0] == 3:  # PT_INTERP
            return False
    return True


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """modules.dep as {relative .ko path: [dependency paths]}."""
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        mod, _, rest = line.partition(":")
        deps[mod.strip()] = rest.split()
    return deps


def module_name(relpath: str) -> str:
    """`kernel/drivers/virtio/virtio_pci.ko.xz` -> `virtio_pci` (dashes as underscores)."""
    base = relpath.rsplit("/", 1)[-1]
    base = base.split(".ko", 1)[0]
    return base.replace("-", "_")


def resolve_modules(deps: dict[str, list[str]], builtin: set[str], wanted: tuple[str, ...]) -> list[str]:
    """The module files to load for `wanted`, dependencies first; built-in modules are skipped."""
    by_name = {module_name(p): p for p in deps}
    order: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        for d in deps.get(path, []):
            visit(d)
        order.append(path)

    for name in wanted:
        if name in builtin:
            continue
        path = by_name.get(name)
        if path is None:
            raise ArtifactError(f"kernel module {name} is neither built in nor in modules.dep")
        visit(path)
    return order


def _read_module(path: Path) -> bytes:
    """A module's bytes, decompressed on the host (busybox insmod wants plain ELF)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        import lzma

        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data, max_output_size=64 << 20)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


class Cpio:
    """A minimal newc (SVR4, no CRC) archive writer, enough for an initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
        )
        self.ino += 1
        self.buf.write(hdr.encode() + nb)
        self.buf.write(b"\0" * (-(110 + len(nb)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str, perm: int = 0o755) -> None:
        """Add a directory."""
        self._entry(name, 0o040000 | perm)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        """Add a regular file."""
        self._entry(name, 0o100000 | perm, data)

    def symlink(self, name: str, target: str) -> None:
        """Add a symbolic link."""
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        """Add a character device node (only inside the archive: nothing is created on the host)."""
        self._entry(name, 0o020000 | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        """Close the archive and return its bytes."""
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _applets(busybox: Path) -> list[str]:
    """The applet names of the host's busybox."""
    r = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, timeout=10)
    names = [a for a in r.stdout.split() if a and "/" not in a and a != "busybox"]
    if r.returncode != 0 or "sh" not in names:
        raise ArtifactError(f"cannot list the applets of {busybox}")
    return names


def build_archive(kernel: GuestKernel, busybox: Path) -> tuple[bytes, str]:
    """The gzip-compressed initramfs for `kernel`, and the hash that names it."""
    mods_dir = kernel.modules_dir
    try:
        deps = parse_modules_dep((mods_dir / "modules.dep").read_text())
    except OSError as exc:
        raise ArtifactError(f"cannot read {mods_dir}/modules.dep: {exc.strerror}") from exc
    builtin_file = mods_dir / "modules.builtin"
    builtin = {module_name(p) for p in builtin_file.read_text().split()} if builtin_file.exists() else set()
    files = resolve_modules(deps, builtin, WANTED_MODULES)

    c = Cpio()
    for d in ("bin", "dev", "etc", "etc/virtlab", "lib", "lib/modules", "proc", "sys", "run", "newroot", "tmp"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    h = hashlib.sha256(kernel.version.encode())
    bb = busybox.read_bytes()
    h.update(bb)
    c.file("bin/busybox", bb, 0o755)
    for a in _applets(busybox):
        c.symlink(f"bin/{a}", "busybox")
    names = []
    for rel in files:
        data = _read_module(mods_dir / rel)
        name = module_name(rel) + ".ko"
        names.append(name)
        h.update(data)
        c.file(f"lib/modules/{name}", data)
    c.file("etc/virtlab/modules", ("\n".join(names) + "\n").encode())
    for src, dst, perm in (("init.sh", "init", 0o755), ("lib.sh", "etc/virtlab/lib.sh", 0o644)):
        data = (GUEST_DIR / src).read_bytes()
        h.update(data)
        c.file(dst, data, perm)
    raw = c.finish()
    # mtime=0 keeps the archive reproducible; level 6 is fast to build and to unpack.
    return gzip.compress(raw, compresslevel=6, mtime=0), h.hexdigest()[:16]


def ensure_initramfs(layout: Layout, kernel: GuestKernel) -> Path:
    """Build (once) and return the initramfs for `kernel` in the store."""
    layout.ensure()
    busybox = find_static_busybox()
    data, key = build_archive(kernel, busybox)
    final = layout.initramfs / f"{key}.img"
    with FileLock(layout.locks / "initramfs.lock"):
        if final.is_file():
            return final
        tmp = layout.tmp / f"initramfs-{key}.{os.getpid()}"
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    return final

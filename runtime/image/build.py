"""The default images, built on this host without a registry.

`busybox:latest` is made offline from the host's static busybox (Debian's
busybox-static): one layer with the binary, a symlink per applet, /etc/passwd,
/etc/group and the usual empty directories. Timestamps come from the binary, so
building twice gives the same image ID.

`debian:bookworm` is made with debootstrap from the Debian mirror configured in the
host's apt sources, plus sysbench, fio, iperf3 and stress-ng (slow; see build_debian).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import io
import os
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from runtime.image import oci
from runtime.image.errors import ImageError
from runtime.image.store import Image, ImageStore

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
# systemd-sysv: the VM driver's full profile boots the image's own systemd.
DEBIAN_EXTRA = ("sysbench", "fio", "iperf3", "stress-ng", "systemd-sysv")


def elf_is_static(path: str | os.PathLike) -> bool:
    """True if `path` is an ELF executable without a PT_INTERP program header (no dynamic loader)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            return False
        is64 = ident[4] == 2
        end = "<" if ident[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(end + "Q", ident, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", ident, 54)
        else:
            phoff, = struct.unpack_from(end + "I", ident, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", ident, 42)
        if phnum > 512 or phentsize < 8:
            return False
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_busybox() -> str:
    """The host's static busybox, or an ImageError saying how to get one."""
    for cand in BUSYBOX_CANDIDATES:
        if os.path.isfile(cand) and elf_is_static(cand):
            return cand
    raise ImageError("no static busybox found (/bin/busybox); install Debian's busybox-static")


def _applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def busybox_layer(busybox: str) -> bytes:
    """A gzip-compressed layer tar for the busybox image (deterministic bytes)."""
    mtime = int(os.stat(busybox).st_mtime)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, mtime
            tf.addfile(ti)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, mtime
            tf.addfile(ti, io.BytesIO(data))

        for d in ("bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var",
                  "var/log", "var/run", "run"):
            add_dir(d, 0o700 if d == "root" else 0o755)
        add_dir("tmp", 0o1777)
        add_dir("var/tmp", 0o1777)
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("etc/hostname", b"busybox\n")
        add_file("etc/shadow", b"root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640)
        for applet in _applets(busybox):
            if applet in ("bin/busybox", "") or "/" not in applet:
                continue
            ti = tarfile.TarInfo(applet)
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "/bin/busybox", 0o777, mtime
            tf.addfile(ti)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(buf.getvalue())
    return out.getvalue()


def build_busybox(store: ImageStore, ref: str = "busybox:latest", busybox: str | None = None) -> Image:
    """Build `ref` offline from the host's static busybox; idempotent (same bytes, same ID)."""
    busybox = busybox or find_busybox()
    if not elf_is_static(busybox):
        raise ImageError(f"{busybox} is not a static ELF executable")
    blob = busybox_layer(busybox)
    with store.writing():
        layer = store.ingest_layer(io.BytesIO(blob), what="busybox layer")
        created = _dt.datetime.fromtimestamp(int(os.stat(busybox).st_mtime), _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        version = subprocess.run([busybox], capture_output=True, text=True).stdout.splitlines()[:1]
        os_name, arch = oci.host_platform()
        config = {
            "architecture": arch,
            "os": os_name,
            "created": created,
            "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": created,
                         "created_by": f"virtlab image build busybox (from {busybox}: {' '.join(version)[:80]})"}],
        }
        return store.write_image(config, [layer], ref)


def apt_mirror(sources: tuple[str, ...] = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")) -> str:
    """The first Debian mirror URL configured in the host's apt sources (one-line or deb822 format)."""
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files.extend(sorted(p.glob("*.list")) + sorted(p.glob("*.sources")))
        elif p.is_file():
            files.append(p)
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("deb ") and "security" not in line:
                for word in line.split()[1:]:
                    if word.startswith(("http://", "https://")):
                        return word
            if line.startswith("URIs:") and "security" not in line:
                for word in line.split()[1:]:
                    if word.startswith(("http://", "https://")) and "security" not in word:
                        return word
    raise ImageError("no Debian mirror found in /etc/apt/sources.list(.d)")


def build_debian(store: ImageStore, ref: str = "debian:bookworm", suite: str = "bookworm",
                 mirror: str | None = None, extra: tuple[str, ...] = DEBIAN_EXTRA,
                 progress: Callable[[str], None] | None = None, rebuild: bool = False) -> Image:
    """Build `ref` with debootstrap (minbase) plus the benchmark tools; slow (minutes). Kept unless `rebuild`.

    Downloaded packages are cached in `<root>/cache/debootstrap`, so a rebuild does not fetch them again.
    """
    say = progress or (lambda msg: None)
    if not rebuild:
        try:
            img = store.resolve(ref)
            say(f"{ref} is already built ({img.short_id}); use --rebuild to build it again")
            return img
        except ImageError:
            pass
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageError("building the debian image needs root (debootstrap)")
    mirror = mirror or apt_mirror()
    cache = store.path.parent / "cache" / "debootstrap"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    with store.staging("debian") as st:
        rootfs = st / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(extra)}", f"--cache-dir={cache}",
               suite, str(rootfs), mirror]
        say(f"debootstrap {suite} from {mirror} (with {', '.join(extra)})")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            if line.startswith("I: "):
                say(line[3:])
        if proc.wait() != 0:
            raise ImageError("debootstrap failed:\n" + "\n".join(tail))
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            d = rootfs / junk
            if d.is_dir():
                for child in d.iterdir():
                    if child.is_file():
                        child.unlink()
        say("packing the root filesystem")
        layer_tar = st / "layer.tar.gz"
        # gzip level 1: a third of the bytes for little CPU; gzip is what every other tool can read.
        with tarfile.open(layer_tar, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tf:
            for entry in sorted(os.listdir(rootfs)):
                tf.add(rootfs / entry, arcname=entry, recursive=True)
        say("importing the layer")
        with store.writing():
            with open(layer_tar, "rb") as f:
                layer = store.ingest_layer(f, what="debian layer")
            now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            os_name, arch = oci.host_platform()
            config = {
                "architecture": arch, "os": os_name, "created": now,
                "config": {"Env": [PATH_ENV], "Cmd": ["bash"]},
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": now, "created_by": f"debootstrap --variant=minbase {suite} {mirror} "
                                                              f"+ {' '.join(extra)}"}],
            }
            return store.write_image(config, [layer], ref)

"""Compression detected by magic bytes, handled in-process only (never exec a decompressor).

CVE-2026-41567: docker once ran `xz`/`unpigz` found on a PATH inside the container's
filesystem. Here gzip, xz, bzip2 and zstd are Python modules, nothing is executed.
"""

from __future__ import annotations

import io

from runtime.image.errors import InvalidArchive

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

GZIP, XZ, ZSTD, BZIP2, NONE = "gzip", "xz", "zstd", "bzip2", "none"

_MAGIC = [
    (b"\x1f\x8b", GZIP),
    (b"\xfd7zXZ\x00", XZ),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"BZh", BZIP2),
]

MEDIA_TYPES = {
    NONE: "application/vnd.oci.image.layer.v1.tar",
    GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LAYER_MEDIA_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": ZSTD,
    DOCKER_LAYER: GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": GZIP,
}


def detect(head: bytes) -> str:
    """The compression named by the first bytes of a stream."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return NONE


class PeekReader:
    """A stream whose first bytes were read ahead to detect the format, then given back."""

    def __init__(self, raw, size: int = 8):
        self.raw = raw
        self.head = b""
        while len(self.head) < size:
            chunk = raw.read(size - len(self.head))
            if not chunk:
                break
            self.head += chunk
        self._pending = self.head

    def read(self, n: int = -1) -> bytes:
        """Read, first returning the peeked bytes."""
        if self._pending:
            if n is None or n < 0 or n >= len(self._pending):
                out, self._pending = self._pending, b""
                if n is not None and n >= 0:
                    more = self.raw.read(n - len(out)) if n > len(out) else b""
                    return out + more
                return out + self.raw.read()
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        return self.raw.read(n)

    def readable(self) -> bool:
        """Always readable."""
        return True


class _Checked(io.RawIOBase):
    """Turns decompressor errors (truncated or corrupt input) into InvalidArchive."""

    def __init__(self, inner, kind: str, what: str):
        self.inner = inner
        self.kind = kind
        self.what = what

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self.inner.read(n)
        except EOFError as exc:
            raise InvalidArchive(f"{self.what}: truncated {self.kind} stream") from exc
        except InvalidArchive:
            raise
        except (OSError, ValueError) as exc:
            # gzip.BadGzipFile, lzma.LZMAError, zlib.error and zstd.ZstdError all land here.
            raise InvalidArchive(f"{self.what}: corrupt {self.kind} stream: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                raise InvalidArchive(f"{self.what}: corrupt {self.kind} stream: {exc}") from exc
            raise

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _ZstdFrames(io.RawIOBase):
    """zstd decompression across frames that notices a truncated last frame (stream_reader does not)."""

    def __init__(self, raw):
        import zstandard

        self.raw = raw
        self.zstd = zstandard
        self.obj = zstandard.ZstdDecompressor().decompressobj()
        self.started = False  # input was fed to the current frame
        self.buf = bytearray()
        self.pos = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        # Small input steps bound memory: zstd can expand 2 KiB of input to about 64 MiB of output.
        chunk = self.raw.read(2048)
        if not chunk:
            if self.started and not self.obj.eof:
                raise EOFError("zstd frame ends early")
            return False
        while chunk:
            if self.obj.eof:
                self.obj = self.zstd.ZstdDecompressor().decompressobj()
                self.started = False
            self.started = True
            self.buf += self.obj.decompress(chunk)
            chunk = self.obj.unused_data if self.obj.eof else b""
        return True

    def read(self, n: int = -1) -> bytes:
        want = (1 << 20) if n is None or n < 0 else n
        while len(self.buf) - self.pos < want and self._fill():
            pass
        out = bytes(self.buf[self.pos : self.pos + want])
        self.pos += len(out)
        if self.pos > (1 << 20):
            del self.buf[: self.pos]
            self.pos = 0
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def decompressing(raw, what: str = "layer") -> tuple[object, str]:
    """Wrap `raw` in an in-process decompressor chosen by magic; return (stream, kind)."""
    peek = PeekReader(raw)
    kind = detect(peek.head)
    src: Any = peek  # a minimal readable object; the decompressors only call read()
    inner: Any
    if kind == GZIP:
        import gzip

        inner = gzip.GzipFile(fileobj=src, mode="rb")
    elif kind == XZ:
        import lzma

        inner = lzma.LZMAFile(src, mode="rb")
    elif kind == BZIP2:
        import bz2

        inner = bz2.BZ2File(src, mode="rb")
    elif kind == ZSTD:
        inner = _ZstdFrames(src)
    else:
        return peek, NONE
    return _Checked(inner, kind, what), kind

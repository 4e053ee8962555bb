"""Digests: strict validation before a digest becomes a path, and hashing while streaming.

Only `sha256:` followed by exactly 64 lowercase hex digits is accepted (CVE-2014-9358:
an unchecked digest or ID turned into a path is a traversal).
"""

from __future__ import annotations

import re

from runtime.image.errors import DigestMismatch, InvalidReference, LimitExceeded

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
HEX_RE = re.compile(r"[a-f0-9]{64}")


def validate(digest: object) -> str:
    """Return `digest` if it is `sha256:<64 lowercase hex>`, else raise InvalidReference."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        shown = repr(digest)[:100]
        raise InvalidReference(f"invalid digest {shown}: only sha256:<64 lowercase hex digits> is accepted")
    return digest


def hex_of(digest: str) -> str:
    """The hex part of a validated digest (safe to use as a file name)."""
    return validate(digest)[len("sha256:") :]


def of_bytes(data: bytes) -> str:
    """The sha256 digest of `data`."""
    if len(data) <= _SMALL:
        # manifests and configs (the run path): the builtin sha256 spares loading OpenSSL's libcrypto
        import _sha256

        return "sha256:" + _sha256.sha256(data).hexdigest()
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


_SMALL = 1 << 20


class HashingReader:
    """Wraps a binary stream: hashes and counts what is read, optionally capped and tee'd to a sink."""

    def __init__(self, raw, limit: int | None = None, sink=None, what: str = "stream"):
        self.raw = raw
        self.limit = limit
        self.sink = sink
        self.what = what
        import hashlib

        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes, hashing them; raise LimitExceeded past the cap."""
        if n is None or n < 0:
            n = 1 << 20
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            if self.limit is not None and self.count > self.limit:
                raise LimitExceeded(f"{self.what} is larger than the limit of {self.limit} bytes")
            self.hash.update(data)
            if self.sink is not None:
                self.sink.write(data)
        return data

    def readable(self) -> bool:
        """Always readable (for io wrappers)."""
        return True

    def drain(self) -> None:
        """Read the rest of the stream so the digest covers all of it."""
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        """The sha256 digest of what was read so far."""
        return "sha256:" + self.hash.hexdigest()

    def verify(self, expected: str | None, size: int | None = None) -> None:
        """Raise DigestMismatch unless what was read hashes to `expected` (and has `size` bytes)."""
        if size is not None and self.count != size:
            raise DigestMismatch(f"{self.what}: size is {self.count} bytes, descriptor says {size}")
        if expected is not None and self.digest != expected:
            raise DigestMismatch(f"{self.what}: content has digest {self.digest}, expected {expected}")

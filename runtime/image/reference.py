"""Image references: `[host[:port]/]path[:tag][@sha256:...]`, validated like the distribution spec.

Local names are kept in docker's familiar form: `busybox:latest` rather than
`docker.io/library/busybox:latest`; a registry host stays in the name
(`localhost:5000/app:v1`).
"""

from __future__ import annotations

import re

from runtime.image.digest import DIGEST_RE
from runtime.image.errors import InvalidReference
from runtime.image.values import Frozen

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = (  # compiled by re on first use: only names with a registry host need it
    r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?"
)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
MAX_NAME = 255


class Reference(Frozen):
    """A parsed reference. `domain` is None for names without a registry host."""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str | None, path: str, tag: str | None, digest: str | None) -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def repository(self) -> str:
        """The familiar repository name: `busybox`, `localhost:5000/app`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def registry(self) -> str:
        """The registry host to talk to (docker.io when the name has none)."""
        return self.domain or DEFAULT_REGISTRY

    @property
    def remote_path(self) -> str:
        """The repository path on the registry (docker.io adds `library/`)."""
        if self.domain in (None, DEFAULT_REGISTRY) and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    def with_tag(self) -> Reference:
        """This reference with the default tag filled in when it has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    @property
    def name(self) -> str:
        """`repo:tag` (default tag filled in) or `repo@digest`: the key stored in the index."""
        r = self.with_tag()
        if r.tag is not None:
            return f"{r.repository}:{r.tag}"
        return f"{r.repository}@{r.digest}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(text: str) -> Reference:
    """Parse and validate a reference; raise InvalidReference with the reason."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("invalid reference format: empty")
    if len(text) > MAX_NAME + 200 or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise InvalidReference(f"invalid reference format: {text[:80]!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.fullmatch(digest):
            raise InvalidReference(f"invalid reference format: bad digest in {text!r} (only sha256:<64 hex>)")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: bad tag {tag!r}")
    domain = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not re.fullmatch(_DOMAIN, first):
            raise InvalidReference(f"invalid reference format: bad registry host {first!r}")
        domain, rest = first, remainder
    if domain == DEFAULT_REGISTRY:
        domain = None
        if rest.startswith("library/") and rest.count("/") == 1:
            rest = rest[len("library/") :]
    if not _PATH_RE.fullmatch(rest):
        if rest != rest.lower():
            raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
        raise InvalidReference(f"invalid reference format: {text!r}")
    if len(rest) + len(domain or "") > MAX_NAME:
        raise InvalidReference(f"invalid reference format: repository name longer than {MAX_NAME} characters")
    return Reference(domain, rest, tag, digest)


def looks_like_id(text: str) -> bool:
    """True for a full image ID, `sha256:<hex>`, or a hex prefix someone may mean as an ID."""
    if text.startswith("sha256:"):
        return bool(re.fullmatch(r"sha256:[a-f0-9]{1,64}", text))
    return bool(re.fullmatch(r"[a-f0-9]{1,64}", text))

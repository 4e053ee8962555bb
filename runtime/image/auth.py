"""Registry credentials and per-registry settings kept under the store root.

`<root>/auth.json` has docker's config.json shape (`{"auths": {"host:port": {"auth":
base64("user:password")}}}`), mode 0600. `<root>/image/registries.json` says how to
reach a registry: `{"registries": {"host:port": {"ca": "/path/ca.pem", "http": true}}}`.
TLS verification is never switched off: a private CA is trusted by naming it, and plain
HTTP is used only for loopback registries or those marked `"http": true`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from pathlib import Path

from runtime.image.errors import AuthError, ImageError
from runtime.image.fsutil import atomic_write

MAX_CONFIG = 1 << 20


def _read_json(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    if len(data) > MAX_CONFIG:
        raise ImageError(f"{path} is too large")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ImageError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ImageError(f"{path} is not a JSON object")
    return doc


class AuthFile:
    """Credentials per registry host in `<root>/auth.json` (docker config.json shape)."""

    def __init__(self, root: str | os.PathLike):
        self.path = Path(root) / "auth.json"

    def get(self, registry: str) -> tuple[str, str] | None:
        """(username, password) for `registry`, or None."""
        entry = (_read_json(self.path).get("auths") or {}).get(registry)
        if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
            return None
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthError(f"credentials for {registry} in {self.path} are corrupt") from exc
        return user, password

    def set(self, registry: str, username: str, password: str) -> None:
        """Store credentials (the file is written 0600, atomically)."""
        if ":" in username:
            raise AuthError("username may not contain ':'")
        doc = _read_json(self.path)
        doc.setdefault("auths", {})[registry] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, json.dumps(doc, indent=1).encode(), mode=0o600)

    def remove(self, registry: str) -> bool:
        """Forget credentials for `registry`; True if there were any."""
        doc = _read_json(self.path)
        auths = doc.get("auths") or {}
        if registry not in auths:
            return False
        del auths[registry]
        atomic_write(self.path, json.dumps(doc, indent=1).encode(), mode=0o600)
        return True


def is_loopback(registry: str) -> bool:
    """True for localhost and loopback addresses (with or without a port)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 or registry.startswith("[") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistrySettings:
    """How to reach one registry: a CA bundle to trust, and whether plain HTTP is allowed."""

    def __init__(self, ca: str | None = None, http: bool = False):
        self.ca = ca
        self.http = http

    @classmethod
    def load(cls, store_path: str | os.PathLike, registry: str, ca: str | None = None) -> RegistrySettings:
        """Settings from `<store>/registries.json`; an explicit `ca` (from --tls-ca) wins."""
        doc = _read_json(Path(store_path) / "registries.json")
        entry = (doc.get("registries") or {}).get(registry) or {}
        ca = ca or entry.get("ca")
        if ca and not os.path.isfile(ca):
            raise ImageError(f"CA file {ca} for {registry} does not exist")
        return cls(ca=ca, http=bool(entry.get("http")) or is_loopback(registry))

"""Bounds on everything read from untrusted input (SECURITY.md rule 6)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Caps for one store; tests lower them to exercise the checks cheaply."""

    max_json_bytes: int = 4 * MiB  # manifest, index, config (the registry convention)
    max_layer_bytes: int = 32 * GiB  # uncompressed bytes of one layer
    max_blob_bytes: int = 32 * GiB  # compressed bytes of one blob
    max_entries: int = 1_000_000  # members in one layer
    max_path_bytes: int = 4096  # a member name or link target
    max_depth: int = 256  # path components of a member name
    max_symlinks: int = 40  # symlinks followed resolving one path (the kernel's limit)
    max_header_bytes: int = 1 * MiB  # one PAX or GNU long-name header
    max_layers: int = 256  # layers of one image
    max_archive_members: int = 100_000  # members of a save/load archive
    max_archive_bytes: int = 64 * GiB  # bytes staged from one save/load archive


DEFAULT = Limits()

"""Bounds on everything read from untrusted input (SECURITY.md rule 6)."""

from __future__ import annotations

from runtime.image.values import Frozen

MiB = 1 << 20
GiB = 1 << 30


class Limits(Frozen):
    """Caps for one store; tests lower them to exercise the checks cheaply."""

    __slots__ = (
        "max_json_bytes", "max_layer_bytes", "max_blob_bytes", "max_entries", "max_path_bytes",
        "max_depth", "max_symlinks", "max_header_bytes", "max_layers", "max_archive_members",
        "max_archive_bytes",
    )

    def __init__(
        self,
        max_json_bytes: int = 4 * MiB,
        max_layer_bytes: int = 32 * GiB,
        max_blob_bytes: int = 32 * GiB,
        max_entries: int = 1_000_000,
        max_path_bytes: int = 4096,
        max_depth: int = 256,
        max_symlinks: int = 40,
        max_header_bytes: int = 1 * MiB,
        max_layers: int = 256,
        max_archive_members: int = 100_000,
        max_archive_bytes: int = 64 * GiB,
    ) -> None:
        self.max_json_bytes = max_json_bytes  # manifest, index, config (the registry convention)
        self.max_layer_bytes = max_layer_bytes  # uncompressed bytes of one layer
        self.max_blob_bytes = max_blob_bytes  # compressed bytes of one blob
        self.max_entries = max_entries  # members in one layer
        self.max_path_bytes = max_path_bytes  # a member name or link target
        self.max_depth = max_depth  # path components of a member name
        self.max_symlinks = max_symlinks  # symlinks followed resolving one path (the kernel's limit)
        self.max_header_bytes = max_header_bytes  # one PAX or GNU long-name header
        self.max_layers = max_layers  # layers of one image
        self.max_archive_members = max_archive_members  # members of a save/load archive
        self.max_archive_bytes = max_archive_bytes  # bytes staged from one save/load archive


DEFAULT = Limits()

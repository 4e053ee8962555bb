"""Where a VM's root filesystem comes from: the image store (runtime/image), the same as containers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmdriver.errors import ArtifactError


@dataclass
class SourceImage:
    """An image as the VM side needs it: its ID, its OCI config, and a way to flatten it."""

    id: str
    config: dict[str, Any]
    ref: str
    _flatten: Any = field(repr=False, default=None)

    def flatten(self, dest: Path) -> None:
        """Write the image's merged root filesystem into the empty directory `dest`."""
        self._flatten(dest)

    @property
    def digest_hex(self) -> str:
        """The hex part of the image ID (safe as a file name)."""
        return self.id.split(":", 1)[1]


def resolve(root: Path, ref: str) -> SourceImage:
    """Find `ref` in the image store under `root` (ArtifactError naming it if absent)."""
    from runtime.image.store import ImageStore

    store = ImageStore(root / "image")
    try:
        img = store.resolve(ref)
    except Exception as exc:  # the store's own ImageNotFound and friends
        if getattr(exc, "exit_code", None) is None:
            raise
        raise ArtifactError(str(exc) or f"no such image: {ref}") from exc
    return SourceImage(img.id, img.config, ref, lambda dest: store.flatten(img, dest))

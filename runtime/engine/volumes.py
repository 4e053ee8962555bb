"""Named and anonymous volumes: `<root>/volumes/<name>/_data`, plus a small metadata file."""

from __future__ import annotations

import builtins
import json
import os
import time
from pathlib import Path

from runtime.engine.errors import EngineError, NameConflict, NoSuchVolume
from runtime.engine.names import new_id, validate_name
from runtime.engine.records import write_atomic

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any


class VolumeStore:
    """The volumes folder of a store root."""

    def __init__(self, root: Path):
        self.dir = root / "volumes"

    def _meta(self, name: str) -> Path:
        return self.dir / name / "volume.json"

    def create(self, name: str | None = None, labels: dict[str, str] | None = None,
               anonymous: bool = False, exist_ok: bool = True) -> dict[str, Any]:
        """Create a volume (a random name when none is given); an existing one is returned as is."""
        name = validate_name(name, "volume") if name else new_id()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        vdir = self.dir / name
        try:
            vdir.mkdir(mode=0o700)
        except FileExistsError:
            if not exist_ok:
                raise NameConflict(f"volume {name} already exists") from None
            for _ in range(100):  # another process may be writing its metadata right now
                if self._meta(name).exists():
                    return self.inspect(name)
                time.sleep(0.01)
            raise EngineError(f"volume {name} exists but has no metadata") from None
        (vdir / "_data").mkdir(mode=0o755)
        meta = {
            "Name": name,
            "Driver": "local",
            "Mountpoint": str(vdir / "_data"),
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Labels": dict(labels or {}),
            "Scope": "local",
            "Options": {},
            "Anonymous": anonymous,
        }
        write_atomic(self._meta(name), json.dumps(meta))
        return meta

    def inspect(self, name: str) -> dict[str, Any]:
        """The metadata of volume `name`."""
        try:
            validate_name(name, "volume")
            return json.loads(self._meta(name).read_text())
        except (FileNotFoundError, EngineError):
            raise NoSuchVolume(name) from None

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every volume."""
        out = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        for n in names:
            try:
                out.append(self.inspect(n))
            except NoSuchVolume:
                continue
        return out

    def remove(self, name: str, in_use_by: builtins.list[str] | None = None, force: bool = False) -> None:
        """Delete a volume and its data; refuses while a container uses it."""
        self.inspect(name)
        if in_use_by and not force:
            raise EngineError(f"remove {name}: volume is in use - [{', '.join(c[:12] for c in in_use_by)}]")
        import shutil  # only here: it pulls in bz2 and lzma (~1.5 ms of every `run`)

        shutil.rmtree(self.dir / name)

"""Container records on disk: one directory per container, a name index, per-container locks.

Layout under `<root>/containers/`::

    <id>/record.json      the record (config + state), replaced atomically
    <id>/lock             flock held while a verb changes the container
    .names/<name>         the ID owning <name>, created O_EXCL (so two creates cannot share a name)

Records survive a crash of the CLI: every change is written to a temporary file and renamed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.engine.errors import EngineError, NameConflict, NoSuchContainer
from runtime.engine.names import ID_RE, validate_name


def write_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write `data` to `path` via a temporary file and rename (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class ContainerStore:
    """The containers folder of a store root: records, names and locks."""

    def __init__(self, root: Path):
        self.dir = root / "containers"
        self.names = self.dir / ".names"

    def ensure(self) -> None:
        """Create the folders (0700: container filesystems may hold setuid files)."""
        if not self.names.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.names.mkdir(exist_ok=True, mode=0o700)

    def path(self, cid: str) -> Path:
        """The directory of container `cid`."""
        return self.dir / cid

    # ---------------------------------------------------------------- names

    def reserve_name(self, name: str, cid: str) -> None:
        """Take `name` for `cid`, or raise NameConflict naming the owner."""
        name = validate_name(name)
        try:
            fd = os.open(self.names / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            owner = self.name_owner(name) or "?"
            raise NameConflict(
                f'the container name "/{name}" is already in use by container "{owner}". '
                "Remove (or rename) that container to be able to reuse that name."
            ) from None
        with os.fdopen(fd, "w") as f:
            f.write(cid)

    def release_name(self, name: str, cid: str) -> None:
        """Give `name` back, if `cid` still owns it."""
        if self.name_owner(name) == cid:
            with contextlib.suppress(FileNotFoundError):
                (self.names / name).unlink()

    def name_owner(self, name: str) -> str | None:
        """The ID that owns `name`, or None."""
        try:
            return (self.names / name).read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError, OSError):
            return None

    # ---------------------------------------------------------------- records

    def ids(self) -> list[str]:
        """Every container ID with a record."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [n for n in names if ID_RE.fullmatch(n) and (self.dir / n / "record.json").exists()]

    def resolve(self, ref: str) -> str:
        """Full ID for a name, a full ID or a unique ID prefix; NoSuchContainer otherwise."""
        if not ref or len(ref) > 256 or "/" in ref.lstrip("/") or ref in (".", ".."):
            raise NoSuchContainer(ref[:64])
        name = ref.lstrip("/")
        if ID_RE.fullmatch(name) and (self.dir / name / "record.json").exists():
            return name
        owner = self.name_owner(name) if not name.startswith(".") else None
        if owner and (self.dir / owner / "record.json").exists():
            return owner
        if all(c in "0123456789abcdef" for c in name):
            hits = [i for i in self.ids() if i.startswith(name)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise EngineError(f"multiple containers match the ID prefix {name}: be more specific")
        raise NoSuchContainer(ref)

    def load(self, cid: str) -> dict[str, Any]:
        """The record of `cid`."""
        try:
            return json.loads((self.dir / cid / "record.json").read_bytes())
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None

    def save(self, rec: dict[str, Any]) -> None:
        """Persist a record atomically."""
        write_atomic(self.dir / rec["Id"] / "record.json", json.dumps(rec, separators=(",", ":")))

    @contextlib.contextmanager
    def locked(self, cid: str) -> Iterator[None]:
        """Hold the container's lock (one verb at a time changes a container)."""
        try:
            fd = os.open(self.dir / cid / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

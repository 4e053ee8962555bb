"""Container records on disk: one directory per container, a name index, per-container locks.

Layout under `<root>/containers/`::

    <id>/record.json      the record (config + state), replaced atomically
    <id>/lock             flock held while a verb changes the container
    .names/<name>         the ID owning <name>, created O_EXCL (so two creates cannot share a name)
    .tmp/                 scratch: new-<id>/ (a container being made), rm-<id>/ (one being deleted),
                          commit-*.tar (a layer being written)

A create makes and locks new-<id>/ in scratch, renames it to <id>/ and holds the lock until
the record is written; rm renames <id>/ into .tmp/ before deleting it. So a directory nobody
holds the lock of and without a record is the leftover of a killed CLI: the engine's sweep
removes it.

Records survive a crash of the CLI: every change is written to a temporary file and renamed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from runtime.engine.errors import EngineError, NameConflict, NoSuchContainer
from runtime.engine.names import ID_RE, validate_name

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any


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
        self.scratch = self.dir / ".tmp"
        self.held: dict[int, str] = {}  # fd -> ID of the locks this process holds (a forked launcher closes them)

    def ensure(self) -> None:
        """Create the folders (0700: container filesystems may hold setuid files)."""
        if not self.scratch.is_dir():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.names.mkdir(exist_ok=True, mode=0o700)
            self.scratch.mkdir(exist_ok=True, mode=0o700)

    def path(self, cid: str) -> Path:
        """The directory of container `cid`."""
        return self.dir / cid

    # ---------------------------------------------------------------- names

    def reserve_name(self, name: str, cid: str) -> None:
        """Take `name` for `cid`, or raise NameConflict naming the owner."""
        name = validate_name(name)
        # written aside, then linked into place: the name never exists without its owner in it
        # (link fails if the name exists, so two creates still cannot share it)
        tmp = self.names / f".{name}.{cid}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, cid.encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.names / name)
        except FileExistsError:
            owner = self.name_owner(name) or "?"
            raise NameConflict(
                f'the container name "/{name}" is already in use by container "{owner}". '
                "Remove (or rename) that container to be able to reuse that name."
            ) from None
        finally:
            tmp.unlink()

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

    def orphans(self) -> list[str]:
        """IDs whose directory has no record: being created right now, or left by a killed create."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return [n for n in names if ID_RE.fullmatch(n) and not (self.dir / n / "record.json").exists()]

    def names_of(self, cid: str) -> list[str]:
        """The names reserved for `cid` (normally one; a create killed half-way may leave its own)."""
        try:
            names = os.listdir(self.names)
        except FileNotFoundError:
            return []
        return [n for n in names if self.name_owner(n) == cid]

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
        lock = self.dir / cid / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # an rm that held the lock while we waited has moved the directory away by now
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                raise NoSuchContainer(cid)
            self.held[fd] = cid
            yield
        finally:
            self.held.pop(fd, None)
            os.close(fd)

    @contextlib.contextmanager
    def creating(self, cid: str) -> Iterator[Path]:
        """Make the directory of a new container and hold its lock until the record is written.

        The directory is made and locked in scratch and then renamed into place, so the sweep
        never sees it without a held lock (it would take it for a killed create's leftover).
        """
        self.ensure()
        tmp = self.scratch / f"new-{cid}"
        tmp.mkdir(mode=0o700)
        fd = os.open(tmp / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(tmp, self.dir / cid)
            self.held[fd] = cid
            yield self.dir / cid
        finally:
            self.held.pop(fd, None)
            os.close(fd)

    def try_lock(self, path: Path, stale_after: float = 30.0) -> int | None:
        """The lock of a directory nobody works on (an fd to close), or None while someone holds it.

        A directory without a lock file counts as abandoned once it is `stale_after` seconds old
        (its maker takes the lock right after mkdir); the fd is then -1.
        """
        try:
            fd = os.open(path / "lock", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            old = age(path)
            if old == float("inf"):
                return None
            return -1 if old > stale_after else None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def age(path: Path) -> float:
    """Seconds since `path` last changed; infinite when it is gone."""
    try:
        return time.time() - os.lstat(path).st_mtime
    except FileNotFoundError:
        return float("inf")

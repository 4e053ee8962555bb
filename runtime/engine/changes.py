"""A container's filesystem changes: diff (A/C/D), export (the whole rootfs) and commit (a layer).

The upper dir of the overlay is the change set; runtime.image.diff walks it and writes it as
an OCI layer (whiteouts, opaque dirs) for commit, and writes the whole merged tree for export.
Files the engine itself puts there as mount points (/etc/hosts, ...) are left out, as docker does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from runtime.engine.errors import EngineError

# Mount points the runtime creates in the rootfs when the image lacks them.
PLACEHOLDERS = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", "/dev/init"}


def _lowers(engine: Any, rec: dict[str, Any]) -> list[Path]:
    img = engine.images.resolve(rec["Image"])
    return [Path(p) for p in engine.images.snapshot_dirs(img)]


def _not_a_change(engine: Any, rec: dict[str, Any]) -> Callable[[str, os.stat_result], bool]:
    """A `skip` for runtime.image.diff: the mount points the runtime made in the upper dir (not in the image)."""
    lowers = [str(lo) for lo in _lowers(engine, rec)]
    placeholders = PLACEHOLDERS | {m["Destination"] for m in rec.get("Mounts") or []}

    def skip(rel: str, st: os.stat_result) -> bool:
        path = "/" + rel
        return (path in placeholders and (stat.S_ISDIR(st.st_mode) or st.st_size == 0)
                and not any(os.path.lexists(lo + path) for lo in lowers))

    return skip


def diff(engine: Any, ref: str) -> list[tuple[str, str]]:
    """[("A"|"C"|"D", "/path"), ...] sorted by path."""
    from runtime.image import diff as layers

    rec = engine.record(ref)
    upper = engine.store.path(rec["Id"]) / "upper"
    lowers = [str(lo) for lo in _lowers(engine, rec)]
    skip = _not_a_change(engine, rec)
    out: list[tuple[str, str]] = []
    for _, rel, st in layers.walk(upper):
        path = "/" + rel
        if layers.is_whiteout(st):
            out.append(("D", path))
        elif not skip(rel, st):
            out.append(("C" if any(os.path.lexists(lo + path) for lo in lowers) else "A", path))
    out.sort(key=lambda x: x[1])
    return out


def export(engine: Any, ref: str, out: BinaryIO) -> None:
    """Write the container's whole filesystem as a tar stream (no volume or /proc contents)."""
    from runtime.engine.cp import _rootfs
    from runtime.image import diff as layers

    rec = engine.record(ref)
    with _rootfs(engine, rec) as rootfs:
        # the merged view has no whiteouts and hides overlay xattrs: its "layer" is the whole tree;
        # non-directories of an overlay may report their lower layer's st_dev, so no one_fs check
        layers.write_layer(rootfs, out, one_fs=False)


def layer_tar(engine: Any, rec: dict[str, Any], out: Any) -> None:
    """The container's changes as an OCI layer: whiteouts as .wh.<name>, opaque dirs as .wh..wh..opq."""
    from runtime.image import diff as layers

    layers.write_layer(engine.store.path(rec["Id"]) / "upper", out, skip=_not_a_change(engine, rec))


def commit(engine: Any, ref: str, image_ref: str | None, changes: dict[str, Any] | None = None,
           comment: str = "", author: str = "", pause: bool = True) -> Any:
    """A new image: the container's image plus one layer of its changes (paused while it is read)."""
    import fcntl
    import secrets

    rec = engine.record(ref)
    engine.store.ensure()
    tar = engine.store.scratch / f"commit-{os.getpid()}-{secrets.token_hex(4)}.tar"
    guard, guard_w = _guard(engine, rec["Id"], tar)  # first: from here on, a kill leaves nothing behind
    paused_here = False
    try:
        fd = os.open(tar, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # a sweep leaves a locked tar alone
            if pause and rec["State"]["Status"] == "running":
                os.write(guard_w, b"p")  # before pausing: if we die now, the guard unpauses
                engine.pause(rec["Id"])
                paused_here = True
            base = engine.images.resolve(rec["Image"])
            layer_tar(engine, rec, f)
            f.flush()
            try:
                return engine.images.commit(base, tar, image_ref, config_changes=changes or None,
                                            comment=comment, author=author)
            except EngineError:
                raise
            except Exception as exc:  # the image package's own errors
                raise EngineError(f"cannot commit container {rec['Name']}: {exc}") from exc
    finally:
        if paused_here:
            with contextlib.suppress(EngineError):
                engine.unpause(rec["Id"])
        with contextlib.suppress(FileNotFoundError):
            tar.unlink()
        with contextlib.suppress(OSError):
            os.write(guard_w, b"d")
        os.close(guard_w)
        os.waitpid(guard, 0)


def _guard(engine: Any, cid: str, tar: Path) -> tuple[int, int]:
    """Fork a watcher that, if this process dies mid-commit, unpauses the container and deletes the tar.

    It reads what the commit writes on a pipe: "p" (about to pause), "d" (done, nothing to
    undo). End of file without "d" means the commit was killed. Returns (pid, write end).
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(r)
        return pid, w
    code = 0
    try:
        os.close(w)
        os.setsid()  # a kill of the CLI's process group must not take the guard with it
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)  # nobody waits for EOF on the CLI's output because of us
        said = b""
        while chunk := os.read(r, 16):
            said += chunk
        if b"d" not in said:
            if b"p" in said:
                with contextlib.suppress(Exception):
                    if engine.record(cid)["State"]["Status"] == "paused":
                        engine.unpause(cid)
            with contextlib.suppress(OSError):
                tar.unlink()
    except BaseException:  # noqa: BLE001 - the guard never raises into a copy of the caller's stack
        code = 1
    finally:
        os._exit(code)


def parse_changes(lines: list[str]) -> dict[str, Any]:
    """`commit -c` Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL)."""
    import json
    import shlex

    out: dict[str, Any] = {}
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        rest = rest.strip()

        def argv(text: str) -> list[str]:
            if text.startswith("["):
                try:
                    v = json.loads(text)
                    if isinstance(v, list) and all(isinstance(x, str) for x in v):
                        return v
                except ValueError:
                    pass
            return ["/bin/sh", "-c", text]

        if word == "CMD":
            out["Cmd"] = argv(rest)
        elif word == "ENTRYPOINT":
            out["Entrypoint"] = argv(rest)
        elif word == "ENV":
            k, _, v = rest.partition("=") if "=" in rest.split(" ")[0] else rest.partition(" ")
            out.setdefault("Env", []).append(f"{k}={v}")
        elif word == "WORKDIR":
            out["WorkingDir"] = rest
        elif word == "USER":
            out["User"] = rest
        elif word == "EXPOSE":
            for p in rest.split():
                out.setdefault("ExposedPorts", {})[p if "/" in p else p + "/tcp"] = {}
        elif word == "LABEL":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                out.setdefault("Labels", {})[k] = v
        elif word == "STOPSIGNAL":
            out["StopSignal"] = rest
        else:
            raise EngineError(f"invalid --change {line!r}: {word} is not supported")
    return out


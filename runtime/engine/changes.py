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
    import tempfile

    rec = engine.record(ref)
    paused_here = False
    if pause and rec["State"]["Status"] == "running":
        engine.pause(rec["Id"])
        paused_here = True
    try:
        base = engine.images.resolve(rec["Image"])
        tmpdir = engine.root / "containers" / ".tmp"
        tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=tmpdir, suffix=".tar") as f:
            layer_tar(engine, rec, f)
            f.flush()
            try:
                return engine.images.commit(base, Path(f.name), image_ref, config_changes=changes or None,
                                            comment=comment, author=author)
            except EngineError:
                raise
            except Exception as exc:  # the image package's own errors
                raise EngineError(f"cannot commit container {rec['Name']}: {exc}") from exc
    finally:
        if paused_here:
            with contextlib.suppress(EngineError):
                engine.unpause(rec["Id"])


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


"""Compile the native helpers (vl-monitor, vl-init) with gcc on first use, cached by source hash.

The binaries go next to their sources when that directory is writable (a development
checkout), else under `<store>/containers/.bin/`. A name carries the hash of its source, so a
changed source is rebuilt and concurrent builders never see a half-written file (rename).
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.engine.errors import EngineError

SRC_DIR = Path(__file__).resolve().parent
_cache: dict[str, str] = {}


def binary(name: str, store_root: str | os.PathLike) -> str:
    """Path of the compiled helper `name` ("monitor" or "init"), building it if needed."""
    key = f"{name}:{store_root}"
    hit = _cache.get(key)
    if hit:
        return hit
    src = SRC_DIR / f"{name}.c"
    import _sha256  # the builtin one: a start need not load OpenSSL to hash a small C file

    digest = _sha256.sha256(src.read_bytes()).hexdigest()[:16]
    fname = f"vl-{name}-{digest}"
    for d in (SRC_DIR, Path(store_root) / "containers" / ".bin"):
        p = d / fname
        if os.access(p, os.X_OK):
            _cache[key] = str(p)
            return str(p)
    out_dir = SRC_DIR if os.access(SRC_DIR, os.W_OK) else Path(store_root) / "containers" / ".bin"
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = out_dir / fname
    _compile(src, out)
    # Builds of older sources go once they are an hour old: running ones keep their inode, but a
    # process that hashed the old source a moment ago may be about to exec it by name.
    import time

    for old in out_dir.glob(f"vl-{name}-*"):
        if old.name != fname and not old.name.endswith(".tmp"):
            try:
                if time.time() - old.stat().st_mtime > 3600:
                    old.unlink()
            except FileNotFoundError:
                pass
    _cache[key] = str(out)
    return str(out)


def _compile(src: Path, out: Path) -> None:
    """Run gcc (static when libc.a is there) into a temporary name, then rename."""
    import shutil
    import subprocess

    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        raise EngineError(f"cannot build {src.name}: no C compiler (install gcc)")
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    base = [gcc, "-O2", "-Wall", "-o", str(tmp), str(src)]
    r = subprocess.run([*base[:1], "-static", *base[1:]], capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(base, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"cannot build {src.name}: {r.stderr.strip()[-400:]}")
    os.chmod(tmp, 0o755)
    os.rename(tmp, out)

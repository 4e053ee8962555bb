"""Build the probe payload (probe.c) into a static binary, cached by the hash of its source.

The same binary runs natively, in containers and in VM guests, so it is compiled
once with `gcc -static` and never linked against anything from an image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.errors import ProbeError

SOURCE = Path(__file__).with_name("probe.c")
IN_IMAGE = "/usr/bin/virtlab-probe"
MARKER = b"VIRTLAB_READY"


def source_digest() -> str:
    """sha256 of probe.c: the cache key of the compiled binary."""
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def build(cache_dir: Path | str) -> Path:
    """Compile probe.c into `<cache_dir>/probe/<digest>/virtlab-probe` unless it is there already.

    Raises ProbeError with gcc's message when gcc or the static libc is missing.
    """
    out_dir = Path(cache_dir) / "probe" / source_digest()[:16]
    binary = out_dir / "virtlab-probe"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    gcc = shutil.which("gcc")
    if not gcc:
        raise ProbeError("cannot build the probe: gcc is not installed (apt-get install gcc libc6-dev)")
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".virtlab-probe.", dir=out_dir)
    os.close(fd)
    cmd = [gcc, "-static", "-O2", "-Wall", "-o", tmp, str(SOURCE), "-lm"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise ProbeError(f"cannot build the probe from {SOURCE}: {r.stderr.strip()[-2000:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, binary)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return binary


def parse_output(text: str) -> dict[str, str | list[str]]:
    """Parse the probe's `key=value` lines; keys seen more than once (mount=, dev=) become lists."""
    out: dict[str, str | list[str]] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not key:
            continue
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def number(facts: dict, key: str) -> float:
    """A numeric field of parsed probe output; ProbeError names the key when it is missing or not a number."""
    value = facts.get(key)
    if isinstance(value, list) or value is None:
        raise ProbeError(f"probe output has no single {key}= line")
    try:
        return float(value)
    except ValueError as exc:
        raise ProbeError(f"probe output {key}={value!r} is not a number") from exc

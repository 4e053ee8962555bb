"""File locks that make parallel commands on one store safe (flock on files under locks/).

`index` serialises changes to index.json and holds; `gc` is taken shared by every
command that adds blobs and exclusively by garbage collection, so a sweep never
removes a blob that a running pull or import has written but not yet tagged.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def flock(path: Path, shared: bool = False):
    """Hold an flock on `path` (created 0600) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

"""Helpers for the VM tier tests (a module name of its own: test dirs share sys.path)."""

from __future__ import annotations

import os


def unique(prefix: str) -> str:
    """A VM name no other test (or test run) uses at the same time."""
    return f"{prefix}-{os.getpid()}-{os.urandom(2).hex()}"

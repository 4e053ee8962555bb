"""Helpers for the vmdriver unit tests (a module name of its own: test dirs share sys.path)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="requires qemu-img (qemu-utils)")


def qemu_img(*args: str) -> str:
    """Run qemu-img, failing the test on error; its stdout."""
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout

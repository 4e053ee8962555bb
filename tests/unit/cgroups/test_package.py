"""The package surface: exported names, and a light import for the runtime's start path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import runtime.oci.cgroups as cgroups
from runtime.oci.errors import CgroupError, OCIError

REPO = Path(__file__).resolve().parents[3]


def test_all_is_complete_and_sorted():
    assert cgroups.__all__ == sorted(cgroups.__all__)
    for name in cgroups.__all__:
        assert getattr(cgroups, name) is not None


def test_errors_are_oci_errors_with_exit_code_125():
    for name in ("CgroupError", "CgroupUnsupported", "InvalidResources", "FreezeTimeout"):
        cls = getattr(cgroups, name)
        assert issubclass(cls, CgroupError) and issubclass(cls, OCIError)
        assert cls("x").exit_code == 125


def test_start_path_imports_stay_small():
    code = (
        "import sys\n"
        "from runtime.oci.cgroups import open_manager\n"
        "import runtime.oci.cgroups.v1, runtime.oci.cgroups.v2\n"
        "heavy = [m for m in ('logging', 'dataclasses', 'typing', 'ctypes', 'pathlib', 'subprocess') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == ""

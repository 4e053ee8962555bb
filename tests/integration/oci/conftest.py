"""Fixtures of the runtime's root tests: a busybox bundle built from /bin/busybox, and a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from runtime.oci.spec import default_spec

RUNTIME = [str(Path(sys.executable).parent / "virtlab-runtime")]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def make_rootfs(root: Path) -> Path:
    """A busybox rootfs: /bin/busybox plus its applet links, and the usual empty dirs."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "home/user"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    return root


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    """One busybox rootfs per session (copied into each bundle)."""
    if os.geteuid() != 0:
        pytest.skip("requires root")
    return make_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


class Runtime:
    """virtlab-runtime with a private --root; deletes whatever is left at teardown."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, *args, check=False, input=None, timeout=60, **kw) -> subprocess.CompletedProcess:
        """Run a runtime command; returns the CompletedProcess (text mode)."""
        # Files, not pipes: a created container inherits the runtime's stdio and keeps it open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(RUNTIME + ["--root", str(self.root)] + [str(a) for a in args], stdout=out,
                                  stderr=err, input=input, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            proc.stdout = out.read().decode(errors="replace")
            proc.stderr = err.read().decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError(f"virtlab-runtime {args} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def cleanup(self) -> None:
        """Force-delete every container under the root."""
        if self.root.is_dir():
            for cid in os.listdir(self.root):
                self("delete", "--force", cid)


@pytest.fixture
def rt(tmp_path):
    """A runtime with a fresh state root."""
    r = Runtime(tmp_path / "state")
    yield r
    r.cleanup()


@pytest.fixture
def bundle(tmp_path, busybox_rootfs):
    """A factory: bundle(args, **config overrides, mutate=fn) -> bundle dir with a busybox rootfs."""
    counter = [0]

    def make(args, mutate=None, terminal=False, resources=False):
        counter[0] += 1
        b = tmp_path / f"bundle{counter[0]}"
        shutil.copytree(busybox_rootfs, b / "rootfs", symlinks=True)
        cfg = default_spec()
        cfg["process"]["args"] = list(args)
        cfg["process"]["terminal"] = terminal
        if not resources:
            del cfg["linux"]["resources"]
        if mutate:
            mutate(cfg)
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    return make

"""Interop with the ecosystem's own tools: skopeo, umoci and podman read what we write, and we read theirs.

podman runs with --root/--runroot/--tmpdir under tmp_path, the vfs storage driver and no
events log, so it never touches the host's own storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from vlcli import out, vl

from runtime.image.store import ImageStore

pytestmark = pytest.mark.root


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"requires {tool}")
    return path


def run(*args, **kw) -> str:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.fixture
def saved(tmp_path) -> tuple[Path, Path, str]:
    """(store root, saved archive, image ID) for busybox."""
    root = tmp_path / "vl"
    vl(root, "image", "build", "busybox")
    archive = tmp_path / "busybox.tar"
    vl(root, "save", "-o", str(archive), "busybox")
    return root, archive, ImageStore(root / "image").resolve("busybox").id


def test_skopeo_reads_our_archive_both_ways(saved, tmp_path):
    _need("skopeo")
    root, archive, image_id = saved
    for transport in ("oci-archive", "docker-archive"):
        dest = tmp_path / f"oci-{transport}"
        run("skopeo", "copy", f"{transport}:{archive}", f"oci:{dest}:bb")
        assert (dest / "index.json").is_file()
    info = run("skopeo", "inspect", "--config", f"oci-archive:{archive}")
    assert '"Cmd"' in info and '"sh"' in info
    raw = run("skopeo", "inspect", "--raw", f"oci-archive:{archive}")
    assert image_id[7:] in raw


def test_umoci_unpacks_what_we_save(saved, tmp_path):
    _need("skopeo")
    _need("umoci")
    root, archive, _ = saved
    layout = tmp_path / "layout"
    run("skopeo", "copy", f"oci-archive:{archive}", f"oci:{layout}:bb")
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:bb", str(bundle))
    assert os.readlink(bundle / "rootfs" / "bin" / "sh") == "/bin/busybox"
    assert (bundle / "rootfs" / "etc" / "passwd").read_text().startswith("root:")


def test_skopeo_and_registry_round_trip(saved, registry, tmp_path):
    _need("skopeo")
    root, archive, image_id = saved
    dest = f"{registry.host}/skopeo/busybox:1"
    run("skopeo", "copy", "--dest-tls-verify=false", f"oci-archive:{archive}", f"docker://{dest}")
    other = tmp_path / "pulled"
    vl(other, "pull", dest)
    assert ImageStore(other / "image").resolve(dest).id == image_id
    # And what we push, skopeo reads back from the registry.
    mine = f"{registry.host}/ours/busybox:1"
    vl(root, "tag", "busybox", mine)
    vl(root, "push", mine)
    layout = tmp_path / "from-registry"
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{mine}", f"oci:{layout}:x")
    assert (layout / "index.json").is_file()


@pytest.fixture
def podman(tmp_path):
    """A podman confined to tmp_path (vfs storage, no events), cleaned up afterwards."""
    _need("podman")
    base = tmp_path / "podman"
    (base / "tmp").mkdir(parents=True)
    runroot = tempfile.mkdtemp(prefix="vlpm-")  # podman wants a runroot path under 50 characters
    argv = ["podman", "--root", str(base / "root"), "--runroot", runroot, "--tmpdir", str(base / "tmp"),
            "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
    env = dict(os.environ, TMPDIR=str(base / "tmp"))

    def pm(*args) -> str:
        return run(*argv, *args, env=env)

    yield pm
    subprocess.run([*argv, "rmi", "-a", "-f"], capture_output=True, env=env, timeout=120)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_loads_our_save(saved, podman):
    root, archive, image_id = saved
    podman("load", "-i", str(archive))
    ids = podman("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert f"{image_id} docker.io/library/busybox:latest" in ids or f"{image_id[7:]} " in ids


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_we_load_podman_save(saved, podman, tmp_path, fmt):
    root, archive, image_id = saved
    podman("load", "-i", str(archive))
    theirs = tmp_path / f"podman-{fmt}.tar"
    podman("save", "--format", fmt, "-o", str(theirs), "docker.io/library/busybox:latest")
    fresh = tmp_path / f"fresh-{fmt}"
    r = out(vl(fresh, "load", "-i", str(theirs)))
    assert "Loaded image" in r
    img = ImageStore(fresh / "image").resolve(image_id)
    assert img.id == image_id
    assert (ImageStore(fresh / "image").snapshot_dirs(img)[0] / "bin" / "busybox").is_file()

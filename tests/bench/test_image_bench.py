"""Image store benchmarks (marker bench): import, save and pull throughput; disk use next to podman's.

Run: .venv/bin/pytest -m bench tests/bench/test_image_bench.py -s
Each prints a table and writes JSON to $VIRTLAB_BENCH_OUT (default: the test's tmp dir).
Peers run in the same test, interleaved A, B, A, B: GNU tar for import, skopeo for pull,
podman (overlay driver, confined to a temporary root) for disk use. Set
VIRTLAB_IMAGE_BENCH_ROOT to a store root that has debian:bookworm to include it.
These measure; nothing here is a timed pass/fail test.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "image"))
import registry_fixture  # noqa: E402

from runtime.image import archive  # noqa: E402
from runtime.image.build import build_busybox  # noqa: E402
from runtime.image.fsutil import disk_usage  # noqa: E402
from runtime.image.store import ImageStore  # noqa: E402

pytestmark = [pytest.mark.bench, pytest.mark.root]

ROUNDS = int(os.environ.get("VIRTLAB_BENCH_ROUNDS", "3"))
MiB = 1 << 20


def _out(name: str, data: dict, tmp_path: Path) -> None:
    out = Path(os.environ.get("VIRTLAB_BENCH_OUT", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n[{name}] written to {out / (name + '.json')}")


def _table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)))


def _rootfs_tar(path: Path, files: int = 1500, size: int = 40_000) -> int:
    """A gzip'd rootfs tarball of semi-compressible files (about files*size bytes); returns the uncompressed size."""
    raw = io.BytesIO()
    chunk = os.urandom(size // 2)
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for i in range(files):
            data = chunk + bytes(size // 2)  # half random, half zeros: compresses about 2:1 like real binaries
            ti = tarfile.TarInfo(f"usr/lib/d{i % 40}/file{i}")
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1, mtime=0))
    return len(raw.getvalue())


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_import_and_save_throughput(tmp_path):
    src = tmp_path / "rootfs.tar.gz"
    raw_bytes = _rootfs_tar(src)
    ours, gnu, saves = [], [], []
    for r in range(ROUNDS):
        store = ImageStore(tmp_path / f"s{r}" / "image")
        ours.append(_time(lambda s=store: s.import_tar(src, "bench:1")))
        dest = tmp_path / f"tar{r}"
        dest.mkdir()
        gnu.append(_time(lambda d=dest: subprocess.run(["tar", "-xzf", str(src), "-C", str(d)], check=True)))
        out = tmp_path / f"save{r}.tar"
        saves.append(_time(lambda s=store, o=out: archive.save_to_path(s, ["bench:1"], o)))
        saved_bytes = out.stat().st_size
        shutil.rmtree(dest)
        out.unlink()
    res = {
        "uncompressed_bytes": raw_bytes, "compressed_bytes": src.stat().st_size, "rounds": ROUNDS,
        "import_s": ours, "gnu_tar_extract_s": gnu, "save_s": saves,
        "import_MBps": raw_bytes / MiB / statistics.median(ours),
        "gnu_tar_MBps": raw_bytes / MiB / statistics.median(gnu),
        "save_MBps": saved_bytes / MiB / statistics.median(saves),
    }
    _table("import / save (median of rounds)", [
        ("what", "seconds", "MB/s (uncompressed)"),
        ("virtlab import (verify + unpack)", f"{statistics.median(ours):.2f}", f"{res['import_MBps']:.0f}"),
        ("GNU tar -xzf (peer)", f"{statistics.median(gnu):.2f}", f"{res['gnu_tar_MBps']:.0f}"),
        ("virtlab save", f"{statistics.median(saves):.2f}", f"{res['save_MBps']:.0f} (archive bytes)"),
    ])
    _out("image-import-save", res, tmp_path)
    assert res["import_MBps"] > 0


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if not Path(registry_fixture.REGISTRY).exists():
        pytest.skip("requires docker-registry")
    reg = registry_fixture.start(tmp_path_factory.mktemp("bench-registry"), "")
    yield reg
    registry_fixture.stop(reg)


def test_pull_throughput(tmp_path, registry):
    from runtime.image.reference import parse
    from runtime.image.registry import RegistryClient

    src = tmp_path / "rootfs.tar.gz"
    raw_bytes = _rootfs_tar(src)
    root = tmp_path / "src"
    store = ImageStore(root / "image")
    name = f"{registry.host}/bench/big:1"
    img = store.import_tar(src, name)
    with RegistryClient(registry.host, root) as c:
        c.push(img, parse(name), store)
    blob_bytes = sum(layer.size for layer in img.layers)
    ours, peer = [], []
    for r in range(ROUNDS):
        dst = ImageStore(tmp_path / f"p{r}" / "image")
        with RegistryClient(registry.host, tmp_path / f"p{r}") as c:
            ours.append(_time(lambda c=c, d=dst: c.pull(parse(name), d)))
        if shutil.which("skopeo"):
            layout = tmp_path / f"sk{r}"
            peer.append(_time(lambda o=layout: subprocess.run(
                ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{o}:x"], check=True,
                capture_output=True)))
            shutil.rmtree(layout)
    res = {"blob_bytes": blob_bytes, "uncompressed_bytes": raw_bytes, "pull_s": ours, "skopeo_copy_s": peer,
           "pull_MBps": blob_bytes / MiB / statistics.median(ours)}
    rows = [("what", "seconds", "MB/s (transferred)"),
            ("virtlab pull (download, verify, unpack)", f"{statistics.median(ours):.2f}", f"{res['pull_MBps']:.0f}")]
    if peer:
        res["skopeo_MBps"] = blob_bytes / MiB / statistics.median(peer)
        rows.append(("skopeo copy docker:// -> oci: (no unpack)", f"{statistics.median(peer):.2f}",
                     f"{res['skopeo_MBps']:.0f}"))
    _table("pull from a loopback registry (median)", rows)
    _out("image-pull", res, tmp_path)


def _podman_disk(tmp_path: Path, archives: list[Path]) -> int | None:
    """Bytes podman's overlay storage uses after loading `archives` (unique inodes), or None without podman."""
    if not shutil.which("podman"):
        return None
    base = tmp_path / "podman"
    (base / "tmp").mkdir(parents=True)
    runroot = tempfile.mkdtemp(prefix="vlpm-")
    argv = ["podman", "--root", str(base / "root"), "--runroot", runroot, "--tmpdir", str(base / "tmp"),
            "--storage-driver", "overlay", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
    env = dict(os.environ, TMPDIR=str(base / "tmp"))
    try:
        for a in archives:
            subprocess.run([*argv, "load", "-q", "-i", str(a)], check=True, capture_output=True, env=env, timeout=600)
        return disk_usage(base / "root")[1]
    finally:
        subprocess.run([*argv, "system", "reset", "-f"], capture_output=True, env=env, timeout=120)
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            mnt = line.split()[4]
            if mnt.startswith((str(base), runroot)):
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)


def test_disk_use_next_to_podman(tmp_path):
    store = ImageStore(tmp_path / "vl" / "image")
    bb = build_busybox(store)
    layer = tmp_path / "extra.tar"
    with tarfile.open(layer, "w") as tf:
        data = os.urandom(1 << 20)
        ti = tarfile.TarInfo("opt/app.bin")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    derived = store.commit(bb, layer, "derived:1")
    cases = [("busybox", ["busybox:latest"]), ("busybox + derived (shares the base layer)",
                                               ["busybox:latest", "derived:1"])]
    deb_root = os.environ.get("VIRTLAB_IMAGE_BENCH_ROOT")
    deb_store = ImageStore(Path(deb_root) / "image") if deb_root else None
    if deb_store is not None and deb_store.exists("debian:bookworm"):
        cases.append(("debian:bookworm (+ sysbench, fio, iperf3, stress-ng)", ["debian:bookworm"]))
    rows = [("image", "virtlab blobs", "virtlab snapshots", "virtlab total", "podman overlay", "sum of image SIZEs")]
    res = {}
    for label, names in cases:
        src = deb_store if names == ["debian:bookworm"] else store
        one = ImageStore(tmp_path / f"one-{len(res)}" / "image")
        archives = []
        for n in names:
            a = tmp_path / f"{len(res)}-{n.replace(':', '_').replace('/', '_')}.tar"
            archive.save_to_path(src, [n], a)
            with open(a, "rb") as f:
                archive.load(one, f)
            archives.append(a)
        use = one.disk_usage()
        content = sum(one.image_size(one.resolve(n)) for n in names)
        pod = _podman_disk(tmp_path / f"pm{len(res)}", archives)
        res[label] = {"virtlab": use, "podman_overlay_bytes": pod, "content_bytes": content}
        rows.append((label, f"{use['blobs'] / MiB:.1f} MiB", f"{use['snapshots'] / MiB:.1f} MiB",
                     f"{(use['blobs'] + use['snapshots']) / MiB:.1f} MiB",
                     f"{pod / MiB:.1f} MiB" if pod is not None else "n/a", f"{content / MiB:.1f} MiB"))
        for a in archives:
            a.unlink()
    _table("disk use after dedup (allocated bytes, each inode once)", rows)
    _out("image-disk", res, tmp_path)
    assert derived.layers[0] == bb.layers[0]

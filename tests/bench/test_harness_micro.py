"""Micro-benchmarks of runtime operations the harness builds on (pytest-benchmark, marker bench).

- OCI runtime create + start + delete of a busybox bundle, in-process (runtime.oci.api),
  and the same cycle through `runc` for comparison;
- image unpack: flattening the bench image out of the store;
- domain XML building (vmdriver.domain.domain_xml, a pure function);
- the harness' own bookkeeping: Sample rows, stats.summarize.

Baselines are saved with pytest-benchmark and compared on later runs:

    .venv/bin/pytest -m bench tests/bench/test_harness_micro.py \
        --benchmark-storage=tests/bench/baselines-harness --benchmark-save=harness
    .venv/bin/pytest -m bench tests/bench/test_harness_micro.py \
        --benchmark-storage=tests/bench/baselines-harness --benchmark-compare \
        --benchmark-compare-fail=median:50%

Nothing here is a pass/fail timing test unless --benchmark-compare-fail is given.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from bench import image, stats
from bench.backends.base import LaunchSpec
from bench.backends.hostfs import mount_overlay, umount
from bench.backends.runc import RuncBackend
from bench.probe import IN_IMAGE
from bench.sample import Sample

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return tmp_path_factory.mktemp("harness-bench-root")


@pytest.fixture(scope="module")
def bench_image(store_root):
    return image.ensure(store_root, "busybox")


@pytest.fixture()
def bundle(store_root, bench_image, tmp_path):
    """A busybox bundle on an overlay, config from `runc spec` (the runc backend's recipe)."""
    if os.geteuid() != 0 or not shutil.which("runc"):
        pytest.skip("requires root and runc")
    b = RuncBackend(store_root, tmp_path / "work")
    b.prepare(bench_image)
    path = tmp_path / "bundle"
    for d in ("upper", "work", "rootfs"):
        (path / d).mkdir(parents=True)
    mount_overlay(b.lower, path / "upper", path / "work", path / "rootfs")
    cfg = b._config(LaunchSpec(argv=[IN_IMAGE, "noop"]), "bench", path / "rootfs")
    (path / "config.json").write_text(json.dumps(cfg))
    yield path
    umount(path / "rootfs")
    b.cleanup()


def test_oci_runtime_create_start_delete(benchmark, bundle, tmp_path):
    """virtlab's OCI runtime in-process: create + start + wait + delete of `virtlab-probe noop`."""
    try:
        from runtime.oci import api
    except ImportError as exc:
        pytest.skip(f"runtime.oci.api not available: {exc}")
    state_root = str(tmp_path / "state")
    devnull = os.open(os.devnull, os.O_RDWR)

    def cycle():
        cid = f"vlbench-{uuid.uuid4().hex[:8]}"
        api.create(state_root, cid, str(bundle), stdio=(devnull, devnull, devnull))
        api.start(state_root, cid)
        api.delete(state_root, cid, force=True)

    try:
        benchmark.pedantic(cycle, rounds=15, warmup_rounds=2)
    finally:
        os.close(devnull)


def test_runc_create_start_delete(benchmark, bundle, tmp_path):
    """The same cycle through runc's CLI, the peer's figure on this host."""
    root = str(tmp_path / "runc-state")

    def cycle():
        cid = f"vlbench-{uuid.uuid4().hex[:8]}"
        subprocess.run(["runc", "--root", root, "run", "--bundle", str(bundle), cid], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        subprocess.run(["runc", "--root", root, "delete", "--force", cid], stderr=subprocess.DEVNULL)

    benchmark.pedantic(cycle, rounds=15, warmup_rounds=2)


def test_image_unpack_flatten(benchmark, store_root, bench_image, tmp_path):
    """Flatten the bench image (busybox + probe layer) from the store into an empty directory."""
    from runtime.image.store import ImageStore

    store = ImageStore(store_root / "image")
    img = store.resolve(bench_image.ref)
    dirs = []

    def setup():
        d = tmp_path / f"flat-{len(dirs)}"
        dirs.append(d)
        return (img, d), {}

    benchmark.pedantic(store.flatten, setup=setup, rounds=10, warmup_rounds=1)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_domain_xml_building(benchmark):
    """vmdriver's domain XML for a micro VM (pure function; runs on every VM start)."""
    from vmdriver.domain import DiskDef, DomainDef, domain_xml

    d = DomainDef(name="vlb-bench", memory_mib=128, vcpus=1, accel="tcg",
                  disks=(DiskDef(path="/var/lib/virtlab/vm/o.qcow2", format="qcow2", target="vda",
                                 backing="/var/lib/virtlab/vm/base.raw", backing_format="raw"),),
                  console_log="/var/lib/virtlab/vm/console.log", kernel="/k/vmlinuz", initrd="/k/initrd.img",
                  cmdline="console=ttyS0 quiet", fwcfg={"opt/virtlab/config": "x" * 200})
    xml = benchmark(domain_xml, d)
    assert "<domain" in xml and "vlb-bench" in xml


def test_sample_rows(benchmark):
    """One Sample built and serialised (the harness writes one per measurement)."""

    def row():
        return Sample("r", "container", "boot", "startup.ready", 0.0123, "s", 3, {"kind": "container"}).to_row()

    assert benchmark(row)["unit"] == "s"


def test_summarize_100_values(benchmark):
    """Median, p95, 2000-resample bootstrap CI and outliers of 100 values (once per metric and backend)."""
    values = [1.0 + (i % 17) * 0.01 for i in range(100)]
    s = benchmark(stats.summarize, values)
    assert s.n == 100

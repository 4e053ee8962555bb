"""VM backends (marker vm): vm-micro through libvirt and qemu-direct, the same probe as everywhere."""

import pytest

from bench import backends, image
from bench.backends.base import LaunchSpec
from bench.backends.vm import qemu_pids
from bench.probe import IN_IMAGE, number, parse_output
from bench.workloads.base import Context
from bench.workloads.isolation import Isolation

pytestmark = [pytest.mark.vm, pytest.mark.root]


@pytest.fixture(scope="module")
def store_root():
    """QEMU runs as libvirt-qemu and must traverse the store: a private 0711 folder in /var/tmp
    (pytest's own temp tree is 0700), removed with everything in it after the module."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="virtlab-benchvm-", dir="/var/tmp"))
    os.chmod(root, 0o711)
    yield root
    from bench.backends.hostfs import umount_under

    umount_under(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def bench_image(store_root):
    return image.ensure(store_root, "busybox")


@pytest.fixture(params=["vm-micro", "qemu-direct"])
def backend(request, store_root, bench_image, tmp_path):
    b = backends.create(request.param, store_root, tmp_path / "work", memory_mib=128)
    ok, reason = b.available()
    if not ok:
        pytest.skip(f"{request.param}: {reason}")
    prepared = b.prepare(bench_image)
    assert prepared.shared_bytes > 0
    yield b
    b.cleanup()
    assert b.live() == []


def test_boot_exec_isolation_destroy(backend):
    inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=180))
    name = inst.name
    try:
        assert 0 < inst.startup < 180
        assert backend.accel in ("kvm", "tcg")
        assert inst.metadata["accel"] == backend.accel
        if backend.name == "vm-micro":
            assert {"vmm", "kernel", "init"} <= set(inst.phases)
        pids = inst.host_pids()
        assert pids, "the QEMU process of the guest"
        res = inst.exec([inst.probe, "cpu", "5"], timeout=120)
        assert res.exit_code == 0, res.stderr
        assert number(parse_output(res.stdout), "events_per_s") > 0
        assert inst.disk_usage() > 0  # the qcow2 overlay
    finally:
        inst.destroy()
    inst.destroy()
    assert qemu_pids(name) == []


def test_vm_isolation_matrix(backend):
    samples = Isolation().run_once(backend, Context(run_id="t"))
    m = {s.metric.split(".", 1)[1]: int(s.value) for s in samples}
    assert m == {k: 1 for k in m}, {s.metric: s.metadata["detail"] for s in samples}
    assert all(s.metadata["accel"] == backend.accel for s in samples)


def test_sigint_during_vm_boots_leaves_no_guest(store_root, bench_image, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    virtlab = str(Path(sys.executable).parent / "virtlab")
    out = tmp_path / "out"
    proc = subprocess.Popen([virtlab, "--root", str(store_root), "bench", "run", "--backends", "vm-micro,qemu-direct",
                             "--workloads", "boot", "--out", str(out), "--run-id", "vmint", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not qemu_pids(f"-{proc.pid}-"):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert qemu_pids(f"-{proc.pid}-"), "no guest was started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    env = json.loads((out / "vmint" / "environment.json").read_text())
    assert env["incomplete"] is True and env["interrupted"] is True
    assert qemu_pids(f"-{proc.pid}-") == []
    listed = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"], capture_output=True,
                            text=True).stdout.split()
    assert not [n for n in listed if f"-{proc.pid}-" in n]


def test_network_workload_reaches_the_guest_over_its_own_link(backend):
    """libvirt's isolated network (vm-micro) or a harness-made tap (qemu-direct): host server, guest client."""
    import os
    import subprocess

    from bench.workloads.perf import create

    w = create("network")
    ctx = Context(run_id="t", params={"network": {"mb": 4, "rounds": 20}, "boot": {"ready_timeout": 180.0}})
    inst = w.setup(backend, ctx)
    try:
        assert inst.link is not None
        samples = w.measure(backend, inst, ctx, 0)
        assert {s.metric for s in samples} == {"perf.network", "perf.network.rx", "perf.network.rtt"}
        assert all(s.value > 0 and s.metadata["accel"] == backend.accel for s in samples)
        assert samples[0].metadata["probe"]["peer"] == inst.link.host_addr
    finally:
        ctx.drain_pool()
    taps = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"vlt{os.getpid() % 100000}x" not in taps

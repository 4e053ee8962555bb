"""VM benchmarks (marker bench; density also slow): libvirt tax, memory per VM, density.

Run: .venv/bin/pytest -m bench tests/bench/test_vm_bench.py -s
Each prints its table and writes JSON to $VIRTLAB_BENCH_OUT (default: the test's tmp dir).
These measure; the only assertion on numbers is the libvirt-vs-QEMU target (1.2x median),
compared within one run, interleaved A, B, A, B, never against a stored figure.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.vm]

ROUNDS = int(os.environ.get("VIRTLAB_BENCH_ROUNDS", "5"))


@pytest.fixture(scope="module")
def store():
    """A store QEMU's user can traverse (see tests/vm/conftest.py for why not tmp_path)."""
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore
    from vmdriver.driver import VmDriver

    root = Path(tempfile.mkdtemp(prefix="virtlab-vmbench-", dir="/var/tmp"))
    os.chmod(root, 0o711)
    build_busybox(ImageStore(root / "image"))
    drv = VmDriver(root)
    drv.prepare("busybox")
    yield drv
    for v in drv.list(all=True):
        drv.remove(v.name)
    drv.close()
    shutil.rmtree(root, ignore_errors=True)


def _out(name: str, data: dict, tmp_path: Path) -> None:
    out = Path(os.environ.get("VIRTLAB_BENCH_OUT", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n[{name}] written to {out / (name + '.json')}")


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _boot_libvirt(drv, i: int) -> tuple[float, dict]:
    from vmdriver.driver import VmSpec

    name = f"bench-lv-{os.getpid()}-{i}"
    drv.create(VmSpec(image="busybox", name=name, cmd=["sleep", "600"]))
    try:
        r = drv.start(name, timeout=180)
        return r.total, dict(r.phases)
    finally:
        drv.remove(name)


def _boot_direct(drv, i: int) -> tuple[float, dict]:
    from vmdriver.domain import parse_ready
    from vmdriver.driver import VmSpec, boot_phases
    from vmdriver.qemu import cleanup, direct_command
    from vmdriver.readiness import READY, wait_marker

    art = drv.prepare("busybox")
    accel, _ = drv.accel()
    run_dir = drv.layout.base / "direct" / f"bench-{os.getpid()}-{i}"
    argv = direct_command(art, VmSpec(image="busybox", name=f"bench-qd-{i}", cmd=["sleep", "600"]), accel, run_dir)
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = wait_marker(run_dir / "console.log", READY, 180, alive=lambda: p.poll() is None)
        assert got is not None, "qemu-direct guest never became ready"
        ready, line = got
        # No VMM-started signal without libvirt: count the exec of QEMU as the VMM phase's end.
        return ready - t0, boot_phases(t0, t0, ready, parse_ready(line))
    finally:
        p.kill()
        p.wait()
        cleanup(run_dir)


def test_micro_boot_libvirt_vs_qemu_direct(store, tmp_path):
    """Boot-to-ready through libvirt vs plain QEMU, same artifacts, interleaved; target <= 1.2x."""
    accel, reason = store.accel()
    lv, qd, lv_phases, qd_phases = [], [], [], []
    _boot_direct(store, -1)  # warm the page cache for both paths
    for i in range(ROUNDS):
        t, ph = _boot_libvirt(store, i)
        lv.append(t)
        lv_phases.append(ph)
        t, ph = _boot_direct(store, i)
        qd.append(t)
        qd_phases.append(ph)
    med_lv, med_qd = statistics.median(lv), statistics.median(qd)
    ratio = med_lv / med_qd

    def med_phases(rows):
        return {k: statistics.median(r[k] for r in rows) for k in rows[0]}

    print(f"\naccelerator: {accel} ({reason})")
    print(f"{'path':<12} {'median s':>9} {'min':>7} {'max':>7}   phases (median s)")
    for label, xs, ph in (("libvirt", lv, lv_phases), ("qemu-direct", qd, qd_phases)):
        phs = " ".join(f"{k}={v:.3f}" for k, v in med_phases(ph).items())
        print(f"{label:<12} {statistics.median(xs):9.3f} {min(xs):7.3f} {max(xs):7.3f}   {phs}")
    print(f"libvirt / qemu-direct = {ratio:.3f} (target <= 1.2)")
    _out("vm_boot", {"accel": accel, "reason": reason, "libvirt_s": lv, "qemu_direct_s": qd,
                     "libvirt_phases": lv_phases, "qemu_direct_phases": qd_phases, "ratio": ratio}, tmp_path)
    assert ratio <= 1.2, f"libvirt boot is {ratio:.2f}x plain QEMU (median {med_lv:.2f}s vs {med_qd:.2f}s)"


def test_memory_overhead_per_vm(store, tmp_path):
    """Host MemAvailable delta per running micro VM, minus its guest RAM; plus QEMU PSS."""
    from vmdriver.driver import VmSpec

    n, guest_mib = int(os.environ.get("VIRTLAB_BENCH_MEM_VMS", "4")), 128
    names = [f"bench-mem-{os.getpid()}-{i}" for i in range(n)]
    time.sleep(1)
    before = _mem_available()
    try:
        for name in names:
            store.create(VmSpec(image="busybox", name=name, memory_mib=guest_mib, cmd=["sleep", "600"]))
            store.start(name, timeout=240)
        time.sleep(3)  # let the guests settle after boot
        after = _mem_available()
        pss = [_pss(store.stats(name)["qemu_pid"] or 0) for name in names]
    finally:
        for name in names:
            store.remove(name)
    per_vm = (before - after) / n
    overhead = per_vm - guest_mib * (1 << 20)
    mib = 1 << 20
    print(f"\n{n} micro VMs, {guest_mib} MiB guests, TCG cache {VmSpec(image='x').tb_cache_mib} MiB:")
    print(f"MemAvailable delta per VM: {per_vm / mib:.1f} MiB; minus guest RAM: {overhead / mib:.1f} MiB")
    print(f"QEMU PSS per VM (median): {statistics.median(pss) / mib:.1f} MiB")
    print("(a negative overhead means the guests have not touched all of their RAM)")
    _out("vm_memory", {"vms": n, "guest_mib": guest_mib, "mem_available_delta_per_vm": per_vm,
                       "overhead_per_vm": overhead, "qemu_pss": pss}, tmp_path)
    assert per_vm > 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_density_micro_vms(store, tmp_path):
    """Start micro VMs until a cap, a memory reserve, a boot-time budget or a failed boot; say which."""
    from vmdriver.driver import VmSpec

    cap = int(os.environ.get("VIRTLAB_DENSITY_CAP", "16"))
    # 64 MiB does not boot Debian's cloud kernel (its decompressor needs ~70 MiB): use 80.
    guest_mib = int(os.environ.get("VIRTLAB_DENSITY_MIB", "80"))
    reserve = 2 << 30
    # Under TCG every running guest takes a little CPU, so boots slow down as VMs add up;
    # a boot slower than this budget ends the count (the CPU is then the limit).
    budget = float(os.environ.get("VIRTLAB_DENSITY_BOOT_BUDGET", "60"))
    names: list[str] = []
    steps = []
    stopped_by = f"cap of {cap} VMs"
    t0 = time.time()
    base = _mem_available()
    try:
        for i in range(cap):
            if _mem_available() < reserve:
                stopped_by = f"host MemAvailable below the {reserve >> 20} MiB reserve"
                break
            name = f"bench-dens-{os.getpid()}-{i}"
            store.create(VmSpec(image="busybox", name=name, memory_mib=guest_mib, cmd=["sleep", "3600"]))
            names.append(name)
            try:
                r = store.start(name, timeout=120)
            except Exception as exc:  # noqa: BLE001 - the failure is the finding
                stopped_by = f"VM {i + 1} did not boot: {exc}"
                break
            pss = _pss(store.stats(name)["qemu_pid"] or 0)
            steps.append({"n": i + 1, "boot_s": r.total, "mem_used": base - _mem_available(), "qemu_pss": pss})
            print(f"  {i + 1:3d} VMs: boot {r.total:6.2f}s, host memory used {steps[-1]['mem_used'] >> 20} MiB, "
                  f"this QEMU's PSS {pss >> 20} MiB")
            if r.total > budget:
                stopped_by = f"boot of VM {i + 1} took {r.total:.0f} s, over the {budget:g} s budget (host CPU)"
                break
    finally:
        running = len(steps)
        elapsed = time.time() - t0
        for name in names:
            store.remove(name)
    per = steps[-1]["mem_used"] / running if running else 0
    pss_median = statistics.median(s["qemu_pss"] for s in steps) if steps else 0
    print(f"\ndensity: {running} micro VMs ({guest_mib} MiB guests) in {elapsed:.0f}s; stopped by: {stopped_by}")
    print(f"memory per VM: {per / (1 << 20):.1f} MiB (MemAvailable delta / N; noisy on a shared host), "
          f"QEMU PSS median {pss_median / (1 << 20):.1f} MiB")
    _out("vm_density", {"count": running, "guest_mib": guest_mib, "stopped_by": stopped_by, "steps": steps,
                        "mem_per_instance": per, "pss_per_instance": pss_median, "elapsed_s": elapsed}, tmp_path)
    assert running >= 1

"""VM benchmarks (marker bench; density also slow): libvirt tax, memory per VM, density (64 MiB guests).

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
    """Host MemAvailable delta per micro VM, minus its guest RAM; plus QEMU PSS.

    The host is shared, so a delta over the whole run drifts with everyone else's memory:
    each VM's delta is taken over its own start (just before, and 3 s after ready), and
    the median of those is reported next to the whole-run figure.
    """
    from vmdriver.driver import VmSpec

    n = int(os.environ.get("VIRTLAB_BENCH_MEM_VMS", "4"))
    guest_mib = int(os.environ.get("VIRTLAB_BENCH_MEM_MIB", "64"))
    names = [f"bench-mem-{os.getpid()}-{i}" for i in range(n)]
    deltas = []
    time.sleep(1)
    before = _mem_available()
    try:
        for name in names:
            store.create(VmSpec(image="busybox", name=name, memory_mib=guest_mib, cmd=["sleep", "600"]))
            m0 = _mem_available()
            store.start(name, timeout=240)
            time.sleep(3)  # let the guest settle after boot
            deltas.append(m0 - _mem_available())
        after = _mem_available()
        pss = [_pss(store.stats(name)["qemu_pid"] or 0) for name in names]
    finally:
        for name in names:
            store.remove(name)
    mib = 1 << 20
    whole = (before - after) / n
    med = statistics.median(deltas)
    print(f"\n{n} micro VMs, {guest_mib} MiB guests, TCG cache {VmSpec(image='x').tb_cache_mib} MiB, "
          f"load average {os.getloadavg()[0]:.1f}:")
    print(f"MemAvailable delta per VM, median of per-start deltas: {med / mib:.1f} MiB "
          f"(minus guest RAM: {(med - guest_mib * mib) / mib:.1f} MiB); over the whole run: {whole / mib:.1f} MiB")
    print(f"per-start deltas MiB: {[round(d / mib) for d in deltas]}")
    print(f"QEMU PSS per VM (median): {statistics.median(pss) / mib:.1f} MiB")
    _out("vm_memory", {"vms": n, "guest_mib": guest_mib, "mem_available_delta_per_vm": med, "per_start_deltas": deltas,
                       "whole_run_delta_per_vm": whole, "overhead_per_vm": med - guest_mib * mib, "qemu_pss": pss},
         tmp_path)
    assert min(pss) > 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_guest_host_cpu(store, tmp_path):
    """Host CPU of idle micro guests (64 MiB, `sleep`), from their QEMU processes' CPU time.

    Under TCG an idle guest costs host CPU for every wakeup it makes (timer ticks, and
    formerly its agent's polling): this is what limits density.
    """
    from vmdriver.driver import VmSpec, _qemu_pid

    n = int(os.environ.get("VIRTLAB_BENCH_IDLE_VMS", "5"))
    seconds = float(os.environ.get("VIRTLAB_BENCH_IDLE_SECONDS", "30"))
    names: list[str] = []
    try:
        for i in range(n):
            name = f"bench-idle-{os.getpid()}-{i}"
            store.create(VmSpec(image="busybox", name=name, memory_mib=64, cmd=["sleep", "100000"]))
            names.append(name)
            store.start(name, timeout=180)
        time.sleep(5)  # boot-time work (the last guest's init, the host's page-ins) settles
        pids = [_qemu_pid(store._record(nm)["domain"]) for nm in names]
        assert all(pids), pids
        c0 = [_cpu_seconds(p) for p in pids]
        w0 = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - w0
        pct = [(_cpu_seconds(p) - c) / wall * 100 for p, c in zip(pids, c0, strict=True)]
        # The agent still serves after the idle period (its wait is a blocked write, not a poll).
        r = store.exec(names[0], ["sh", "-c", "echo idle-ok; exit 3"], timeout=30)
        assert (r.exit_code, r.stdout) == (3, b"idle-ok\n")
    finally:
        for nm in names:
            store.remove(nm)
    load = os.getloadavg()
    print(f"\nidle guests: {n} x 64 MiB over {wall:.1f} s: mean {statistics.mean(pct):.2f}% of a host core per VM "
          f"(min {min(pct):.2f}, max {max(pct):.2f}); load average {load[0]:.2f}")
    _out("vm_idle_cpu", {"vms": n, "seconds": wall, "percent_of_a_core": pct, "loadavg": load}, tmp_path)
    assert min(pct) > 0  # a running guest costs something: the measurement saw it


def _host_cpu_busy(seconds: float) -> float:
    """Share of all host CPUs busy over `seconds` (from /proc/stat), 0..1."""

    def snap() -> tuple[int, int]:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = f[3] + f[4]
        return sum(f) - idle, sum(f)

    b0, t0 = snap()
    time.sleep(seconds)
    b1, t1 = snap()
    return (b1 - b0) / max(1, t1 - t0)


def _sweep_stale_bench_domains() -> list[str]:
    """Destroy and undefine bench domains whose store is gone (a run that was killed -9)."""
    import xml.etree.ElementTree as ET

    import libvirt

    from vmdriver.domain import METADATA_NS

    gone = []
    conn = libvirt.open("qemu:///system")
    try:
        for dom in conn.listAllDomains(0):
            if not dom.name().startswith("virtlab-bench-"):
                continue
            try:
                root = ET.fromstring(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)).get("root")
            except libvirt.libvirtError:
                continue
            if root and root.startswith("/var/tmp/virtlab-vmbench-") and not Path(root).exists():
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
                gone.append(dom.name())
    finally:
        conn.close()
    return gone


class _Interrupted(BaseException):
    """SIGTERM/SIGHUP during the density run: unwind through the cleanup."""


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_density_micro_vms(store, tmp_path):
    """Start 64 MiB micro VMs one after another until a stop rule fires; report which one.

    Stop rules (environment, defaults): VIRTLAB_DENSITY_CAP (200 VMs), a memory budget
    (host MemAvailable must stay above VIRTLAB_DENSITY_RESERVE_MIB, 4096), a per-VM start
    timeout (VIRTLAB_DENSITY_BOOT_TIMEOUT, 60 s to ready: under TCG every running guest
    takes a little CPU, so boots slow down as VMs add up, and this is where the CPU limit
    shows), a failed boot, and a total time budget (VIRTLAB_DENSITY_TIME_BUDGET, 900 s).
    Every domain and QEMU is removed at the end, also on Ctrl-C, SIGTERM or SIGHUP.
    """
    import signal

    from vmdriver.driver import VmSpec
    from vmdriver.errors import BootTimeout

    cap = int(os.environ.get("VIRTLAB_DENSITY_CAP", "200"))
    guest_mib = int(os.environ.get("VIRTLAB_DENSITY_MIB", "64"))
    reserve = int(os.environ.get("VIRTLAB_DENSITY_RESERVE_MIB", "4096")) << 20
    boot_timeout = float(os.environ.get("VIRTLAB_DENSITY_BOOT_TIMEOUT", "60"))
    time_budget = float(os.environ.get("VIRTLAB_DENSITY_TIME_BUDGET", "900"))
    swept = _sweep_stale_bench_domains()
    if swept:
        print(f"\nremoved {len(swept)} stale bench domains of killed runs: {swept[:5]}...")
    prefix = f"bench-dens-{os.getpid()}-"
    names: list[str] = []
    steps = []
    stopped_by = f"cap of {cap} VMs"
    load0 = os.getloadavg()

    def interrupted(signum, _frame):
        raise _Interrupted(f"signal {signum}")

    old = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)}
    store.accel()  # the KVM probe (up to 20 s on these hosts) is not part of the start rate
    time.sleep(2)
    base = _mem_available()
    t0 = time.time()
    settled = after = 0
    cpu_busy = 0.0
    try:
        for i in range(cap):
            if time.time() - t0 > time_budget:
                stopped_by = f"total time budget of {time_budget:g} s"
                break
            if _mem_available() - (guest_mib + 200 << 20) < reserve:
                stopped_by = f"memory budget: host MemAvailable would fall below the {reserve >> 20} MiB reserve"
                break
            name = f"{prefix}{i}"
            store.create(VmSpec(image="busybox", name=name, memory_mib=guest_mib, cmd=["sleep", "3600"]))
            names.append(name)
            try:
                r = store.start(name, timeout=boot_timeout)
            except BootTimeout:
                stopped_by = f"per-VM start timeout: VM {i + 1} was not ready within {boot_timeout:g} s (host CPU)"
                break
            except Exception as exc:  # noqa: BLE001 - the failure is the finding
                stopped_by = f"VM {i + 1} did not boot: {exc}"
                break
            pss = _pss(store.stats(name)["qemu_pid"] or 0)
            steps.append({"n": i + 1, "t": time.time() - t0, "boot_s": r.total,
                          "mem_used": base - _mem_available(), "qemu_pss": pss})
            if (i + 1) % 5 == 0 or i < 3:
                print(f"  {i + 1:3d} VMs at {steps[-1]['t']:5.0f}s: boot {r.total:6.2f}s, host memory used "
                      f"{steps[-1]['mem_used'] >> 20} MiB, this QEMU's PSS {pss >> 20} MiB, load {os.getloadavg()[0]:.1f}",
                      flush=True)
        start_phase = time.time() - t0
        if steps:
            time.sleep(5)  # settle, then measure with every VM running
            after = _mem_available()
            settled = len(steps)
            cpu_busy = _host_cpu_busy(5)
    except _Interrupted as exc:
        stopped_by = f"interrupted by {exc}"
        start_phase = time.time() - t0
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        t_rm = time.time()
        errors = []
        for name in names:
            try:
                store.remove(name)
            except Exception as exc:  # noqa: BLE001 - remove the rest, then report
                errors.append(f"{name}: {exc}")
        rm_s = time.time() - t_rm
        left = subprocess.run(["pgrep", "-f", f"guest=virtlab-{prefix}"], capture_output=True, text=True).stdout.split()
        for pid in left:
            subprocess.run(["kill", "-9", pid], check=False)
    running = len(steps)
    mib = 1 << 20
    per_vm = (base - after) / settled if settled else 0
    overhead = per_vm - guest_mib * mib
    pss_median = statistics.median(s["qemu_pss"] for s in steps) if steps else 0
    incs = [b["mem_used"] - a["mem_used"] for a, b in zip(steps, steps[1:], strict=False)]
    step_median = statistics.median(incs) if incs else 0
    rate = running / start_phase * 60 if start_phase else 0
    boots = [s["boot_s"] for s in steps]
    print(f"\ndensity: {running} micro VMs ({guest_mib} MiB guests) running at once; stopped by: {stopped_by}")
    print(f"start phase {start_phase:.0f} s ({rate:.1f} VMs/min); boot median first 10 "
          f"{statistics.median(boots[:10]) if boots else 0:.2f} s, last 10 {statistics.median(boots[-10:]) if boots else 0:.2f} s")
    print(f"host memory per VM (MemAvailable delta / N): {per_vm / mib:.1f} MiB; minus guest RAM: {overhead / mib:.1f} MiB; "
          f"QEMU PSS median {pss_median / mib:.1f} MiB")
    print(f"median MemAvailable drop per added VM: {step_median / mib:.1f} MiB (minus guest RAM: "
          f"{(step_median - guest_mib * mib) / mib:.1f} MiB)")
    print(f"host CPU busy with {settled} VMs idle: {cpu_busy * 100:.0f}% of {os.cpu_count()} cores; "
          f"load average before {load0[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"removed {len(names)} VMs in {rm_s:.0f} s; errors {errors[:3]}; QEMUs killed after remove: {left}")
    _out("vm_density", {"count": running, "guest_mib": guest_mib, "stopped_by": stopped_by, "steps": steps,
                        "mem_per_vm": per_vm, "overhead_per_vm": overhead,
                        "step_median": step_median, "pss_per_vm": pss_median,
                        "start_phase_s": start_phase, "vms_per_min": rate, "host_cpu_busy": cpu_busy,
                        "load_before": load0, "remove_s": rm_s, "remove_errors": errors}, tmp_path)
    assert not errors and not left, (errors, left)
    assert running >= 1

"""Engine benchmarks (marker `bench`; density also `slow`): never timed tests, they report numbers.

- `virtlab run --rm busybox true` end to end against `podman run --rm` (runc), interleaved
  A/B in one run, medians and the ratio (target: at most 0.5), with `--network none` on both
  sides; and once more with the default network on both (podman's CNI bridge; what it changes
  on the host is put back).
- Density: N idle busybox containers at once (VL_DENSITY_N, default 1000): the host's
  MemAvailable delta per container, the monitors' PSS, the time to start them all, and which
  limit would stop the count next; podman's figures for VL_PODMAN_N (default 100) containers.

    VIRTLAB_LEAKCHECK=warn .venv/bin/pytest -m bench tests/bench/test_engine_bench.py -s
Results are printed and written to $VL_BENCH_OUT (default: <tmp>/engine-bench.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.root]

VENV_BIN = Path(sys.executable).parent
VIRTLAB = str(VENV_BIN / "virtlab")
REPO = Path(__file__).resolve().parents[2]
PODMAN_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def _store(root: Path):
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    store = ImageStore(root / "image")
    build_busybox(store, ref="busybox:latest")
    return store


class Podman:
    """podman with a throwaway --root, runc, cgroupfs, and an imported busybox."""

    def __init__(self, base: Path):
        import tempfile

        self.base = base
        self.runroot = tempfile.mkdtemp(prefix="vlp-", dir="/run")  # podman wants at most 50 characters
        self.argv = ["podman", "--root", str(base / "storage"), "--runroot", self.runroot, "--runtime", "runc",
                     "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--log-level", "error"]

    def setup(self, store) -> None:
        """Import virtlab's busybox image (flattened) into podman: the same bytes on both sides."""
        rootfs = self.base / "rootfs"
        rootfs.mkdir(parents=True)
        store.flatten(store.resolve("busybox"), rootfs)
        tar = self.base / "busybox.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        subprocess.run([*self.argv, "import", str(tar), "busybox"], check=True, capture_output=True)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.argv, *args], capture_output=True, text=True, check=check)

    def teardown(self) -> None:
        """Remove every container podman made here, and what `podman rm` leaves behind on this host:
        conmons of our runroot, their containers, the cgroupfs dirs, the storage mount."""
        ids = self.run("ps", "-aq", "--no-trunc", check=False).stdout.split()
        self.run("rm", "-af", "-t", "0", check=False)
        self.run("system", "reset", "-f", check=False)
        for pid in _pids_named("conmon"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    mine = self.runroot.encode() in f.read()
            except OSError:
                continue
            if mine:
                for child in _children({pid}):
                    _kill(child)
                _kill(pid)
        time.sleep(0.5)
        for cid in ids:
            for ctrl in os.listdir("/sys/fs/cgroup"):
                for name in (f"libpod-{cid}", f"libpod-conmon-{cid}"):
                    d = f"/sys/fs/cgroup/{ctrl}/libpod_parent/{name}"
                    if os.path.isdir(d):
                        try:
                            os.rmdir(d)
                        except OSError:
                            pass
        subprocess.run(["umount", "-R", str(self.base / "storage" / "overlay")], capture_output=True)
        subprocess.run(["umount", "-R", str(self.base / "storage")], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _compile_bytecode() -> None:
    """A real install has .pyc files; without them every start compiles our modules."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "runtime"), str(REPO / "bench")],
                   env=env, capture_output=True)


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True)
    dt = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr.decode()[-500:]
    return dt


def _out(name: str, data: dict, tmp_path: Path) -> None:
    path = Path(os.environ.get("VL_BENCH_OUT") or tmp_path / "engine-bench.json")
    old = json.loads(path.read_text()) if path.exists() else {}
    old[name] = data
    path.write_text(json.dumps(old, indent=2))
    print(f"\n{name}: {json.dumps(data, indent=2)}\n(written to {path})")


def _interleaved(tmp_path: Path, commands, runs: int, host_guard=None) -> dict[str, list[float]]:
    """Wall times of COMMANDS(root, podman) on one busybox image for virtlab and podman, A, B, C...

    Interleaved round by round, so that load on the shared host hits all alike; one warm-up
    each (page cache, monitor build). HOST_GUARD (a context manager) wraps the runs.
    """
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    _compile_bytecode()
    root = tmp_path / "vl"
    store = _store(root)
    pod = Podman(tmp_path / "podman")
    pod.setup(store)
    cmds = commands(root, pod)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    with host_guard or contextlib.nullcontext():
        try:
            for argv in cmds.values():
                _timed(argv)
            for _ in range(runs):
                for name, argv in cmds.items():
                    times[name].append(_timed(argv))
        finally:
            pod.teardown()
            if (root / "network").is_dir():  # the default bridge stays between runs, as docker0
                from runtime.network import NetworkManager

                NetworkManager(root / "network").teardown()
    return times


def test_run_rm_true_vs_podman(tmp_path):
    """End-to-end `run --rm busybox true`: virtlab (its own runtime, and runc) vs podman (runc)."""
    n = int(os.environ.get("VL_BENCH_RUNS", "15"))
    times = _interleaved(tmp_path, lambda root, pod: {
        "virtlab": [VIRTLAB, "--root", str(root), "run", "--rm", "--network", "none", "busybox", "true"],
        "virtlab+runc": [VIRTLAB, "--root", str(root), "run", "--rm", "--runtime", "runc", "--network", "none",
                         "busybox", "true"],
        # virtlab's runtime through its runc-compatible CLI instead of in-process: which is faster?
        "virtlab+runtime-cli": [VIRTLAB, "--root", str(root), "run", "--rm", "--runtime",
                                str(VENV_BIN / "virtlab-runtime"), "--network", "none", "busybox", "true"],
        "podman": [*pod.argv, "run", "--rm", "--network", "none", *PODMAN_ULIMITS, "busybox", "true"],
    }, n)
    med = {k: statistics.median(v) for k, v in times.items()}
    _out("run_rm_true", {
        "runs": n,
        "median_s": med,
        "p95_s": {k: sorted(v)[int(0.95 * (len(v) - 1))] for k, v in times.items()},
        "ratio_virtlab_to_podman": med["virtlab"] / med["podman"],
        "ratio_virtlab_runc_to_podman": med["virtlab+runc"] / med["podman"],
        "ratio_virtlab_runtime_cli_to_podman": med["virtlab+runtime-cli"] / med["podman"],
        "load_avg": os.getloadavg(),
    }, tmp_path)


class _HostNetState:
    """What podman's CNI network changes on this host, saved and put back (even on failure).

    Its bridge plugin turns net.ipv4.ip_forward on, makes `cni-podman0`, adds CNI-* iptables
    chains and writes /var/lib/cni; virtlab's own tests rely on forwarding being off.
    """

    def __enter__(self) -> _HostNetState:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            self.forward = f.read().strip()
        self.iptables = {tool: subprocess.run([f"{tool}-save"], capture_output=True).stdout
                         for tool in ("iptables", "ip6tables") if shutil.which(f"{tool}-save")}
        self.had_cni_state = os.path.exists("/var/lib/cni")
        self.had_bridge = os.path.exists("/sys/class/net/cni-podman0")
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.had_bridge and os.path.exists("/sys/class/net/cni-podman0"):
            subprocess.run(["ip", "link", "del", "cni-podman0"], capture_output=True)
        for tool, saved in self.iptables.items():
            subprocess.run([f"{tool}-restore"], input=saved, capture_output=True)
        if not self.had_cni_state:
            shutil.rmtree("/var/lib/cni", ignore_errors=True)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(self.forward)


def test_run_rm_true_default_network_vs_podman(tmp_path):
    """`run --rm busybox true` as a tutorial types it: the default network on both sides.

    virtlab's default bridge against podman's CNI `podman` network, with `--network none` on
    both in the same interleaved run for reference. What podman's network changes on the host
    is put back afterwards (_HostNetState).
    """
    n = int(os.environ.get("VL_BENCH_RUNS", "10"))
    times = _interleaved(tmp_path, lambda root, pod: {
        "virtlab": [VIRTLAB, "--root", str(root), "run", "--rm", "busybox", "true"],
        "podman": [*pod.argv, "run", "--rm", *PODMAN_ULIMITS, "busybox", "true"],
        "virtlab-none": [VIRTLAB, "--root", str(root), "run", "--rm", "--network", "none", "busybox", "true"],
        "podman-none": [*pod.argv, "run", "--rm", "--network", "none", *PODMAN_ULIMITS, "busybox", "true"],
    }, n, host_guard=_HostNetState())
    med = {k: statistics.median(v) for k, v in times.items()}
    _out("run_rm_true_default_network", {
        "runs": n,
        "median_s": med,
        "ratio_virtlab_to_podman": med["virtlab"] / med["podman"],
        "ratio_none_virtlab_to_podman": med["virtlab-none"] / med["podman-none"],
        "load_avg": os.getloadavg(),
    }, tmp_path)


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def _pids_named(name: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(p))
            except OSError:
                continue
    return out


def _children(ppids: set[int]) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if int(data[data.rindex(b")") + 2:].split()[1]) in ppids:
            out.append(int(p))
    return out


def _cgroup_memory(pids: list[int]) -> int:
    """memory.usage_in_bytes (v1) or memory.current (v2) of the distinct cgroups of `pids`."""
    seen, total = set(), 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            _, ctrls, path = line.split(":", 2)
            if "memory" in ctrls.split(","):
                files = [f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"]
            elif ctrls == "":
                files = [f"/sys/fs/cgroup/unified{path}/memory.current", f"/sys/fs/cgroup{path}/memory.current"]
            else:
                continue
            for fpath in files:
                if fpath in seen or not os.path.exists(fpath):
                    continue
                seen.add(fpath)
                with open(fpath) as f:
                    total += int(f.read())
                break
    return total


def _attributable(monitor_name: str) -> dict:
    """Memory that can be attributed per container whatever else runs on the host:
    the monitors' PSS plus the containers' cgroup memory (their processes, page cache, kernel objects)."""
    mons = _pids_named(monitor_name)
    inits = _children(set(mons))
    n = max(len(mons), 1)
    pss, cg = _pss(mons), _cgroup_memory(inits)
    return {"monitor_pss_MiB": pss / n / 2**20, "container_cgroup_MiB": cg / n / 2**20,
            "attributable_MiB": (pss + cg) / n / 2**20}


def _drop_caches() -> None:
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def _limits(n: int, per_container_mem: float, pids_per_container: float) -> dict:
    """Headroom for N more containers per limit; the smallest is what would stop the count next."""
    def read(path: str) -> int:
        with open(path) as f:
            return int(f.read().split()[0])

    nprocs = len([p for p in os.listdir("/proc") if p.isdigit()])
    pid_max = read("/proc/sys/kernel/pid_max")
    threads_max = read("/proc/sys/kernel/threads-max")
    file_nr = open("/proc/sys/fs/file-nr").read().split()
    with open("/proc/self/mountinfo") as f:
        mounts = sum(1 for _ in f)
    mount_max = read("/proc/sys/fs/mount-max")
    ns_max = read("/proc/sys/user/max_net_namespaces")
    headroom = {
        "memory (MemAvailable)": int(_mem_available() / per_container_mem) if per_container_mem > 0 else None,
        "pid_max": int((pid_max - nprocs) / pids_per_container),
        "threads-max": int((threads_max - nprocs) / pids_per_container),
        "mount-max (host mount table)": mount_max - mounts,
        "file-max": int(file_nr[2]) - int(file_nr[0]),
        "max_net_namespaces": ns_max - n,
    }
    finite = {k: v for k, v in headroom.items() if v is not None}
    return {"headroom_containers": headroom, "next_limit": min(finite, key=finite.get)}


@pytest.mark.slow
def test_density(tmp_path):
    """N idle busybox containers at once: memory per container, monitor PSS, start time, next limit."""
    from runtime.engine import ContainerSpec, Engine

    n = int(os.environ.get("VL_DENSITY_N", "1000"))
    root = tmp_path / "vl"
    store = _store(root)
    eng = Engine(root, image_store=store)
    runtime = os.environ.get("VIRTLAB_RUNTIME") or "virtlab"
    # one container first, so the monitor binary is built and caches are warm
    c = eng.create(ContainerSpec(image="busybox", cmd=["sleep", "100000"], network="none"))
    eng.start(c.id)
    eng.remove(c.id, force=True)
    _drop_caches()
    time.sleep(2)
    mem0 = _mem_available()
    t0 = time.monotonic()
    ids = []
    stopped_by = None
    try:
        for i in range(n):
            try:
                c = eng.create(ContainerSpec(image="busybox", cmd=["sleep", "100000"], network="none"))
                ids.append(c.id)
                eng.start(c.id)
            except Exception as exc:  # noqa: BLE001 - the benchmark reports what stopped it
                stopped_by = f"{type(exc).__name__}: {exc}"[:300]
                break
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} containers, {time.monotonic() - t0:.1f}s, "
                      f"{(mem0 - _mem_available()) / (i + 1) / 2**20:.2f} MiB each", flush=True)
        start_s = time.monotonic() - t0
        running = len(eng.list())
        time.sleep(5)  # let the last ones settle before reading memory
        mem1 = _mem_available()
        monitors = _pids_named("vl-monitor")
        pss = _pss(monitors)
        per = (mem0 - mem1) / max(running, 1)
        pids_per = 2  # the monitor and the container's init
        attributable = _attributable("vl-monitor")
        result = {
            "runtime": runtime,
            "per_container_attributable": attributable,
            "requested": n,
            "running": running,
            "stopped_by": stopped_by,
            "start_seconds": start_s,
            "start_rate_per_s": running / start_s if start_s else None,
            "mem_per_container_MiB": per / 2**20,
            "monitors": len(monitors),
            "monitor_pss_per_container_MiB": pss / max(len(monitors), 1) / 2**20,
            **_limits(running, per, pids_per),
        }
    finally:
        t1 = time.monotonic()
        for cid in ids:
            try:
                eng.remove(cid, force=True)
            except Exception as exc:  # noqa: BLE001 - keep removing the others
                print(f"cannot remove {cid[:12]}: {exc}")
        remove_s = time.monotonic() - t1
    result["remove_seconds"] = remove_s
    result.update(_podman_density(tmp_path, store))
    _out("density", result, tmp_path)


def _podman_density(tmp_path: Path, store) -> dict:
    """podman's figures for VL_PODMAN_N containers (0 skips), measured the same way."""
    n = int(os.environ.get("VL_PODMAN_N", "100"))
    if not n or not shutil.which("podman"):
        return {"podman": None}
    pod = Podman(tmp_path / "podman")
    try:
        pod.setup(store)
        pod.run("run", "--rm", "--network", "none", *PODMAN_ULIMITS, "busybox", "true")
        _drop_caches()
        time.sleep(2)
        mem0 = _mem_available()
        t0 = time.monotonic()
        for _ in range(n):
            pod.run("run", "-d", "--network", "none", *PODMAN_ULIMITS, "busybox", "sleep", "100000")
        start_s = time.monotonic() - t0
        time.sleep(5)
        mem1 = _mem_available()
        conmons = _pids_named("conmon")
        attributable = _attributable("conmon")
        return {"podman": {
            "per_container_attributable": attributable,
            "containers": n,
            "start_seconds": start_s,
            "mem_per_container_MiB": (mem0 - mem1) / n / 2**20,
            "conmon_pss_per_container_MiB": _pss(conmons) / max(len(conmons), 1) / 2**20,
        }}
    finally:
        pod.teardown()

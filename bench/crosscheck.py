"""Independent check: hyperfine, /usr/bin/time and iperf3 measure the same operations as the harness; the medians must agree.

The comparisons (issue 7, "done when"):

- native CPU: the harness' `perf.cpu` (events/s timed inside the probe) turned into
  seconds for N events, against hyperfine's wall time of `virtlab-probe cpu N`;
- container startup (runc): the harness' runc startup minus its `engine` phase
  (bundle preparation, which hyperfine does not repeat), against hyperfine timing
  `runc create && runc start` of an identical bundle, the previous container deleted
  in `--prepare` so only create and start are timed;
- container startup (podman): the harness' podman startup (request -> marker) against
  hyperfine timing the same `podman run -d`;
- native CPU again, against GNU time (`/usr/bin/time -f %e`, 10 ms resolution, so the
  work is sized to about a second);
- native network: the harness' `perf.network` over the host's loopback (the probe on both
  ends) against iperf3 sending the same bytes over 127.0.0.1, as seconds per transfer.

The two sides alternate in small blocks (two harness runs, then two hyperfine runs, and
so on) so that load from other work on a shared host hits both the same way. Run: `python -m bench.crosscheck --root DIR [--runs N] [--json FILE]`.
Exit 0 when every comparison agrees within its tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import image, probe, stats
from bench.backends.base import LaunchSpec
from bench.backends.hostfs import mount_overlay, umount
from bench.backends.native import NativeBackend
from bench.backends.runc import RuncBackend
from bench.errors import ConfigError


@dataclass
class Comparison:
    """One operation measured both ways."""

    what: str
    harness_median_s: float
    hyperfine_median_s: float
    harness_n: int
    hyperfine_n: int
    tolerance: float
    harness_ci: tuple[float, float] = (0.0, 0.0)
    hyperfine_ci: tuple[float, float] = (0.0, 0.0)

    @property
    def ratio(self) -> float:
        """harness / hyperfine."""
        return self.harness_median_s / self.hyperfine_median_s

    @property
    def overlap(self) -> bool:
        """Whether the 95% bootstrap CIs of the two medians overlap (the difference is within noise)."""
        return self.harness_ci[0] <= self.hyperfine_ci[1] and self.hyperfine_ci[0] <= self.harness_ci[1]

    @property
    def agrees(self) -> bool:
        """Within noise: the medians differ by at most the tolerance, or their 95% CIs overlap."""
        return abs(self.ratio - 1.0) <= self.tolerance or self.overlap

    def to_dict(self) -> dict:
        """JSON-ready, with the ratio and the verdict."""
        return {**asdict(self), "ratio": self.ratio, "ci_overlap": self.overlap, "agrees": self.agrees}


def compare(what: str, harness: list[float], tool: list[float], tolerance: float) -> Comparison:
    """Medians and their bootstrap CIs of both sides."""
    return Comparison(what, stats.median(harness), stats.median(tool), len(harness), len(tool), tolerance,
                      stats.bootstrap_median_ci(harness), stats.bootstrap_median_ci(tool))


def hyperfine(command: str, runs: int, prepare: str | None = None, warmup: int = 2) -> list[float]:
    """Run hyperfine on `command`; return the per-run times in seconds."""
    if not shutil.which("hyperfine"):
        raise ConfigError("hyperfine is not installed (apt-get install hyperfine)")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "--style", "none", "--warmup", str(warmup), "--runs", str(runs), "--export-json", out.name]
        if prepare:
            argv += ["--prepare", prepare]
        r = subprocess.run([*argv, command], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise ConfigError(f"hyperfine failed on {command!r}: {r.stderr.strip()[-500:]}")
        return list(json.loads(Path(out.name).read_text())["results"][0]["times"])


def check_native_cpu(root: Path, work: Path, runs: int, events: int) -> Comparison:
    """perf.cpu of the native backend vs hyperfine on the same probe command."""
    b = NativeBackend(root, work)
    b.prepare(None)
    harness: list[float] = []
    tool: list[float] = []
    with b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])) as inst:
        inst.exec([inst.probe, "cpu", str(events)])  # warm-up, as hyperfine's
        for _block in range(max(1, runs // 2)):
            for _ in range(2):
                res = inst.exec([inst.probe, "cpu", str(events)])
                eps = probe.number(probe.parse_output(res.stdout), "events_per_s")
                harness.append(events / eps)
            tool += hyperfine(f"{b.probe_bin} cpu {events}", 2, warmup=1 if _block == 0 else 0)
    return compare(f"native cpu ({events} prime events)", harness, tool, 0.10)


def check_runc_startup(root: Path, work: Path, runs: int) -> Comparison:
    """runc backend startup (create + start + marker) vs hyperfine's `runc create && runc start`."""
    img = image.ensure(root, "busybox")
    b = RuncBackend(root, work)
    ok, reason = b.available()
    if not ok:
        raise ConfigError(f"runc check: {reason}")
    b.prepare(img)
    assert b.lower is not None
    # An identical bundle for hyperfine, made the same way as the backend's.
    bundle = work / "crosscheck-bundle"
    for d in ("upper", "work", "rootfs"):
        (bundle / d).mkdir(parents=True, exist_ok=True)
    mount_overlay(b.lower, bundle / "upper", bundle / "work", bundle / "rootfs")
    name = f"vlb-crosscheck-{int(time.time())}"
    cfg = b._config(LaunchSpec(argv=[probe.IN_IMAGE, "ready"]), name, bundle / "rootfs")
    (bundle / "config.json").write_text(json.dumps(cfg))
    runc = " ".join(b.runc_argv())
    delete = f"{runc} delete --force {name} >/dev/null 2>&1; true"
    # Each timed run gets a fresh overlay, as each harness instance does: the prepare step
    # deletes the container, unmounts, and mounts a new overlay with an empty upper dir.
    template = work / "crosscheck-config.json"
    template.write_text((bundle / "config.json").read_text())
    fresh = (f"{delete}; umount -l {bundle}/rootfs 2>/dev/null; rm -rf {bundle}/upper {bundle}/work; "
             f"mkdir -p {bundle}/upper {bundle}/work; mount -t overlay overlay -o lowerdir={b.lower},"
             f"upperdir={bundle}/upper,workdir={bundle}/work {bundle}/rootfs && cp {template} {bundle}/config.json")
    harness: list[float] = []
    tool: list[float] = []
    try:
        # One warm-up launch, as hyperfine does one warm-up run (cold page cache of a new image).
        b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])).destroy()
        for block in range(max(1, runs // 2)):
            for _ in range(2):
                with b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])) as inst:
                    harness.append((inst.startup or 0.0) - inst.phases.get("engine", 0.0))
            tool += hyperfine(f"{runc} create --bundle {bundle} {name} && {runc} start {name}", 2, prepare=fresh,
                              warmup=1 if block == 0 else 0)
            subprocess.run(delete, shell=True)
    finally:
        subprocess.run(delete, shell=True)
        umount(bundle / "rootfs")
        shutil.rmtree(bundle, ignore_errors=True)
        b.cleanup()
    return compare("runc create + start (busybox bundle)", harness, tool, 0.25)


def check_podman_startup(root: Path, work: Path, runs: int) -> Comparison:
    """podman backend startup (request -> marker on fd 3) vs hyperfine timing the same `podman run -d`."""
    import shlex

    from bench.backends.podman import ULIMITS, PodmanBackend

    img = image.ensure(root, "busybox")
    b = PodmanBackend(root, work)
    ok, reason = b.available()
    if not ok:
        raise ConfigError(f"podman check: {reason}")
    b.prepare(img)
    assert b.image_ref is not None
    name = f"vlb-crosscheck-podman-{int(time.time())}"
    podman = shlex.join(b.argv())
    rm = f"{podman} rm -f -t 0 {name} >/dev/null 2>&1; true"
    run = shlex.join([*b.argv(), "run", "-d", "--name", name, "--network", "none", *ULIMITS, b.image_ref,
                      probe.IN_IMAGE, "ready"])
    harness: list[float] = []
    tool: list[float] = []
    try:
        b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])).destroy()
        for block in range(max(1, runs // 2)):
            for _ in range(2):
                with b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])) as inst:
                    harness.append(inst.startup or 0.0)
            tool += hyperfine(f"{run} >/dev/null", 2, prepare=rm, warmup=1 if block == 0 else 0)
    finally:
        subprocess.run(rm, shell=True)
        b.cleanup()
    return compare("podman run -d (busybox, runc, network none)", harness, tool, 0.25)


def gnu_time(argv: list[str]) -> float:
    """Elapsed wall seconds of argv as GNU time reports them (%e)."""
    if not Path("/usr/bin/time").exists():
        raise ConfigError("/usr/bin/time is not installed (apt-get install time)")
    r = subprocess.run(["/usr/bin/time", "-f", "VLTIME %e", *argv], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise ConfigError(f"/usr/bin/time {' '.join(argv)} failed: {r.stderr.strip()[-300:]}")
    line = next((ln for ln in r.stderr.splitlines() if ln.startswith("VLTIME ")), None)
    if line is None:
        raise ConfigError(f"/usr/bin/time printed no time: {r.stderr.strip()[-300:]}")
    return float(line.split()[1])


def check_native_cpu_time(root: Path, work: Path, runs: int, events: int) -> Comparison:
    """perf.cpu of the native backend vs GNU time's elapsed time of the same probe command."""
    b = NativeBackend(root, work)
    b.prepare(None)
    harness: list[float] = []
    tool: list[float] = []
    argv = [str(b.probe_bin), "cpu", str(events)]
    with b.launch(LaunchSpec(argv=[probe.IN_IMAGE, "ready"])) as inst:
        inst.exec([inst.probe, "cpu", str(events)])
        for _ in range(max(1, runs // 2)):
            for _ in range(2):
                res = inst.exec([inst.probe, "cpu", str(events)])
                harness.append(events / probe.number(probe.parse_output(res.stdout), "events_per_s"))
            tool += [gnu_time(argv) for _ in range(2)]
    return compare(f"native cpu ({events} prime events) vs /usr/bin/time", harness, tool, 0.10)


def iperf3_seconds(mb: int) -> float:
    """Seconds iperf3 needs to move `mb` MiB over 127.0.0.1 (receiver side), with a one-off server."""
    import socket

    if not shutil.which("iperf3"):
        raise ConfigError("iperf3 is not installed (apt-get install iperf3)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(50):  # the server needs a moment to listen
            r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-n", f"{mb}M", "-l", "128K", "-J"],
                               capture_output=True, text=True, timeout=120)
            try:
                end = json.loads(r.stdout)["end"]["sum_received"] if r.returncode == 0 else None
            except (ValueError, KeyError):
                end = None  # iperf3 reports "unable to connect" in its JSON while the server starts
            if end and float(end.get("bits_per_second") or 0) > 0:
                return mb * (1 << 20) * 8 / float(end["bits_per_second"])
            time.sleep(0.1)
        raise ConfigError(f"iperf3 client failed: {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}")
    finally:
        server.kill()
        server.wait()


def check_native_network_iperf3(root: Path, work: Path, runs: int, mb: int) -> Comparison:
    """The network workload on native (host loopback, probe on both ends) vs iperf3 moving the same bytes."""
    from bench.workloads.base import Context
    from bench.workloads.perf import create

    b = NativeBackend(root, work)
    b.prepare(None)
    w = create("network")
    ctx = Context(run_id="crosscheck", params={"network": {"mb": mb, "rounds": 10}})
    harness: list[float] = []
    tool: list[float] = []
    inst = w.setup(b, ctx)
    try:
        w.measure(b, inst, ctx, -1)
        iperf3_seconds(mb)
        for _ in range(max(1, runs // 2)):
            for _ in range(2):
                up = next(s for s in w.measure(b, inst, ctx, 0) if s.metric == "perf.network")
                harness.append(float(up.metadata["probe"]["up_seconds"]))
            tool += [iperf3_seconds(mb) for _ in range(2)]
    finally:
        ctx.drain_pool()
        b.cleanup()
    return compare(f"native TCP over loopback ({mb} MiB) vs iperf3", harness, tool, 0.25)


def main(argv: list[str] | None = None) -> int:
    """Run both comparisons, print them, and exit 1 if one disagrees."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="virtlab store root (a scratch one is fine)")
    ap.add_argument("--runs", type=int, default=20, help="runs per side (split in two blocks)")
    ap.add_argument("--events", type=int, default=2000, help="prime events of the CPU check")
    ap.add_argument("--json", help="write the comparisons here")
    ap.add_argument("--skip-podman", action="store_true", help="only the native CPU and runc comparisons")
    ap.add_argument("--net-mb", type=int, default=256, help="MiB per transfer of the iperf3 check")
    args = ap.parse_args(argv)
    root = Path(args.root).absolute()
    work = root / "cache" / "bench" / "work" / "crosscheck"
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = [check_native_cpu(root, work, args.runs, args.events), check_runc_startup(root, work, args.runs)]
        if not args.skip_podman:
            results.append(check_podman_startup(root, work, args.runs))
        # ~1 s of work, so GNU time's 10 ms resolution is 1%.
        results.append(check_native_cpu_time(root, work, args.runs, max(args.events, 5000)))
        results.append(check_native_network_iperf3(root, work, args.runs, args.net_mb))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for c in results:
        verdict = "agree" if c.agrees else "DISAGREE"
        tool = "iperf3" if "iperf3" in c.what else "time" if "/usr/bin/time" in c.what else "hyperfine"
        print(f"{c.what}: harness {c.harness_median_s * 1000:.2f} ms (n={c.harness_n}), {tool} "
              f"{c.hyperfine_median_s * 1000:.2f} ms (n={c.hyperfine_n}), ratio {c.ratio:.3f}, 95% CIs "
              f"{'overlap' if c.overlap else 'apart'} -> {verdict} (tolerance {c.tolerance:.0%} or CI overlap)")
    if args.json:
        Path(args.json).write_text(json.dumps([c.to_dict() for c in results], indent=2) + "\n")
    return 0 if all(c.agrees for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())

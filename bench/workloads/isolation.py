"""isolation: the same matrix of checks, run by the probe inside each backend, judged against the host.

A canary process runs on the host with a random token on its command line. The probe,
inside the instance, reports what it can see (boot id, namespaces, processes, mounts,
devices, seccomp) and tries escape probes (mount, mknod, open /dev/mem, open /proc/sys
for writing, ptrace of the canary) that change nothing that stays. Each check is 1 when
the instance is isolated from the host and 0 when it is not; the detail says why.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

from bench import probe as probe_mod
from bench.backends.base import Backend, LaunchSpec, kill_process_group
from bench.errors import WorkloadError
from bench.probe import IN_IMAGE, parse_output
from bench.sample import Sample
from bench.workloads.base import Context, Workload

CHECKS = ("kernel_separate", "host_pids_hidden", "host_mounts_hidden", "host_devices_hidden", "syscall_filter",
          "escape_probes_blocked", "own_network_stack")
# Device nodes every container gets (OCI default devices); anything else is a host device showing through.
STANDARD_DEVICES = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"}
# Mount points any instance has of its own; host mount points beyond these must not be visible.
STANDARD_MOUNTS = {"/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup", "/run",
                   "/tmp", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
STANDARD_PREFIXES = ("/proc/", "/sys/", "/dev/")


def as_list(value: Any) -> list[str]:
    """A probe field that may occur once or many times, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def host_facts() -> dict[str, Any]:
    """The host's side of the comparison: boot id, namespaces and mount points of this process."""
    ns: dict[str, str | None] = {}
    for kind in ("mnt", "net", "pid", "uts", "ipc", "user", "cgroup"):
        try:
            ns[kind] = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            ns[kind] = None
    mounts = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mounts.add(line.split()[4])
    return {"boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(), "ns": ns, "mounts": mounts}


def judge(facts: dict[str, Any], host: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """The matrix: check -> (1 isolated / 0 not, detail), from the probe's facts and the host's."""
    out: dict[str, tuple[int, str]] = {}
    separate = bool(facts.get("boot_id")) and facts.get("boot_id") != host["boot_id"]
    out["kernel_separate"] = (int(separate), f"kernel {facts.get('kernel')}, boot_id "
                              f"{'differs from' if separate else 'equals'} the host's")
    canary = facts.get("canary_visible") == "1"
    out["host_pids_hidden"] = (int(not canary), f"{facts.get('pids_visible')} processes visible; host canary "
                               f"{'visible' if canary else 'not visible'}")
    host_only = {m for m in host["mounts"] if m not in STANDARD_MOUNTS and not m.startswith(STANDARD_PREFIXES)}
    leaked = sorted(set(as_list(facts.get("mount"))) & host_only)
    own_mnt = separate or facts.get("ns.mnt") != host["ns"]["mnt"]
    mounts_hidden = own_mnt and (separate or not leaked)
    out["host_mounts_hidden"] = (int(mounts_hidden), "guest kernel, its own mounts" if separate else
                                 f"mount namespace {'own' if own_mnt else 'shared with the host'}; "
                                 f"host mount points visible: {', '.join(leaked[:8]) or 'none'}")
    devs = [d.split(":", 1)[0] for d in as_list(facts.get("dev"))]
    extra = sorted(set(devs) - STANDARD_DEVICES)
    out["host_devices_hidden"] = (int(separate or not extra), "guest devices are virtual (emulated by the VMM)"
                                  if separate else f"device nodes beyond the OCI defaults: {', '.join(extra[:10]) or 'none'}")
    mode = facts.get("seccomp", "")
    filters = facts.get("seccomp_filters", "")
    if separate:
        out["syscall_filter"] = (1, f"the workload's syscalls go to the guest kernel, never the host's "
                                 f"(seccomp in the guest: mode {mode or '?'})")
    else:
        out["syscall_filter"] = (int(mode == "2"), f"Seccomp: {mode or '?'} ({filters or 0} filter(s)); "
                                 f"NoNewPrivs: {facts.get('no_new_privs')}; CapEff: {facts.get('cap_eff')}")
    escapes = {k.split(".", 1)[1]: v for k, v in facts.items() if k.startswith("escape.") and isinstance(v, str)}
    allowed = sorted(k for k, v in escapes.items() if v == "allowed")
    untested = sorted(k for k, v in escapes.items() if v.startswith("untested"))
    if separate:
        out["escape_probes_blocked"] = (1, "inside the guest: " + (", ".join(f"{k} allowed" for k in allowed) or
                                        "all blocked") + "; none reaches the host kernel")
    else:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(escapes.items()))
        out["escape_probes_blocked"] = (int(not allowed and not untested and bool(escapes)), detail or "no probe ran")
    own_net = separate or facts.get("ns.net") != host["ns"]["net"]
    out["own_network_stack"] = (int(own_net), f"interfaces: {', '.join(as_list(facts.get('netif'))) or 'none'}; "
                                f"net namespace {'own' if own_net else 'shared with the host'}")
    return out


class Isolation(Workload):
    """Run the probe's isolation subcommand in one instance per backend and judge the matrix."""

    name = "isolation"
    mode = "once"
    description = "shared kernel, visible host PIDs/mounts/devices, syscall filter, escape probes, network stack"

    def failure_metrics(self) -> list[tuple[str, str]]:
        """Every check of the matrix."""
        return [(f"isolation.{c}", "bool") for c in CHECKS]

    def run_once(self, backend: Backend, ctx: Context) -> list[Sample]:
        """Start the host canary, launch an instance, run the probe, judge, clean up."""
        token = secrets.token_hex(8)
        host_probe = probe_mod.build(backend.root / "cache" / "bench")
        canary = subprocess.Popen([str(host_probe), "canary", token], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"],
                                             ready_timeout=float(ctx.param("boot", "ready_timeout", 180.0))))
            try:
                res = inst.exec([inst.probe, "isolation", token, str(canary.pid)], timeout=120)
            finally:
                inst.destroy()
        finally:
            kill_process_group(canary)
        if res.exit_code != 0:
            raise WorkloadError(f"isolation probe on {backend.name} exited {res.exit_code}: {res.stderr.strip()[-300:]}")
        if ctx.raw_dir is not None:
            (Path(ctx.raw_dir) / f"isolation-{backend.name}.txt").write_text(res.stdout)
        facts = parse_output(res.stdout)
        matrix = judge(facts, host_facts())
        return [ctx.sample(backend, self.name, f"isolation.{check}", value, "bool", detail=detail)
                for check, (value, detail) in matrix.items()]

"""update: new resource limits and restart policy, applied live to a running container.

All or nothing: every value is validated first (including "not below the current memory
usage"); if the runtime then fails half-way, the previous limits are put back.
"""

from __future__ import annotations

import contextlib
from typing import Any

from runtime.engine import parse
from runtime.engine import spec as specmod
from runtime.engine.errors import EngineError, InvalidArgument
from runtime.engine.records import write_atomic
from runtime.engine.state import Status

FIELDS = ("blkio_weight", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
          "cpuset_cpus", "cpuset_mems", "kernel_memory", "memory", "memory_reservation", "memory_swap", "pids_limit")


def update(engine: Any, ref: str, **changes: Any) -> str:
    """Apply `changes` (ContainerSpec field names, plus `restart`); returns the container's name."""
    unknown = set(changes) - set(FIELDS) - {"restart"}
    if unknown:
        raise InvalidArgument(f"cannot update {', '.join(sorted(unknown))}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise InvalidArgument("you must provide one or more flags when using this command")
    cid = engine.resolve(ref)
    with engine.store.locked(cid):
        rec = engine._settle(cid)
        spec = specmod.ContainerSpec.from_dict(rec["Spec"])
        for k, v in changes.items():
            if k != "restart":
                setattr(spec, k, v)
        # --cpus replaces an earlier period/quota pair, and vice versa
        if "cpus" in changes and "cpu_period" not in changes and "cpu_quota" not in changes:
            spec.cpu_period = spec.cpu_quota = None
        if ("cpu_period" in changes or "cpu_quota" in changes) and "cpus" not in changes:
            spec.cpus = None
        if "memory" in changes and "memory_swap" not in changes and rec["Norm"]["resources"].get("memory_swap") not in (None, -1):
            new_mem = parse.size(changes["memory"], "--memory")
            if new_mem and new_mem > rec["Norm"]["resources"]["memory_swap"]:
                raise InvalidArgument("memory limit should be smaller than the already set memory+swap limit; update both")
        new_res = specmod.resources(spec)
        policy = parse.restart(changes["restart"]) if "restart" in changes else None
        if policy and policy.name != "no" and rec.get("AutoRemove"):
            raise InvalidArgument("cannot set a restart policy on a container started with --rm")
        running = rec["State"]["Status"] in (Status.RUNNING, Status.PAUSED)
        old_res = rec["Norm"]["resources"]
        if running and any(k != "restart" for k in changes):
            _check_live(engine, rec, new_res)
            rt = engine.runtime_for(rec)
            try:
                rt.update(cid, specmod.oci_resources(new_res))
            except EngineError:
                with contextlib.suppress(EngineError):
                    rt.update(cid, specmod.oci_resources(old_res))
                raise
        rec["Spec"] = spec.to_dict()
        rec["Norm"]["resources"] = new_res
        if policy:
            rec["Spec"]["restart"] = str(policy)
            rec["Norm"]["restart"] = {"Name": policy.name, "MaximumRetryCount": policy.max_retries}
            write_atomic(engine.store.path(cid) / "restart-policy", f"{policy.name} {policy.max_retries}\n")
        engine.store.save(rec)
    return rec["Name"]


def _check_live(engine: Any, rec: dict[str, Any], res: dict[str, Any]) -> None:
    """Refuse limits the running container already exceeds (the kernel would reject them half-way)."""
    from runtime.engine import stats

    mem = res.get("memory")
    if mem not in (None, -1):
        try:
            usage = stats.cgroup_stats(rec["CgroupsPath"], rec["Id"])["mem_bytes"]
        except Exception:  # noqa: BLE001 - no stats, no check; the runtime still validates
            return
        if usage and mem < usage:
            raise InvalidArgument(f"cannot set --memory to {mem} bytes: below the current usage of {usage} bytes")
    if res.get("pids_limit") not in (None, -1):
        try:
            pids = stats.cgroup_stats(rec["CgroupsPath"], rec["Id"])["pids"]
        except Exception:  # noqa: BLE001
            return
        if pids and res["pids_limit"] < pids:
            raise InvalidArgument(f"cannot set --pids-limit to {res['pids_limit']}: {pids} processes run already")

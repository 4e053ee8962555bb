"""docker inspect's JSON object for a container, built from its record."""

from __future__ import annotations

from typing import Any

from runtime.engine import spec as specmod


def _iso(t: float | None) -> str:
    from runtime.engine.engine import iso

    return iso(t)


def container_json(engine: Any, rec: dict[str, Any]) -> dict[str, Any]:
    """The docker-shaped object (Id, State, Config, HostConfig, Mounts, NetworkSettings, GraphDriver...)."""
    from runtime.engine import network

    cid = rec["Id"]
    cdir = engine.store.path(cid)
    st = rec["State"]
    spec = rec["Spec"]
    norm = rec["Norm"]
    res = norm["resources"]
    ports: dict[str, Any] = {}
    for p in network.published(rec):
        ports.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
            {"HostIp": p.get("host_ip") or "0.0.0.0", "HostPort": str(p.get("host_port") or "")})
    nets = {}
    for name, att in ((rec.get("NetworkSettings") or {}).get("Networks") or {"": {}}).items():
        if not name:
            continue
        att = att or {}
        nets[name] = {"IPAddress": att.get("ip", ""), "IPPrefixLen": att.get("prefixlen", 0),
                      "Gateway": att.get("gateway", ""), "MacAddress": att.get("mac", ""),
                      "Aliases": [rec["Name"], cid[:12]] if name not in ("none", "host") else None}
    first = next(iter(nets.values()), {})
    return {
        "Id": cid,
        "Created": _iso(rec["Created"]),
        "Path": rec["Path"],
        "Args": rec["Args"],
        "State": {
            "Status": st["Status"],
            "Running": st["Status"] in ("running", "paused"),
            "Paused": st["Status"] == "paused",
            "Restarting": st["Status"] == "restarting",
            "OOMKilled": bool(st.get("OOMKilled")),
            "Dead": bool(st.get("Dead")),
            "Pid": st.get("Pid") or 0,
            "ExitCode": st.get("ExitCode", 0),
            "Error": st.get("Error", ""),
            "StartedAt": _iso(st.get("StartedAtTs")),
            "FinishedAt": _iso(st.get("FinishedAtTs")),
            "Timings": {k: v for k, v in rec.get("Timings", {}).items()},
        },
        "Image": rec["Image"],
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(cdir / "container.log"),
        "Name": "/" + rec["Name"],
        "RestartCount": rec.get("RestartCount", 0),
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {
            "NetworkMode": norm["network"],
            "PortBindings": {f"{p['container_port']}/{p['proto']}": [
                {"HostIp": p["host_ip"], "HostPort": str(p["host_port"] or "")}] for p in norm["ports"]},
            "RestartPolicy": norm["restart"],
            "AutoRemove": bool(rec.get("AutoRemove")),
            "Binds": [f"{m['Source']}:{m['Destination']}{'' if m.get('RW', True) else ':ro'}"
                      for m in rec.get("Mounts") or [] if m["Type"] == "bind"],
            "CapAdd": norm["cap_add"] or None,
            "CapDrop": norm["cap_drop"] or None,
            "ReadonlyRootfs": bool(spec.get("read_only")),
            "SecurityOpt": spec.get("security_opt") or None,
            "Init": bool(spec.get("init")),
            "PublishAllPorts": bool(spec.get("publish_all")),
            "Runtime": rec.get("Runtime") or "runc",
            "Memory": res.get("memory") or 0,
            "MemorySwap": res.get("memory_swap") or 0,
            "MemoryReservation": res.get("memory_reservation") or 0,
            "KernelMemory": res.get("kernel_memory") or 0,
            "NanoCpus": int((res.get("cpus") or 0) * 1e9),
            "CpuShares": res.get("cpu_shares") or 0,
            "CpuQuota": res.get("cpu_quota") or 0,
            "CpuPeriod": res.get("cpu_period") or 0,
            "CpuRealtimePeriod": res.get("cpu_rt_period") or 0,
            "CpuRealtimeRuntime": res.get("cpu_rt_runtime") or 0,
            "CpusetCpus": res.get("cpuset_cpus") or "",
            "CpusetMems": res.get("cpuset_mems") or "",
            "PidsLimit": res.get("pids_limit"),
            "BlkioWeight": res.get("blkio_weight") or 0,
            "Ulimits": [{"Name": k.removeprefix("RLIMIT_").lower(), "Soft": v[0], "Hard": v[1]}
                        for k, v in norm["ulimits"].items()] or None,
            "CgroupParent": "",
            "MaskedPaths": specmod.MASKED_PATHS,
            "ReadonlyPaths": specmod.READONLY_PATHS,
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"LowerDir": "", "MergedDir": str(cdir / "merged"),
                     "UpperDir": str(cdir / "upper"), "WorkDir": str(cdir / "work")},
        },
        "Mounts": [
            {"Type": m["Type"], **({"Name": m["Name"]} if m.get("Name") else {}), "Source": m["Source"],
             "Destination": m["Destination"], "Driver": "local" if m["Type"] == "volume" else "",
             "Mode": "" if m.get("RW", True) else "ro", "RW": m.get("RW", True), "Propagation": "rprivate"}
            for m in rec.get("Mounts") or []
        ],
        "Config": {
            "Hostname": rec["Hostname"],
            "User": rec["User"],
            "AttachStdin": bool(spec.get("stdin_open")),
            "Tty": bool(spec.get("tty")),
            "OpenStdin": bool(spec.get("stdin_open")),
            "Env": rec["Env"],
            "Cmd": spec.get("cmd"),
            "Image": rec["ImageRef"],
            "WorkingDir": rec["WorkingDir"] if rec["WorkingDir"] != "/" else "",
            "Entrypoint": spec.get("entrypoint"),
            "Labels": rec.get("Labels") or {},
            "StopSignal": _signame(rec.get("StopSignal")),
            "StopTimeout": rec.get("StopTimeout"),
            "ExposedPorts": {p: {} for p in rec.get("ExposedPorts") or []},
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": first.get("IPAddress", ""),
            "Gateway": first.get("Gateway", ""),
            "SandboxKey": (rec.get("NetworkSettings") or {}).get("NetnsPath", ""),
            "Networks": nets,
        },
    }


def _signame(n: int | None) -> str:
    import signal

    try:
        return signal.Signals(int(n or 15)).name
    except ValueError:
        return str(n)

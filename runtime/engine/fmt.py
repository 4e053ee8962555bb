"""docker's human output: durations, sizes, status strings, ps rows and Go-style templates."""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: 'Less than a second', '3 seconds', 'About a minute', '2 hours'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def bytes_binary(n: float) -> str:
    """go-units BytesSize: 1.523MiB."""
    return _scaled(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def bytes_decimal(n: float) -> str:
    """go-units HumanSizeWithPrecision(n, 3): 1.23kB."""
    return _scaled(n, 1000, ("B", "kB", "MB", "GB", "TB", "PB"), 3)


def _scaled(n: float, base: int, units: tuple[str, ...], digits: int) -> str:
    """N in the largest of UNITS (each BASE times the last) it reaches, with DIGITS significant digits."""
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:.{digits}g}{units[i]}"


def status_text(rec: dict[str, Any], now: float | None = None) -> str:
    """'Up 3 seconds', 'Up 2 minutes (Paused)', 'Exited (0) 2 minutes ago', 'Created', 'Restarting (1) ...'."""
    now = now or time.time()
    st = rec["State"]
    s = st["Status"]
    if s == "running":
        return f"Up {human_duration(now - (st.get('StartedAtTs') or now))}"
    if s == "paused":
        return f"Up {human_duration(now - (st.get('StartedAtTs') or now))} (Paused)"
    if s == "restarting":
        return f"Restarting ({st.get('ExitCode', 0)}) {human_duration(now - (st.get('FinishedAtTs') or now))} ago"
    if s == "exited":
        return f"Exited ({st.get('ExitCode', 0)}) {human_duration(now - (st.get('FinishedAtTs') or now))} ago"
    return s.capitalize()


def command_text(rec: dict[str, Any], trunc: bool = True) -> str:
    """The COMMAND column: quoted, cut to 20 characters with '…'."""
    cmd = " ".join([rec["Path"], *(shlex.quote(a) if (" " in a or not a) else a for a in rec["Args"])])
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


def ports_text(ports: list[dict[str, Any]], exposed: list[str] | None = None) -> str:
    """'0.0.0.0:8080->80/tcp, 443/tcp'."""
    out = []
    for p in ports:
        host = f"{p.get('host_ip') or '0.0.0.0'}:{p.get('host_port')}->" if p.get("host_port") else ""
        out.append(f"{host}{p['container_port']}/{p['proto']}")
    for e in exposed or []:
        if not any(f"{p['container_port']}/{p['proto']}" == e for p in ports):
            out.append(e)
    return ", ".join(out)


def ps_row(rec: dict[str, Any], trunc: bool = True, size: str = "") -> dict[str, Any]:
    """The fields of one `ps` row, under docker's template names."""
    from runtime.engine import network

    now = time.time()
    running = rec["State"]["Status"] in ("running", "paused", "restarting")
    row = {
        "ID": rec["Id"][:12] if trunc else rec["Id"],
        "Image": rec["ImageRef"],
        "Command": command_text(rec, trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(rec["Created"])),
        "RunningFor": f"{human_duration(now - rec['Created'])} ago",
        "Ports": ports_text(network.published(rec) if running else [], rec.get("ExposedPorts")),
        "State": rec["State"]["Status"],
        "Status": status_text(rec, now),
        "Size": size,
        "Names": rec["Name"],
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((rec.get("Labels") or {}).items())),
        "Mounts": ",".join(m.get("Name") or m["Source"] for m in rec.get("Mounts") or []),
        "Networks": rec["Norm"]["network"],
        "_labels": rec.get("Labels") or {},
    }
    return row


_FIELD_RE = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z]+)?(?:\s+\"([^\"]*)\")?\s*\}\}")


def render(template: str, row: dict[str, Any]) -> str:
    """A small subset of Go templates: {{.Field}}, {{json .Field}}, {{json .}}, {{.Label "k"}}, \\t and \\n."""
    def sub(m: re.Match) -> str:
        as_json, name, arg = m.group(1), m.group(2), m.group(3)
        if name is None:
            val: Any = {k: v for k, v in row.items() if not k.startswith("_")}
        elif name == "Label" and arg is not None:
            val = row.get("_labels", {}).get(arg, "")
        else:
            val = row.get(name, "")
        if as_json:
            return json.dumps(val, separators=(",", ":"))
        if isinstance(val, dict | list):
            return json.dumps(val)
        return "" if val is None else str(val)

    return _FIELD_RE.sub(sub, template.replace("\\t", "\t").replace("\\n", "\n"))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns separated by three spaces, as docker prints them."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for r in [headers, *rows]:
        cells = [c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def template_table(template: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    """`table {{.ID}}\\t{{.Names}}`: a header row from the field names, then aligned rows."""
    body = template[len("table"):].strip()
    head_row = {k: v for k, v in headers.items()}
    lines = [render(body, head_row)] + [render(body, r) for r in rows]
    cells = [ln.split("\t") for ln in lines]
    width = max((len(c) for c in cells), default=0)
    cols = [max((len(c[i]) for c in cells if i < len(c)), default=0) for i in range(width)]
    return "\n".join("   ".join(c[i].ljust(cols[i]) for i in range(len(c))).rstrip() for c in cells)


PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS"}

"""exec: run a process in a running container through the OCI runtime's exec.

The runtime joins the container's namespaces and cgroup (runc's exec runs from a sealed
memfd copy of itself, closing the /proc/self/exe class: CVE-2019-5736). The engine never
joins a container's namespaces in its own Python process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

from runtime.engine import parse, users
from runtime.engine import spec as specmod
from runtime.engine.errors import InvalidArgument, InvalidState
from runtime.engine.records import write_atomic
from runtime.engine.state import Status


def process_json(engine: Any, rec: dict[str, Any], argv: list[str], env: Any, user: str | None,
                 workdir: str | None, tty: bool) -> dict[str, Any]:
    """The OCI process object for an exec (the container's env and capabilities, plus the overrides)."""
    if not argv:
        raise InvalidArgument("no command given to exec")
    cdir = engine.store.path(rec["Id"])
    if workdir is not None and (not workdir.startswith("/") or os.path.normpath(workdir).startswith("/proc/self/fd")):
        raise InvalidArgument(f"invalid --workdir {workdir!r}: must be an absolute path inside the container")
    uid, gid, groups, home = users.resolve(str(cdir / "merged"), user if user is not None else (rec["User"] or None))
    extra = parse.env_list(env or [])
    envd: dict[str, str] = {}
    for item in [*rec["Env"], *extra]:
        k, _, v = item.partition("=")
        envd[k] = v
    envd.setdefault("HOME", home)
    if tty:
        envd.setdefault("TERM", "xterm")
    caps = specmod.effective_caps(rec["Norm"])
    proc: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": uid, "gid": gid, **({"additionalGids": groups} if groups else {})},
        "args": list(argv),
        "env": [f"{k}={v}" for k, v in envd.items()],
        "cwd": workdir or rec["WorkingDir"] or "/",
        "capabilities": {k: (caps if uid == 0 or k == "bounding" else []) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": rec["Norm"]["no_new_privileges"],
    }
    return proc


def prepare(engine: Any, ref: str, argv: list[str], env: Any = None, user: str | None = None,
            workdir: str | None = None, tty: bool = False, detach: bool = False) -> tuple[list[str], Path]:
    """Check the container runs, write the process file; returns (runtime exec argv, process file)."""
    rec = engine.record(ref)
    status = Status(rec["State"]["Status"])
    if not status.can_exec():
        hint = "unpause it first" if status is Status.PAUSED else "start it first"
        raise InvalidState(rec["Name"], status, "exec in", hint)
    proc = process_json(engine, rec, argv, env, user, workdir, tty)
    pfile = engine.store.path(rec["Id"]) / f"exec-{secrets.token_hex(6)}.json"
    write_atomic(pfile, json.dumps(proc))
    rt = engine.runtime_for(rec)
    return rt.exec_argv(rec["Id"], pfile, detach=detach, tty=tty), pfile


def run_captured(engine: Any, ref: str, argv: list[str], env: Any = None, user: str | None = None,
                 workdir: str | None = None, tty: bool = False) -> Any:
    """exec with captured stdout/stderr; returns ExecResult."""
    from runtime.engine.engine import ExecResult
    from runtime.engine.runtimes import exec_failure

    cmd, pfile = prepare(engine, ref, argv, env, user, workdir, tty=False)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    finally:
        pfile.unlink(missing_ok=True)
    if r.returncode == 255 or (r.returncode != 0 and b"level=error" in r.stderr):
        err = exec_failure(r.stderr.decode(errors="replace"), f"cannot exec {argv[0]!r}")
        if err:
            raise err
    return ExecResult(r.returncode, r.stdout, r.stderr)

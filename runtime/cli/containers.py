"""The docker-compatible container commands: run, create, start, stop, ps, logs, exec, cp, ...

Argument definitions and output only; the work is done by runtime.engine. Exit codes as
docker: 125 engine error, 126 cannot invoke, 127 not found, else the container's own code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from runtime.cli import root_of, runcore
from runtime.cli.runcmd import CTX, _run_options, run  # noqa: F401 - run: `container run`, importers
from runtime.cli.runcore import run_attached as _run_attached
from runtime.cli.runcore import spec as _spec


def _engine(ctx: click.Context, runtime: str | None = None):
    return runcore.engine(root_of(ctx), runtime)


def _each(refs: tuple[str, ...], fn) -> None:
    """Run fn(ref) for every ref, printing errors as docker does; exit 125 if any failed."""
    failed = False
    for ref in refs:
        try:
            out = fn(ref)
            if out is not None:
                click.echo(out)
        except Exception as exc:  # noqa: BLE001 - report each failure, keep going, as docker does
            if not hasattr(exc, "exit_code"):
                raise
            click.echo(f"Error: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(125)


# ------------------------------------------------------------------------------- create


@click.command(context_settings=CTX)
@_run_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx: click.Context, image: str, command: tuple[str, ...], **o: Any) -> None:
    """Create a new container (it does not start)."""
    eng = _engine(ctx, o["runtime"])
    c = eng.create(_spec(image, command, o))
    click.echo(c.id)


# ------------------------------------------------------------------------------- lifecycle


@click.command()
@click.option("-a", "--attach", "attach_", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start(ctx: click.Context, attach_: bool, interactive: bool, detach_keys: str | None, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    eng = _engine(ctx)
    if attach_ or interactive:
        if len(containers) != 1:
            raise click.UsageError("you cannot start and attach multiple containers at once")
        cid = eng.resolve(containers[0])
        rec = eng.record(cid)
        code = _run_attached(eng, cid, interactive=interactive and rec["Spec"].get("stdin_open"),
                             tty=rec["Spec"].get("tty"), remove=bool(rec.get("AutoRemove")),
                             detach_keys=detach_keys, sig_proxy=True)
        sys.exit(code)
    _each(containers, lambda ref: (eng.start(ref), ref)[1])


@click.command()
@click.option("-t", "--time", "--timeout", "timeout", type=int, help="Seconds to wait before killing the container")
@click.option("-s", "--signal", "sig", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop(ctx: click.Context, timeout: int | None, sig: str | None, containers: tuple[str, ...]) -> None:
    """Stop one or more running containers (stop signal, then SIGKILL after the timeout)."""
    from runtime.engine import parse

    eng = _engine(ctx)
    signum = parse.signal_number(sig) if sig else None
    _each(containers, lambda ref: (eng.stop(ref, timeout=timeout, sig=signum), ref)[1])


@click.command()
@click.option("-t", "--time", "--timeout", "timeout", type=int, help="Seconds to wait before killing the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart one or more containers."""
    eng = _engine(ctx)
    _each(containers, lambda ref: (eng.restart(ref, timeout=timeout), ref)[1])


@click.command()
@click.option("-s", "--signal", "sig", default="KILL", show_default=True, help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill(ctx: click.Context, sig: str, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    from runtime.engine import parse

    eng = _engine(ctx)
    signum = parse.signal_number(sig)
    _each(containers, lambda ref: (eng.kill(ref, signum), ref)[1])


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    eng = _engine(ctx)
    _each(containers, lambda ref: (eng.pause(ref), ref)[1])


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    eng = _engine(ctx)
    _each(containers, lambda ref: (eng.unpause(ref), ref)[1])


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    eng = _engine(ctx)
    _each(containers, lambda ref: eng.wait(ref))


@click.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename(ctx: click.Context, container: str, new_name: str) -> None:
    """Rename a container."""
    _engine(ctx).rename(container, new_name)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    eng = _engine(ctx)
    _each(containers, lambda ref: (eng.remove(ref, force=force, volumes=volumes), ref)[1])


# ------------------------------------------------------------------------------- attach / exec / logs


@click.command()
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.argument("container")
@click.pass_context
def attach(ctx: click.Context, no_stdin: bool, detach_keys: str | None, sig_proxy: bool, container: str) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    from runtime.engine.errors import InvalidState

    eng = _engine(ctx)
    rec = eng.record(container)
    if rec["State"]["Status"] not in ("running", "paused"):
        raise InvalidState(rec["Name"], rec["State"]["Status"], "attach to", "start it first")
    interactive = bool(rec["Spec"].get("stdin_open")) and not no_stdin
    code = _attach_running(eng, rec, interactive, detach_keys, sig_proxy)
    sys.exit(code)


def _attach_running(eng, rec: dict[str, Any], interactive: bool, detach_keys: str | None, sig_proxy: bool) -> int:
    from runtime.engine import attach as att

    tty = bool(rec["Spec"].get("tty"))
    sock = att.connect(eng.store.path(rec["Id"]), "i" if interactive else "o")
    try:
        code = runcore.outcome(eng, rec["Id"], lambda: att.stream(
            sock, stdin=sys.stdin.fileno() if interactive else None,
            detach_keys=att.parse_detach_keys(detach_keys),
            raw_tty=tty and interactive and os.isatty(sys.stdin.fileno())))
    finally:
        sock.close()
    return 0 if code is None else code


@click.command("exec", context_settings=CTX)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, interactive: bool, tty: bool, detach: bool, env: tuple[str, ...],
          workdir: str | None, user: str | None, container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container (through the runtime's exec: same namespaces and cgroup)."""
    import subprocess

    from runtime.engine import execs
    from runtime.engine.runtimes import exec_failure

    eng = _engine(ctx)
    argv, pfile = execs.prepare(eng, container, list(command), env=list(env), user=user, workdir=workdir,
                                tty=tty and not detach, detach=detach)
    stdin = None if interactive else subprocess.DEVNULL
    try:
        if detach:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, capture_output=False,
                               stderr=subprocess.PIPE)
            err = r.stderr.decode(errors="replace")
        else:
            r = subprocess.run(argv, stdin=stdin, stderr=None if tty else subprocess.PIPE)
            err = "" if tty else r.stderr.decode(errors="replace")
    finally:
        pfile.unlink(missing_ok=True)
    if r.returncode == 255 or "level=error" in err:
        failure = exec_failure(err, f"cannot exec {command[0]!r} in {container}")
        if failure:
            raise failure
    if err:
        sys.stderr.write(err)
    sys.exit(r.returncode)


def _time_arg(value: str | None, flag: str) -> float | None:
    """--since/--until: RFC 3339, a UNIX timestamp, or a relative duration like 42m."""
    if not value:
        return None
    from runtime.engine import parse
    from runtime.engine.errors import InvalidArgument
    from runtime.engine.logs import parse_ts

    v = value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    try:
        d = parse.duration(v, flag)
        if d is not None and not v.replace(".", "").isdigit():
            return time.time() - d
    except InvalidArgument:
        pass
    try:
        if len(v) == 10:
            v += "T00:00:00Z"
        return parse_ts(v if v.endswith("Z") else v + "Z")
    except ValueError:
        raise InvalidArgument(f"invalid {flag} {value!r}: expected RFC 3339, a timestamp or a duration like 10m") from None


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", show_default=True, help="Number of lines to show from the end of the logs")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
@click.option("--until", help="Show logs before a timestamp or relative time")
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.argument("container")
@click.pass_context
def logs(ctx: click.Context, follow: bool, tail: str, timestamps: bool, since: str | None, until: str | None,
         details: bool, container: str) -> None:
    """Fetch the logs of a container."""
    from runtime.engine import parse
    from runtime.engine.engine import iso

    eng = _engine(ctx)
    n = None if tail == "all" else parse.integer(tail, "--tail", 0)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for e in eng.logs(container, follow=follow, since=_time_arg(since, "--since"),
                          until=_time_arg(until, "--until"), tail=n):
            line = (f"{iso(e.ts)} " if timestamps else "") + e.text + ("" if e.partial else "\n")
            target = err if e.stream == "stderr" else out
            target.write(line.encode())
            if follow:
                target.flush()
    except KeyboardInterrupt:
        pass


# ------------------------------------------------------------------------------- ps / inspect


def _filters(filters: tuple[str, ...]):
    from runtime.engine.errors import InvalidArgument

    parsed: dict[str, list[str]] = {}
    for f in filters:
        k, eq, v = f.partition("=")
        if not eq or k not in ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "network", "volume"):
            raise InvalidArgument(f"invalid filter {f!r}")
        parsed.setdefault(k, []).append(v)

    def match(rec: dict[str, Any]) -> bool:
        for k, vals in parsed.items():
            if k == "id" and not any(rec["Id"].startswith(v) for v in vals):
                return False
            if k == "name" and not any(v in rec["Name"] for v in vals):
                return False
            if k == "status" and rec["State"]["Status"] not in vals:
                return False
            if k == "exited" and not (rec["State"]["Status"] == "exited" and str(rec["State"]["ExitCode"]) in vals):
                return False
            if k == "ancestor" and not any(v in (rec["ImageRef"], rec["Image"]) or rec["Image"].startswith("sha256:" + v)
                                           for v in vals):
                return False
            if k == "network" and rec["Norm"]["network"] not in vals:
                return False
            if k == "volume" and not any(m.get("Name") in vals or m["Destination"] in vals for m in rec.get("Mounts") or []):
                return False
            if k == "label":
                labels = rec.get("Labels") or {}
                for v in vals:
                    lk, leq, lv = v.partition("=")
                    if lk not in labels or (leq and labels[lk] != lv):
                        return False
        return True

    return match, parsed


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt_", help="table, json, or a Go template")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_context
def ps(ctx: click.Context, all_: bool, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt_: str | None,
       last: int, latest: bool, size: bool) -> None:
    """List containers."""
    from runtime.engine import fmt

    eng = _engine(ctx)
    match, parsed = _filters(filters)
    if latest:
        last = 1
    show_all = all_ or last > 0 or "status" in parsed or "exited" in parsed
    cs = [c for c in eng.list(all=show_all) if match(c.record)]
    if last > 0:
        cs = cs[:last]
    if quiet:
        for c in cs:
            click.echo(c.id if no_trunc else c.id[:12])
        return
    rows = []
    for c in cs:
        sz = ""
        if size:
            from runtime.engine.engine import _du

            sz = fmt.bytes_decimal(_du(eng.store.path(c.id) / "upper"))
        rows.append(fmt.ps_row(c.record, trunc=not no_trunc, size=sz))
    if fmt_ == "json":
        for r in rows:
            click.echo(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, separators=(",", ":")))
        return
    if fmt_ and fmt_ != "table":
        if fmt_.startswith("table"):
            click.echo(fmt.template_table(fmt_, rows, fmt.PS_HEADERS))
        else:
            for r in rows:
                click.echo(fmt.render(fmt_, r))
        return
    cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"] + (["Size"] if size else [])
    click.echo(fmt.table([fmt.PS_HEADERS[k] for k in cols], [[r[k] for k in cols] for r in rows]))


def _inspect_image(root: str, ref: str) -> dict[str, Any] | None:
    try:
        from runtime.image.describe import inspect_image
        from runtime.image.store import ImageStore
    except ImportError:
        return None
    try:
        return inspect_image(ImageStore(os.path.join(root, "image")), ref)
    except Exception:  # noqa: BLE001 - "not an image either" is reported by the caller
        return None


@click.command()
@click.option("-f", "--format", "fmt_", help="Format the output using a Go template ({{.State.Status}}, {{json .Config}})")
@click.option("--type", "type_", type=click.Choice(["container", "image"]), help="Only this type of object")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, fmt_: str | None, type_: str | None, size: bool, names: tuple[str, ...]) -> None:
    """Return low-level information on containers (or images) as a JSON array."""
    from runtime.engine.errors import NoSuchContainer

    eng = _engine(ctx)
    out = []
    missing = []
    for n in names:
        obj = None
        if type_ != "image":
            try:
                obj = eng.inspect(n)
                if size:
                    obj["SizeRw"] = eng.disk_usage(n)
            except NoSuchContainer:
                obj = None
        if obj is None and type_ != "container":
            obj = _inspect_image(root_of(ctx), n)
        if obj is None:
            missing.append(n)
        else:
            out.append(obj)
    print_inspected(out, fmt_, [f"No such object: {n}" for n in missing])


def print_inspected(objs: list[Any], template: str | None, errors: list[str]) -> None:
    """inspect's output: each object through TEMPLATE, else all as one JSON array; then ERRORS.

    With errors it exits 1 if something was found, else 125 (docker's codes).
    """
    if template:
        for o in objs:
            click.echo(_go_format(template, o))
    else:
        click.echo(json.dumps(objs, indent=4))
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    if errors:
        sys.exit(1 if objs else 125)


def _go_format(template: str, obj: Any) -> str:
    """{{.A.B}}, {{json .A}}, {{.A.B}} inside text: enough of Go templates for inspect."""
    import re

    def lookup(path: str) -> Any:
        cur = obj
        for part in [p for p in path.split(".") if p]:
            if isinstance(cur, dict):
                cur = cur.get(part)
            else:
                return None
        return cur

    def sub(m: re.Match) -> str:
        as_json, path = m.group(1), m.group(2)
        val = lookup(path)
        if as_json:
            return json.dumps(val)
        if isinstance(val, bool):
            return "true" if val else "false"
        if isinstance(val, dict | list):
            return json.dumps(val)
        return "<no value>" if val is None else str(val)

    return re.sub(r"\{\{\s*(json\s+)?(\.[A-Za-z0-9_.]*)\s*\}\}", sub, template)


# ------------------------------------------------------------------------------- top / stats / port


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("ps_options", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, container: str, ps_options: tuple[str, ...]) -> None:
    """Display the running processes of a container."""
    from runtime.engine import fmt
    from runtime.engine import top as topmod

    titles, rows = topmod.top(_engine(ctx), container, list(ps_options) or None)
    click.echo(fmt.table(titles, rows))


def _stats_rows(eng, refs: list[str], prev: dict[str, tuple[float, int]], no_trunc: bool) -> list[list[str]]:
    from runtime.engine import fmt

    rows = []
    for ref in refs:
        try:
            rec = eng.record(ref)
            s = eng.stats(ref)
        except Exception as exc:  # noqa: BLE001 - a container that vanished leaves the table
            if not hasattr(exc, "exit_code"):
                raise
            continue
        now = time.monotonic()
        cpu = 0.0
        if rec["Id"] in prev:
            t0, c0 = prev[rec["Id"]]
            if now > t0:
                cpu = max(0.0, (s["cpu_ns"] - c0) / ((now - t0) * 1e9) * 100)
        prev[rec["Id"]] = (now, s["cpu_ns"])
        limit = s["mem_limit"] or _host_mem()
        rows.append([
            rec["Id"] if no_trunc else rec["Id"][:12], rec["Name"], f"{cpu:.2f}%",
            f"{fmt.bytes_binary(s['mem_bytes'])} / {fmt.bytes_binary(limit)}",
            f"{(s['mem_bytes'] / limit * 100) if limit else 0:.2f}%",
            f"{fmt.bytes_decimal(s['net_rx'])} / {fmt.bytes_decimal(s['net_tx'])}",
            f"{fmt.bytes_decimal(s['blk_read'])} / {fmt.bytes_decimal(s['blk_write'])}",
            str(s["pids"]),
        ])
    return rows


def _host_mem() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


STATS_HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


@click.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(ctx: click.Context, all_: bool, no_stream: bool, no_trunc: bool, containers: tuple[str, ...]) -> None:
    """Display a live stream of container resource usage (CPU %, memory, network, block I/O, PIDs)."""
    from runtime.engine import fmt

    eng = _engine(ctx)
    refs = list(containers) or [c.id for c in eng.list(all=all_)]
    for r in containers:
        eng.resolve(r)  # unknown names fail now, with 125
    prev: dict[str, tuple[float, int]] = {}
    _stats_rows(eng, refs, prev, no_trunc)  # CPU % is a delta: the first frame needs two reads
    time.sleep(0.5)
    if no_stream:
        click.echo(fmt.table(STATS_HEADERS, _stats_rows(eng, refs, prev, no_trunc)))
        return
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render():
        t = Table(box=None, pad_edge=False, show_edge=False)
        for h in STATS_HEADERS:
            t.add_column(h, no_wrap=True)
        current = list(containers) or [c.id for c in eng.list(all=all_)]
        for row in _stats_rows(eng, current, prev, no_trunc):
            t.add_row(*row)
        return t

    try:
        import shutil

        # as docker, never cut a row: a narrow terminal wraps instead of losing digits
        width = max(shutil.get_terminal_size().columns, 200 if no_trunc else 140)
        with Live(render(), console=Console(width=width), refresh_per_second=2, auto_refresh=False) as live:
            while True:
                time.sleep(1)
                live.update(render(), refresh=True)
    except KeyboardInterrupt:
        pass


@click.command()
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx: click.Context, container: str, private_port: str | None) -> None:
    """List port mappings or a specific mapping for the container."""
    from runtime.engine import network
    from runtime.engine.errors import EngineError

    eng = _engine(ctx)
    rec = eng.record(container)
    ports = network.published(rec) if rec["State"]["Status"] in ("running", "paused") else []
    want = None
    if private_port:
        num, _, proto = private_port.partition("/")
        want = (num, proto or "tcp")
    found = False
    for p in ports:
        key = (str(p["container_port"]), p["proto"])
        if want and key != want:
            continue
        found = True
        host = f"{p.get('host_ip') or '0.0.0.0'}:{p['host_port']}"
        click.echo(host if want else f"{p['container_port']}/{p['proto']} -> {host}")
    if want and not found:
        raise EngineError(f"no public port '{private_port}' published for {rec['Name']}")


# ------------------------------------------------------------------------------- update / cp / diff / export / commit


@click.command()
@click.option("--blkio-weight", help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
@click.option("--cpu-period", help="Limit CPU CFS period")
@click.option("--cpu-quota", help="Limit CPU CFS quota")
@click.option("--cpu-rt-period", help="Limit the CPU real-time period in microseconds")
@click.option("--cpu-rt-runtime", help="Limit the CPU real-time runtime in microseconds")
@click.option("-c", "--cpu-shares", help="CPU shares (relative weight)")
@click.option("--cpus", help="Number of CPUs")
@click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
@click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
@click.option("--kernel-memory", help="Kernel memory limit (where the kernel has it)")
@click.option("-m", "--memory", help="Memory limit")
@click.option("--memory-reservation", help="Memory soft limit")
@click.option("--memory-swap", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
@click.option("--pids-limit", help="Tune container pids limit (-1 for unlimited)")
@click.option("--restart", help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def update(ctx: click.Context, containers: tuple[str, ...], **changes: Any) -> None:
    """Update configuration of one or more containers (live for running ones; all or nothing)."""
    eng = _engine(ctx)
    _each(containers, lambda ref: (eng.update(ref, **changes), ref)[1])


@click.command()
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.argument("src")
@click.argument("dest")
@click.pass_context
def cp(ctx: click.Context, archive: bool, follow_link: bool, quiet: bool, src: str, dest: str) -> None:
    """Copy files/folders between a container and the local filesystem (paths resolve inside the container)."""
    from runtime.engine import cp as cpmod
    from runtime.engine.errors import InvalidArgument

    eng = _engine(ctx)
    sc, sp = cpmod.split_arg(src)
    dc, dp = cpmod.split_arg(dest)
    if src == "-" and dc is not None:  # a tar stream on stdin, unpacked into a directory
        cpmod.extract_to(eng, dc, dp, sys.stdin.buffer, archive=archive,
                         warn=lambda msg: click.echo(f"Warning: {msg}", err=True))
        return
    if dest == "-" and sc is not None:  # a tar stream on stdout
        if sys.stdout.isatty():
            raise InvalidArgument("cowardly refusing to write a tar stream to a terminal: redirect the output")
        cpmod.tar_from(eng, sc, sp, sys.stdout.buffer, follow=follow_link)
        sys.stdout.buffer.flush()
        return
    if (sc is None) == (dc is None):
        raise InvalidArgument("copying between containers or between host paths is not supported: one side must be CONTAINER:PATH")
    if sc is not None:
        cpmod.copy_from(eng, sc, sp, dp, archive=archive, follow=follow_link)
    elif dc is not None:
        cpmod.copy_to(eng, dc, sp, dp, archive=archive, follow=follow_link)


@click.command()
@click.argument("container")
@click.pass_context
def diff(ctx: click.Context, container: str) -> None:
    """Inspect changes to files on a container's filesystem (A added, C changed, D deleted)."""
    from runtime.engine import changes

    for kind, path in changes.diff(_engine(ctx), container):
        click.echo(f"{kind} {path}")


@click.command()
@click.option("-o", "--output", help="Write to a file, instead of STDOUT")
@click.argument("container")
@click.pass_context
def export(ctx: click.Context, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    from runtime.engine import changes
    from runtime.engine.errors import InvalidArgument

    eng = _engine(ctx)
    if output:
        tmp = f"{output}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                changes.export(eng, container, f)
            os.rename(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    if sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    changes.export(eng, container, sys.stdout.buffer)


@click.command()
@click.option("-a", "--author", default="", help="Author")
@click.option("-c", "--change", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p/--no-pause", "--pause/--no-pause", "pause_", default=True, help="Pause container during commit")
@click.argument("container")
@click.argument("repository", required=False)
@click.pass_context
def commit(ctx: click.Context, author: str, change: tuple[str, ...], message: str, pause_: bool, container: str,
           repository: str | None) -> None:
    """Create a new image from a container's changes."""
    from runtime.engine import changes

    img = changes.commit(_engine(ctx), container, repository, changes.parse_changes(list(change)),
                         comment=message, author=author, pause=pause_)
    click.echo(img.id)


# ------------------------------------------------------------------------------- the container group


@click.group()
def container() -> None:
    """Manage containers."""


@container.command("ls")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt_", help="table, json, or a Go template")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_context
def container_ls(ctx: click.Context, **kw: Any) -> None:
    """List containers."""
    ctx.invoke(ps, **kw)


@container.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (label=...)")
@click.pass_context
def container_prune(ctx: click.Context, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    from runtime.engine import fmt

    eng = _engine(ctx)
    if not force and not click.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"):
        return
    match, _ = _filters(filters)
    total = prune_stopped(eng, match)
    click.echo(f"Total reclaimed space: {fmt.bytes_decimal(total)}")


def prune_stopped(eng: Any, match: Any = None) -> int:
    """Remove the stopped containers (those `match(record)` accepts), list them as docker does; returns bytes freed."""
    from runtime.engine.engine import _du

    total = 0
    removed = []
    for c in eng.list(all=True):
        if c.status in ("exited", "created", "dead") and (match is None or match(c.record)):
            total += _du(eng.store.path(c.id) / "upper")
            eng.remove(c.id)
            removed.append(c.id)
    if removed:
        click.echo("Deleted Containers:")
        for cid in removed:
            click.echo(cid)
        click.echo("")
    return total


for _cmd, _name in ((create, "create"), (run, "run"), (start, "start"), (stop, "stop"), (restart, "restart"),
                    (kill, "kill"), (pause, "pause"), (unpause, "unpause"), (wait, "wait"), (rename, "rename"),
                    (attach, "attach"), (exec_, "exec"), (logs, "logs"), (rm, "rm"), (inspect, "inspect"),
                    (top, "top"), (stats, "stats"), (cp, "cp"), (diff, "diff"), (port, "port"), (update, "update"),
                    (export, "export"), (commit, "commit")):
    container.add_command(_cmd, _name)
container.add_command(container_ls, "list")
container.add_command(container_ls, "ps")

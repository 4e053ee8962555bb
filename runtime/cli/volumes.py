"""`virtlab volume`: create, ls, rm, inspect and prune named volumes."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from runtime.cli import root_of


def _store(ctx: click.Context):
    from pathlib import Path

    from runtime.engine.volumes import VolumeStore

    return VolumeStore(Path(root_of(ctx)))


def _users(ctx: click.Context) -> dict[str, list[str]]:
    """volume name -> IDs of the containers that mount it."""
    from runtime.engine.engine import Engine

    out: dict[str, list[str]] = {}
    for c in Engine(root_of(ctx)).list(all=True):
        for m in c.record.get("Mounts") or []:
            if m.get("Name"):
                out.setdefault(m["Name"], []).append(c.id)
    return out


@click.group()
def volume() -> None:
    """Manage volumes."""


@volume.command("create")
@click.option("-l", "--label", multiple=True, help="Set metadata for a volume")
@click.option("-d", "--driver", default="local", help="Volume driver name (only local)")
@click.option("-o", "--opt", multiple=True, help="Driver options (none are supported)")
@click.argument("name", required=False)
@click.pass_context
def create(ctx: click.Context, label: tuple[str, ...], driver: str, opt: tuple[str, ...], name: str | None) -> None:
    """Create a volume."""
    from runtime.engine import parse
    from runtime.engine.errors import InvalidArgument

    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported (only local)")
    if opt:
        raise InvalidArgument("volume driver options are not supported")
    meta = _store(ctx).create(name, labels=parse.labels(list(label)))
    click.echo(meta["Name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.option("-f", "--filter", "filters", multiple=True, help="dangling=true|false, name=..., label=...")
@click.option("--format", "fmt_", help="table, json or a Go template")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, filters: tuple[str, ...], fmt_: str | None) -> None:
    """List volumes."""
    from runtime.engine import fmt
    from runtime.engine.errors import InvalidArgument

    vols = _store(ctx).list()
    used = _users(ctx) if any(f.startswith("dangling=") for f in filters) else {}
    for f in filters:
        k, _, v = f.partition("=")
        if k == "dangling":
            want = v.lower() in ("true", "1")
            vols = [x for x in vols if (x["Name"] not in used) == want]
        elif k == "name":
            vols = [x for x in vols if v in x["Name"]]
        elif k == "label":
            lk, eq, lv = v.partition("=")
            vols = [x for x in vols if lk in x["Labels"] and (not eq or x["Labels"][lk] == lv)]
        else:
            raise InvalidArgument(f"invalid filter {f!r}")
    if quiet:
        for x in vols:
            click.echo(x["Name"])
        return
    rows: list[dict[str, Any]] = [{"Driver": x["Driver"], "Name": x["Name"], "Mountpoint": x["Mountpoint"],
                                   "Labels": ",".join(f"{k}={v}" for k, v in x["Labels"].items()),
                                   "Scope": x["Scope"]} for x in vols]
    if fmt_ == "json":
        for r in rows:
            click.echo(json.dumps(r))
    elif fmt_ and fmt_ != "table":
        if fmt_.startswith("table"):
            click.echo(fmt.template_table(fmt_, rows, {"Driver": "DRIVER", "Name": "VOLUME NAME",
                                                       "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Scope": "SCOPE"}))
        else:
            for r in rows:
                click.echo(fmt.render(fmt_, r))
    else:
        click.echo(fmt.table(["DRIVER", "VOLUME NAME"], [[r["Driver"], r["Name"]] for r in rows]))


@volume.command("inspect")
@click.option("-f", "--format", "fmt_", help="Format the output using a Go template")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, fmt_: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more volumes."""
    from runtime.cli.containers import print_inspected
    from runtime.engine.errors import NoSuchVolume

    store = _store(ctx)
    out, missing = [], []
    for n in names:
        try:
            meta = store.inspect(n)
            meta.pop("Anonymous", None)
            out.append(meta)
        except NoSuchVolume:
            missing.append(n)
    print_inspected(out, fmt_, [f"no such volume: {n}" for n in missing])


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more volumes (refused while a container uses one)."""
    from runtime.engine.errors import EngineError, NoSuchVolume

    store = _store(ctx)
    used = _users(ctx)
    failed = False
    for n in names:
        try:
            store.remove(n, in_use_by=used.get(n))
            click.echo(n)
        except NoSuchVolume as exc:
            if not force:
                click.echo(f"Error: {exc}", err=True)
                failed = True
        except EngineError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(125)


@volume.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones")
@click.pass_context
def prune(ctx: click.Context, force: bool, all_: bool) -> None:
    """Remove unused volumes (anonymous ones; with -a, named ones too)."""
    from runtime.engine import fmt
    from runtime.engine.engine import _du

    if not force and not click.confirm("WARNING! This will remove unused volumes.\nAre you sure you want to continue?"):
        return
    store = _store(ctx)
    used = _users(ctx)
    removed, total = [], 0
    for v in store.list():
        if v["Name"] in used or not (all_ or v.get("Anonymous")):
            continue
        from pathlib import Path

        total += _du(Path(v["Mountpoint"]))
        store.remove(v["Name"])
        removed.append(v["Name"])
    if removed:
        click.echo("Deleted Volumes:")
        for n in removed:
            click.echo(n)
        click.echo("")
    click.echo(f"Total reclaimed space: {fmt.bytes_decimal(total)}")


volume.add_command(ls, "list")

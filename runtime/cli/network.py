"""`virtlab network`: create, ls, rm, inspect and prune bridge networks (docker's options and output)."""

from __future__ import annotations

import json
import os
import re

import click

from runtime.cli import root_of
from runtime.network.errors import InvalidArgument, NetworkError

PSEUDO = (("host", "host"), ("none", "null"))  # listed like docker's; containers join them without a bridge


def _manager(ctx: click.Context):
    from runtime.network.manager import NetworkManager

    return NetworkManager(os.path.join(root_of(ctx), "network"))


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        key, _, val = v.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {v!r}: expected KEY=VALUE")
        out[key] = val
    return out


def _row(rec: dict, no_trunc: bool) -> dict[str, str]:
    return {
        "ID": rec["id"] if no_trunc else rec["id"][:12],
        "Name": rec["name"],
        "Driver": rec["driver"],
        "Scope": "local",
        "IPv6": "false",
        "Internal": str(bool(rec.get("internal"))).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(rec.get("labels", {}).items())),
        "CreatedAt": rec.get("created", ""),
    }


_FIELD = re.compile(r"{{\s*\.(\w+)\s*}}")


def render_template(template: str, row: dict, raw: dict | None = None) -> str:
    """Expand the subset of Go templates docker users write: {{.Field}}, {{json .}}, {{json .Field}}."""
    text = template.replace("\\t", "\t").replace("\\n", "\n")
    src = raw if raw is not None else row

    def as_json(m: re.Match) -> str:
        key = m.group(1)
        if not key:
            return json.dumps(src)
        if key not in src:
            raise InvalidArgument(f"invalid --format: no field {key!r} (fields: {', '.join(src)})")
        return json.dumps(src[key])

    text = re.sub(r"{{\s*json\s+\.(\w*)\s*}}", as_json, text)

    def field(m: re.Match) -> str:
        if m.group(1) not in row:
            raise InvalidArgument(f"invalid --format: no field {m.group(1)!r} (fields: {', '.join(row)})")
        return row[m.group(1)]

    return _FIELD.sub(field, text)


def _table(rows: list[dict[str, str]], cols: list[tuple[str, str]]) -> str:
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, h in cols]
    lines = ["   ".join(h.ljust(w) for (_, h), w in zip(cols, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("   ".join(r[k].ljust(w) for (k, _), w in zip(cols, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _filtered(recs: list[dict], filters: tuple[str, ...]) -> list[dict]:
    for f in filters:
        key, sep, val = f.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid filter {f!r}: expected KEY=VALUE")
        if key == "name":
            recs = [r for r in recs if val in r["name"]]
        elif key == "id":
            recs = [r for r in recs if r["id"].startswith(val)]
        elif key == "driver":
            recs = [r for r in recs if r["driver"] == val]
        elif key == "type":
            if val not in ("builtin", "custom"):
                raise InvalidArgument(f"invalid filter type={val!r}: builtin or custom")
            recs = [r for r in recs if bool(r.get("builtin")) == (val == "builtin")]
        elif key == "label":
            k, _, v = val.partition("=")
            recs = [r for r in recs if k in r.get("labels", {}) and (not v or r["labels"][k] == v)]
        else:
            raise InvalidArgument(f"invalid filter {key!r}: name, id, driver, type or label")
    return recs


@click.group("network")
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.argument("name")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver (only bridge).")
@click.option("--subnet", help="Subnet in CIDR format, e.g. 10.1.0.0/24.")
@click.option("--gateway", help="IPv4 gateway for the subnet (default: its first address).")
@click.option("--internal", is_flag=True, help="No default route and no published ports.")
@click.option("--label", multiple=True, help="Set metadata on the network (KEY=VALUE).")
@click.pass_context
def create(ctx, name, driver, subnet, gateway, internal, label) -> None:
    """Create a network."""
    with _manager(ctx) as nm:
        rec = nm.create(name, subnet=subnet, gateway=gateway, internal=internal, driver=driver, labels=_labels(label))
    click.echo(rec["id"])


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter: name=, id=, driver=, type=, label=.")
@click.option("--format", "fmt", help="table, json, or a Go template such as '{{.Name}}'.")
@click.pass_context
def ls(ctx, quiet, no_trunc, filters, fmt) -> None:
    """List networks."""
    with _manager(ctx) as nm:
        recs = nm.list()
    builtin = [
        {"id": _pseudo_id(name), "name": name, "driver": drv, "builtin": True, "labels": {}, "created": ""}
        for name, drv in PSEUDO
    ]
    for r in recs:
        r["builtin"] = bool(r.get("default"))
    recs = _filtered(recs[:1] + builtin + recs[1:], filters)
    rows = [_row(r, no_trunc) for r in recs]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
    elif fmt == "json":
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
    elif fmt and fmt != "table":
        tpl = fmt
        if tpl.startswith("table "):
            tpl = tpl[6:]
            click.echo(_FIELD.sub(lambda m: m.group(1).upper(), tpl.replace("\\t", "\t")))
        for r in rows:
            click.echo(render_template(tpl, r))
    else:
        cols = [("ID", "NETWORK ID"), ("Name", "NAME"), ("Driver", "DRIVER"), ("Scope", "SCOPE")]
        click.echo(_table(rows, cols))


def _pseudo_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(f"virtlab-{name}".encode()).hexdigest()


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist.")
@click.pass_context
def rm(ctx, names, force) -> None:
    """Remove one or more networks."""
    from runtime.network.errors import NetworkNotFound

    failed = []
    with _manager(ctx) as nm:
        for name in names:
            try:
                nm.remove(name)
                click.echo(name)
            except NetworkNotFound:
                if not force:
                    click.echo(f"Error: network {name} not found", err=True)
                    failed.append(name)
            except NetworkError as exc:
                click.echo(f"Error: {exc}", err=True)
                failed.append(name)
    if failed:
        ctx.exit(125)


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", help="Go template: {{.Name}}, {{.Id}}, {{json .}} ...")
@click.pass_context
def inspect(ctx, names, fmt) -> None:
    """Display detailed information on one or more networks."""
    out, missing = [], []
    with _manager(ctx) as nm:
        for name in names:
            if name in dict(PSEUDO):
                out.append({"Name": name, "Id": _pseudo_id(name), "Scope": "local", "Driver": dict(PSEUDO)[name],
                            "Containers": {}, "IPAM": {"Driver": "default", "Options": None, "Config": []}})
                continue
            try:
                out.append(nm.inspect(name))
            except NetworkError as exc:
                missing.append(str(exc))
    if fmt:
        for item in out:
            flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in item.items()}
            click.echo(render_template(fmt, flat, raw=item))
    else:
        click.echo(json.dumps(out, indent=4))
    if missing:
        for m in missing:
            click.echo(f"Error: {m}", err=True)
        ctx.exit(125)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def prune(ctx, force) -> None:
    """Remove all unused user-defined networks (and take down the default bridge if no container uses it)."""
    if not force:
        click.confirm("WARNING! This will remove all custom networks not used by at least one container.\n"
                      "Are you sure you want to continue?", abort=True)
    prune_unused(ctx)


def prune_unused(ctx: click.Context) -> None:
    """NetworkManager.prune(), listed as docker lists it."""
    with _manager(ctx) as nm:
        removed = nm.prune()
    if removed:
        click.echo("Deleted Networks:")
        for name in removed:
            click.echo(name)
        click.echo("")


def _running_container(ctx: click.Context, ref: str) -> dict:
    """The engine's record of a running container on a bridge network (it has a netns to join)."""
    from runtime.engine import Engine

    rec = Engine(root_of(ctx)).record(ref)
    path = (rec.get("NetworkSettings") or {}).get("NetnsPath")
    if not (rec.get("State") or {}).get("Running"):
        raise InvalidArgument(f"container {ref} is not running")
    # A --network none container has a netns too (for its loopback), but docker keeps it
    # off every network: connecting it would silently change what `none` promised.
    mode = (rec.get("Norm") or {}).get("network")
    if not path or mode in ("none", "host"):
        raise InvalidArgument(f"container {ref} has no network namespace of its own (--network none or host)")
    return rec


@network.command("connect")
@click.argument("net")
@click.argument("container")
@click.option("--alias", multiple=True, help="Add a network-scoped alias for the container.")
@click.option("--ip", help="IPv4 address for the container on this network.")
@click.pass_context
def connect(ctx, net, container, alias, ip) -> None:
    """Connect a running container to a network (it gets a new ethN)."""
    rec = _running_container(ctx, container)
    with _manager(ctx) as nm:
        nm.attach(rec["Id"], rec["NetworkSettings"]["NetnsPath"], network=net, name=str(rec["Name"]).lstrip("/"),
                  aliases=[*alias, rec["Id"][:12]], hostname=rec.get("Hostname") or None, ip=ip)


@network.command("disconnect")
@click.argument("net")
@click.argument("container")
@click.option("-f", "--force", is_flag=True, help="Do not fail when the container is not connected.")
@click.pass_context
def disconnect(ctx, net, container, force) -> None:
    """Disconnect a container from a network."""
    from runtime.engine import Engine

    cid = Engine(root_of(ctx)).resolve(container)
    with _manager(ctx) as nm:
        rec = nm.get(net)
        if not any(a.network_id == rec["id"] for a in nm.endpoints(cid)):
            if force:
                return
            raise InvalidArgument(f"container {container} is not connected to network {net}")
        nm.detach(cid, network=rec["id"])


# docker's aliases
network.add_command(ls, "list")
network.add_command(rm, "remove")

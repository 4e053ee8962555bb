"""Image commands of the docker-compatible CLI: images, import, tag, rmi, save, load, pull, push, ...

Only click and the store are imported here; httpx and rich are imported inside the
commands that talk to a registry or draw progress, so `virtlab images` stays lean.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys

import click

from runtime.cli import root_of
from runtime.engine.fmt import bytes_decimal, human_duration
from runtime.image.errors import ImageError, ImageNotFound, InvalidReference

# ------------------------------------------------------------------ helpers


def _store(ctx: click.Context):
    from runtime.image.store import ImageStore

    warn = lambda msg: click.echo(f"WARNING: {msg}", err=True)  # noqa: E731
    return ImageStore(os.path.join(root_of(ctx), "image"), warn=warn)


def _parse_time(ts: str) -> _dt.datetime | None:
    if not ts:
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", ts)
    if not m:
        return None
    base = _dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3) or "Z"
    if tz == "Z":
        return base.replace(tzinfo=_dt.UTC)
    sign = 1 if tz[0] == "+" else -1
    off = _dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    return base.replace(tzinfo=_dt.timezone(sign * off))


def human_since(ts: str) -> str:
    """`3 hours ago` like docker's HumanDuration."""
    t = _parse_time(ts)
    if t is None:
        return "N/A"
    return human_duration((_dt.datetime.now(_dt.UTC) - t).total_seconds()) + " ago"


_TEMPLATE_RE = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_]*)\s*\}\}")


def render_template(template: str, row: dict) -> str:
    """A small subset of Go templates: `{{.Field}}`, `{{json .Field}}`, `{{json .}}`, `\\t` and `\\n`."""
    def sub(m: re.Match) -> str:
        is_json, key = m.group(1), m.group(2)
        value = row if key == "" else row.get(key, "")
        if is_json:
            return json.dumps(value, separators=(",", ":"))
        if key == "" and isinstance(value, dict):
            return json.dumps(value)
        return "" if value is None else str(value)

    unknown = [k for _, k in _TEMPLATE_RE.findall(template) if k and k not in row]
    if unknown:
        raise ImageError(f"template: can't evaluate field {unknown[0]} (known: {', '.join(sorted(row))})")
    return _TEMPLATE_RE.sub(sub, template.replace("\\t", "\t").replace("\\n", "\n"))


def print_rows(rows: list[dict], columns: list[tuple[str, str]], fmt: str | None) -> None:
    """Print rows as an aligned table (default), `json` lines, or a Go-like template (`table` prefix adds headers)."""
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row, separators=(",", ":")))
        return
    if fmt and fmt != "table":
        header = fmt.startswith("table")
        tmpl = fmt[len("table"):].lstrip() if header else fmt
        lines = [render_template(tmpl, r) for r in rows]
        if header:
            heads = {k: title for k, title in columns}
            hrow = {k: heads.get(k, k.upper()) for k in (rows[0] if rows else heads)}
            lines.insert(0, render_template(tmpl, hrow))
        if header and any("\t" in line for line in lines):
            table = [line.split("\t") for line in lines]
            widths = [max(len(r[i]) if i < len(r) else 0 for r in table) for i in range(max(map(len, table)))]
            lines = ["   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in table]
        for line in lines:
            click.echo(line)
        return
    table = [[title for _, title in columns]] + [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for r in table:
        click.echo("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def _fail_many(errors: list[str]) -> None:
    for e in errors:
        click.echo(f"Error: {e}", err=True)
    if errors:
        sys.exit(125)


# ------------------------------------------------------------------- images


def _image_rows(store, all_: bool, digests: bool, no_trunc: bool) -> list[dict]:
    from runtime.image import reference

    rows = []
    for img in store.images():
        size = bytes_decimal(store.image_size(img))
        iid = img.id if no_trunc else img.short_id
        created = human_since(img.created)
        names = img.refs or [None]  # dangling images show as <none>
        for name in names:
            if name is None:
                repo, tag = "<none>", "<none>"
            else:
                r = reference.parse(name)
                repo, tag = r.repository, r.tag or "<none>"
            row = {"Repository": repo, "Tag": tag, "ID": iid, "CreatedSince": created, "CreatedAt": img.created,
                   "Size": size, "Digest": img.digest}
            rows.append(row)
    rows.sort(key=lambda r: (r["CreatedAt"], r["Repository"], r["Tag"]), reverse=True)
    return rows


@click.command("images")
@click.argument("repository", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (also untagged ones).")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", help="'table', 'json', or a Go-like template such as '{{.Repository}}:{{.Tag}}'.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter: dangling=true|false, reference=PATTERN.")
@click.pass_context
def images(ctx: click.Context, repository: str | None, quiet: bool, all_: bool, digests: bool,
           no_trunc: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List images."""
    store = _store(ctx)
    rows = _image_rows(store, all_, digests, no_trunc)
    if repository:
        repo, _, tag = repository.partition(":")
        rows = [r for r in rows if r["Repository"] == repo and (not tag or r["Tag"] == tag)]
    for f in filters:
        key, _, value = f.partition("=")
        if key == "dangling":
            want = value.lower() in ("true", "1")
            rows = [r for r in rows if (r["Repository"] == "<none>") == want]
        elif key == "reference":
            import fnmatch

            rows = [r for r in rows if fnmatch.fnmatch(r["Repository"], value)
                    or fnmatch.fnmatch(f"{r['Repository']}:{r['Tag']}", value)]
        else:
            raise ImageError(f"invalid filter {key!r} (supported: dangling, reference)")
    if quiet:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        for i in seen:
            click.echo(i)
        return
    columns = [("Repository", "REPOSITORY"), ("Tag", "TAG")]
    if digests:
        columns.append(("Digest", "DIGEST"))
    columns += [("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("Size", "SIZE")]
    print_rows(rows, columns, fmt)


# ---------------------------------------------------------------- import


_CHANGE_RE = re.compile(r"^\s*(CMD|ENTRYPOINT|ENV|WORKDIR|USER|LABEL|EXPOSE|STOPSIGNAL|VOLUME)\s+(.*)$", re.I | re.S)


def parse_changes(changes: tuple[str, ...]) -> dict:
    """Dockerfile-like `--change` instructions as image config fields (CMD, ENTRYPOINT, ENV, WORKDIR, ...)."""
    cfg: dict = {}
    for ch in changes:
        m = _CHANGE_RE.match(ch)
        if not m:
            raise ImageError(f"invalid --change {ch!r}: supported are CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, "
                             "EXPOSE, STOPSIGNAL, VOLUME")
        op, arg = m.group(1).upper(), m.group(2).strip()
        if op in ("CMD", "ENTRYPOINT"):
            if arg.startswith("["):
                try:
                    value = json.loads(arg)
                except ValueError as exc:
                    raise ImageError(f"invalid --change {ch!r}: {exc}") from exc
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ImageError(f"invalid --change {ch!r}: expected a JSON list of strings")
            else:
                value = ["/bin/sh", "-c", arg]
            cfg["Cmd" if op == "CMD" else "Entrypoint"] = value
        elif op == "ENV":
            k, sep, v = arg.partition("=")
            if not sep:
                k, _, v = arg.partition(" ")
            if not k or "\n" in arg:
                raise ImageError(f"invalid --change {ch!r}")
            env = [e for e in cfg.get("Env", []) if not e.startswith(k + "=")]
            cfg["Env"] = [*env, f"{k}={v.strip()}"]
        elif op == "WORKDIR":
            cfg["WorkingDir"] = arg
        elif op == "USER":
            cfg["User"] = arg
        elif op == "STOPSIGNAL":
            cfg["StopSignal"] = arg
        elif op == "LABEL":
            k, _, v = arg.partition("=")
            cfg.setdefault("Labels", {})[k.strip()] = v.strip().strip('"')
        elif op == "EXPOSE":
            for port in arg.split():
                port = port if "/" in port else f"{port}/tcp"
                cfg.setdefault("ExposedPorts", {})[port] = {}
        elif op == "VOLUME":
            for vol in (json.loads(arg) if arg.startswith("[") else arg.split()):
                cfg.setdefault("Volumes", {})[vol] = {}
    return cfg


def _do_import(ctx, file, repository, changes, message):
    store = _store(ctx)
    cfg = parse_changes(changes)
    if file != "-" and not os.path.exists(file):
        raise ImageError(f"cannot import {file}: no such file")
    img = store.import_tar(file, repository, config_changes=cfg, message=message or "")
    click.echo(img.id)


@click.command("import")
@click.argument("file")
@click.argument("repository", required=False)
@click.option("-c", "--change", "changes", multiple=True, help="Apply a Dockerfile instruction (CMD, ENV, ...).")
@click.option("-m", "--message", help="Commit message for the imported image.")
@click.pass_context
def import_(ctx, file, repository, changes, message):
    """Import a tarball (tar, .gz, .xz, .zst or - for stdin) to create a filesystem image."""
    _do_import(ctx, file, repository, changes, message)


# ------------------------------------------------------------- tag / rmi


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx, source, target):
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    store = _store(ctx)
    img = store.resolve(source)
    store.tag(img, target)


@click.command("rmi")
@click.argument("images_", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-f", "--force", is_flag=True, help="Force removal of images used by containers.")
@click.pass_context
def rmi(ctx, images_, force):
    """Remove one or more images."""
    from runtime.image import reference

    store = _store(ctx)
    errors = []
    for name in images_:
        try:
            by_name = False
            try:
                ref = reference.parse(name)
                by_name = any(ref.name in i.refs for i in store.images())
            except InvalidReference:
                pass
            if by_name:
                actions = store.untag(name, force=force)
            else:
                actions = store.remove(store.resolve(name), force=force)
            for verb, obj in actions:
                click.echo(f"{verb}: {obj}")
        except ImageError as exc:
            errors.append(str(exc))
    _fail_many(errors)


# ------------------------------------------------------- inspect / history


@click.command("inspect")
@click.argument("names", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-f", "--format", "fmt", help="Format the output using a Go-like template.")
@click.pass_context
def image_inspect(ctx, names, fmt):
    """Display detailed information on one or more images."""
    from runtime.image.describe import inspect_image

    store = _store(ctx)
    out, errors = [], []
    for n in names:
        try:
            out.append(inspect_image(store, n))
        except ImageError as exc:
            errors.append(str(exc))
    if fmt:
        for doc in out:
            click.echo(render_template(fmt, doc))
    else:
        click.echo(json.dumps(out, indent=4))
    _fail_many(errors)


@click.command("history")
@click.argument("name", metavar="IMAGE")
@click.option("-H", "--human", default=True, type=bool, help="Print sizes and dates in human readable format.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", help="'table', 'json', or a Go-like template.")
@click.pass_context
def history(ctx, name, human, quiet, no_trunc, fmt):
    """Show the history of an image."""
    from runtime.image.describe import history_rows

    store = _store(ctx)
    img = store.resolve(name)
    rows = []
    for h in history_rows(store, img):
        iid = h["id"]
        if iid != "<missing>" and not no_trunc:
            iid = iid.split(":", 1)[1][:12]
        by = h["created_by"]
        if not no_trunc and len(by) > 45:
            by = by[:44] + "…"
        rows.append({"ID": iid, "CreatedSince": human_since(h["created"]) if human else h["created"],
                     "CreatedAt": h["created"], "CreatedBy": by,
                     "Size": bytes_decimal(h["size"]) if human else str(h["size"]), "Comment": h["comment"]})
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    print_rows(rows, [("ID", "IMAGE"), ("CreatedSince", "CREATED"), ("CreatedBy", "CREATED BY"), ("Size", "SIZE"),
                      ("Comment", "COMMENT")], fmt)


# ------------------------------------------------------------ save / load


@click.command("save")
@click.argument("names", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-o", "--output", help="Write to a file, instead of STDOUT.")
@click.pass_context
def save(ctx, names, output):
    """Save one or more images to a tar archive (OCI layout + docker manifest.json)."""
    from runtime.image import archive

    store = _store(ctx)
    if output and output != "-":
        archive.save_to_path(store, list(names), output)
        return
    if sys.stdout.isatty():
        raise ImageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    archive.save(store, list(names), sys.stdout.buffer)
    sys.stdout.buffer.flush()


@click.command("load")
@click.option("-i", "--input", "input_", help="Read from a tar archive file (compressed or not), instead of STDIN.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@click.pass_context
def load(ctx, input_, quiet):
    """Load an image from a tar archive or STDIN (ours, docker save, podman save, OCI archives)."""
    from runtime.image import archive

    store = _store(ctx)
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg))
    if input_ and input_ != "-":
        if not os.path.isfile(input_):
            raise ImageError(f"cannot load {input_}: no such file")
        with open(input_, "rb") as f:
            loaded = archive.load(store, f, say)
    else:
        if sys.stdin.isatty():
            raise ImageError("requested load from stdin, but stdin is empty")
        loaded = archive.load(store, sys.stdin.buffer, say)
    for img, names in loaded:
        if names:
            for n in names:
                click.echo(f"Loaded image: {n}")
        else:
            click.echo(f"Loaded image ID: {img.id}")


# --------------------------------------------------------------- registry


def _reporter(quiet: bool):
    from runtime.image.registry import Reporter, RichReporter

    if quiet:
        return Reporter()
    if sys.stdout.isatty():
        return RichReporter()
    return Reporter(lambda line: click.echo(line))


def _client(ctx, registry: str, tls_ca: str | None, credentials=None):
    from runtime.image.registry import RegistryClient

    root = root_of(ctx)
    return RegistryClient(registry, root, os.path.join(root, "image"), ca=tls_ca, credentials=credentials)


_tls_ca = click.option("--tls-ca", type=click.Path(dir_okay=False, exists=True),
                       help="Trust this CA bundle for the registry (or set it in <root>/image/registries.json).")


@click.command("pull")
@click.argument("name", metavar="NAME[:TAG|@DIGEST]")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@_tls_ca
@click.pass_context
def pull(ctx, name, quiet, tls_ca):
    """Download an image from a registry (OCI distribution API)."""
    from runtime.image import reference

    ref = reference.parse(name).with_tag()
    store = _store(ctx)
    report = _reporter(quiet)
    try:
        with _client(ctx, ref.registry, tls_ca) as client:
            client.pull(ref, store, report)
    finally:
        report.close()
    shown = f"{ref.registry}/{ref.remote_path}" + (f":{ref.tag}" if ref.tag else f"@{ref.digest}")
    click.echo(shown)


@click.command("push")
@click.argument("name", metavar="NAME[:TAG]")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.option("--chunk-size", type=int, help="Upload blobs in PATCH chunks of this many bytes (default: monolithic "
              "up to 8 MiB).")
@_tls_ca
@click.pass_context
def push(ctx, name, quiet, chunk_size, tls_ca):
    """Upload an image to a registry."""
    from runtime.image import reference

    ref = reference.parse(name).with_tag()
    if ref.digest:
        raise ImageError("push needs a tag, not a digest")
    store = _store(ctx)
    img = store.resolve(name)
    report = _reporter(quiet)
    try:
        with _client(ctx, ref.registry, tls_ca) as client:
            client.push(img, ref, store, report, chunk_size=chunk_size)
    finally:
        report.close()


@click.command("login")
@click.argument("server", required=False, default="docker.io")
@click.option("-u", "--username", help="Username.")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@_tls_ca
@click.pass_context
def login(ctx, server, username, password, password_stdin, tls_ca):
    """Log in to a registry; credentials go to <root>/auth.json (mode 0600)."""
    from runtime.image.auth import AuthFile

    if password_stdin:
        if password:
            raise ImageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\n")
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    with _client(ctx, server, tls_ca, credentials=(username, password)) as client:
        client.check_login()
    AuthFile(root_of(ctx)).set(server, username, password)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False, default="docker.io")
@click.pass_context
def logout(ctx, server):
    """Log out from a registry (forget its credentials)."""
    from runtime.image.auth import AuthFile

    if AuthFile(root_of(ctx)).remove(server):
        click.echo(f"Removing login credentials for {server}")
    else:
        click.echo(f"Not logged in to {server}")


@click.command("search")
@click.argument("term")
@click.option("--registry", help="Registry to search (default: the host in TERM, e.g. localhost:5000/name).")
@click.option("--limit", type=int, default=25, show_default=True, help="Max number of results.")
@click.option("--format", "fmt", help="'table', 'json', or a Go-like template such as '{{.Name}}'.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@_tls_ca
@click.pass_context
def search(ctx, term, registry, limit, fmt, no_trunc, tls_ca):
    """Search a registry's catalog (/v2/_catalog) for repositories whose name contains TERM."""
    if not registry:
        first, sep, rest = term.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, term = first, rest
        else:
            registry = "docker.io"
    with _client(ctx, registry, tls_ca) as client:
        names = client.catalog()
    hits = [n for n in names if term.lower() in n.lower()][:limit]
    rows = [{"Name": f"{registry}/{n}", "Description": "", "StarCount": 0, "IsOfficial": "", "IsAutomated": ""}
            for n in hits]
    print_rows(rows, [("Name", "NAME"), ("Description", "DESCRIPTION"), ("StarCount", "STARS"),
                      ("IsOfficial", "OFFICIAL")], fmt)


# ------------------------------------------------------------------ build


@click.command("build")
@click.argument("what", type=click.Choice(["busybox", "debian"]))
@click.option("-t", "--tag", "ref", help="Name the image (default busybox:latest / debian:bookworm).")
@click.option("--mirror", help="Debian mirror (default: the host's apt sources).")
@click.option("--rebuild", is_flag=True, help="Build debian again even if the image exists.")
@click.pass_context
def image_build(ctx, what, ref, mirror, rebuild):
    """Build a default image on this host: busybox (offline, from busybox-static) or debian (debootstrap)."""
    from runtime.image import build

    store = _store(ctx)
    if what == "busybox":
        img = build.build_busybox(store, ref or "busybox:latest")
    elif sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("building debian:bookworm") as status:
            img = build.build_debian(store, ref or "debian:bookworm", mirror=mirror, rebuild=rebuild,
                                     progress=lambda msg: status.update(f"debian: {msg}"))
    else:
        img = build.build_debian(store, ref or "debian:bookworm", mirror=mirror, rebuild=rebuild,
                                 progress=lambda msg: click.echo(f"debian: {msg}", err=True))
    click.echo(f"Successfully built {img.short_id}")
    for r in img.refs:
        click.echo(f"Successfully tagged {r}")


# ------------------------------------------------------------------ prune / df


def _print_pruned(actions: list[tuple[str, str]], freed: int) -> None:
    """What a prune removed (ImageStore.prune's actions) and the bytes it freed, as docker prints them."""
    if actions:
        click.echo("Deleted Images:")
        for verb, obj in actions:
            click.echo(f"{verb.lower()}: {obj}")
        click.echo("")
    click.echo(f"Total reclaimed space: {bytes_decimal(freed)}")


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all images not used by containers, not just dangling.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def image_prune(ctx, all_, force):
    """Remove unused images."""
    if not force:
        what = "all images without at least one container associated to them" if all_ else "all dangling images"
        click.confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?", abort=True)
    store = _store(ctx)
    actions, freed = store.prune(all_unused=all_)
    _print_pruned(actions, freed)


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@click.pass_context
def system_df(ctx, verbose):
    """Show disk usage of images (unique bytes after dedup) and what could be reclaimed."""
    store = _store(ctx)
    imgs = store.images()
    active = [i for i in imgs if store.holders(i.id)]
    usage = store.disk_usage()
    active_snaps = {lyr.diff_id for i in active for lyr in i.layers}
    active_blobs = {lyr.digest for i in active for lyr in i.layers}
    held = 0
    for d in active_snaps:
        held += store.snapshot_meta(d).get("disk_bytes", 0)
    for b in active_blobs:
        try:
            held += store.blob_path(b).stat().st_blocks * 512
        except FileNotFoundError:
            pass
    total = usage["blobs"] + usage["snapshots"]
    reclaim = max(total - held, 0)
    pct = f" ({100 * reclaim // total}%)" if total else ""
    rows = [{"Type": "Images", "TotalCount": len(imgs), "Active": len(active), "Size": bytes_decimal(total),
             "Reclaimable": f"{bytes_decimal(reclaim)}{pct}"}]
    containers = os.path.join(root_of(ctx), "containers")
    if os.path.isdir(containers):
        from runtime.image.fsutil import disk_usage

        n = len([d for d in os.listdir(containers) if os.path.isdir(os.path.join(containers, d))])
        rows.append({"Type": "Containers", "TotalCount": n, "Active": "", "Size": bytes_decimal(disk_usage(
            __import__("pathlib").Path(containers))[1]), "Reclaimable": ""})
    print_rows(rows, [("Type", "TYPE"), ("TotalCount", "TOTAL"), ("Active", "ACTIVE"), ("Size", "SIZE"),
                      ("Reclaimable", "RECLAIMABLE")], None)
    if verbose:
        click.echo("\nImages space usage:\n")
        vrows = []
        for i in imgs:
            for name in i.refs or [None]:
                repo, _, tag = (name or "<none>:<none>").rpartition(":")
                vrows.append({"Repository": repo, "Tag": tag, "ID": i.short_id, "Created": human_since(i.created),
                              "Size": bytes_decimal(store.image_size(i)), "Containers": len(store.holders(i.id))})
        print_rows(vrows, [("Repository", "REPOSITORY"), ("Tag", "TAG"), ("ID", "IMAGE ID"), ("Created", "CREATED"),
                           ("Size", "SIZE"), ("Containers", "CONTAINERS")], None)
        click.echo(f"\nStore: {store.path} (blobs {bytes_decimal(usage['blobs'])}, snapshots "
                   f"{bytes_decimal(usage['snapshots'])}, staging {bytes_decimal(usage['staging'])})")


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_context
def system_prune(ctx, all_, force):
    """Remove stopped containers, unused networks, dangling (with -a: unused) images and unreachable layers."""
    if not force:
        images = "all images without at least one container associated to them" if all_ else "all dangling images"
        click.confirm("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one "
                      f"container\n  - {images}\n  - unreferenced layers and interrupted downloads\n"
                      "Are you sure you want to continue?", abort=True)
    from runtime.cli.containers import _engine, prune_stopped
    from runtime.cli.network import prune_unused

    freed = prune_stopped(_engine(ctx))  # first: images they used become unused
    prune_unused(ctx)
    store = _store(ctx)
    actions, image_bytes = store.prune(all_unused=all_)
    freed += image_bytes + store.gc(partial=True)
    _print_pruned(actions, freed)


# ------------------------------------------------------------------- groups


@click.group("image")
def image():
    """Manage images (build the default ones, prune, ...)."""


@click.group("system")
def system():
    """Manage virtlab (df, prune)."""


image.add_command(images, "ls")  # docker's names for `images` and `rmi`
image.add_command(rmi, "rm")
image.add_command(image_prune)
image.add_command(image_inspect)
image.add_command(image_build)
image.add_command(history)
image.add_command(tag)
image.add_command(import_)
image.add_command(save)
image.add_command(load)
image.add_command(pull)
image.add_command(push)
system.add_command(system_df)
system.add_command(system_prune)

__all__ = ["history", "image", "images", "import_", "load", "login", "logout", "pull", "push", "rmi", "save", "search",
           "system", "tag", "ImageNotFound"]

"""`virtlab vm ...`: the container verbs for VMs (create, start, run, stop, rm, ps, exec, logs, ...).

Flags that mean the same as for containers have the same names: --name, --memory,
--cpus, -d, --rm, -e, -w. Errors exit 125; `run` and `exec` pass the guest's exit
code through.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import click

from vmdriver.errors import InvalidSpec, NoSuchVm, VmDriverError

_SIZE = re.compile(r"(?i)^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$")
_UNITS = {"b": 1 / (1 << 20), "k": 1 / 1024, "m": 1, "g": 1024}


def parse_memory(text: str) -> int:
    """Docker-style memory ("128m", "1g", "256"; plain numbers are MiB) -> MiB."""
    m = _SIZE.match(str(text))
    if not m:
        raise InvalidSpec(f"invalid memory size {text!r} (use e.g. 128m or 1g)")
    unit = (m.group(2) or "m")[0].lower()
    mib = int(m.group(1)) * _UNITS[unit]
    if mib != int(mib):
        raise InvalidSpec(f"memory size {text!r} is not a whole number of MiB")
    return int(mib)


def _root(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return Path(obj.get("root") or os.environ.get("VIRTLAB_ROOT", "/var/lib/virtlab"))


def _driver(ctx: click.Context):
    from vmdriver.driver import VmDriver

    return VmDriver(_root(ctx), uri=os.environ.get("VIRTLAB_LIBVIRT_URI", "qemu:///system"))


@click.group("vm")
def vm() -> None:
    """Boot the same images as virtual machines (libvirt/QEMU)."""


def _spec_options(f):
    """The options create and run share."""
    opts = [
        click.option("--name", help="Name of the VM (domain virtlab-NAME)."),
        click.option("--memory", "-m", default="128m", show_default=True, help="Guest memory (e.g. 128m, 1g)."),
        click.option("--cpus", default=1, show_default=True, type=int, help="Number of vCPUs."),
        click.option("--profile", type=click.Choice(["micro", "full"]), default="micro", show_default=True,
                     help="micro: direct kernel boot; full: firmware + distro kernel + systemd."),
        click.option("--disk", type=click.Path(dir_okay=False), help="Attach a disk image file (untrusted; checked)."),
        click.option("--disk-format", type=click.Choice(["raw", "qcow2"]), default="raw", show_default=True,
                     help="Format of --disk (never probed)."),
        click.option("--network", type=click.Choice(["none", "virtlab"]), default="none", show_default=True,
                     help="none, or the isolated virtlab network (no route out)."),
        click.option("--env", "-e", multiple=True, help="Set an environment variable (KEY=VALUE)."),
        click.option("--workdir", "-w", help="Working directory inside the image."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _make_spec(image, cmd, name, memory, cpus, profile, disk, disk_format, network, env, workdir):
    from vmdriver.driver import VmSpec

    return VmSpec(
        image=image, name=name, profile=profile, memory_mib=parse_memory(memory), vcpus=cpus,
        cmd=list(cmd) or None, disk=disk, disk_format=disk_format, network=network,
        env=list(env), workdir=workdir,
    )


@vm.command("create", context_settings={"ignore_unknown_options": True})
@_spec_options
@click.argument("image")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx, image, cmd, **opts) -> None:
    """Create a VM from IMAGE (not started); print its name."""
    drv = _driver(ctx)
    v = drv.create(_make_spec(image, cmd, **opts))
    click.echo(v.name)


@vm.command("start")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the guest's ready marker.")
@click.option("--verbose", "-v", is_flag=True, help="Print the boot phases.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def start(ctx, names, timeout, verbose) -> None:
    """Start one or more VMs and wait until each is ready."""
    drv = _driver(ctx)
    for n in names:
        report = drv.start(n, wait_ready=True, timeout=timeout)
        click.echo(n)
        if verbose:
            _print_boot(report)


def _print_boot(report) -> None:
    phases = " ".join(f"{k}={v:.3f}s" for k, v in report.phases.items())
    click.echo(f"ready in {report.total:.3f}s ({report.accel}): {phases}", err=True)


def _follow(drv, name: str, offset: int, until_exit: bool = True) -> None:
    """Copy the workload's console output (after the ready line) to stdout until it exits."""
    from vmdriver.readiness import read_from

    rec = drv._record(name)
    path = Path(rec["console"])
    pos = offset
    started = False
    buf = b""
    out = sys.stdout.buffer
    dom = drv._domain(name)
    while True:
        chunk = read_from(path, pos)
        pos += len(chunk)
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            s = line.strip()
            if s.startswith(b"VIRTLAB_READY"):
                started = True
                continue
            if s.startswith(b"VIRTLAB_EXIT"):
                out.flush()
                return
            if started or not until_exit:
                out.write(line.rstrip(b"\r") + b"\n")
        out.flush()
        if not chunk and (dom is None or not drv._active(dom)):
            if buf and started:
                out.write(buf)
            out.flush()
            return
        if not chunk:
            time.sleep(0.02)


@vm.command("run", context_settings={"ignore_unknown_options": True})
@_spec_options
@click.option("--detach", "-d", is_flag=True, help="Run in the background and print the VM name.")
@click.option("--rm", "remove", is_flag=True, help="Remove the VM when it exits.")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for the guest's ready marker.")
@click.option("--verbose", "-v", is_flag=True, help="Print the boot phases on stderr.")
@click.argument("image")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx, image, cmd, detach, remove, timeout, verbose, **opts) -> None:
    """Create and boot a VM from IMAGE; print the command's output and pass its exit code through."""
    if detach and remove:
        raise InvalidSpec("--rm and -d together are not supported for VMs (rm the VM after it stops)")
    if opts["profile"] == "full" and not detach:
        raise InvalidSpec("a full-profile VM runs the image's systemd, not a command: use -d, then vm exec")
    drv = _driver(ctx)
    v = drv.create(_make_spec(image, cmd, **opts))
    code = 125
    try:
        report = drv.start(v.name, wait_ready=True, timeout=timeout)
        if verbose:
            _print_boot(report)
        if detach:
            click.echo(v.name)
            return
        rec = drv._record(v.name)
        _follow(drv, v.name, int(rec.get("console_offset") or 0))
        code = drv.wait(v.name)
    except KeyboardInterrupt:
        drv.stop(v.name, timeout=5)
        code = 130
    except BaseException:
        if remove:
            drv.remove(v.name)
        raise
    if remove:
        drv.remove(v.name)
    ctx.exit(code)


@vm.command("stop")
@click.option("--time", "-t", "timeout", default=30, show_default=True, help="Seconds before the VM is destroyed.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def stop(ctx, names, timeout) -> None:
    """Stop running VMs (the guest stops its command, then powers off; destroy after --time)."""
    drv = _driver(ctx)
    for n in names:
        drv.stop(n, timeout=timeout)
        click.echo(n)


@vm.command("kill")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def kill(ctx, names) -> None:
    """Power VMs off at once."""
    drv = _driver(ctx)
    for n in names:
        drv.kill(n)
        click.echo(n)


@vm.command("rm")
@click.option("--force", "-f", is_flag=True, help="Destroy a running VM first; no error if it does not exist.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx, names, force) -> None:
    """Remove VMs: domain, overlay, console log and record (leftovers of a crash too)."""
    from vmdriver.layout import validate_name

    drv = _driver(ctx)
    failed: VmDriverError | None = None
    for n in names:
        validate_name(n)
        vms = {v.name: v for v in drv.list(all=True)}
        v = vms.get(n)
        if v is None and not force:
            failed = NoSuchVm(f"no such VM: {n}")
            click.echo(f"Error: {failed}", err=True)
            continue
        if v is not None and v.state == "running" and not force:
            failed = VmDriverError(f"cannot remove running VM {n}: stop it first or use -f")
            click.echo(f"Error: {failed}", err=True)
            continue
        drv.remove(n)
        click.echo(n)
    if failed is not None:
        ctx.exit(125)


@vm.command("ps")
@click.option("--all", "-a", "all_", is_flag=True, help="Show stopped VMs too.")
@click.option("--quiet", "-q", is_flag=True, help="Only names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ps(ctx, all_, quiet, fmt) -> None:
    """List VMs of this store, with their libvirt state (orphaned domains included)."""
    from dataclasses import asdict

    vms = _driver(ctx).list(all=all_)
    if quiet:
        for v in vms:
            click.echo(v.name)
        return
    if fmt == "json":
        click.echo(json.dumps([asdict(v) for v in vms], indent=2))
        return
    rows = [("NAME", "STATE", "IMAGE", "PROFILE", "ACCEL", "MEMORY", "CPUS", "ADDRESS", "CREATED")]
    for v in vms:
        state = v.state + (" (orphan)" if v.orphan else "")
        if v.state == "stopped" and v.exit_code is not None:
            state = f"stopped ({v.exit_code})"
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created)) if v.created else "-"
        rows.append((v.name, state, v.image or "-", v.profile or "-", v.accel or "-",
                     f"{v.memory_mib}MiB" if v.memory_mib else "-", str(v.vcpus or "-"), v.address or "-", created))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@vm.command("exec", context_settings={"ignore_unknown_options": True})
@click.option("--timeout", default=60.0, show_default=True, help="Seconds before the command is killed.")
@click.argument("name")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx, name, cmd, timeout) -> None:
    """Run a command in a running VM (through the guest agent)."""
    r = _driver(ctx).exec(name, list(cmd), timeout=timeout)
    sys.stdout.buffer.write(r.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(r.stderr)
    sys.stderr.flush()
    ctx.exit(r.exit_code)


@vm.command("logs")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the VM runs.")
@click.argument("name")
@click.pass_context
def logs(ctx, name, follow) -> None:
    """Print the VM's serial console (kernel, init and the command's output)."""
    drv = _driver(ctx)
    data = drv.logs(name)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    if follow:
        _follow(drv, name, len(data), until_exit=False)


@vm.command("console")
@click.argument("name")
@click.pass_context
def console(ctx, name) -> None:
    """Follow the VM's serial console live (read-only; Ctrl-C detaches)."""
    drv = _driver(ctx)
    data = drv.logs(name)
    sys.stdout.buffer.write(data[-4096:])
    sys.stdout.flush()
    try:
        _follow(drv, name, len(data), until_exit=False)
    except KeyboardInterrupt:
        pass


@vm.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx, names) -> None:
    """Show VM records, live state and domain XML as JSON."""
    drv = _driver(ctx)
    click.echo(json.dumps([drv.inspect(n) for n in names], indent=2, default=str))


@vm.command("stats")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def stats(ctx, names, fmt) -> None:
    """CPU time, memory, block and network I/O of running VMs (from libvirt), once."""
    drv = _driver(ctx)
    data = {n: drv.stats(n) for n in names}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    rows = [("NAME", "CPU TIME", "MEM USAGE / LIMIT", "BLOCK I/O", "NET I/O")]
    mib = 1 << 20
    for n, s in data.items():
        rows.append((
            n, f"{s['cpu_ns'] / 1e9:.2f}s", f"{s['mem_bytes'] / mib:.1f}MiB / {s['mem_limit'] / mib:.0f}MiB",
            f"{s['blk_read'] / mib:.1f}MiB / {s['blk_write'] / mib:.1f}MiB",
            f"{s['net_rx'] / 1024:.1f}KiB / {s['net_tx'] / 1024:.1f}KiB",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@vm.command("prepare")
@click.option("--profile", type=click.Choice(["micro", "full"]), default="micro", show_default=True)
@click.argument("image")
@click.pass_context
def prepare(ctx, image, profile) -> None:
    """Build (or reuse) the kernel, initramfs and base disk of IMAGE; print their sizes."""
    art = _driver(ctx).prepare(image, profile)
    click.echo(json.dumps(art.to_json(), indent=2))


@vm.command("accel")
@click.option("--refresh", is_flag=True, help="Probe again instead of using the cached verdict.")
@click.option("--timeout", default=20.0, show_default=True)
@click.pass_context
def accel(ctx, refresh, timeout) -> None:
    """Say which accelerator VMs use here (KVM only if a guest really boots under it) and why."""
    from dataclasses import asdict

    from vmdriver.accel import probe

    root = _root(ctx)
    click.echo(json.dumps(asdict(probe(root / "cache", timeout=timeout, root=root, refresh=refresh)), indent=2))

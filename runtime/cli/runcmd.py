"""`virtlab run`'s command: its options (shared with `create`) and what it hands to runtime.cli.runcore.

A module of its own, so `virtlab run` builds this one command, not all of runtime.cli.containers.
"""

from __future__ import annotations

import os
from typing import Any

import click

from runtime.cli import runcore

CTX = {"ignore_unknown_options": False, "allow_interspersed_args": False}


def _root(ctx: click.Context) -> str:
    """The store root (--root / VIRTLAB_ROOT), absolute."""
    obj = ctx.find_root().obj or {}
    return obj.get("root") or os.path.abspath(os.environ.get("VIRTLAB_ROOT", "/var/lib/virtlab"))


def _run_options(f):
    """The options `run` and `create` share (docker's)."""
    opts = [
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--name", help="Assign a name to the container"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables"),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume (SRC:DST[:ro], NAME:DST, DST)"),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("-w", "--workdir", help="Working directory inside the container"),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
        click.option("--hostname", help="Container host name"),
        click.option("--network", "--net", default="bridge", show_default=True, help="bridge, none, host or a network name"),
        click.option("-m", "--memory", help="Memory limit"),
        click.option("--memory-swap", help="Swap limit equal to memory plus swap: -1 for unlimited"),
        click.option("--memory-reservation", help="Memory soft limit"),
        click.option("--kernel-memory", help="Kernel memory limit (where the kernel has it)"),
        click.option("--cpus", help="Number of CPUs"),
        click.option("-c", "--cpu-shares", help="CPU shares (relative weight)"),
        click.option("--cpu-quota", help="Limit CPU CFS quota"),
        click.option("--cpu-period", help="Limit CPU CFS period"),
        click.option("--cpu-rt-period", help="Limit CPU real-time period in microseconds"),
        click.option("--cpu-rt-runtime", help="Limit CPU real-time runtime in microseconds"),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
        click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
        click.option("--pids-limit", help="Tune container pids limit (-1 for unlimited)"),
        click.option("--blkio-weight", help="Block IO weight (10-1000)"),
        click.option("--restart", default="no", show_default=True, help="no, on-failure[:N], always, unless-stopped"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--security-opt", multiple=True, help="Security options (seccomp=PATH|unconfined, no-new-privileges)"),
        click.option("--ulimit", multiple=True, help="Ulimit options (nofile=1024:1024)"),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container"),
        click.option("--stop-signal", help="Signal to stop the container"),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container"),
        click.option("--runtime", help="Path or name of a runc-compatible OCI runtime"),
        click.option("--rm", "auto_remove", is_flag=True, help="Automatically remove the container when it exits"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.command(context_settings=CTX)
@_run_options
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--detach-keys", help="Override the key sequence for detaching a container")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy received signals to the process")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, image: str, command: tuple[str, ...], detach: bool, detach_keys: str | None,
        sig_proxy: bool, **o: Any) -> None:
    """Create and run a new container from an image."""
    runcore.run(_root(ctx), image, command, detach, detach_keys, sig_proxy, o)

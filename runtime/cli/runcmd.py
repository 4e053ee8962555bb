"""`virtlab run`'s click command: its options (shared with `create`) and what it hands to runtime.cli.runcore.

A module of its own, so `virtlab run` builds this one command, not all of runtime.cli.containers.
The options are built from the table in runtime.cli.runopts, which bench.entry's click-free
`run` path parses too: one definition for both.
"""

from __future__ import annotations

from typing import Any

import click

from runtime.cli import root_of, runcore, runopts

CTX = {"ignore_unknown_options": False, "allow_interspersed_args": False}


def _click_option(names: tuple[str, ...], dest: str, kind: str, default: object, help: str):
    """The click option of one row of runopts' table."""
    if kind == runopts.FLAG:
        return click.option(*names, dest, is_flag=True, help=help)
    if kind == runopts.SWITCH:
        return click.option(*names, dest, default=default, help=help)
    if kind == runopts.MULTIPLE:
        return click.option(*names, dest, multiple=True, help=help)
    if kind == runopts.INT:
        return click.option(*names, dest, type=int, help=help)
    if default is not None:
        return click.option(*names, dest, default=default, show_default=True, help=help)
    return click.option(*names, dest, help=help)


def _options(table: tuple):
    """A decorator adding the options of TABLE (runtime.cli.runopts), in its order."""
    def add(f):
        for row in reversed(table):
            f = _click_option(*row)(f)
        return f
    return add


# The options `run` and `create` share (docker's); `run` adds its own after them.
_run_options = _options(runopts.SHARED)


@click.command(context_settings=CTX)
@_options(runopts.RUN)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, image: str, command: tuple[str, ...], detach: bool, detach_keys: str | None,
        sig_proxy: bool, **o: Any) -> None:
    """Create and run a new container from an image."""
    runcore.run(root_of(ctx), image, command, detach, detach_keys, sig_proxy, o)

"""The `virtlab` entry point: a plain `virtlab run` starts its container without click, anything else is bench.cli.

`import click` is ~15 ms of a ~80 ms `run --rm`. So main() first reads argv with
runtime.cli.runopts.parse_run() (the same option table the click command is built from); only
when that is sure of click's reading does it call runtime.cli.runcore.run() itself, else it
hands the whole argv to bench.cli, so help, errors and every other command stay click's.
guarded() is the error-to-exit-code mapping both paths share.
"""

from __future__ import annotations

import errno
import gc
import os
import sys

from runtime.cli import store_root  # imports only os

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

if os.path.basename(sys.argv[0]) == "virtlab":  # the CLI process itself, not an importer (tests)
    # A short-lived process: no cyclic garbage collection while it starts (~3 ms of imports, and
    # no heap walks that would copy shared pages after a fork). bench.cli.gc_on() and
    # runtime.cli.runcore turn it back on for what may run long.
    gc.disable()


def main(argv: list[str] | None = None) -> None:
    """Run `virtlab ARGV` (default: sys.argv[1:]) and end the process with docker's exit code."""
    parsed = parse(sys.argv[1:] if argv is None else list(argv))
    if parsed is not None:
        root, params = parsed
        guarded(lambda: _run(root, params), debug_wanted(argv))
    from bench.cli import main as click_main

    click_main(argv)


def parse(args: list[str]) -> tuple[str, dict[str, object]] | None:
    """(store root, `run`'s parameters) of `[--root R] [-D|--debug] run ...`, or None if click must read ARGS.

    Mirrors bench.cli's group: --root (else VIRTLAB_ROOT, else the default; a path that is there
    must be a readable directory, as its click.Path checks), -D/--debug. Whatever else click
    might do differently (VIRTLAB_DEBUG's boolean parsing, shell completion) goes to click.
    """
    env = os.environ
    if env.get("VIRTLAB_DEBUG") or env.get("_VIRTLAB_COMPLETE"):
        return None
    root = None
    i = 0
    while True:
        if i >= len(args):
            return None
        arg = args[i]
        if arg == "run":
            break
        if arg in ("-D", "--debug"):
            i += 1
        elif arg == "--root" and i + 1 < len(args):
            root = args[i + 1]
            i += 2
        elif arg.startswith("--root="):
            root = arg[len("--root="):]
            i += 1
        else:
            return None
    if root == "":
        return None  # click's message about it
    root = store_root(root)
    if os.path.exists(root) and not (os.path.isdir(root) and os.access(root, os.R_OK)):
        return None  # click's message about it
    from runtime.cli.runopts import parse_run

    params = parse_run(args[i + 1:])
    if params is None:
        return None
    return root, params


def _run(root: str, params: dict[str, object]) -> None:
    """What bench.cli's `run` command does with the same parameters, inside click.main's handling."""
    o = dict(params)
    image, command = o.pop("image"), o.pop("command")
    detach, detach_keys, sig_proxy = o.pop("detach"), o.pop("detach_keys"), o.pop("sig_proxy")
    try:
        from runtime.cli import runcore  # inside: click's path imports it inside click.main too

        runcore.run(root, image, command, detach, detach_keys, sig_proxy, o)  # type: ignore[arg-type]
    except (EOFError, KeyboardInterrupt) as exc:
        # What click.main (standalone_mode off) turns these into: a blank line after the ^C, Abort.
        import click

        click.echo(file=sys.stderr)
        raise click.exceptions.Abort() from exc
    except OSError as exc:
        if exc.errno != errno.EPIPE:  # click.main quiets the streams and exits 1
            raise
        from click.utils import _PacifyFlushWrapper

        sys.stdout = _PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
        sys.exit(1)


def debug_wanted(argv: list[str] | None) -> bool:
    """True if errors should show their traceback (VIRTLAB_DEBUG, --debug or -D anywhere in argv)."""
    args = argv or sys.argv
    return bool(os.environ.get("VIRTLAB_DEBUG")) or "--debug" in args or "-D" in args


def guarded(call: Callable[[], object], debug: bool) -> NoReturn:
    """Run CALL (a whole command) and end the process with a docker-style exit code.

    125: error in virtlab itself (bad flag, unknown name, failed operation); 130: interrupted;
    0: a broken pipe; 126/127 and the container's own codes are raised by the commands as SystemExit.
    """
    try:
        rv = call()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the boundary where errors become exit codes
        import click  # on errors only: the messages are click's on both paths

        if isinstance(exc, click.exceptions.Abort):
            click.echo("Aborted.", err=True)
            sys.exit(130)
        if isinstance(exc, click.ClickException):
            # Usage errors (bad flags, unknown commands) are engine errors for docker: 125.
            exc.show()
            sys.exit(125)
        if debug:
            raise
        code = getattr(exc, "exit_code", 125)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(code if isinstance(code, int) else 125)
    # ctx.exit(N) comes back as the return value when click's standalone_mode is off.
    sys.exit(rv if isinstance(rv, int) else 0)

"""The body of `virtlab run`, without click: create, start attached, stream, remove, exit code.

runtime.cli.runcmd defines the click command; this is what it runs. It imports no click, so
bench.entry can call run() directly for a plain `virtlab run` line (parsed by runtime.cli.runopts).
"""

from __future__ import annotations

import gc
import os
import signal
import sys

from runtime.cli.runopts import MULTIPLE, SHARED

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any


def engine(root: str, runtime: str | None = None) -> Any:
    """The Engine of store `root`."""
    from runtime.engine.engine import Engine

    return Engine(root, runtime=runtime)


def echo(message: str, err: bool = False) -> None:
    """One line to stdout (or stderr), flushed."""
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


# The options of runopts.SHARED whose ContainerSpec field is named otherwise; every other option
# sets the field of its own name.
FIELD = {"interactive": "stdin_open", "env_file": "env_files", "volume": "volumes", "publish": "ports",
         "ulimit": "ulimits", "label": "labels"}


def spec(image: str, command: tuple[str, ...] | list[str], o: dict[str, Any]) -> Any:
    """The ContainerSpec of `run`/`create`'s parsed options (each one of runopts.SHARED sets a field)."""
    from runtime.engine.spec import ContainerSpec

    fields: dict[str, Any] = {FIELD.get(dest, dest): list(o[dest]) if kind == MULTIPLE else o[dest]
                              for _names, dest, kind, _default, _help in SHARED}
    entry = fields["entrypoint"]
    fields["entrypoint"] = None if entry is None else ([entry] if entry else [])  # "": none, not the image's
    return ContainerSpec(image, cmd=list(command) or None, **fields)


def run(root: str, image: str, command: tuple[str, ...] | list[str], detach: bool, detach_keys: str | None,
        sig_proxy: bool, o: dict[str, Any]) -> None:
    """`virtlab run`: ends the process with the container's exit code (or its ID with -d)."""
    eng = engine(root, o["runtime"])
    c = eng.create(spec(image, command, o))
    if detach:
        try:
            eng.start(c.id)
        except BaseException:
            if o["auto_remove"]:
                quiet_remove(eng, c.id)
            raise
        echo(c.id)
        exit_now(0)
    code = run_attached(eng, c.id, interactive=o["interactive"], tty=o["tty"], remove=o["auto_remove"],
                        detach_keys=detach_keys, sig_proxy=sig_proxy)
    exit_now(code)


def exit_now(code: int) -> None:
    """End the process now: `run` is done, and the interpreter's teardown is ~8 ms of a ~120 ms run.

    Only in the real CLI process (its own stdout and stderr); in-process callers get SystemExit.
    """
    if sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__:
        try:
            sys.stdout.flush()  # type: ignore[union-attr]
            sys.stderr.flush()  # type: ignore[union-attr]
        except OSError:
            pass
        os._exit(code & 0xFF if code >= 0 else 1)
    sys.exit(code)


def quiet_remove(eng: Any, cid: str) -> None:
    """Remove the container; a failure is reported, never raised (the primary error matters more)."""
    try:
        eng.remove(cid, force=True)
    except Exception as exc:  # noqa: BLE001 - the primary error matters more
        echo(f"Error: cannot remove {cid[:12]}: {exc}", err=True)


def run_attached(eng: Any, cid: str, interactive: bool, tty: bool, remove: bool, detach_keys: str | None,
                 sig_proxy: bool, start: bool = True) -> int:
    """Attach before the workload starts, stream its output, return its exit code (None when detached)."""
    from runtime.engine import attach
    from runtime.engine.errors import EngineError

    keys = attach.parse_detach_keys(detach_keys)
    mode = ("R" if remove else "I") if interactive else ("r" if remove else "o")
    holder: dict[str, Any] = {}

    def on_created(rec: dict[str, Any]) -> None:
        holder["sock"] = attach.connect(eng.store.path(cid), mode)

    try:
        if start:
            eng.start(cid, on_created=on_created)
        else:
            on_created({})
    except BaseException:
        if "sock" in holder:
            holder["sock"].close()
        if remove:
            quiet_remove(eng, cid)
        raise
    sock = holder["sock"]
    if not gc.isenabled():  # the CLI turned it off for its start (bench.cli); streaming may last hours
        gc.freeze()
        gc.enable()
    old_handlers = {}
    if sig_proxy and not tty:
        def proxy(signum, _frame):
            try:
                eng.kill(cid, signum)
            except EngineError:
                pass
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            old_handlers[s] = signal.signal(s, proxy)
    try:
        code = outcome(eng, cid, lambda: attach.stream(
            sock, stdin=sys.stdin.fileno() if interactive else None, detach_keys=keys,
            raw_tty=tty and interactive and os.isatty(sys.stdin.fileno())))
    finally:
        sock.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    if code is None:
        return 0
    if remove:
        quiet_remove(eng, cid)  # remove finalizes too: no separate wait
        return code
    return int(eng.wait(cid))


def outcome(eng: Any, cid: str, stream: Any) -> int | None:
    """Run an attached STREAM to its end: the container's exit code, or None once detached.

    Detached (the keys, or the stream closed while the container runs on): docker's notice.
    A stream that ends without an exit code means the monitor died: the container's recorded
    code if it has exited, else an error naming it (125).
    """
    from runtime.engine.attach import StreamLost
    from runtime.engine.errors import EngineError

    try:
        code = stream()
    except StreamLost:
        if exited(eng, cid):
            return int(eng.wait(cid))
        raise EngineError(f"lost the output of container {cid[:12]}: its monitor is gone") from None
    if code is None:
        if exited(eng, cid):
            return int(eng.wait(cid))
        echo(f"\nread escape sequence (detached from {cid[:12]})", err=True)
    return code


def exited(eng: Any, cid: str) -> bool:
    """True if the container is no longer running (or cannot be read)."""
    try:
        return eng.record(cid)["State"]["Status"] == "exited"
    except Exception:  # noqa: BLE001
        return True

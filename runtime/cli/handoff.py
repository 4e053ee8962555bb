"""`virtlab run` in two processes: click parses while the engine loads (two cores).

bench.cli calls start() first thing in the CLI process when the first command word is `run`
and a CPU is idle (worth_it). The process forks. The child goes on as the ordinary CLI: it imports click, parses, prints help and
usage errors and exits with their codes, except that the `run` command sends its parsed
parameters back through a pipe instead of running (send()). Meanwhile the parent imports the
engine; then it runs the container with those parameters (runtime.cli.runcore, the same code the
command runs in-process) or, when none came, exits with the child's code. The parent stays the
process the shell started and waits for: signals, the terminal and stdio are its own, and it
never loads click. One definition of the options (click's, in runtime.cli.runcmd) serves.
"""

from __future__ import annotations

import marshal  # built in: the parameters are str, bool, int, None, tuples, lists and dicts
import os
import sys
from typing import Any

_PIPE: int | None = None  # in the child (the parser): where `run` sends its parameters

# What the run path imports, loaded by the parent while the child parses.
PRELOAD = ("runtime.cli.runcore", "runtime.engine.engine", "runtime.engine.spec", "runtime.engine.parse",
           "runtime.image.store", "runtime.engine.runtimes", "runtime.oci.api", "runtime.engine.launcher",
           "runtime.engine.network", "runtime.engine.volumes", "runtime.engine.attach")


def wants_run(args: list[str]) -> bool:
    """True when the first command word after the root options (--root, -D) is `run`.

    Only a guess that decides whether to fork: click in the child does the real parsing, and
    whatever it makes of the arguments (another command, help, an error) is what happens.
    """
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--root":
            i += 2
        elif a.startswith("--root=") or a in ("-D", "--debug"):
            i += 1
        else:
            return a == "run"
    return False


def worth_it() -> bool:
    """Fork the parser only when a CPU is idle (VIRTLAB_HANDOFF=1: always, 0: never).

    The two halves only overlap on a free CPU. Interleaved A/B runs on the shared 2-core host
    (40 rounds each, load 2.2-2.8): medians 3-10 ms slower with the handoff, minimums 2-8 ms
    faster; so by default it is used only while the 1-minute load is below CPUs - 1.
    """
    forced = os.environ.get("VIRTLAB_HANDOFF")
    if forced in ("0", "1"):
        return forced == "1"
    return os.getloadavg()[0] < (os.cpu_count() or 1) - 1


def start() -> None:
    """Fork: returns in the child (the parser); the parent runs the container and never returns."""
    global _PIPE
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _PIPE = w
        return
    os.close(w)
    _parent(r, pid)


def waiting() -> bool:
    """True in the parser child: `run` must send its parameters instead of running."""
    return _PIPE is not None


def send(params: dict[str, Any]) -> None:
    """Hand the parsed parameters of `run` to the parent and end the parser.

    Returns only if they cannot be marshalled (a new option type): then this process runs the
    container itself, and the parent, which got nothing, exits with its code.
    """
    global _PIPE
    assert _PIPE is not None
    try:
        data = marshal.dumps(params)
    except ValueError:
        os.close(_PIPE)
        _PIPE = None
        return
    try:
        while data:
            data = data[os.write(_PIPE, data):]
    except OSError:
        os._exit(125)  # the parent is gone
    os._exit(0)


def _parent(r: int, pid: int) -> None:
    debug = bool(os.environ.get("VIRTLAB_DEBUG")) or "--debug" in sys.argv or "-D" in sys.argv
    _preload()
    data = b""
    while True:
        try:
            chunk = os.read(r, 65536)
        except KeyboardInterrupt:  # the terminal's ^C reaches the child too: it reports it, we follow
            continue
        if not chunk:
            break
        data += chunk
    os.close(r)
    status = _wait(pid)
    if not data or os.waitstatus_to_exitcode(status) != 0:
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    from runtime.cli import runcore

    runcore.main(marshal.loads(data), debug)
    os._exit(0)  # runcore.main ends the process; this is never reached


def _preload() -> None:
    import importlib

    try:
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # the command reports what is missing, when it needs it
        from runtime.engine.runtimes import IN_PROCESS_CREATE

        for name in IN_PROCESS_CREATE:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    except KeyboardInterrupt:
        pass


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except KeyboardInterrupt:
            continue
        except ChildProcessError:
            return 125 << 8

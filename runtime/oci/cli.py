"""`virtlab-runtime`: runc's command line, parsed by hand to keep the start path lean.

Only runtime/oci and the standard library are imported here, and each command
imports what it needs when it runs (checked with `python -X importtime`). No `os`:
see runtime.oci.lpath.
"""

import posix
import sys

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"
DEFAULT_ROOT = "/run/virtlab-runtime"

USAGE = """usage: virtlab-runtime [global options] COMMAND [options] [ID] [args]

An OCI runtime with runc's command line (virtlab).

Global options:
  --root DIR            state directory (default /run/virtlab-runtime)
  --log FILE            append log lines to FILE (default: stderr)
  --log-format FORMAT   text or json
  --debug               log debug messages
  --systemd-cgroup      use systemd for cgroups (not supported: no systemd here)
  --version, -v         print the version

Commands:
  create   create a container: --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] ID
  start    start a created container: ID
  run      create, start and wait: [-d] [--bundle DIR] [--pid-file F] [--console-socket S] ID
  state    print the OCI state JSON: ID
  kill     send a signal: [--all] ID [SIGNAL]
  delete   delete a container: [--force] ID
  exec     run a process in a container: [-t] [--process F] [-e K=V] [--cwd D] [-u UID[:GID]] [-d] ID [ARGS]
  ps       list a container's processes: [--format table|json] ID
  list     list containers: [--format table|json] [-q]
  pause    freeze a container: ID
  resume   thaw a paused container: ID
  update   change cgroup limits: [--resources FILE|-] [--memory B] [--cpu-quota N] [--cpu-period N]
           [--cpu-shares N] [--cpuset-cpus L] [--pids-limit N] ID
  spec     write a default config.json: [--bundle DIR] [--rootless]
  features print the supported features as JSON
  install-launcher DEST  write a lean launcher (python -SI, no site-packages scan) to DEST
"""

# option name -> (dest, takes a value, repeatable)
_GLOBAL = {
    "--root": ("root", True, False), "--log": ("log", True, False), "--log-format": ("log_format", True, False),
    "--debug": ("debug", False, False), "--systemd-cgroup": ("systemd_cgroup", False, False),
    "--rootless": ("rootless", True, False), "--criu": ("criu", True, False),
    "--version": ("version", False, False), "-v": ("version", False, False),
    "--help": ("help", False, False), "-h": ("help", False, False),
}
_CREATE = {
    "--bundle": ("bundle", True, False), "-b": ("bundle", True, False),
    "--pid-file": ("pid_file", True, False), "--console-socket": ("console_socket", True, False),
    "--no-pivot": ("no_pivot", False, False), "--no-new-keyring": ("no_new_keyring", False, False),
    "--preserve-fds": ("preserve_fds", True, False), "--pidfd-socket": ("pidfd_socket", True, False),
}
_COMMANDS = {
    "create": _CREATE,
    "run": dict(_CREATE, **{"--detach": ("detach", False, False), "-d": ("detach", False, False),
                            "--keep": ("keep", False, False)}),
    "start": {}, "state": {}, "pause": {}, "resume": {},
    "kill": {"--all": ("all", False, False), "-a": ("all", False, False)},
    "delete": {"--force": ("force", False, False), "-f": ("force", False, False)},
    "exec": {"--tty": ("tty", False, False), "-t": ("tty", False, False),
             "--process": ("process", True, False), "-p": ("process", True, False),
             "--env": ("env", True, True), "-e": ("env", True, True), "--cwd": ("cwd", True, False),
             "--user": ("user", True, False), "-u": ("user", True, False),
             "--detach": ("detach", False, False), "-d": ("detach", False, False),
             "--pid-file": ("pid_file", True, False), "--console-socket": ("console_socket", True, False),
             "--preserve-fds": ("preserve_fds", True, False), "--cap": ("cap", True, True),
             "-c": ("cap", True, True), "--no-new-privs": ("no_new_privs", False, False),
             "--additional-gids": ("additional_gids", True, True), "-g": ("additional_gids", True, True),
             "--process-label": ("process_label", True, False), "--apparmor": ("apparmor", True, False),
             "--ignore-paused": ("ignore_paused", False, False), "--pidfd-socket": ("pidfd_socket", True, False)},
    "ps": {"--format": ("format", True, False), "-f": ("format", True, False)},
    "list": {"--format": ("format", True, False), "-f": ("format", True, False),
             "--quiet": ("quiet", False, False), "-q": ("quiet", False, False)},
    "spec": {"--bundle": ("bundle", True, False), "-b": ("bundle", True, False),
             "--rootless": ("rootless", False, False)},
    "features": {},
    "install-launcher": {},
    "update": {"--resources": ("resources", True, False), "-r": ("resources", True, False),
               "--memory": ("memory", True, False), "--memory-swap": ("memory_swap", True, False),
               "--cpu-quota": ("cpu_quota", True, False), "--cpu-period": ("cpu_period", True, False),
               "--cpu-shares": ("cpu_shares", True, False), "--cpuset-cpus": ("cpuset_cpus", True, False),
               "--cpuset-mems": ("cpuset_mems", True, False), "--pids-limit": ("pids_limit", True, False)},
}
_ALIASES = {"ls": "list"}


class UsageError(Exception):
    """Bad command line."""


def parse_options(argv: list[str], table: dict, stop_at_positional: bool) -> tuple[dict, list[str]]:
    """Parse ARGV against TABLE; return (options, remaining positionals)."""
    opts: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name not in table and name.startswith("-") and not name.startswith("--") and len(name) > 2:
                name = "-" + name  # Go-style single-dash long options (-bundle)
            if name not in table:
                raise UsageError(f"unknown option {arg}")
            dest, takes, multi = table[name]
            if takes:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"option {name} needs a value")
                    value = argv[i]
            if not takes:
                if eq and value.lower() not in ("true", "false"):
                    raise UsageError(f"option {name} takes no value")
                opts[dest] = not eq or value.lower() == "true"
            elif multi:
                opts.setdefault(dest, []).append(value)
            else:
                opts[dest] = value
        else:
            if stop_at_positional:
                rest.extend(argv[i:])
                break
            rest.append(arg)
        i += 1
    return opts, rest


class Log:
    """runc-style log lines (text or json) to --log or stderr."""

    def __init__(self, path: str | None, fmt: str, debug: bool):
        self.path, self.fmt, self.debug_on = path, fmt, debug

    def __call__(self, level: str, msg: str) -> None:
        """Write one log line at LEVEL."""
        if level == "debug" and not self.debug_on:
            return
        import time

        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
        if self.fmt == "json":
            from runtime.oci import ljson as json

            line = json.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f'time="{stamp}" level={level} msg="{_quote(msg)}"'
        if self.path:
            try:
                fd = posix.open(self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o600)
                try:
                    posix.write(fd, (line + "\n").encode())
                finally:
                    posix.close(fd)
                return
            except OSError:
                pass
        posix.write(2, (line + "\n").encode())


def _quote(msg: str) -> str:
    return msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of virtlab-runtime; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A short-lived process: no cyclic GC, so the forked init does not copy every page the
    # collector would touch (copy-on-write), and no pauses on the create path.
    import gc

    gc.disable()
    log = Log(None, "text", False)
    try:
        gopts, rest = parse_options(argv, _GLOBAL, stop_at_positional=True)
        log = Log(gopts.get("log"), gopts.get("log_format", "text"), bool(gopts.get("debug")))
        if gopts.get("log_format", "text") not in ("text", "json"):
            raise UsageError(f"invalid --log-format {gopts['log_format']!r}: use text or json")
        if gopts.get("version"):
            print(f"virtlab-runtime version {VERSION}\nspec: {SPEC_VERSION}")
            return 0
        if gopts.get("help") or not rest:
            sys.stdout.write(USAGE)
            return 0 if gopts.get("help") else 2
        cmd = _ALIASES.get(rest[0], rest[0])
        if cmd == "help":
            sys.stdout.write(USAGE)
            return 0
        if cmd == "version":
            print(f"virtlab-runtime version {VERSION}\nspec: {SPEC_VERSION}")
            return 0
        if cmd not in _COMMANDS:
            raise UsageError(f"unknown command {rest[0]!r}")
        if gopts.get("systemd_cgroup") and cmd in ("create", "run"):
            raise UsageError("--systemd-cgroup is not supported: virtlab-runtime drives cgroupfs directly "
                             "(there is no systemd on this host)")
        opts, args = parse_options(rest[1:], _COMMANDS[cmd], stop_at_positional=cmd == "exec")
        root = gopts.get("root") or DEFAULT_ROOT
        from runtime.oci import commands

        return getattr(commands, "cmd_" + cmd.replace("-", "_"))(root, opts, args, log)
    except UsageError as e:
        log("error", str(e))
        if log.path:
            sys.stderr.write(f"virtlab-runtime: {e}\n")
        return 125
    except Exception as e:  # noqa: BLE001 - every error becomes a message and an exit code
        code = getattr(e, "exit_code", None)
        if code is None:
            if isinstance(e, OSError):
                code = 125
            else:
                raise
        log("error", str(e))
        if log.path:
            sys.stderr.write(f"virtlab-runtime: {e}\n")
        return code


def run() -> None:
    """Script entry point: main(), then exit without the interpreter's teardown.

    Finalizing the interpreter (module and object cleanup) costs ~2-3 ms per call and a
    short-lived runtime has nothing to clean up: its files are raw fds and the log is written
    line by line. Only Python's own stdio buffers need flushing.
    """
    try:
        code = main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            sys.stderr.write(f"{e.code}\n")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120  # like CPython when flushing stdout fails at exit
    posix._exit(code if isinstance(code, int) else 1)

"""`run`/`create`'s options as plain data, and a strict parser of plain `run` argv over the same table.

runtime.cli.runcmd builds its click options from OPTIONS (help, errors and every unusual case stay
click's). parse_run() reads only what it is sure click would read the same way, so `virtlab run`
can start a container without importing click (~15 ms of a ~80 ms `run --rm`); for anything
else it answers None and the caller goes through click. Imports nothing.
"""

from __future__ import annotations

# Kinds of option: how click parses them, and so how parse_run() must.
FLAG = "flag"  # is_flag: present -> True, default False
SWITCH = "switch"  # "--x/--no-x" boolean pair: --x -> True, --no-x -> False
VALUE = "value"  # one string; the last one given wins
MULTIPLE = "multiple"  # repeatable string -> tuple in the given order
INT = "int"  # one value converted with int(), as click.INT does

# (option names, parameter name, kind, default, help). A SWITCH's single name is "--on/--off".
# A VALUE with a default shows it in --help.
SHARED = (
    (("-i", "--interactive"), "interactive", FLAG, False, "Keep STDIN open even if not attached"),
    (("-t", "--tty"), "tty", FLAG, False, "Allocate a pseudo-TTY"),
    (("--name",), "name", VALUE, None, "Assign a name to the container"),
    (("-e", "--env"), "env", MULTIPLE, (), "Set environment variables"),
    (("--env-file",), "env_file", MULTIPLE, (), "Read in a file of environment variables"),
    (("-v", "--volume"), "volume", MULTIPLE, (), "Bind mount a volume (SRC:DST[:ro], NAME:DST, DST)"),
    (("-p", "--publish"), "publish", MULTIPLE, (), "Publish a container's port(s) to the host"),
    (("-P", "--publish-all"), "publish_all", FLAG, False, "Publish all exposed ports to random ports"),
    (("-w", "--workdir"), "workdir", VALUE, None, "Working directory inside the container"),
    (("-u", "--user"), "user", VALUE, None, "Username or UID (format: <name|uid>[:<group|gid>])"),
    (("--entrypoint",), "entrypoint", VALUE, None, "Overwrite the default ENTRYPOINT of the image"),
    (("--hostname",), "hostname", VALUE, None, "Container host name"),
    (("--network", "--net"), "network", VALUE, "bridge", "bridge, none, host or a network name"),
    (("-m", "--memory"), "memory", VALUE, None, "Memory limit"),
    (("--memory-swap",), "memory_swap", VALUE, None, "Swap limit equal to memory plus swap: -1 for unlimited"),
    (("--memory-reservation",), "memory_reservation", VALUE, None, "Memory soft limit"),
    (("--kernel-memory",), "kernel_memory", VALUE, None, "Kernel memory limit (where the kernel has it)"),
    (("--cpus",), "cpus", VALUE, None, "Number of CPUs"),
    (("-c", "--cpu-shares"), "cpu_shares", VALUE, None, "CPU shares (relative weight)"),
    (("--cpu-quota",), "cpu_quota", VALUE, None, "Limit CPU CFS quota"),
    (("--cpu-period",), "cpu_period", VALUE, None, "Limit CPU CFS period"),
    (("--cpu-rt-period",), "cpu_rt_period", VALUE, None, "Limit CPU real-time period in microseconds"),
    (("--cpu-rt-runtime",), "cpu_rt_runtime", VALUE, None, "Limit CPU real-time runtime in microseconds"),
    (("--cpuset-cpus",), "cpuset_cpus", VALUE, None, "CPUs in which to allow execution (0-3, 0,1)"),
    (("--cpuset-mems",), "cpuset_mems", VALUE, None, "MEMs in which to allow execution (0-3, 0,1)"),
    (("--pids-limit",), "pids_limit", VALUE, None, "Tune container pids limit (-1 for unlimited)"),
    (("--blkio-weight",), "blkio_weight", VALUE, None, "Block IO weight (10-1000)"),
    (("--restart",), "restart", VALUE, "no", "no, on-failure[:N], always, unless-stopped"),
    (("--init",), "init", FLAG, False, "Run an init inside the container that forwards signals and reaps processes"),
    (("--read-only",), "read_only", FLAG, False, "Mount the container's root filesystem as read only"),
    (("--cap-add",), "cap_add", MULTIPLE, (), "Add Linux capabilities"),
    (("--cap-drop",), "cap_drop", MULTIPLE, (), "Drop Linux capabilities"),
    (("--security-opt",), "security_opt", MULTIPLE, (),
     "Security options (seccomp=PATH|unconfined, no-new-privileges)"),
    (("--ulimit",), "ulimit", MULTIPLE, (), "Ulimit options (nofile=1024:1024)"),
    (("-l", "--label"), "label", MULTIPLE, (), "Set meta data on a container"),
    (("--stop-signal",), "stop_signal", VALUE, None, "Signal to stop the container"),
    (("--stop-timeout",), "stop_timeout", INT, None, "Timeout (in seconds) to stop a container"),
    (("--runtime",), "runtime", VALUE, None, "Path or name of a runc-compatible OCI runtime"),
    (("--rm",), "auto_remove", FLAG, False, "Automatically remove the container when it exits"),
)

# `run`'s own, after the shared ones.
RUN_ONLY = (
    (("-d", "--detach"), "detach", FLAG, False, "Run container in background and print container ID"),
    (("--detach-keys",), "detach_keys", VALUE, None, "Override the key sequence for detaching a container"),
    (("--sig-proxy/--no-sig-proxy",), "sig_proxy", SWITCH, True, "Proxy received signals to the process"),
)

RUN = SHARED + RUN_ONLY


def _index(table: tuple) -> dict[str, tuple[str, str, object]]:
    """Option name (as typed) -> (parameter name, kind, the value a FLAG/SWITCH name stores)."""
    index: dict[str, tuple[str, str, object]] = {}
    for names, dest, kind, _default, _help in table:
        if kind == SWITCH:
            on, off = names[0].split("/")
            index[on] = (dest, kind, True)
            index[off] = (dest, kind, False)
        else:
            for n in names:
                index[n] = (dest, kind, True)
    return index


_RUN_INDEX = _index(RUN)


def parse_run(args: list[str]) -> dict[str, object] | None:
    """click's parameters for `run ARGS` (IMAGE, COMMAND and every option), or None if unsure.

    The same rules as click's parser for this command (it stops at the first non-option, `--`
    ends the options, `--opt=value`, `-eVALUE`, `-it`), so that where this returns a dict it is
    exactly what click would pass to the command. Unknown options, --help, a missing value or
    IMAGE, a flag given a value, a bad int: None (click then reports it).
    """
    index = _RUN_INDEX
    given: dict[str, object] = {}
    n = len(args)
    i = 0
    while i < n:
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg[:1] != "-" or len(arg) == 1:
            break  # the image: click stops here (allow_interspersed_args=False)
        i += 1
        name, eq, explicit = arg.partition("=")
        # click tries every dash-word as a long option first (only "--x" names are long here)
        entry = index.get(name) if name[:2] == "--" else None
        if entry is not None:
            dest, kind, const = entry
            if kind in (FLAG, SWITCH):
                if eq:
                    return None  # click: "does not take a value"
                given[dest] = const
                continue
            if not eq:
                if i >= n:
                    return None  # click: "requires an argument"
                explicit = args[i]
                i += 1
            _store(given, dest, kind, explicit)
            continue
        if arg[:2] == "--":
            return None  # an unknown long option (or --help)
        # a cluster of short options: -i, -it, -eX=1 (the rest of the word is the value), -e X=1
        for j in range(1, len(arg)):
            entry = index.get("-" + arg[j])
            if entry is None:
                return None  # unknown (or -h)
            dest, kind, const = entry
            if kind in (FLAG, SWITCH):
                given[dest] = const
                continue
            if j + 1 < len(arg):
                value = arg[j + 1:]
            elif i < n:
                value = args[i]
                i += 1
            else:
                return None
            _store(given, dest, kind, value)
            break
    if i >= n:
        return None  # no IMAGE
    params: dict[str, object] = {"image": args[i], "command": tuple(args[i + 1:])}
    for _names, dest, kind, default, _help in RUN:
        got = given.get(dest, default)
        if kind == MULTIPLE:
            got = tuple(got)  # type: ignore[arg-type]
        elif kind == INT and isinstance(got, str):
            try:
                got = int(got)  # what click.INT does, so " 7", "+7" and "1_0" pass as there
            except ValueError:
                return None
        params[dest] = got
    return params


def _store(given: dict[str, object], dest: str, kind: str, value: str) -> None:
    """Record one value as click's parser does: appended for a multiple, else the last one wins."""
    if kind == MULTIPLE:
        given.setdefault(dest, []).append(value)  # type: ignore[attr-defined]
    else:
        given[dest] = value

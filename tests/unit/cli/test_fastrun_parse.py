"""bench.entry's click-free reading of `virtlab ... run ...` against click's own, argv by argv.

For every argv of the corpus the fast parse must either give up (None) or give exactly the store
root and the parameters click gives the `run` command; the plain forms must be read (else the
fast path would never be taken) and the unusual ones must be left to click.
"""

from __future__ import annotations

import os

import click
import pytest

from bench import entry
from bench.cli import COMMANDS, cli
from runtime.cli import DEFAULT_ROOT, runopts
from runtime.cli.containers import create
from runtime.cli.runcmd import run

ROOT = "@ROOT@"  # replaced by an existing store directory of the test

# Plain `run` command lines: the fast path must read each one, and the same way as click.
PARSED = [
    ["run", "busybox"],
    ["run", "busybox", "true"],
    ["run", "--rm", "busybox", "true"],
    ["run", "--rm", "--network", "none", "busybox", "true"],
    ["run", "--rm", "--network=none", "busybox", "true"],
    ["run", "--net", "none", "busybox"],
    ["run", "--net=host", "busybox"],
    ["run", "--rm", "busybox", "sh", "-c", "exit 3"],
    ["run", "-e", "A=1", "busybox", "sh", "-c", "echo $A"],
    ["run", "-eA=1", "busybox"],
    ["run", "-e=A", "busybox"],  # click takes "=A" as the value of -e
    ["run", "--env", "A=1", "--env=B=2", "-e", "C=3", "-eD=4", "busybox"],
    ["run", "-e", "A=1", "-e", "A=1", "busybox"],
    ["run", "-it", "busybox", "sh"],
    ["run", "-dit", "busybox", "sh"],
    ["run", "-ti", "--rm", "busybox"],
    ["run", "-t", "-i", "busybox"],
    ["run", "-d", "busybox", "sleep", "1"],
    ["run", "-ie", "A=1", "busybox"],
    ["run", "-ieA=1", "busybox"],
    ["run", "-Pd", "busybox"],
    ["run", "-Pit", "busybox"],
    ["run", "--interactive", "--tty", "--detach", "busybox"],
    ["run", "--publish-all", "busybox"],
    ["run", "-p", "80:80", "-p8080:80", "--publish=1:2", "busybox"],
    ["run", "-v", "/a:/b", "-v/c:/d", "--volume=e:/f", "busybox"],
    ["run", "--name", "web", "busybox"],
    ["run", "--name=web", "--name", "other", "busybox"],
    ["run", "--name=", "busybox"],
    ["run", "--name", "--rm", "busybox"],  # a value is taken even when it looks like an option
    ["run", "-w", "/tmp", "-u", "1000:1000", "busybox"],
    ["run", "-w/tmp", "-u1000", "busybox"],
    ["run", "--entrypoint", "", "busybox"],
    ["run", "--entrypoint=/bin/sh", "busybox", "-c", "x"],
    ["run", "--hostname", "h", "busybox"],
    ["run", "-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m", "--kernel-memory", "10m",
     "busybox"],
    ["run", "--memory=1g", "-mx", "busybox"],
    ["run", "--cpus", "1.5", "-c", "512", "--cpu-quota", "5000", "--cpu-period", "10000", "--cpu-rt-period", "1",
     "--cpu-rt-runtime", "1", "busybox"],
    ["run", "-c512", "busybox"],
    ["run", "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "100", "--blkio-weight", "500", "busybox"],
    ["run", "--restart", "on-failure:3", "busybox"],
    ["run", "--restart=always", "-d", "busybox"],
    ["run", "--init", "--read-only", "busybox"],
    ["run", "--cap-add", "NET_ADMIN", "--cap-add=SYS_TIME", "--cap-drop", "ALL", "busybox"],
    ["run", "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges", "busybox"],
    ["run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=10", "busybox"],
    ["run", "-l", "a=b", "--label", "c=d", "-le=f", "busybox"],
    ["run", "--stop-signal", "SIGINT", "--stop-timeout", "5", "busybox"],
    ["run", "--stop-timeout=+7", "busybox"],
    ["run", "--stop-timeout", " 12 ", "busybox"],
    ["run", "--stop-timeout", "1_0", "busybox"],
    ["run", "--stop-timeout", "bad", "--stop-timeout", "3", "busybox"],  # only the last one is converted
    ["run", "--runtime", "runc", "busybox"],
    ["run", "--detach-keys", "ctrl-x", "busybox"],
    ["run", "--sig-proxy", "busybox"],
    ["run", "--no-sig-proxy", "busybox"],
    ["run", "--no-sig-proxy", "--sig-proxy", "busybox"],
    ["run", "--env-file", "f1", "--env-file=f2", "busybox"],
    ["run", "--", "busybox", "ls"],
    ["run", "--rm", "--", "busybox", "--rm"],
    ["run", "--rm", "busybox", "--", "ls", "-l"],
    ["run", "busybox", "ls", "-l", "--rm"],
    ["run", "busybox", "-e", "X"],
    ["run", "-"],
    ["run", ""],
    ["--root", ROOT, "run", "busybox"],
    ["--root=" + ROOT, "run", "--rm", "busybox", "true"],
    ["-D", "run", "busybox"],
    ["--debug", "run", "--rm", "busybox"],
    ["--root", "/nonexistent/a", "--root", ROOT, "run", "busybox"],
    ["-D", "--root=" + ROOT, "-D", "run", "busybox"],
    ["--root", "/nonexistent/store", "run", "busybox"],  # click.Path does not require it to exist
    ["--root", "run", "run", "busybox"],  # a root named "run"
    ["--root", "-D", "run", "busybox"],  # a root named "-D": a value is a value
]

# Left to click: errors, help, and what the fast path does not try to read.
FALLS_BACK = [
    ["run"],
    ["run", "--rm"],
    ["run", "--"],
    ["run", "--bogus", "busybox"],
    ["run", "--help"],
    ["run", "-h"],
    ["run", "--rm", "--help", "busybox"],
    ["run", "-ih", "busybox"],
    ["--help"],
    ["-h", "run", "busybox"],
    ["--version"],
    ["run", "-p"],
    ["run", "--rm", "-p"],
    ["run", "--name"],
    ["run", "-e"],
    ["run", "--detach-keys"],
    ["run", "--network", "busybox"],  # the image became the network's value: no IMAGE
    ["run", "--stop-timeout", "bad", "busybox"],
    ["run", "--stop-timeout=1.5", "busybox"],
    ["run", "--stop-timeout", "", "busybox"],
    ["run", "--rm=true", "busybox"],
    ["run", "--rm=", "busybox"],
    ["run", "--no-sig-proxy=1", "busybox"],
    ["run", "--sig-proxy=no", "busybox"],
    ["run", "-x", "busybox"],
    ["run", "-it=", "busybox"],
    ["run", "-d-", "busybox"],
    ["run", "-5", "busybox"],
    ["run", "--env-fil", "x", "busybox"],  # click does not expand abbreviations
    ["run", "---rm", "busybox"],
    ["ps"],
    ["container", "run", "busybox"],
    ["create", "busybox"],
    [],
    ["--root"],
    ["--root", ROOT],
    ["--root=" + ROOT + "/file", "run", "busybox"],  # click.Path(file_okay=False): "is a file"
    ["--root=", "run", "busybox"],
    ["-X", "run", "busybox"],
    ["--debug=1", "run", "busybox"],
    ["-DD", "run", "busybox"],
    ["--root", ROOT, "--", "run", "busybox"],
]


def _subst(argv: list[str], root: str) -> list[str]:
    return [a.replace(ROOT, root) for a in argv]


def click_reading(argv: list[str]) -> tuple[str, dict] | None:
    """(root, `run`'s parameters) as click reads ARGV, or None if click fails, exits or runs something else."""
    try:
        ctx = cli.make_context("virtlab", list(argv))
        rest = [*ctx._protected_args, *ctx.args]  # the subcommand and its args (click keeps them apart)
        if not rest or rest[0] != "run":
            return None
        sub = run.make_context("run", rest[1:], parent=ctx)
    except (click.ClickException, click.exceptions.Exit):
        return None
    return os.path.abspath(ctx.params["root"]), dict(sub.params)


@pytest.fixture
def root(tmp_path, monkeypatch):
    for var in ("VIRTLAB_ROOT", "VIRTLAB_DEBUG", "_VIRTLAB_COMPLETE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "file").write_text("")
    return str(tmp_path)


def test_the_corpus_is_large_enough():
    assert len(PARSED) + len(FALLS_BACK) >= 60


@pytest.mark.parametrize("argv", PARSED, ids=" ".join)
def test_plain_run_lines_are_read_exactly_as_click_reads_them(root, argv, capsys):
    argv = _subst(argv, root)
    fast = entry.parse(argv)
    want = click_reading(argv)
    assert want is not None, "click should accept this line"
    assert fast is not None, "the fast path gave up on a plain line"
    assert fast == want
    assert {k: type(v) for k, v in fast[1].items()} == {k: type(v) for k, v in want[1].items()}


@pytest.mark.parametrize("argv", FALLS_BACK, ids=lambda a: " ".join(a) or "(none)")
def test_unusual_lines_are_left_to_click(root, argv, capsys):
    argv = _subst(argv, root)
    assert entry.parse(argv) is None


def test_the_run_errors_of_the_fallback_list_are_click_errors(root, capsys):
    """The fast path's `None`s are not timid: for these click itself refuses the line."""
    refused = [a for a in FALLS_BACK if a[:1] == ["run"]]
    assert len(refused) > 20
    for argv in refused:
        assert click_reading(_subst(argv, root)) is None, argv


def test_virtlab_root_from_the_environment(root, monkeypatch):
    argv = ["run", "--rm", "busybox", "true"]
    monkeypatch.setenv("VIRTLAB_ROOT", root)
    assert entry.parse(argv) == click_reading(argv)
    assert entry.parse(argv)[0] == root
    # --root wins over the environment, in both
    other = os.path.join(root, "sub")
    assert entry.parse(["--root", other, *argv]) == click_reading(["--root", other, *argv])
    # empty means unset, for click too
    monkeypatch.setenv("VIRTLAB_ROOT", "")
    assert entry.parse(argv) == click_reading(argv)
    assert entry.parse(argv)[0] == DEFAULT_ROOT
    # a file: click refuses it, so the fast path must not take it
    monkeypatch.setenv("VIRTLAB_ROOT", os.path.join(root, "file"))
    assert click_reading(argv) is None
    assert entry.parse(argv) is None


@pytest.mark.parametrize("var, value", [("VIRTLAB_DEBUG", "1"), ("VIRTLAB_DEBUG", "maybe"),
                                        ("_VIRTLAB_COMPLETE", "bash_source")])
def test_environment_click_reads_sends_the_line_to_click(root, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    assert entry.parse(["run", "--rm", "busybox", "true"]) is None


def test_parse_run_alone_gives_clicks_defaults():
    got = runopts.parse_run(["busybox"])
    want = run.make_context("run", ["busybox"]).params
    assert got == want
    assert got["command"] == () and got["env"] == () and got["network"] == "bridge" and got["sig_proxy"] is True


def _click_options(cmd: click.Command) -> dict[str, tuple]:
    out = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            out[p.name] = (sorted(p.opts + p.secondary_opts), p.multiple, p.is_flag,
                           isinstance(p.type, click.types.IntParamType), p.help)
    return out


def _table_options(table: tuple) -> dict[str, tuple]:
    out = {}
    for names, dest, kind, _default, help_ in table:
        opts = names[0].split("/") if kind == runopts.SWITCH else list(names)
        out[dest] = (sorted(opts), kind == runopts.MULTIPLE, kind in (runopts.FLAG, runopts.SWITCH),
                     kind == runopts.INT, help_)
    return out


def test_run_and_create_have_exactly_the_options_of_the_table():
    assert _click_options(run) == _table_options(runopts.RUN)
    assert _click_options(create) == _table_options(runopts.SHARED)
    # the defaults click applies are the table's
    params = run.make_context("run", ["busybox"]).params
    for _names, dest, _kind, default, _help in runopts.RUN:
        assert params[dest] == default, dest
    assert [p.name for p in run.params if isinstance(p, click.Argument)] == ["image", "command"]


def test_the_group_has_the_options_the_fast_path_reads():
    """bench.entry.parse reads --root/-D/--debug itself and leaves -h/--help/--version to click."""
    opts = {p.name: p for p in cli.params}
    assert sorted(opts) == ["debug", "root", "version"]
    assert sorted(opts["root"].opts) == ["--root"] and opts["root"].envvar == "VIRTLAB_ROOT"
    assert sorted(opts["debug"].opts) == ["--debug", "-D"] and opts["debug"].envvar == "VIRTLAB_DEBUG"
    assert opts["root"].default == DEFAULT_ROOT
    assert cli.context_settings["help_option_names"] == ["-h", "--help"]
    assert COMMANDS["run"][:2] == ("runtime.cli.runcmd", "run")

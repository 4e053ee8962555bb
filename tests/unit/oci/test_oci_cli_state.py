"""The command line, the state machine, hooks, the lean JSON and the sealed launcher (no root needed)."""

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.oci import cli, hooks, launcher, ljson, state
from runtime.oci.errors import ContainerExists, ContainerNotFound, HookError, StateError

RUNTIME = [sys.executable, "-c", "import sys; from runtime.oci.cli import main; sys.exit(main())"]


def run_cli(*args, root):
    return subprocess.run(RUNTIME + ["--root", str(root)] + list(args), capture_output=True, text=True, timeout=30)


# -- option parsing -------------------------------------------------------------

def test_parse_options_forms():
    opts, rest = cli.parse_options(["--bundle=/b", "--pid-file", "p", "-no-pivot", "id"], cli._COMMANDS["create"],
                                   stop_at_positional=False)
    assert opts == {"bundle": "/b", "pid_file": "p", "no_pivot": True} and rest == ["id"]
    opts, rest = cli.parse_options(["-e", "A=1", "--env=B=2", "-t", "c1", "sh", "-c", "x"], cli._COMMANDS["exec"],
                                   stop_at_positional=True)
    assert opts == {"env": ["A=1", "B=2"], "tty": True} and rest == ["c1", "sh", "-c", "x"]


@pytest.mark.parametrize("argv, message", [(["--nope"], "unknown option"), (["--bundle"], "needs a value"),
                                           (["--no-pivot=maybe"], "takes no value")])
def test_parse_options_errors(argv, message):
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_options(argv, cli._COMMANDS["create"], stop_at_positional=False)


def test_cli_errors_and_exit_codes(tmp_path):
    r = run_cli("state", "ghost", root=tmp_path)
    assert r.returncode == 125 and "container ghost does not exist" in r.stderr
    r = run_cli("bogus", root=tmp_path)
    assert r.returncode == 125 and "unknown command" in r.stderr
    r = run_cli("start", root=tmp_path)
    assert r.returncode == 125 and "exactly one container id" in r.stderr
    assert run_cli("--systemd-cgroup", "list", root=tmp_path).returncode == 0  # accepted where harmless
    r = run_cli("--systemd-cgroup", "create", "--bundle", str(tmp_path), "c", root=tmp_path)
    assert r.returncode == 125 and "--systemd-cgroup is not supported" in r.stderr
    r = run_cli("create", "--bundle", str(tmp_path / "none"), "c", root=tmp_path)
    assert r.returncode == 125 and "config.json" in r.stderr
    assert run_cli("delete", "--force", "ghost", root=tmp_path).returncode == 0  # as runc


def test_log_format_json(tmp_path):
    log = tmp_path / "log.json"
    r = run_cli("--log", str(log), "--log-format", "json", "state", "ghost", root=tmp_path)
    assert r.returncode == 125
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and "ghost" in line["msg"] and line["time"].endswith("Z")


def test_spec_and_features(tmp_path):
    assert run_cli("spec", "--bundle", str(tmp_path), root=tmp_path).returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"] and cfg["root"]["path"] == "rootfs"
    r = run_cli("spec", "--bundle", str(tmp_path), root=tmp_path)
    assert r.returncode == 125 and "exists" in r.stderr
    feats = json.loads(run_cli("features", root=tmp_path).stdout)
    assert "user" in feats["linux"]["namespaces"] and "poststop" in feats["hooks"]
    assert run_cli("list", "--format", "json", root=tmp_path).stdout == "[]\n"


def test_start_path_imports_only_runtime_oci_and_the_stdlib(tmp_path):
    repo = str(Path(__file__).resolve().parents[3])
    watched = "('click', 're', 'enum', 'json', 'signal', 'logging')"
    code = (f"import sys; sys.path.insert(0, {repo!r}); sys.argv = ['x', '--root', {str(tmp_path)!r}, 'list']; "
            "from runtime.oci.cli import main; main(); import runtime.oci.create, runtime.oci.runner; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {watched}))")
    out = subprocess.run([sys.executable, "-SI", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# -- state machine -------------------------------------------------------------

def test_state_files_and_transitions(tmp_path):
    st = state.init_state(str(tmp_path), "c1", "/b", {"a": "b"})
    with pytest.raises(ContainerExists):
        state.init_state(str(tmp_path), "c1", "/b", None)
    assert oct(os.stat(st["dir"]).st_mode & 0o777) == "0o711"
    st["pid"] = os.getpid()
    st["start_time"] = state.proc_start_time(os.getpid())
    open(os.path.join(st["dir"], "exec.fifo"), "w").close()
    state.save(st)
    assert state.load(str(tmp_path), "c1")["status"] == "created"
    os.unlink(os.path.join(st["dir"], "exec.fifo"))
    assert state.load(str(tmp_path), "c1")["status"] == "running"
    st["paused"] = True
    state.save(st)
    assert state.load(str(tmp_path), "c1")["status"] == "paused"
    st["paused"] = False
    st["start_time"] += 1  # a reused pid: not our init any more
    state.save(st)
    loaded = state.load(str(tmp_path), "c1")
    assert loaded["status"] == "stopped" and state.public(loaded)["pid"] == 0
    assert state.public(loaded)["annotations"] == {"a": "b"}
    assert state.list_ids(str(tmp_path)) == ["c1"]
    with pytest.raises(ContainerNotFound, match="container nope does not exist"):
        state.load(str(tmp_path), "nope")


@pytest.mark.parametrize("status, allowed, denied", [
    ("created", ["start", "kill", "exec"], ["delete", "pause", "resume"]),
    ("running", ["kill", "pause", "exec"], ["start", "delete", "resume"]),
    ("paused", ["kill", "resume"], ["start", "delete", "pause", "exec"]),
    ("stopped", ["delete"], ["start", "kill", "pause", "resume", "exec"]),
])
def test_transition_table(status, allowed, denied):
    st = {"id": "web", "status": status}
    for op in allowed:
        state.check(st, op)
    for op in denied:
        with pytest.raises(StateError, match=f"cannot {op} container web: container is {status}"):
            state.check(st, op)


def test_state_file_corruption(tmp_path):
    st = state.init_state(str(tmp_path), "c2", "/b", None)
    with open(os.path.join(st["dir"], "state.json"), "w") as f:
        f.write("{broken")
    with pytest.raises(Exception, match="corrupt"):
        state.load(str(tmp_path), "c2")


# -- hooks -----------------------------------------------------------------

def test_hooks_receive_state_and_env(tmp_path):
    out = tmp_path / "out"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f'cat > {out}; echo "$X" >> {out}'], "env": ["X=42"]}
    hooks.run({"poststart": [hook]}, "poststart", {"id": "c", "pid": 1})
    data, env = out.read_text().rsplit("}", 1)
    assert json.loads(data + "}") == {"id": "c", "pid": 1} and env.strip() == "42"


def test_hook_failures_and_timeouts():
    with pytest.raises(HookError, match="createRuntime hook #0 .* exit status 3: boom"):
        hooks.run({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]},
                  "createRuntime", {})
    warnings = []
    hooks.run({"poststop": [{"path": "/bin/false"}]}, "poststop", {}, warn=warnings.append)
    assert len(warnings) == 1 and "poststop hook #0" in warnings[0]
    t = time.monotonic()
    with pytest.raises(HookError, match="timed out after 1 s"):
        hooks.run({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}, "prestart", {})
    assert time.monotonic() - t < 5
    with pytest.raises(HookError, match="cannot execute"):
        hooks.run({"prestart": [{"path": "/no/such/hook"}]}, "prestart", {})


def test_hook_that_ignores_stdin_is_fine():
    hooks.run({"poststart": [{"path": "/bin/true"}]}, "poststart", {"big": "x" * 200000})


# -- ljson and the launcher ------------------------------------------------------

@pytest.mark.parametrize("doc", [{"a": [1, 2.5, True, None, "xé\n"]}, [], {}, "s", 0, {"n": {"m": [{}]}}])
def test_ljson_matches_json(doc):
    assert ljson.dumps(doc) == json.dumps(doc)
    assert ljson.loads(json.dumps(doc)) == doc
    assert json.loads(ljson.dumps(doc, indent=2)) == doc
    assert ljson.loads(json.dumps(doc).encode()) == doc


@pytest.mark.parametrize("bad", ["", "{", "[1,]", "{} x", "NaN", "{'a': 1}"])
def test_ljson_rejects(bad):
    with pytest.raises(ValueError):
        ljson.loads(bad)


def test_launcher_elf_and_seal(tmp_path):
    image = launcher.elf_image()
    if image is None:
        pytest.skip("no launcher for this architecture")
    assert image[:4] == b"\x7fELF" and struct.unpack_from("<H", image, 18)[0] == 0x3E
    fd = launcher.sealed_fd()
    try:
        with pytest.raises(PermissionError):
            os.write(fd, b"x")  # F_SEAL_WRITE
        assert os.fstat(fd).st_size == len(image)
    finally:
        os.close(fd)


def test_launcher_execs_and_reports_failures():
    from runtime.oci import linux

    fd = launcher.sealed_fd()
    if fd is None:
        pytest.skip("no launcher for this architecture")
    codes = []
    m = launcher.MARKER
    for argv in ([m + "/bin/sh", "sh", "-c", "exit 7"], [m + "/no/such/program", "x"], [m + "/etc/hostname", "x"],
                 # without the marker it was started as a script's interpreter: refuse
                 ["/bin/sh", "sh", "-c", "exit 7"]):
        pid = os.fork()
        if pid == 0:
            try:
                linux.host().execveat(fd, argv, ["A=1"])
            finally:
                os._exit(99)
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    os.close(fd)
    assert codes == [7, 127, 126, 126]

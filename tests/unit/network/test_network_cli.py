"""`virtlab network` without root: exit codes, formats, bad input (nothing kernel-side is created)."""

import json
import subprocess
import sys

import pytest

from runtime.cli.network import render_template

VIRTLAB = [sys.executable, "-c", "from bench.cli import main; main()"]


def run(root, *args):
    return subprocess.run([*VIRTLAB, "--root", str(root), "network", *args], capture_output=True, text=True)


def test_ls_table_quiet_and_formats(tmp_path):
    r = run(tmp_path, "ls")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1] for line in r.stdout.splitlines()[1:]] == ["bridge", "host", "none"]
    q = run(tmp_path, "ls", "-q").stdout.split()
    assert len(q) == 3 and all(len(x) == 12 for x in q)
    assert run(tmp_path, "ls", "-q", "--no-trunc").stdout.split()[0].startswith(q[0])
    assert run(tmp_path, "ls", "--format", "{{.Name}}:{{.Driver}}").stdout.split() == [
        "bridge:bridge", "host:host", "none:null"]
    rows = [json.loads(line) for line in run(tmp_path, "ls", "--format", "json").stdout.splitlines()]
    assert rows[0]["Name"] == "bridge"
    assert run(tmp_path, "ls", "-f", "name=non").stdout.split()[-4:] == [q[2], "none", "null", "local"]


@pytest.mark.parametrize(
    "args,msg",
    [
        (("create", "n1", "--subnet", "bogus"), "invalid subnet 'bogus'"),
        (("create", "n1", "--subnet", "10.0.0.1/24"), "host bits set"),
        (("create", "n1", "--subnet", "10.0.0.0/31"), "no room"),
        (("create", "n1", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1"), "not in subnet"),
        (("create", "bad name"), "invalid network name"),
        (("create", "bridge"), "pre-defined"),
        (("create", "n1", "-d", "macvlan"), "not supported"),
        (("rm", "bridge"), "pre-defined"),
        (("rm", "nope"), "network nope not found"),
        (("inspect", "nope"), "network nope not found"),
        (("ls", "--format", "{{.Nope}}"), "no field"),
        (("ls", "-f", "colour=red"), "invalid filter"),
        (("create", "n1", "--label", "=x"), "invalid label"),
    ],
)
def test_bad_input_exits_125_with_a_clear_message(tmp_path, args, msg):
    r = run(tmp_path, *args)
    assert r.returncode == 125, (r.stdout, r.stderr)
    assert msg in r.stderr


def test_inspect_json_array_and_template(tmp_path):
    r = run(tmp_path, "inspect", "bridge", "none")
    doc = json.loads(r.stdout)
    assert [d["Name"] for d in doc] == ["bridge", "none"]
    r = run(tmp_path, "inspect", "bridge", "-f", "{{.Name}} {{json .Internal}}")
    assert r.stdout.strip() == "bridge false"


def test_render_template():
    row = {"Name": "n", "ID": "1"}
    assert render_template("{{.Name}}\\t{{ .ID }}", row) == "n\t1"
    assert json.loads(render_template("{{json .}}", row)) == row


def test_docker_aliases(tmp_path):
    assert run(tmp_path, "list", "-q").stdout == run(tmp_path, "ls", "-q").stdout
    r = run(tmp_path, "remove", "nope")
    assert r.returncode == 125 and "network nope not found" in r.stderr


def test_rm_force_ignores_missing_networks(tmp_path):
    r = run(tmp_path, "rm", "-f", "nope", "nope2")
    assert r.returncode == 0 and r.stderr == ""
    r = run(tmp_path, "rm", "-f", "bridge")  # -f does not make a pre-defined network removable
    assert r.returncode == 125 and "pre-defined" in r.stderr

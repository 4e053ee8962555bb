"""The root `virtlab` command: lazy groups, docker exit codes, --root, doctor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from bench import cli as root_cli
from bench import doctor

VENV_BIN = Path(sys.executable).parent
HEAVY = ("pandas", "matplotlib", "libvirt", "pyroute2", "httpx", "rich")


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "virtlab"), *args], capture_output=True, text=True, env=env)


def test_help_lists_every_command_without_importing_them():
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('runtime','vmdriver','reports','pandas','libvirt')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for name in ("run", "ps", "pull", "vm", "bench", "report", "doctor"):
        assert f"  {name} " in r.stdout
    # runtime.cli only for the store root's default (runtime.cli.DEFAULT_ROOT): it imports nothing but os
    assert r.stdout.strip().splitlines()[-1] == "['runtime', 'runtime.cli']"


@pytest.mark.parametrize("args", [["--no-such-flag"], ["no-such-command"]])
def test_usage_errors_exit_125_like_docker(args):
    r = run_cli(*args)
    assert r.returncode == 125
    assert "Error" in r.stderr


def test_root_option_and_env_are_absolute(tmp_path, monkeypatch):
    seen = {}

    @click.command("probe-root")
    @click.pass_context
    def probe_root(ctx):
        seen["root"] = root_cli.root_of(ctx)

    root_cli.cli.add_command(probe_root)
    try:
        with pytest.raises(SystemExit) as exc:
            root_cli.main(["--root", str(tmp_path / "a"), "probe-root"])
        assert exc.value.code == 0
        assert seen["root"] == str(tmp_path / "a")
        monkeypatch.setenv("VIRTLAB_ROOT", "relative/store")
        with pytest.raises(SystemExit):
            root_cli.main(["probe-root"])
        assert seen["root"] == str(Path.cwd() / "relative/store")
    finally:
        root_cli.cli.commands.pop("probe-root", None)


def test_errors_with_exit_code_attribute_become_that_code():
    class Boom(Exception):
        exit_code = 126

    @click.command("boom")
    def boom():
        raise Boom("cannot invoke /etc: permission denied")

    root_cli.cli.add_command(boom)
    try:
        with pytest.raises(SystemExit) as exc:
            root_cli.main(["boom"])
        assert exc.value.code == 126
    finally:
        root_cli.cli.commands.pop("boom", None)


def test_container_commands_do_not_import_heavy_modules():
    """`virtlab run` must never load pandas, matplotlib or libvirt (DESIGN.md)."""
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        "for cmd in ('run', 'ps', 'images', 'exec'):\n"
        "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas','matplotlib','libvirt'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_static_elf_detection():
    assert doctor.is_static_elf(Path("/bin/busybox").resolve())
    assert not doctor.is_static_elf(Path(sys.executable).resolve())


def test_cgroup_mode_is_one_of_the_known_layouts():
    mode, controllers = doctor.cgroup_mode()
    assert mode in ("v1", "hybrid", "v2")
    assert controllers


def test_doctor_json_reports_every_check(tmp_path):
    r = run_cli("--root", str(tmp_path), "doctor", "--json")
    data = json.loads(r.stdout)
    names = {c["name"] for c in data["checks"]}
    assert {"kernel", "cgroups", "accelerator", "/dev/kvm", "libvirtd", "qemu", "busybox-static", "runc"} <= names
    assert all(c["status"] in ("ok", "warn", "fail") for c in data["checks"])
    assert r.returncode == (0 if data["quick_suite_ready"] else 1)


def test_the_run_body_imports_no_click():
    """runtime.cli.runcore, the body of `virtlab run`, is separate from its parsing."""
    code = (
        "import sys\n"
        "import runtime.cli.runcore\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'click', 'pyroute2', 'rich', 'httpx', 'pandas'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"

"""runtime.cli.store_root/root_of: the one reading of --root / VIRTLAB_ROOT / the default that every command uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runtime.cli import DEFAULT_ROOT, root_of, store_root


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    monkeypatch.delenv("VIRTLAB_ROOT", raising=False)


def test_option_then_environment_then_default(tmp_path, monkeypatch):
    assert store_root() == DEFAULT_ROOT
    monkeypatch.setenv("VIRTLAB_ROOT", str(tmp_path / "env"))
    assert store_root() == str(tmp_path / "env")
    assert store_root(str(tmp_path / "opt")) == str(tmp_path / "opt")
    monkeypatch.setenv("VIRTLAB_ROOT", "")  # empty is unset, as click reads an envvar
    assert store_root() == DEFAULT_ROOT


def test_relative_roots_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store_root("rel") == os.path.join(str(tmp_path), "rel")
    monkeypatch.setenv("VIRTLAB_ROOT", "env/store")
    assert store_root() == os.path.join(str(tmp_path), "env/store")


@click.group()
@click.pass_context
def group(ctx):
    ctx.obj = {"root": "/from/the/group"}


@group.command()
@click.pass_context
def show(ctx):
    click.echo(root_of(ctx))


@click.command()
@click.pass_context
def alone(ctx):
    click.echo(root_of(ctx))


def test_root_of_reads_the_root_group_else_the_environment(tmp_path, monkeypatch):
    assert CliRunner().invoke(group, ["show"]).output == "/from/the/group\n"
    monkeypatch.setenv("VIRTLAB_ROOT", str(tmp_path))
    assert CliRunner().invoke(group, ["show"]).output == "/from/the/group\n"  # the group's choice wins
    assert CliRunner().invoke(alone, []).output == f"{tmp_path}\n"  # no group: the environment
    monkeypatch.delenv("VIRTLAB_ROOT")
    assert CliRunner().invoke(alone, []).output == f"{DEFAULT_ROOT}\n"


def test_the_package_imports_nothing_heavy():
    """bench.entry's click-free `run` path imports runtime.cli: it must stay os-only."""
    repo = str(Path(__file__).resolve().parents[3])
    code = "import runtime.cli; print(sorted(m for m in ('click', 'typing') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-SI", "-c", f"import sys; sys.path.insert(0, {repo!r}); {code}"],
                       capture_output=True, text=True, timeout=60, check=True)
    assert r.stdout.strip() == "[]"

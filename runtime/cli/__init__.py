"""The docker-compatible `virtlab` commands of the container runtime, one module per command family.

The package itself holds what every command family needs and the click-free `run` path
(bench.entry) needs too: which directory is the store. It imports nothing but os.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    import click

DEFAULT_ROOT = "/var/lib/virtlab"


def store_root(root: str | None = None) -> str:
    """The store directory, absolute: ROOT (--root), else $VIRTLAB_ROOT, else DEFAULT_ROOT.

    An empty value counts as unset, as click reads an empty envvar.
    """
    return os.path.abspath(root or os.environ.get("VIRTLAB_ROOT") or DEFAULT_ROOT)


def root_of(ctx: click.Context) -> str:
    """The store root of a command: the root group's --root (bench.cli), else as store_root() finds it.

    The fallback serves a command invoked without the root group (a test's CliRunner on one group).
    """
    return store_root((ctx.find_root().obj or {}).get("root"))

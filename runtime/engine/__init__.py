"""The container engine: records, a monitor per container, and the docker-style verbs.

Public API (see docs/contracts.md)::

    from runtime.engine import Engine, ContainerSpec
"""

from __future__ import annotations

__all__ = ["ContainerSpec", "Engine", "ExecResult"]

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from runtime.engine.engine import Engine, ExecResult
    from runtime.engine.spec import ContainerSpec


def __getattr__(name: str):
    """Import the heavy modules only when their names are used."""
    if name in ("Engine", "ExecResult"):
        from runtime.engine import engine

        return getattr(engine, name)
    if name == "ContainerSpec":
        from runtime.engine.spec import ContainerSpec

        return ContainerSpec
    raise AttributeError(name)

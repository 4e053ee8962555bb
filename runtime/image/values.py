"""Plain value classes for the `run` path: fields are `__slots__`, compared and shown like dataclasses.

`import dataclasses` loads `inspect` (ast, dis, tokenize): ~5 ms of a ~60 ms `virtlab run`, plus
~0.4 ms per class to exec its generated methods. A class here lists its fields once, in
`__slots__` (the order its `__init__` takes them), and sets them in an explicit, typed
`__init__`; `Value` adds dataclass-style `==`, `repr()`, `as_dict()` and `replace()`; `Frozen` also makes
them read-only once set, and hashable (as `@dataclass(frozen=True)`). runtime.engine uses
them too: runtime.image is the layer below it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any, Self


class Value:
    """A record whose fields are its class's `__slots__` (unhashable, as it defines `==`: a mutable dataclass)."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as `dataclasses.asdict` gives them (lists, dicts and values copied)."""
        return {name: _copied(getattr(self, name)) for name in self.__slots__}

    def replace(self, **changes: Any) -> Self:
        """A new instance with the same fields but CHANGES, made by `__init__` (`dataclasses.replace`)."""
        return type(self)(**{name: changes.pop(name, getattr(self, name)) for name in self.__slots__}, **changes)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Frozen(Value):
    """A Value whose fields are set once, by `__init__`."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError(f"cannot assign to field {name!r} of a {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a {type(self).__name__}")

    def __hash__(self) -> int:
        return hash(self._values())


def _copied(v: Any) -> Any:
    """A copy of a field value as `dataclasses.asdict` makes it: values recursively, containers anew."""
    if isinstance(v, Value):
        return v.as_dict()
    if isinstance(v, list):
        return [_copied(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_copied(x) for x in v)
    if isinstance(v, dict):
        return {_copied(k): _copied(x) for k, x in v.items()}
    return v

"""The repository layout that the tools rely on."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_test_module_basenames_are_unique():
    """pytest imports test folders without __init__.py by basename: two equal names collide."""
    seen: dict[str, list[str]] = defaultdict(list)
    for path in (REPO / "tests").rglob("test_*.py"):
        seen[path.name].append(str(path.relative_to(REPO)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"


def test_every_package_module_has_a_docstring():
    """Each module says in one line what it is for (STYLE.md)."""
    import ast

    missing = []
    for pkg in ("runtime", "vmdriver", "bench", "reports"):
        for path in (REPO / pkg).rglob("*.py"):
            if ast.get_docstring(ast.parse(path.read_text())) is None:
                missing.append(str(path.relative_to(REPO)))
    assert not missing, f"modules without a docstring: {missing}"

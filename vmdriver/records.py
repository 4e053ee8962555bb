"""VM records: one JSON file per VM under <root>/vm/vms/<name>/record.json, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vmdriver.layout import Layout, validate_name


def record_path(layout: Layout, name: str) -> Path:
    """The record file of VM `name`."""
    return layout.vm_dir(name) / "record.json"


def load(layout: Layout, name: str) -> dict[str, Any] | None:
    """The record of VM `name`, or None if there is none (or it is unreadable)."""
    try:
        return json.loads(record_path(layout, name).read_text())
    except (OSError, ValueError):
        return None


def save(layout: Layout, rec: dict[str, Any]) -> None:
    """Write a record atomically."""
    path = record_path(layout, validate_name(rec["name"]))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def names(layout: Layout) -> list[str]:
    """Names of the VM folders in the store (with or without a readable record)."""
    try:
        return sorted(p.name for p in layout.vms.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []

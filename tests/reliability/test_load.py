"""Eight parallel CLIs create, start, stop and remove containers on one store.

Each worker loops create -> start -> stop -> rm (some iterations `run -d` + `rm -f`, some on
the default bridge network so links, netns and firewall rules are exercised too), recording
every ID the CLI printed. An observer lists `ps -a` meanwhile. Afterwards: every ID printed
by a create was removed by its own rm, no container is unknown, lost or listed twice, names
are unique at every moment, and the leak check finds no mount, cgroup, netns, link, port or
firewall rule left.

VIRTLAB_LOAD_SECONDS sets the duration (default 60: `make test`); the `slow` variant runs
for VIRTLAB_LOAD_SLOW_SECONDS (default 300).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from conftest import VIRTLAB, check_store, cleanup_with_cli, vl

pytestmark = pytest.mark.root

WORKERS = 8


@dataclass
class Worker:
    """What one CLI loop did: IDs it created and removed, and any command that failed."""

    n: int
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cycles: int = 0


def _run(root, *args, timeout=120):
    import subprocess

    return subprocess.run([VIRTLAB, "--root", str(root), *args], capture_output=True, timeout=timeout)


def worker_loop(root, w: Worker, until: float) -> None:
    """create/start/stop/rm cycles until `until` (monotonic), recording what happened."""
    i = 0
    while time.monotonic() < until:
        name = f"w{w.n}-{i}"
        net = ["--network", "bridge"] if i % 4 == 0 else ["--network", "none"]
        try:
            if i % 3 == 2:
                r = _run(root, "run", "-d", "--name", name, *net, "busybox", "sleep", "30")
                if r.returncode != 0:
                    w.errors.append(f"run -d {name}: {r.returncode} {r.stderr.decode().strip()}")
                    i += 1
                    continue
                cid = r.stdout.decode().strip()
                w.created.append(cid)
            else:
                r = _run(root, "create", "--name", name, *net, "busybox", "sleep", "30")
                if r.returncode != 0:
                    w.errors.append(f"create {name}: {r.returncode} {r.stderr.decode().strip()}")
                    i += 1
                    continue
                cid = r.stdout.decode().strip()
                w.created.append(cid)
                for args in (("start", cid), ("stop", "-t", "1", cid)):
                    r = _run(root, *args)
                    if r.returncode != 0:
                        w.errors.append(f"{args[0]} {name}: {r.returncode} {r.stderr.decode().strip()}")
            r = _run(root, "rm", "-f", cid)
            if r.returncode != 0:
                w.errors.append(f"rm {name}: {r.returncode} {r.stderr.decode().strip()}")
            else:
                w.removed.append(cid)
            w.cycles += 1
        except Exception as exc:  # noqa: BLE001 - a timeout is a finding, recorded
            w.errors.append(f"{name}: {exc!r}")
        i += 1


def observe(root, until: float, seen: list[list[dict]], problems: list[str]) -> None:
    """List `ps -a` while the workers run; names must be unique in every listing."""
    while time.monotonic() < until:
        r = _run(root, "ps", "-a", "--no-trunc", "--format", "json")
        if r.returncode != 0:
            problems.append(f"ps -a failed under load: {r.stderr.decode().strip()}")
        else:
            rows = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
            seen.append(rows)
            for key in ("Names", "ID"):
                dup = [k for k, c in Counter(row[key] for row in rows).items() if c > 1]
                if dup:
                    problems.append(f"ps -a lists {key} {dup} twice")
        time.sleep(0.5)


def run_load(root, seconds: float) -> None:
    """The load run and its checks."""
    until = time.monotonic() + seconds
    workers = [Worker(n) for n in range(WORKERS)]
    seen: list[list[dict]] = []
    problems: list[str] = []
    threads = [threading.Thread(target=worker_loop, args=(root, w, until)) for w in workers]
    threads.append(threading.Thread(target=observe, args=(root, until, seen, problems)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 600)
        assert not t.is_alive(), "a worker hangs"
    created = [c for w in workers for c in w.created]
    removed = [c for w in workers for c in w.removed]
    errors = [e for w in workers for e in w.errors]
    cycles = sum(w.cycles for w in workers)
    print(f"load: {WORKERS} CLIs, {seconds:.0f}s, {cycles} cycles, {len(created)} containers, {len(errors)} errors")
    assert cycles >= WORKERS, "the load did not run"
    # no duplicate: an ID is printed by one create only
    assert len(created) == len(set(created)), "one ID printed by two creates"
    # nothing unknown: every container the observer saw was printed by some create
    unknown = {row["ID"] for rows in seen for row in rows} - set(created)
    assert not unknown, f"ps -a listed containers nobody created: {sorted(unknown)[:5]}"
    # nothing lost or left: every created container was removed by its own rm, and ps -a is empty
    assert sorted(created) == sorted(removed), (
        f"created but not removed: {sorted(set(created) - set(removed))[:5]}; errors: {errors[:5]}")
    assert problems == [], problems[:5]
    assert errors == [], "commands failed under load:\n  " + "\n  ".join(errors[:10])
    assert vl(root, "ps", "-aq").stdout == b""
    assert sorted(os.listdir(root / "containers" / ".names")) == []
    check_store(root)
    cleanup_with_cli(root, all_images=True)


def test_eight_parallel_clis(root):
    run_load(root, float(os.environ.get("VIRTLAB_LOAD_SECONDS", "60")))


@pytest.mark.slow
def test_eight_parallel_clis_for_minutes(root):
    run_load(root, float(os.environ.get("VIRTLAB_LOAD_SLOW_SECONDS", "300")))

"""density names the limit that stopped it, on real native instances: open files, the suite's cap, the host's limits."""

import json
import subprocess
import sys
import textwrap

from bench.workloads.density import threads_in_use

SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from bench import backends
    from bench.workloads.base import Context
    from bench.workloads.density import Density

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    root = Path(sys.argv[1])
    b = backends.create("native", root, root / "work")
    b.prepare(None)
    ctx = Context(run_id="t", params={"density": {"cap": None, "max_seconds": 120, "settle_s": 0.1}})
    samples = Density().run_once(b, ctx)
    count = next(s for s in samples if s.metric == "density.count")
    print(json.dumps({"n": count.value, "meta": count.metadata, "live": len(b.live()),
                      "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))
""")


def test_density_stops_at_the_open_file_limit_and_says_so(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    meta = out["meta"]
    assert meta["stopped_by"].startswith("nofile:"), meta
    assert "limit 64 (hard 64)" in meta["stopped_by"]
    assert meta["capped_by_suite"] is False
    # Every native instance holds one pipe here; the count stops below 90% of 64 open files.
    assert 20 < out["n"] < 58
    assert meta["at_stop"]["instances"] == out["n"] and meta["at_stop"]["open_fds"] > 0.9 * 64
    assert {"pid_max", "threads_max", "nofile_soft"} <= set(meta["limits"])
    assert out["live"] == 0 and out["soft"] == 64


def test_threads_in_use_counts_threads_not_processes():
    import os

    procs = sum(1 for e in os.listdir("/proc") if e.isdigit())
    assert threads_in_use() >= procs * 0.9  # a race with exiting processes at most

"""Runs bench_network.py (marker bench: never part of `make test`); the numbers go to docs/network.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.bench]

HERE = Path(__file__).resolve().parent


def test_network_benchmark(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, str(HERE / "bench_network.py"), "--n", "100", "--json", str(out)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    print(json.dumps(res, indent=1))
    assert res["attach_detach"]["n"] == 100
    for key in ("attach_ms_median", "attach_with_port_ms_median", "detach_live_netns_ms_median"):
        assert res["attach_detach"][key] > 0
    assert res["ab_versus_iproute2"]["ratio"] > 0
    assert set(res["loopback_path"]) >= {"direct_container_ip_us_median", "dnat_127.0.0.1_us_median"}

"""Networks stay apart on a host that forwards IPv4 (docker's DOCKER-ISOLATION), with nftables and iptables."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@pytest.mark.parametrize("kind", ["nftables", "iptables"])
def test_networks_do_not_reach_each_other_through_a_forwarding_host(kind, tmp_path):
    """Run in a private netns with ip_forward=1 there: the host's own sysctl and rules stay untouched."""
    tool = "nft" if kind == "nftables" else "iptables"
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    script = (f"mount -t sysfs none /sys && exec {sys.executable} {HERE / 'isolated_forwarding.py'} {kind} "
              f"{tmp_path} {REPO}")
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert out["backend"] == kind
    assert out["same-network"] == "True"  # layer 2 on one bridge: untouched
    assert out["other-gateway"] == "True"  # the host's address on the other bridge: INPUT, not FORWARD
    assert out["a-to-b"] == out["b-to-a"] == "False"
    assert out["a-to-other-store"] == out["other-store-to-a"] == "False"
    assert out["rules-name-iso2"] == "True"
    assert out["a-to-b-without-rules"] == "True"  # the control: forwarding is on, the rules are what block
    assert out["rules-name-iso2-after-rm"] == "False"

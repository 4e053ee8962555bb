"""Networks stay apart on a host that forwards IPv4 (docker's DOCKER-ISOLATION), with nftables and iptables."""

from __future__ import annotations

import shutil

import pytest
from netns_helpers import run_isolated

pytestmark = pytest.mark.root


@pytest.mark.parametrize("kind", ["nftables", "iptables"])
def test_networks_do_not_reach_each_other_through_a_forwarding_host(kind, tmp_path):
    """Run in a private netns with ip_forward=1 there: the host's own sysctl and rules stay untouched."""
    tool = "nft" if kind == "nftables" else "iptables"
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    out = run_isolated("isolated_forwarding.py", kind, str(tmp_path))
    assert out["backend"] == kind
    assert out["same-network"] == "True"  # layer 2 on one bridge: untouched
    assert out["other-gateway"] == "True"  # the host's address on the other bridge: INPUT, not FORWARD
    assert out["a-to-b"] == out["b-to-a"] == "False"
    assert out["a-to-other-store"] == out["other-store-to-a"] == "False"
    assert out["rules-name-iso2"] == "True"
    assert out["a-to-b-without-rules"] == "True"  # the control: forwarding is on, the rules are what block
    assert out["rules-name-iso2-after-rm"] == "False"

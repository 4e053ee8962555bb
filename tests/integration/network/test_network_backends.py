"""Both firewall backends end to end, each inside a private network namespace (nothing touches the host)."""

from __future__ import annotations

import shutil

import pytest
from netns_helpers import run_isolated

pytestmark = pytest.mark.root


@pytest.fixture(params=["nftables", "iptables"])
def kind(request) -> str:
    """Each firewall backend whose tool is installed."""
    tool = "nft" if request.param == "nftables" else "iptables"
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    return request.param


def test_port_publishing_with_each_backend(kind, tmp_path):
    out = run_isolated("isolated_publish.py", kind, str(tmp_path), timeout=120)
    assert out["backend"] == kind
    gateway = out["reply-gateway"].split()[1]
    assert out["reply-loopback"] == f"hi {gateway}"  # masqueraded to the bridge address
    assert out["rules-while-attached"] == "True"
    assert out["rules-after-detach"] == "False"
    assert out["ours-after-teardown"] == "False"


def test_networks_do_not_reach_each_other_through_a_forwarding_host(kind, tmp_path):
    """docker's DOCKER-ISOLATION: with ip_forward=1 (set in the private netns only) networks stay apart."""
    out = run_isolated("isolated_forwarding.py", kind, str(tmp_path))
    assert out["backend"] == kind
    assert out["same-network"] == "True"  # layer 2 on one bridge: untouched
    assert out["other-gateway"] == "True"  # the host's address on the other bridge: INPUT, not FORWARD
    assert out["a-to-b"] == out["b-to-a"] == "False"
    assert out["a-to-other-store"] == out["other-store-to-a"] == "False"
    assert out["rules-name-iso2"] == "True"
    assert out["a-to-b-without-rules"] == "True"  # the control: forwarding is on, the rules are what block
    assert out["rules-name-iso2-after-rm"] == "False"

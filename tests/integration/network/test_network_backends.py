"""Both firewall backends end to end, each inside a private network namespace (nothing touches the host)."""

from __future__ import annotations

import shutil

import pytest
from netns_helpers import run_isolated

pytestmark = pytest.mark.root


@pytest.mark.parametrize("kind", ["nftables", "iptables"])
def test_port_publishing_with_each_backend(kind, tmp_path):
    tool = "nft" if kind == "nftables" else "iptables"
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    out = run_isolated("isolated_publish.py", kind, str(tmp_path), timeout=120)
    assert out["backend"] == kind
    gateway = out["reply-gateway"].split()[1]
    assert out["reply-loopback"] == f"hi {gateway}"  # masqueraded to the bridge address
    assert out["rules-while-attached"] == "True"
    assert out["rules-after-detach"] == "False"
    assert out["ours-after-teardown"] == "False"

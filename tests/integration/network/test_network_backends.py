"""Both firewall backends end to end, each inside a private network namespace (nothing touches the host)."""

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
def test_port_publishing_with_each_backend(kind, tmp_path):
    tool = "nft" if kind == "nftables" else "iptables"
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    script = f"mount -t sysfs none /sys && exec {sys.executable} {HERE / 'isolated_publish.py'} {kind} {tmp_path} {REPO}"
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert out["backend"] == kind
    gateway = out["reply-gateway"].split()[1]
    assert out["reply-loopback"] == f"hi {gateway}"  # masqueraded to the bridge address
    assert out["rules-while-attached"] == "True"
    assert out["rules-after-detach"] == "False"
    assert out["ours-after-teardown"] == "False"

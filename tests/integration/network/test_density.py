"""The Linux bridge port limit, for real: 1023 containers on one network, then a clear error (slow)."""

from __future__ import annotations

import os
import subprocess

import pytest

from runtime.network.errors import BridgeFull
from runtime.network.links import BR_MAX_PORTS

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _netns(path: str) -> str:
    open(path, "w").close()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    return path


def test_bridge_takes_1023_ports_then_says_it_is_full(nm, tmp_path):
    spaces = []
    try:
        for i in range(BR_MAX_PORTS + 1):
            spaces.append(_netns(str(tmp_path / f"n{i}")))
        for i in range(BR_MAX_PORTS):
            nm.attach(f"c{i:05d}", spaces[i])
        bridge = nm.get("bridge")["bridge"]
        assert len(os.listdir(f"/sys/class/net/{bridge}/brif")) == BR_MAX_PORTS
        links = set(os.listdir("/sys/class/net"))
        with pytest.raises(BridgeFull, match="at most 1023 ports"):
            nm.attach("overflow", spaces[-1])
        assert set(os.listdir("/sys/class/net")) == links
        # and the kernel agrees: one more port on this bridge is refused (EXFULL)
        r = subprocess.run(["ip", "link", "add", "vlvoverflow", "type", "veth", "peer", "name", "vlvoverflow1"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        try:
            r = subprocess.run(["ip", "link", "set", "vlvoverflow", "master", bridge], capture_output=True, text=True)
            assert r.returncode != 0 and "Exchange full" in r.stderr, r.stderr
        finally:
            subprocess.run(["ip", "link", "del", "vlvoverflow"], capture_output=True)
    finally:
        for i in range(len(spaces)):
            nm.detach(f"c{i:05d}")
        for p in spaces:
            subprocess.run(["umount", p], capture_output=True)
            os.unlink(p)

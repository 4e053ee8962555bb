"""`virtlab image build debian`: debootstrap from the host's configured Debian mirror (slow, needs the mirror)."""

from __future__ import annotations

import pytest
from vlcli import out, vl

from runtime.image.store import ImageStore

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_build_debian_with_benchmark_tools(tmp_path):
    r = vl(tmp_path, "image", "build", "debian")
    assert "Successfully tagged debian:bookworm" in out(r)
    assert "debootstrap bookworm from" in r.stderr.decode()
    store = ImageStore(tmp_path / "image")
    img = store.resolve("debian:bookworm")
    fs = store.snapshot_dirs(img)[0]
    for tool in ("sysbench", "fio", "iperf3", "stress-ng", "bash"):
        assert (fs / "usr" / "bin" / tool).exists(), tool
    assert img.config["config"]["Cmd"] == ["bash"]
    # A second build keeps the image (and the package cache makes --rebuild cheaper).
    assert "already built" in vl(tmp_path, "image", "build", "debian").stderr.decode()
    assert (tmp_path / "cache" / "debootstrap").is_dir()

"""`virtlab network connect/disconnect` with a real container of the engine."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


def vl(root, *args):
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def engine(tmp_path):
    from runtime.engine import Engine
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    root = tmp_path / "root"
    root.mkdir()
    images = ImageStore(root / "image")
    build_busybox(images, ref="busybox:latest")
    eng = Engine(root, image_store=images)
    yield eng
    for c in eng.list(all=True):
        eng.remove(c.id, force=True, volumes=True)
    from runtime.network import NetworkManager

    nm = NetworkManager(root / "network")
    nm.teardown()
    nm.close()


def test_connect_and_disconnect_a_running_container(engine):
    from runtime.engine import ContainerSpec

    root = engine.root
    assert vl(root, "network", "create", "--subnet", "10.234.0.0/24", "side").returncode == 0
    c = engine.create(ContainerSpec(image="busybox", cmd=["sleep", "120"], name="web"))
    engine.start(c.id)
    r = vl(root, "network", "connect", "--alias", "www", "side", "web")
    assert r.returncode == 0, r.stderr
    out = engine.exec(c.id, ["ip", "-4", "addr", "show", "eth1"]).stdout.decode()
    assert "10.234.0.2/24" in out
    r = vl(root, "network", "connect", "side", "web")
    assert r.returncode == 125 and "already attached" in r.stderr
    r = vl(root, "network", "inspect", "side", "-f", "{{json .Containers}}")
    assert c.id in r.stdout and '"Name": "web"' in r.stdout
    r = vl(root, "network", "rm", "side")
    assert r.returncode == 125 and "active endpoints (web)" in r.stderr
    r = vl(root, "network", "disconnect", "side", "web")
    assert r.returncode == 0, r.stderr
    assert "eth1" not in engine.exec(c.id, ["ip", "-br", "link"]).stdout.decode()
    r = vl(root, "network", "disconnect", "side", "web")
    assert r.returncode == 125 and "is not connected to network side" in r.stderr
    assert vl(root, "network", "disconnect", "-f", "side", "web").returncode == 0
    assert vl(root, "network", "rm", "side").returncode == 0


def test_connect_bad_input(engine):
    from runtime.engine import ContainerSpec

    root = engine.root
    vl(root, "network", "create", "other")
    r = vl(root, "network", "connect", "other", "nosuchcontainer")
    assert r.returncode == 125 and "nosuchcontainer" in r.stderr
    c = engine.create(ContainerSpec(image="busybox", cmd=["true"], name="stopped"))
    r = vl(root, "network", "connect", "other", "stopped")
    assert r.returncode == 125 and "is not running" in r.stderr
    d = engine.create(ContainerSpec(image="busybox", cmd=["sleep", "60"], name="isolated", network="none"))
    engine.start(d.id)
    r = vl(root, "network", "connect", "other", "isolated")
    assert r.returncode == 125 and "no network namespace of its own" in r.stderr
    r = vl(root, "network", "connect", "nonet", "isolated")
    assert r.returncode == 125
    from runtime.network import NetworkManager

    assert NetworkManager(root / "network").endpoints(c.id) == []

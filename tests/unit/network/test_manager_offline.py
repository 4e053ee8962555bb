"""NetworkManager paths that need no root and no kernel objects: validation, records, lazy imports."""

import json
import os
import subprocess
import sys

import pytest

from runtime.network.errors import (
    InvalidArgument,
    NetworkNotFound,
    PredefinedNetwork,
)
from runtime.network.manager import NetworkManager, check_container_id, mac_for, veth_name

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_default_network_record_is_made_without_kernel_objects(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    nets = nm.list()
    assert [n["name"] for n in nets] == ["bridge"]
    assert nets[0]["default"] and nets[0]["bridge"] == "virtlab0"
    assert nm.list()[0]["id"] == nets[0]["id"]  # stable
    assert oct(os.stat(tmp_path / "network").st_mode & 0o777) == "0o700"


def test_inspect_shape(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    doc = nm.inspect("bridge")
    for key in ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Containers", "Options"):
        assert key in doc
    assert doc["IPAM"]["Config"][0]["Subnet"] == nm.get("bridge")["subnet"]
    assert doc["Containers"] == {}
    json.dumps(doc)


@pytest.mark.parametrize("name", ["", "a b", "../x", "x/y", "-x", "x" * 129, "a\nb"])
def test_bad_network_names(tmp_path, name):
    with pytest.raises(InvalidArgument):
        NetworkManager(tmp_path / "network").create(name)
    assert not (tmp_path / "network" / "networks").exists() or not os.listdir(tmp_path / "network" / "networks")


@pytest.mark.parametrize("name", ["bridge", "host", "none"])
def test_predefined_names(tmp_path, name):
    nm = NetworkManager(tmp_path / "network")
    with pytest.raises(PredefinedNetwork):
        nm.create(name)
    with pytest.raises(PredefinedNetwork):
        nm.remove(name)


def test_bad_subnet_and_driver_create_nothing(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    with pytest.raises(InvalidArgument, match="invalid subnet"):
        nm.create("n1", subnet="10.0.0.0/99")
    with pytest.raises(InvalidArgument, match="driver"):
        nm.create("n1", driver="overlay")
    with pytest.raises(InvalidArgument, match="--gateway needs --subnet"):
        nm.create("n1", gateway="10.0.0.1")
    with pytest.raises(InvalidArgument, match="invalid gateway"):
        nm.create("n1", subnet="10.77.0.0/24", gateway="10.78.0.1")
    assert [n["name"] for n in nm.list()] == ["bridge"]


def test_unknown_network(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    with pytest.raises(NetworkNotFound, match="network nope not found"):
        nm.remove("nope")
    with pytest.raises(NetworkNotFound):
        nm.inspect("nope")


def test_attach_validates_before_touching_anything(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    with pytest.raises(InvalidArgument):
        nm.attach("../etc", "/run/netns/x")
    with pytest.raises(InvalidArgument):
        nm.attach("c1", "/run/netns/x", name="bad name")
    with pytest.raises(InvalidArgument):
        nm.attach("c1", "/run/netns/x", aliases=["ok", "x\n1.2.3.4 evil"])
    with pytest.raises(InvalidArgument):
        nm.attach("c1", "/run/netns/x", network="none")
    with pytest.raises(NetworkNotFound):
        nm.attach("c1", "/run/netns/x", network="nope")


def test_hosts_for_a_container_without_endpoints(tmp_path):
    nm = NetworkManager(tmp_path / "network")
    assert nm.hosts_for("c1") == ""  # only the container's and its peers' lines; engine adds localhost
    assert nm.hosts_path("c1") == tmp_path / "network" / "hosts" / "c1"


def test_names_and_ids():
    assert len(veth_name("a" * 64, "b" * 64)) == 15
    assert veth_name("a", "n1") != veth_name("a", "n2")
    assert mac_for("10.88.0.2") == "02:76:0a:58:00:02"
    for bad in ("", "a/b", "..", "a b", "x" * 200):
        with pytest.raises(InvalidArgument):
            check_container_id(bad)


def test_lean_paths_do_not_import_pyroute2(tmp_path):
    code = (
        "import sys\n"
        "from runtime.network import NetworkManager, PortSpec, parse_publish\n"
        f"nm = NetworkManager({str(tmp_path / 'network')!r})\n"
        "nm.list(); nm.hosts_for('c1'); nm.detach('c1'); parse_publish('8080:80')\n"
        "assert 'pyroute2' not in sys.modules, 'pyroute2 imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cli_network_ls_does_not_import_pyroute2(tmp_path):
    code = (
        "import sys\nfrom bench.cli import cli\n"
        f"cli.main(['--root', {str(tmp_path)!r}, 'network', 'ls'], standalone_mode=False)\n"
        "assert 'pyroute2' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bridge" in r.stdout and "NETWORK ID" in r.stdout

"""runtime.image.values: the slotted classes behave as the dataclasses they replaced (==, repr, frozen, asdict)."""

from __future__ import annotations

import copy
import pickle

import pytest

from runtime.engine.engine import Container, ExecResult
from runtime.engine.parse import Port, RestartPolicy, Volume
from runtime.engine.spec import ContainerSpec
from runtime.image.limits import Limits
from runtime.image.reference import Reference
from runtime.image.store import Image, Layer


def test_equality_and_repr_like_a_dataclass():
    assert Port(80) == Port(80, "tcp", "", 0)
    assert Port(80) != Port(81)
    assert Port(80) != (80, "tcp", "", 0)  # not a tuple
    assert repr(Port(80, host_port=8080)) == "Port(container_port=80, proto='tcp', host_ip='', host_port=8080)"
    assert repr(ExecResult(0, b"x", b"")) == "ExecResult(exit_code=0, stdout=b'x', stderr=b'')"
    assert Layer("a", "b", 1, "m") == Layer("a", "b", 1, "m")


def test_frozen_fields_are_read_only_and_hashable():
    p = RestartPolicy("on-failure", 3)
    with pytest.raises(AttributeError):
        p.max_retries = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.name
    with pytest.raises(AttributeError):
        p.other = 1  # type: ignore[attr-defined]
    assert p.max_retries == 3
    assert len({Reference(None, "busybox", "latest", None), Reference(None, "busybox", "latest", None)}) == 1
    assert Limits().max_symlinks == 40 and Limits(max_entries=5).max_entries == 5
    assert hash(Volume("/a")) == hash(Volume("/a", "", "volume", False, ()))


def test_mutable_values_are_unhashable_and_settable():
    c = Container("id", "n", "busybox", "created", {})
    c.status = "running"
    assert c.status == "running"
    with pytest.raises(TypeError):
        hash(c)
    with pytest.raises(AttributeError):
        c.other = 1  # type: ignore[attr-defined]


def test_as_dict_copies_containers():
    v = Volume("/data", "vol", "volume", True, ("ro",))
    assert v.as_dict() == {"target": "/data", "source": "vol", "kind": "volume", "read_only": True,
                           "options": ("ro",)}
    img = Image("sha256:1", "sha256:2", {}, {"a": [1]}, [Layer("a", "b", 1, "m")])
    d = img.as_dict()
    assert d["layers"] == [{"digest": "a", "diff_id": "b", "size": 1, "media_type": "m"}]
    assert d["refs"] == [] and d["manifest_size"] == 0
    d["config"]["a"].append(2)
    assert img.config == {"a": [1]}


def test_container_spec_round_trip_and_defaults():
    s = ContainerSpec("busybox", cmd=["true"], env=["A=1"], network="none")
    d = s.to_dict()
    assert list(d) == list(ContainerSpec.__slots__)
    assert d["env"] == ["A=1"] and d["volumes"] == [] and d["labels"] == {} and d["network"] == "none"
    assert ContainerSpec.from_dict({**d, "unknown": 1}) == s
    d["env"].append("B=2")
    assert s.env == ["A=1"]
    assert ContainerSpec("x").volumes is not ContainerSpec("x").volumes  # each spec its own list


def test_copy_and_pickle_keep_fields():
    img = Image("sha256:1", "sha256:2", {}, {}, [Layer("a", "b", 1, "m")], refs=["x:1"])
    c = copy.copy(img)
    c.refs = []
    assert img.refs == ["x:1"] and c.layers is img.layers
    r = Reference("localhost:5000", "app", "v1", None)
    assert copy.deepcopy(r) == r and pickle.loads(pickle.dumps(r)) == r


def test_replace_makes_a_new_instance_through_init():
    img = Image("sha256:1", "sha256:2", {}, {}, [], refs=["x:1"])
    new = img.replace(refs=["y:1"])
    assert new.refs == ["y:1"] and img.refs == ["x:1"] and new.id == img.id and new is not img
    p = Port(80).replace(host_port=8080)
    assert p == Port(80, "tcp", "", 8080)
    with pytest.raises(TypeError):
        Port(80).replace(nope=1)

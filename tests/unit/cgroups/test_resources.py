"""Validation of linux.resources and the v1 -> v2 conversions."""

from __future__ import annotations

import pytest
from cgfake import REAL_FROM_SYSTEM

from runtime.oci.cgroups.errors import InvalidResources
from runtime.oci.cgroups.resources import (
    HostFacts,
    blkio_weight_to_io_weight,
    format_pagesize,
    hugepage_sizes,
    parse_list,
    shares_to_weight,
    swap_to_v2,
    validate,
)

HOST = HostFacts(cpus=frozenset({0, 1}), mems=frozenset({0}), hugepage_sizes=frozenset({"2MB", "1GB"}))


def test_shares_to_weight_crun_curve():
    assert shares_to_weight(0) == 0
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 100
    assert shares_to_weight(262144) == 10000
    values = [shares_to_weight(s) for s in (2, 10, 100, 512, 1024, 2048, 10000, 100000, 262144)]
    assert values == sorted(values) and all(1 <= v <= 10000 for v in values)


def test_blkio_to_io_weight():
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(1000) == 10000
    assert blkio_weight_to_io_weight(500) == 4950


def test_swap_to_v2():
    assert swap_to_v2(None, 100) is None
    assert swap_to_v2(-1, 100) == "max"
    assert swap_to_v2(300, 100) == "200"
    with pytest.raises(InvalidResources):
        swap_to_v2(300, -1)


def test_parse_list():
    assert parse_list("0-2,5") == {0, 1, 2, 5}
    assert parse_list("") == set()
    for bad in ("a", "3-1", "1,,2", "-1"):
        with pytest.raises(ValueError):
            parse_list(bad)


def test_pagesize_names(tmp_path):
    assert format_pagesize(2 << 20) == "2MB"
    assert format_pagesize(1 << 30) == "1GB"
    assert format_pagesize(64 << 10) == "64KB"
    d = tmp_path / "kernel" / "mm" / "hugepages"
    (d / "hugepages-2048kB").mkdir(parents=True)
    (d / "hugepages-1048576kB").mkdir()
    assert hugepage_sizes(str(tmp_path)) == ["1GB", "2MB"]


def test_host_facts_from_sysfs(tmp_path):
    (tmp_path / "devices/system/cpu").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/online").write_text("0-3\n")
    facts = REAL_FROM_SYSTEM(str(tmp_path))  # the real one, not the fixture's
    assert facts.cpus == frozenset({0, 1, 2, 3})
    assert facts.mems == frozenset({0})


GOOD = {
    "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 2 << 30, "kernel": -1, "kernelTCP": 1 << 20,
               "swappiness": 0, "disableOOMKiller": False},
    "cpu": {"shares": 1024, "quota": 100000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 0},
    "pids": {"limit": -1},
    "blockIO": {"weight": 10, "leafWeight": 1000, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
    "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
}


def test_good_config_passes():
    validate(GOOD, HOST, "v1")
    validate({}, HOST, "v2")
    validate(None, HOST, "v2")


@pytest.mark.parametrize(
    "resources, message",
    [
        ({"memory": {"limit": 0}}, "memory.limit"),
        ({"memory": {"limit": -2}}, "memory.limit"),
        ({"memory": {"limit": "1g"}}, "must be an integer"),
        ({"memory": {"limit": True}}, "must be an integer"),
        ({"memory": {"limit": 100, "swap": 50}}, "at least memory.limit"),
        ({"memory": {"swappiness": 101}}, "swappiness"),
        ({"memory": {"disableOOMKiller": "yes"}}, "true or false"),
        ({"cpu": {"shares": 1}}, "cpu.shares"),
        ({"cpu": {"shares": 300000}}, "cpu.shares"),
        ({"cpu": {"quota": 0}}, "never let the container run"),
        ({"cpu": {"quota": 999}}, "cpu.quota"),
        ({"cpu": {"period": 100}}, "cpu.period"),
        ({"cpu": {"period": 2000000}}, "cpu.period"),
        ({"cpu": {"cpus": "0-3"}}, "2,3 not online"),
        ({"cpu": {"cpus": "zero"}}, "cpu.cpus"),
        ({"cpu": {"mems": "1"}}, "cpu.mems"),
        ({"cpu": {"idle": 2}}, "cpu.idle"),
        ({"pids": {"limit": 0}}, "forbids every process"),
        ({"pids": {"limit": "10"}}, "pids.limit"),
        ({"blockIO": {"weight": 5}}, "blockIO.weight"),
        ({"blockIO": {"weightDevice": [{"major": 8, "weight": 100}]}}, "minor"),
        ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}}, "rate"),
        ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}, "not a huge page size"),
        ({"hugepageLimits": [{"pageSize": "2MB"}]}, "limit"),
        ({"network": {"priorities": [{"name": "eth0 1\nlo", "priority": 1}]}}, "interface name"),
        ({"devices": [{"allow": True, "type": "x"}]}, r"devices\[0\]\.type"),
        ({"devices": [{"allow": True, "access": "rwx"}]}, r"devices\[0\]\.access"),
        ({"devices": [{"type": "c"}]}, r"devices\[0\]\.allow"),
        ({"devices": {"allow": True}}, "must be a list"),
        ({"memory": []}, "must be an object"),
        ({"unified": {"memory.high": "1"}}, "cgroup v2"),
    ],
)
def test_bad_values(resources, message):
    with pytest.raises(InvalidResources, match=message):
        validate(resources, HOST, "v1")


def test_all_problems_reported_at_once():
    with pytest.raises(InvalidResources) as info:
        validate({"memory": {"limit": 0}, "pids": {"limit": 0}, "cpu": {"quota": 0}}, HOST, "v1")
    text = str(info.value)
    assert "memory.limit" in text and "pids.limit" in text and "cpu.quota" in text
    assert info.value.exit_code == 125


def test_v2_specific():
    validate({"unified": {"memory.high": "1000", "io.weight": "default 200"}}, HOST, "v2")
    with pytest.raises(InvalidResources, match="real-time"):
        validate({"cpu": {"realtimePeriod": 1000000}}, HOST, "v2")
    with pytest.raises(InvalidResources, match="unified key"):
        validate({"unified": {"memory/../x": "1"}}, HOST, "v2")
    with pytest.raises(InvalidResources, match="one-line"):
        validate({"unified": {"memory.high": "1\n2"}}, HOST, "v2")


def test_cpu_count_problem():
    from runtime.oci.cgroups.resources import cpu_count_problem

    assert cpu_count_problem(200000, 100000, HOST) is None  # exactly 2 CPUs
    assert "asks for 2.5 CPUs, but the host has only 2" in cpu_count_problem(250000, 100000, HOST)
    assert cpu_count_problem(-1, 100000, HOST) is None
    assert cpu_count_problem(None, 100000, HOST) is None
    validate({"cpu": {"quota": 400000, "period": 100000, "cpus": "0"}}, HOST, "v1")  # apply takes it (OCI)

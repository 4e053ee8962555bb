import pytest

from runtime.engine import spec as specmod
from runtime.engine.errors import InvalidArgument
from runtime.engine.spec import ContainerSpec


def norm(**kw):
    return specmod.normalise(ContainerSpec(image="busybox", **kw))


def config(n, **kw):
    args = dict(args=["sh"], env=["PATH=/bin"], cwd="/", uid=0, gid=0, groups=[], hostname="h", tty=False, norm=n,
                read_only=False, cgroups_path="/virtlab-x", netns=None, mounts=[])
    args.update(kw)
    return specmod.oci_config(**args)


def test_default_config_is_dockers():
    c = config(norm(network="none"))
    caps = c["process"]["capabilities"]["bounding"]
    assert sorted(caps) == sorted(specmod.DEFAULT_CAPS) and len(caps) == 14
    assert "/proc/kcore" in c["linux"]["maskedPaths"]
    assert "/proc/sys" in c["linux"]["readonlyPaths"]
    ns = {n["type"] for n in c["linux"]["namespaces"]}
    assert ns == {"pid", "ipc", "uts", "mount", "network"}
    denied = c["linux"]["seccomp"]["syscalls"][0]["names"]
    assert "kexec_load" in denied and "mount" in denied and "read" not in denied
    assert c["hostname"] == "h"
    assert {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024} in c["process"]["rlimits"]


def test_host_network_shares_uts_and_net():
    c = config(norm(network="host"))
    ns = {n["type"] for n in c["linux"]["namespaces"]}
    assert "network" not in ns and "uts" not in ns and "hostname" not in c


def test_caps_add_drop_and_sys_admin_seccomp():
    c = config(norm(network="none", cap_add=["sys_admin"], cap_drop=["NET_RAW", "CAP_MKNOD"]))
    caps = c["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps
    assert "mount" not in c["linux"]["seccomp"]["syscalls"][0]["names"]
    c = config(norm(network="none", cap_drop=["ALL"]))
    assert c["process"]["capabilities"]["bounding"] == []
    with pytest.raises(InvalidArgument, match="unknown capability"):
        norm(cap_add=["CAP_FLY"])


def test_resources_to_oci():
    n = norm(network="none", memory="64m", cpus="0.5", pids_limit=100, cpu_shares=512, cpuset_cpus="0")
    r = specmod.oci_resources(n["resources"])
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0"}
    assert r["pids"] == {"limit": 100}


@pytest.mark.parametrize("kw,match", [
    (dict(memory="1m"), "minimum"),
    (dict(memory="64m", memory_swap="32m"), "at least"),
    (dict(memory_swap="64m"), "set --memory"),
    (dict(memory="64m", memory_reservation="128m"), "below --memory"),
    (dict(cpus="1", cpu_quota=50000), "conflicting"),
    (dict(cpu_quota=10), "minimum"),
    (dict(pids_limit=0), "pids-limit 0"),
    (dict(blkio_weight=5), "blkio-weight"),
    (dict(restart="always", auto_remove=True), "--rm"),
    (dict(workdir="relative"), "absolute"),
    (dict(workdir="/proc/self/fd/7"), "root"),
    (dict(hostname="bad host"), "hostname"),
    (dict(security_opt=["seccomp=/nonexistent.json"]), "profile"),
    (dict(security_opt=["bogus"]), "security-opt"),
    (dict(network="none", ports=["80:80"]), "publish"),
    (dict(network="a/b"), "network"),
    (dict(image=""), "image"),
])
def test_normalise_rejects(kw, match):
    kw.setdefault("image", "busybox")
    with pytest.raises(InvalidArgument, match=match):
        specmod.normalise(ContainerSpec(**kw))


def test_spec_round_trip():
    s = ContainerSpec(image="busybox", cmd=["true"], env={"A": "1"}, labels={"k": "v"})
    assert ContainerSpec.from_dict(s.to_dict()) == s


def test_docker_seccomp_profile(tmp_path):
    import json

    p = tmp_path / "p.json"
    p.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                             "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}))
    c = config(norm(network="none", security_opt=[f"seccomp={p}"]))
    assert c["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    c = config(norm(network="none", security_opt=["seccomp=unconfined"]))
    assert "seccomp" not in c["linux"]

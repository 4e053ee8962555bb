"""runtime.cli.runcore.spec(): the ContainerSpec of `run`/`create`'s options, built from runopts' table."""

from __future__ import annotations

import pytest

from runtime.cli import runcore, runopts
from runtime.engine.spec import ContainerSpec

EVERY_OPTION = [
    "-i", "-t", "--name", "web", "-e", "A=1", "-e", "B=2", "--env-file", "/e1", "-v", "/src:/dst:ro",
    "-p", "8080:80", "-P", "-w", "/work", "-u", "1000:1000", "--entrypoint", "/bin/sh", "--hostname", "h1",
    "--network", "none", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
    "--kernel-memory", "16m", "--cpus", "1.5", "-c", "512", "--cpu-quota", "50000", "--cpu-period", "100000",
    "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "950000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0",
    "--pids-limit", "100", "--blkio-weight", "300", "--restart", "on-failure:3", "--init", "--read-only",
    "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--security-opt", "no-new-privileges", "--ulimit",
    "nofile=1024:1024", "-l", "k=v", "--stop-signal", "SIGINT", "--stop-timeout", "7", "--runtime", "runc",
    "--rm", "-d", "busybox", "echo", "hi",
]


def _spec(argv: list[str]) -> ContainerSpec:
    params = runopts.parse_run(argv)
    assert params is not None, argv
    return runcore.spec(params.pop("image"), params.pop("command"), params)  # type: ignore[arg-type]


def test_every_field_but_image_and_cmd_is_one_option():
    fields = [runcore.FIELD.get(dest, dest) for _names, dest, _kind, _default, _help in runopts.SHARED]
    assert len(fields) == len(set(fields))
    assert set(fields) == set(ContainerSpec.__slots__) - {"image", "cmd"}
    assert set(runcore.FIELD) <= {dest for _names, dest, _kind, _default, _help in runopts.SHARED}


def test_every_option_lands_in_its_field():
    want = ContainerSpec(
        image="busybox", cmd=["echo", "hi"], entrypoint=["/bin/sh"], name="web", env=["A=1", "B=2"],
        env_files=["/e1"], workdir="/work", user="1000:1000", hostname="h1", network="none", tty=True,
        stdin_open=True, volumes=["/src:/dst:ro"], ports=["8080:80"], publish_all=True, memory="64m",
        memory_swap="128m", memory_reservation="32m", kernel_memory="16m", cpus="1.5", cpu_shares="512",
        cpu_quota="50000", cpu_period="100000", cpu_rt_period="1000000", cpu_rt_runtime="950000",
        cpuset_cpus="0-1", cpuset_mems="0", pids_limit="100", blkio_weight="300", restart="on-failure:3",
        init=True, read_only=True, cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], security_opt=["no-new-privileges"],
        ulimits=["nofile=1024:1024"], labels=["k=v"], auto_remove=True, stop_signal="SIGINT", stop_timeout=7,
        runtime="runc",
    )
    got = _spec(EVERY_OPTION)
    assert got == want
    assert all(type(v) is list for v in (got.env, got.volumes, got.labels, got.ulimits))  # not click's tuples


def test_defaults_are_the_specs_own():
    assert _spec(["busybox"]) == ContainerSpec("busybox", env=[], labels=[])  # lists, as given


@pytest.mark.parametrize("given, want", [([], None), (["--entrypoint", ""], []), (["--entrypoint", "/x"], ["/x"])])
def test_entrypoint_unset_cleared_or_one_path(given, want):
    assert _spec([*given, "busybox"]).entrypoint == want

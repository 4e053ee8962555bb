"""The container CLI end to end: docker's exit codes, output shapes, and bad input that creates nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
VIRTLAB = str(Path(sys.executable).parent / "virtlab")


@pytest.fixture
def vl(store_root, image_store):
    """Run `virtlab --root <store> ARGS`; removes every container at the end."""

    def run(*args, input=None, timeout=60):
        return subprocess.run([VIRTLAB, "--root", str(store_root), *args], capture_output=True, text=True,
                              input=input, timeout=timeout)

    yield run
    ids = run("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        run("rm", "-f", "-v", *ids)


def containers_dir(store_root):
    d = store_root / "containers"
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if d.exists() else []


def test_run_exit_codes(vl):
    assert vl("run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    assert vl("run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 3").returncode == 3
    r = vl("run", "--rm", "--network", "none", "busybox", "/nonexistent")
    assert r.returncode == 127, r.stderr
    r = vl("run", "--rm", "--network", "none", "busybox", "/etc")
    assert r.returncode == 126, r.stderr
    r = vl("run", "--rm", "--init", "--network", "none", "busybox", "sh", "-c", "kill -9 $$")  # sh is not PID 1
    assert r.returncode == 137
    assert vl("ps", "-aq").stdout == ""


def test_run_output_env_and_flags(vl, tmp_path):
    envf = tmp_path / "env"
    envf.write_text("FROM_FILE=1\n")
    r = vl("run", "--rm", "--network", "none", "-e", "A=b", "--env-file", str(envf), "-w", "/tmp", "-u", "nobody",
           "--hostname", "box", "busybox", "sh", "-c", "echo $A $FROM_FILE; pwd; id -u; hostname; cat /etc/hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["b", "1", "/tmp", "65534", "box", "box"]
    r = vl("run", "--rm", "--network", "none", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert r.stdout == "via entrypoint\n"
    r = vl("run", "--rm", "--network", "none", "-i", "busybox", "cat", input="piped\n")
    assert r.stdout == "piped\n"


def test_detached_ps_inspect_logs_stop_rm(vl):
    r = vl("run", "-d", "--name", "web", "--network", "none", "--label", "tier=front", "busybox",
           "sh", "-c", "echo started; sleep 60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    ps = vl("ps").stdout.splitlines()
    assert ps[0].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    assert "NAMES" in ps[0] and "STATUS" in ps[0] and "PORTS" in ps[0]
    assert cid[:12] in ps[1] and "Up " in ps[1] and ps[1].endswith("web")
    assert vl("ps", "-q", "-f", "label=tier=front").stdout.strip() == cid[:12]
    assert vl("ps", "-q", "-f", "name=nomatch").stdout == ""
    row = json.loads(vl("ps", "--format", "json").stdout)
    assert row["Names"] == "web" and row["State"] == "running"
    assert vl("ps", "--format", "{{.Names}}:{{.State}}").stdout == "web:running\n"
    info = json.loads(vl("inspect", "web").stdout)
    assert isinstance(info, list) and info[0]["Id"] == cid and info[0]["State"]["Running"] is True
    assert info[0]["Config"]["Labels"]["tier"] == "front"
    assert vl("inspect", "-f", "{{.State.Status}}", "web").stdout == "running\n"
    for _ in range(50):
        if "started" in vl("logs", "web").stdout:
            break
    assert vl("logs", "-t", "web").stdout.split(" ", 1)[1] == "started\n"
    r = vl("rm", "web")
    assert r.returncode == 125 and "stop the container" in r.stderr
    assert vl("stop", "-t", "1", "web").stdout == "web\n"
    assert "Exited (" in vl("ps", "-a").stdout
    assert vl("wait", "web").stdout.strip() in ("137", "143")
    assert vl("rm", "web").returncode == 0
    assert vl("ps", "-aq").stdout == ""


def test_top_stats_port_update(vl):
    cid = vl("run", "-d", "--network", "none", "-m", "64m", "busybox", "sleep", "60").stdout.strip()
    top = vl("top", cid).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and any("sleep 60" in line for line in top[1:])
    st = vl("stats", "--no-stream", cid)
    assert st.returncode == 0, st.stderr
    head, row = st.stdout.splitlines()[:2]
    for col in ("CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"):
        assert col in head
    assert "/ 64MiB" in row
    assert vl("port", cid).stdout == ""
    assert vl("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50", "--restart", "on-failure:2",
              cid).returncode == 0
    info = json.loads(vl("inspect", cid).stdout)[0]["HostConfig"]
    assert info["Memory"] == 128 << 20 and info["PidsLimit"] == 50
    assert info["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert "/ 128MiB" in vl("stats", "--no-stream", cid).stdout
    r = vl("update", "--memory", "1k", cid)
    assert r.returncode == 125
    r = vl("update", "--cpus", "0", cid)
    assert r.returncode == 125
    r = vl("update", "--pids-limit", "0", cid)
    assert r.returncode == 125
    assert json.loads(vl("inspect", cid).stdout)[0]["HostConfig"]["PidsLimit"] == 50  # nothing half-applied


@pytest.mark.parametrize("args,match", [
    (["--name", "a/b"], "invalid container name"),
    (["--name", ".."], "invalid container name"),
    (["--name", "x" * 10_000], "invalid container name"),
    (["-m", "lots"], "--memory"),
    (["--cpus", "0"], "--cpus"),
    (["--cpus", "1000"], "--cpus"),
    (["--pids-limit", "0"], "pids-limit"),
    (["--restart", "sometimes"], "--restart"),
    (["--ulimit", "nofile=2:1"], "--ulimit"),
    (["-p", "99999:80"], "-p"),
    (["-v", "/tmp:relative"], "-v"),
    (["-v", "/tmp:/proc"], "-v"),
    (["-w", "/proc/self/fd/5"], "workdir"),
    (["--cap-add", "CAP_FLY"], "capability"),
    (["--security-opt", "seccomp=/nonexistent"], "profile"),
    (["--network", "none", "-p", "80:80"], "publish"),
])
def test_bad_run_flags_create_nothing(vl, store_root, args, match):
    before = containers_dir(store_root)
    r = vl("run", "--rm", *args, "busybox", "true")
    assert r.returncode == 125, (r.stdout, r.stderr)
    assert match in r.stderr
    assert containers_dir(store_root) == before
    assert vl("ps", "-aq").stdout == ""


def test_unknown_image_and_names(vl, store_root):
    r = vl("run", "--rm", "nosuchimage", "true")
    assert r.returncode == 125 and "nosuchimage" in r.stderr
    assert containers_dir(store_root) == []
    for verb in (["stop"], ["rm"], ["logs"], ["inspect"], ["kill"], ["start"], ["exec"], ["top"], ["port"], ["diff"]):
        r = vl(*verb, "ghost", *(["true"] if verb == ["exec"] else []))
        assert r.returncode in (1, 125) if verb == ["inspect"] else r.returncode == 125, (verb, r.stderr)
        assert "ghost" in r.stderr
    assert vl("create", "--name", "dup", "--network", "none", "busybox", "true").returncode == 0
    r = vl("create", "--name", "dup", "--network", "none", "busybox", "true")
    assert r.returncode == 125 and "already in use" in r.stderr
    assert len(containers_dir(store_root)) == 1
    assert vl("rename", "dup", "a/b").returncode == 125
    assert vl("ps", "-a", "--format", "{{.Names}}").stdout == "dup\n"


def test_exec_cli(vl):
    cid = vl("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.strip()
    r = vl("exec", "-e", "X=1", "-w", "/tmp", cid, "sh", "-c", "echo $X; pwd; exit 5")
    assert r.returncode == 5 and r.stdout.split() == ["1", "/tmp"]
    assert vl("exec", cid, "/nonexistent").returncode == 127
    assert vl("exec", "-i", cid, "cat", input="hello").stdout == "hello"
    assert vl("exec", "-d", cid, "sleep", "1").returncode == 0
    vl("pause", cid)
    assert vl("exec", cid, "true").returncode == 125
    vl("unpause", cid)


def test_volume_cli(vl, store_root):
    assert vl("volume", "create", "--label", "k=v", "data").stdout == "data\n"
    assert "data" in vl("volume", "ls", "-q").stdout.split()
    meta = json.loads(vl("volume", "inspect", "data").stdout)[0]
    assert meta["Labels"] == {"k": "v"} and meta["Mountpoint"].startswith(str(store_root))
    cid = vl("run", "-d", "--network", "none", "-v", "data:/d", "busybox", "sleep", "60").stdout.strip()
    r = vl("volume", "rm", "data")
    assert r.returncode == 125 and "in use" in r.stderr
    vl("rm", "-f", cid)
    assert vl("volume", "rm", "data").returncode == 0
    assert vl("volume", "create", "a/b").returncode == 125
    assert vl("volume", "inspect", "nope").returncode == 125


def test_limits_caps_and_ulimits_reach_the_container(vl):
    r = vl("run", "--rm", "--network", "none", "--ulimit", "nofile=512:512", "--cap-drop", "ALL", "--cap-add", "CHOWN",
           "--pids-limit", "30", "-m", "32m", "busybox", "sh", "-c",
           "ulimit -n; grep CapEff /proc/self/status; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "512"
    assert lines[1].split()[1] == "0000000000000001"  # CAP_CHOWN only
    assert lines[2] == "30"


def test_logs_tail_since_and_export_diff_commit_cp(vl, tmp_path):
    cid = vl("run", "-d", "--network", "none", "busybox", "sh", "-c",
             "for i in 1 2 3 4 5; do echo n$i; done; echo x > /made; sleep 60").stdout.strip()
    for _ in range(100):
        if "n5" in vl("logs", cid).stdout:
            break
    assert vl("logs", "--tail", "2", cid).stdout == "n4\nn5\n"
    assert vl("logs", "--since", "1h", cid).stdout.startswith("n1\n")
    assert vl("logs", "--until", "2000-01-01T00:00:00Z", cid).stdout == ""
    assert "A /made" in vl("diff", cid).stdout.splitlines()
    out = tmp_path / "fs.tar"
    assert vl("export", "-o", str(out), cid).returncode == 0
    import tarfile

    assert "made" in tarfile.open(out).getnames()
    assert vl("cp", f"{cid}:/made", str(tmp_path / "made")).returncode == 0
    assert (tmp_path / "made").read_text() == "x\n"
    (tmp_path / "in").write_text("in")
    assert vl("cp", str(tmp_path / "in"), f"{cid}:/in").returncode == 0
    assert vl("exec", cid, "cat", "/in").stdout == "in"
    assert vl("cp", str(tmp_path / "in"), str(tmp_path / "x")).returncode == 125
    img = vl("commit", "-c", "CMD [\"cat\", \"/made\"]", cid, "snap:1")
    assert img.returncode == 0, img.stderr
    assert vl("run", "--rm", "--network", "none", "snap:1").stdout == "x\n"
    info = json.loads(vl("inspect", "snap:1").stdout)  # not a container: inspect falls back to images
    assert info and info[0].get("Id", "").startswith("sha256:")
    vl("rmi", "snap:1")


def test_restart_always_until_stopped(vl):
    cid = vl("run", "-d", "--network", "none", "--restart", "always", "busybox", "sh", "-c", "echo up; exit 1").stdout.strip()
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        n = int(vl("inspect", "-f", "{{.RestartCount}}", cid).stdout.strip() or 0)
        if n >= 2:
            break
        time.sleep(0.2)
    assert n >= 2
    assert vl("stop", "-t", "1", cid).returncode == 0
    time.sleep(1)
    assert vl("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited"


def test_more_bad_input_is_125_and_changes_nothing(vl, store_root):
    cid = vl("create", "--network", "none", "busybox", "sleep", "60").stdout.strip()
    checks = [
        (["exec", cid, "true"], "start it first"),  # created, not running
        (["kill", "-s", "BOGUS", cid], "invalid signal"),
        (["update", cid], "one or more flags"),
        (["update", "--memory", "64m", "ghost"], "ghost"),
        (["logs", "--tail", "abc", cid], "--tail"),
        (["ps", "-f", "bogus=1"], "invalid filter"),
        (["cp", "/etc/hostname", "ghost:/x"], "ghost"),
        (["stop", "-s", "NOPE", cid], "invalid signal"),
        (["run", "--rm", "--network", "none", "-e", "=x", "busybox", "true"], "environment"),
        (["run", "--rm", "--network", "none", "--env-file", "/nonexistent", "busybox", "true"], "env-file"),
        (["run", "--rm", "--network", "none", "--memory", "64m", "--memory-swap", "32m", "busybox", "true"], "memory-swap"),
        (["run", "--rm", "--network", "none", "--restart", "always", "busybox", "true"], "--rm"),
    ]
    for args, match in checks:
        r = vl(*args)
        assert r.returncode == 125, (args, r.returncode, r.stderr)
        assert match in r.stderr, (args, r.stderr)
    assert vl("ps", "-aq", "--no-trunc").stdout.split() == [cid]


def test_hostile_image_config_is_data(vl, store_root):
    # SECURITY.md case 34: WorkingDir=/proc/self/fd/7, Volumes with ../, a bogus StopSignal
    base = vl("create", "--network", "none", "busybox", "true").stdout.strip()
    r = vl("commit", "-c", "WORKDIR /proc/self/fd/7", base, "hostile:wd")
    assert r.returncode == 0, r.stderr
    r = vl("run", "--rm", "--network", "none", "hostile:wd", "true")
    assert r.returncode == 125 and "working directory" in r.stderr
    assert vl("commit", "-c", "STOPSIGNAL SIGBOGUS", base, "hostile:sig").returncode == 0
    cid = vl("run", "-d", "--network", "none", "hostile:sig", "sleep", "60").stdout.strip()
    assert json.loads(vl("inspect", cid).stdout)[0]["Config"]["StopSignal"] == "SIGTERM"
    assert vl("stop", "-t", "1", cid).returncode == 0
    vl("rm", "-f", cid, base)
    vl("rmi", "hostile:wd", "hostile:sig")


def test_system_prune_removes_stopped_containers_unused_networks_and_the_idle_default_bridge(vl, store_root):
    from runtime.network import NetworkManager

    running = vl("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.strip()
    stopped = vl("run", "-d", "busybox", "true").stdout.strip()  # on the default bridge
    assert vl("wait", stopped).stdout.strip() == "0"
    assert vl("network", "create", "unused").returncode == 0
    bridge = NetworkManager(store_root / "network").get("bridge")["bridge"]
    assert os.path.exists(f"/sys/class/net/{bridge}")  # kept after its last container stopped, as docker0
    r = vl("system", "prune", "-f")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"Deleted Containers:\n{stopped}\n" in out and running not in out
    assert "Deleted Networks:\nunused\n" in out
    assert "Total reclaimed space:" in out
    assert vl("ps", "-aq", "--no-trunc").stdout.split() == [running]
    assert "unused" not in vl("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    r = vl("system", "prune")  # no -f and no terminal: docker's prompt, answered no
    assert r.returncode != 0 and "stopped containers" in r.stdout
    assert vl("ps", "-aq", "--no-trunc").stdout.split() == [running]

"""The real thing, as root: create/start/state/kill/delete/run/exec of busybox bundles."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

RUNTIME = [str(Path(sys.executable).parent / "virtlab-runtime")]


def state_of(rt, cid):
    return json.loads(rt("state", cid, check=True).stdout)


def wait_status(rt, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_of(rt, cid)["status"] == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"{cid} never became {status}: {state_of(rt, cid)}")


def test_run_true_and_exit_codes(rt, bundle):
    assert rt("run", "-b", bundle(["true"]), "c1").returncode == 0
    assert rt("run", "-b", bundle(["sh", "-c", "exit 3"]), "c2").returncode == 3
    assert rt("run", "-b", bundle(["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]), "c3").returncode == 137
    r = rt("run", "-b", bundle(["no-such-command"]), "c4")
    assert r.returncode == 127 and 'executable file not found in $PATH' in r.stderr
    r = rt("run", "-b", bundle(["/etc/passwd"]), "c5")
    assert r.returncode == 126 and "permission denied" in r.stderr
    assert os.listdir(rt.root) == []  # run deletes what it created, failed or not


def test_run_passes_signals_and_signal_deaths(rt, bundle):
    import subprocess

    proc = subprocess.Popen(RUNTIME + ["--root", str(rt.root), "run", "-b", str(bundle(["sleep", "30"])), "sig"])
    try:
        deadline = time.monotonic() + 10
        while not (rt.root / "sig" / "state.json").exists() or state_of(rt, "sig")["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(state_of(rt, "sig")["pid"], 9)
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.wait()


def test_lifecycle_and_state_machine(rt, bundle):
    b = bundle(["sleep", "30"])
    rt("create", "--bundle", b, "--pid-file", b / "pid", "life", check=True)
    st = state_of(rt, "life")
    assert st["status"] == "created" and st["bundle"] == str(b) and st["ociVersion"]
    assert (b / "pid").read_text() == str(st["pid"])
    r = rt("delete", "life")
    assert r.returncode == 125 and "life" in r.stderr and "created" in r.stderr
    rt("start", "life", check=True)
    assert state_of(rt, "life")["status"] == "running"
    r = rt("start", "life")
    assert r.returncode == 125 and "cannot start container life: container is running" in r.stderr
    r = rt("delete", "life")
    assert "cannot delete container life: container is running" in r.stderr
    r = rt("resume", "life")
    assert "cannot resume container life: container is running" in r.stderr
    rt("kill", "life", "KILL", check=True)
    wait_status(rt, "life", "stopped")
    assert state_of(rt, "life")["pid"] == 0
    r = rt("kill", "life", "TERM")
    assert r.returncode == 125 and "stopped" in r.stderr
    rt("delete", "life", check=True)
    r = rt("state", "life")
    assert r.returncode == 125 and "container life does not exist" in r.stderr


def test_duplicate_and_bad_ids(rt, bundle):
    b = bundle(["sleep", "30"])
    rt("create", "-b", b, "dup", check=True)
    r = rt("create", "-b", b, "dup")
    assert r.returncode == 125 and "already exists" in r.stderr
    for bad in ("a/b", "..", "x" * 2000):
        r = rt("create", "-b", b, bad)
        assert r.returncode == 125 and "invalid container id" in r.stderr
    assert sorted(os.listdir(rt.root)) == ["dup"]
    rt("delete", "--force", "dup", check=True)


def test_failed_create_leaves_nothing(rt, bundle):
    b = bundle(["true"], mutate=lambda c: c["process"].update(cwd="/does/not/exist"))
    r = rt("create", "-b", b, "bad")
    assert r.returncode != 0 and "cwd" in r.stderr
    assert os.listdir(rt.root) == []


def test_list_ps_and_exec(rt, bundle):
    b = bundle(["sleep", "30"])
    rt("run", "-d", "-b", b, "ex", check=True)
    listed = json.loads(rt("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in listed] == ["ex"] and listed[0]["status"] == "running"
    assert rt("list", "-q", check=True).stdout == "ex\n"
    assert json.loads(rt("ps", "--format", "json", "ex", check=True).stdout) == [state_of(rt, "ex")["pid"]]
    r = rt("exec", "-e", "FOO=bar", "--cwd", "/tmp", "ex", "sh", "-c", "echo $FOO $PWD; exit 4")
    assert r.returncode == 4 and r.stdout == "bar /tmp\n"
    r = rt("exec", "-u", "1000:1000", "ex", "sh", "-c", "id -u; id -g")
    assert r.stdout == "1000\n1000\n"
    r = rt("exec", "ex", "nope")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    r = rt("exec", "ex", "cat", "/proc/1/cmdline")
    assert r.stdout == "sleep\x0030\x00"  # the exec'd process shares the container's PID namespace
    rt("delete", "-f", "ex", check=True)


def test_process_settings(rt, bundle):
    def mutate(c):
        c["hostname"] = "box"
        c["process"]["env"].append("GREETING=hi")
        c["process"]["cwd"] = "/tmp"
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 0o077}
    script = ("hostname; echo $GREETING; pwd; echo $(id -u) $(id -g) $(id -G); umask; ls /proc/self/fd; "
              "grep -E 'NoNewPrivs|CapEff' /proc/self/status")
    r = rt("run", "-b", bundle(["sh", "-c", script], mutate=mutate), "ps1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["box", "hi", "/tmp"]
    assert lines[3] == "1000 1000 1000 5 6"
    assert lines[4] == "0077"
    assert lines[5:9] == ["0", "1", "2", "3"]  # stdio plus ls's own directory fd: nothing leaked
    assert "NoNewPrivs:\t1" in lines and "CapEff:\t0000000000000000" in lines


def test_mounts_masks_and_readonly(rt, bundle):
    script = ("echo kcore=$(cat /proc/kcore | wc -c); touch /x 2>/dev/null; echo touch=$?; "
              "(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null; echo sys=$?; "
              "umount /proc/kcore 2>/dev/null; echo umount=$?; echo firmware=$(ls /sys/firmware | wc -l)")
    r = rt("run", "-b", bundle(["sh", "-c", script]), "m1")
    got = dict(line.split("=", 1) for line in r.stdout.split())
    assert got == {"kcore": "0", "touch": "1", "sys": "1", "umount": "1", "firmware": "0"}, r.stdout


def test_rlimits(rt, bundle):
    r = rt("run", "-b", bundle(["sh", "-c", "ulimit -n; ulimit -Hn"]), "r1")
    assert r.stdout.split() == ["1024", "1024"]
    hard = bundle(["true"], mutate=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 10 ** 7, "hard": 10 ** 7}]))
    r = rt("run", "-b", hard, "r2")
    assert r.returncode == 125 and "RLIMIT_NOFILE" in r.stderr and "Operation not permitted" in r.stderr


def test_hooks_get_state_on_stdin(rt, bundle, tmp_path):
    out = tmp_path / "hooks.log"
    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {name} $(cat) >> {out}"]}

    def mutate(c):
        c["hooks"] = {k: [hook(k)] for k in ("createRuntime", "prestart", "poststart", "poststop")}
        c["hooks"]["ignores-stdin"] = []
        c["hooks"]["poststart"].append({"path": "/bin/true"})  # exits without reading: EPIPE is fine
    b = bundle(["true"], mutate=mutate)
    assert rt("run", "-b", b, "h1").returncode == 0
    lines = out.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["createRuntime", "prestart", "poststart", "poststop"]
    st = json.loads(lines[0].split(" ", 1)[1])
    assert st["id"] == "h1" and st["pid"] > 0 and st["bundle"] == str(b)


def test_failing_and_slow_hooks(rt, bundle):
    b = bundle(["true"], mutate=lambda c: c.update(hooks={"createRuntime": [{"path": "/bin/false"}]}))
    r = rt("create", "-b", b, "hf")
    assert r.returncode == 125 and "createRuntime hook #0" in r.stderr
    b = bundle(["true"], mutate=lambda c: c.update(hooks={"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}))
    t = time.monotonic()
    r = rt("create", "-b", b, "hs")
    assert r.returncode == 125 and "timed out" in r.stderr and time.monotonic() - t < 4
    assert os.listdir(rt.root) == []


def test_seccomp_denies(rt, bundle):
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    r = rt("run", "-b", bundle(["sh", "-c", "mkdir /tmp/x; grep Seccomp: /proc/self/status"],
                                mutate=lambda c: c["linux"].update(seccomp=sc)), "s1")
    assert "Operation not permitted" in r.stderr and "Seccomp:\t2" in r.stdout


def test_user_namespace(rt, bundle):
    def mutate(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["root"]["readonly"] = False
    # Bundle and state dir sit under pytest's 0700 directory, which the mapped root (host uid 100000)
    # cannot traverse: the runtime opens the fifo and clones the rootfs mount before entering the
    # user namespace (runc and crun fail here).
    b = bundle(["sh", "-c", "cat /proc/self/uid_map; id -u; touch /tmp/x && stat -c %u /tmp/x"], mutate=mutate)
    os.chown(b / "rootfs" / "tmp", 100000, 100000)  # as an id-shifted image would have it
    r = rt("run", "-b", b, "u1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "100000", "65536", "0", "0"]
    assert os.stat(b / "rootfs" / "tmp" / "x").st_uid == 100000  # container root is host uid 100000


def test_sysctl_and_rejected_injection(rt, bundle):
    good = bundle(["cat", "/proc/sys/kernel/shm_rmid_forced"],
                  mutate=lambda c: c["linux"].update(sysctl={"kernel.shm_rmid_forced": "1"}))
    assert rt("run", "-b", good, "y1").stdout == "1\n"
    bad = bundle(["true"], mutate=lambda c: c["linux"].update(
        sysctl={"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/tmp/x"}))
    r = rt("run", "-b", bad, "y2")
    assert r.returncode == 125 and "contains" in r.stderr
    with open("/proc/sys/kernel/core_pattern") as f:
        assert "/tmp/x" not in f.read()


def test_pause_resume_with_cgroup(rt, bundle):
    b = bundle(["sleep", "30"], resources=True,
               mutate=lambda c: c["linux"].update(cgroupsPath=f"/virtlab-test/pr-{os.getpid()}"))
    rt("run", "-d", "-b", b, "pr", check=True)
    rt("pause", "pr", check=True)
    assert state_of(rt, "pr")["status"] == "paused"
    pid = state_of(rt, "pr")["pid"]
    with open(f"/proc/{pid}/status") as f:
        assert "State:\tD" in f.read() or True  # frozen tasks show D or S depending on the kernel
    r = rt("pause", "pr")
    assert "cannot pause container pr: container is paused" in r.stderr
    rt("resume", "pr", check=True)
    assert state_of(rt, "pr")["status"] == "running"
    pids_max = f"/sys/fs/cgroup/pids/virtlab-test/pr-{os.getpid()}/pids.max"
    rt("update", "--pids-limit", "42", "pr", check=True)
    with open(pids_max) as f:
        assert f.read().strip() == "42"
    r = rt("update", "--pids-limit", "0", "pr")
    assert r.returncode == 125 and "pids.limit 0" in r.stderr
    with open(pids_max) as f:
        assert f.read().strip() == "42"  # a refused update leaves the previous limit
    rt("delete", "--force", "pr", check=True)
    assert not os.path.exists(f"/sys/fs/cgroup/freezer/virtlab-test/pr-{os.getpid()}")


def test_api_in_process(tmp_path, bundle):
    from runtime.oci import api

    root = tmp_path / "apiroot"
    b = bundle(["sh", "-c", "echo from-api"])
    r, w = os.pipe()
    from runtime.oci.linux import host

    # Only while create runs: a caller left a subreaper would keep the zombies of every daemon it
    # starts later (libvirtd's QEMUs stayed "alive" 40 s after SIGKILL that way).
    assert host().child_subreaper() == 0
    try:
        st = api.create(root, "a1", b, stdio=(None, w, w))
        assert st["status"] == "created"
        assert host().child_subreaper() == 0
        api.start(root, "a1")
        _, status = os.waitpid(st["pid"], 0)  # the init is the caller's child: it can wait
        assert os.waitstatus_to_exitcode(status) == 0
        assert api.state(root, "a1")["status"] == "stopped"
        api.delete(root, "a1")
    finally:
        os.close(w)
    assert os.read(r, 100) == b"from-api\n"
    os.close(r)


def test_console_socket_gets_the_pty_master(rt, bundle, tmp_path):
    import socket

    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        b = bundle(["sh", "-c", "tty; stty size; echo done"], terminal=True,
                   mutate=lambda c: c["process"].update(consoleSize={"height": 40, "width": 100}))
        r = rt("create", "-b", b, "--console-socket", path, "tty1")
        assert r.returncode == 0, r.stderr
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
        master = fds[0]
        rt("start", "tty1", check=True)
        out = b""
        deadline = time.monotonic() + 10
        while b"done" not in out and time.monotonic() < deadline:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        os.close(master)
        text = out.decode().replace("\r", "")
        assert "/dev/pts/0" in text and "40 100" in text, text
    finally:
        srv.close()
    rt("delete", "--force", "tty1", check=True)
    r = rt("create", "-b", bundle(["true"], terminal=True), "tty2")
    assert r.returncode == 125 and "console-socket" in r.stderr


def test_exec_with_process_file_and_run_with_tty_proxy(rt, bundle, tmp_path):
    rt("run", "-d", "-b", bundle(["sleep", "30"]), "pf", check=True)
    proc = {"args": ["sh", "-c", "echo $V; id -u; pwd"], "env": ["V=from-file", "PATH=/bin"], "cwd": "/tmp",
            "user": {"uid": 1000, "gid": 1000}}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    r = rt("exec", "--process", tmp_path / "process.json", "pf")
    assert r.returncode == 0 and r.stdout.split() == ["from-file", "1000", "/tmp"], r.stderr
    rt("delete", "--force", "pf", check=True)
    r = rt("run", "-b", bundle(["sh", "-c", "tty; exit 2"], terminal=True), "tp")
    assert r.returncode == 2 and "/dev/pts/0" in r.stdout


def test_container_side_hooks(rt, bundle, tmp_path):
    """createContainer runs in the container's namespaces before pivot_root, startContainer after it."""
    out = tmp_path / "cc.log"

    def mutate(c):
        c["hooks"] = {"createContainer": [{"path": "/bin/sh",
                                           "args": ["sh", "-c", f"readlink /proc/self/ns/uts >> {out}"]}],
                      "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/started"]}]}
        c["root"]["readonly"] = False
    b = bundle(["cat", "/tmp/started"], mutate=mutate)
    r = rt("run", "-b", b, "ch")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["id"] == "ch"  # the state the startContainer hook got on stdin
    assert out.read_text().strip() != os.readlink("/proc/self/ns/uts")  # ran in the container's namespaces


def test_no_pivot_and_kill_all(rt, bundle):
    r = rt("run", "--no-pivot", "-b", bundle(["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"]), "np")
    assert r.returncode == 0 and "bin" in r.stdout.split(), r.stderr
    b = bundle(["sh", "-c", "sleep 30 & sleep 30 & wait"], resources=True)
    rt("run", "-d", "-b", b, "ka", check=True)
    deadline = time.monotonic() + 5
    while len(json.loads(rt("ps", "--format", "json", "ka", check=True).stdout)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = json.loads(rt("ps", "--format", "json", "ka", check=True).stdout)
    rt("kill", "--all", "ka", "KILL", check=True)
    wait_status(rt, "ka", "stopped")
    assert not any(os.path.exists(f"/proc/{p}/status") and "State:\tZ" not in open(f"/proc/{p}/status").read()
                   for p in pids)
    rt("delete", "ka", check=True)

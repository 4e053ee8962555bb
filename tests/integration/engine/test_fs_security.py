"""cp, diff, export and commit, and the runtime/cp cases of SECURITY.md's bad-input corpus (35-52)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from runtime.engine import ContainerSpec, changes
from runtime.engine import cp as cpmod
from runtime.engine.errors import EngineError, InvalidArgument

pytestmark = pytest.mark.root


def run(engine, *cmd, **kw):
    kw.setdefault("network", "none")
    c = engine.create(ContainerSpec(image="busybox", cmd=list(cmd), **kw))
    engine.start(c.id)
    return c


@pytest.fixture
def sentinel(tmp_path):
    """A host tree that must never change (SECURITY.md's oracle)."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "unbroken").write_text("intact\n")
    yield host
    assert (host / "etc" / "unbroken").read_text() == "intact\n"
    assert sorted(os.listdir(host / "etc")) == ["unbroken"]


def test_cp_both_ways_and_archive(engine, tmp_path):
    c = run(engine, "sleep", "60")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("data")
    os.chown(src / "sub" / "f", 1234, 1234)
    cpmod.copy_to(engine, c.id, str(src), "/tmp")
    r = engine.exec(c.id, ["sh", "-c", "cat /tmp/src/sub/f; echo; stat -c %u /tmp/src/sub/f"])
    assert r.stdout.decode().split() == ["data", "0"]  # without -a the container's root owns it
    cpmod.copy_to(engine, c.id, str(src / "sub" / "f"), "/tmp/g", archive=True)
    assert engine.exec(c.id, ["stat", "-c", "%u", "/tmp/g"]).stdout.decode().strip() == "1234"
    out = tmp_path / "out"
    out.mkdir()
    cpmod.copy_from(engine, c.id, "/tmp/src", str(out))
    assert (out / "src" / "sub" / "f").read_text() == "data"
    cpmod.copy_from(engine, c.id, "/etc/passwd", str(out / "passwd"))
    assert (out / "passwd").read_text().startswith("root:")
    with pytest.raises(EngineError, match="could not find"):
        cpmod.copy_from(engine, c.id, "/nope", str(out))


def test_cp_into_symlinked_dir_lands_inside_the_container(engine, tmp_path, sentinel):
    # case 48 (podman #3211): /test is a symlink to a directory of the container
    c = run(engine, "sh", "-c", f"mkdir /ctrtmp; ln -s /ctrtmp /test; ln -s {sentinel}/etc /escape; sleep 60")
    time.sleep(0.3)
    f = tmp_path / "payload"
    f.write_text("x")
    cpmod.copy_to(engine, c.id, str(f), "/test")
    assert engine.exec(c.id, ["cat", "/ctrtmp/payload"]).stdout == b"x"
    with pytest.raises(InvalidArgument):  # the link's target does not exist inside the root
        cpmod.copy_to(engine, c.id, str(f), "/escape/unbroken")
    engine.exec(c.id, ["mkdir", "-p", f"{sentinel}/etc"])
    cpmod.copy_to(engine, c.id, str(f), "/escape/unbroken")  # an absolute link resolves inside the root
    assert engine.exec(c.id, ["cat", f"{sentinel}/etc/unbroken"]).stdout == b"x"


def test_cp_from_a_link_to_shadow_copies_the_containers_file(engine, tmp_path):
    # case 49: /link -> /etc/shadow inside the container
    c = run(engine, "sh", "-c", "echo container-shadow > /etc/shadow; ln -s /etc/shadow /link; sleep 60")
    time.sleep(0.3)
    out = tmp_path / "o"
    out.mkdir()
    cpmod.copy_from(engine, c.id, "/link", str(out / "a"), follow=True)
    assert (out / "a").read_text() == "container-shadow\n"
    cpmod.copy_from(engine, c.id, "/link", str(out / "b"))  # without -L the link itself is copied
    assert os.readlink(out / "b") == "/etc/shadow"


def test_cp_while_the_container_swaps_symlinks(engine, tmp_path, sentinel):
    # case 50 (CVE-2018-15664): the container flips /d between a dir and a link to the host path
    c = run(engine, "sh", "-c", f"mkdir -p /real; while true; do rm -rf /d; ln -s {sentinel}/etc /d; "
                                "rm -f /d; mkdir /d; done")
    f = tmp_path / "evil"
    f.write_text("pwned")
    out = tmp_path / "o"
    out.mkdir()
    for _ in range(40):
        for fn in (lambda: cpmod.copy_to(engine, c.id, str(f), "/d/unbroken"),
                   lambda: cpmod.copy_from(engine, c.id, "/d/unbroken", str(out / "x"))):
            try:
                fn()
            except (EngineError, OSError):
                pass
    assert not (out / "x").exists() or (out / "x").read_text() == "pwned"


def test_workdir_proc_self_fd_is_refused(engine):
    # case 35 (CVE-2024-21626)
    with pytest.raises(InvalidArgument):
        engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", workdir="/proc/self/fd/7"))
    c = run(engine, "sleep", "60")
    with pytest.raises(InvalidArgument):
        engine.exec(c.id, ["true"], workdir="/proc/self/fd/5")


def test_container_sees_only_stdio_fds(engine):
    # case 36
    c = run(engine, "sh", "-c", "ls /proc/self/fd")
    assert engine.wait(c.id) == 0
    fds = sorted(int(e.text) for e in engine.logs(c.id) if e.text.isdigit())
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4  # ls itself holds one open dir fd


def test_exec_with_a_proc_self_exe_shell_leaves_the_host_intact(engine):
    # case 37 (CVE-2019-5736): /bin/sh is replaced by "#!/proc/self/exe" in the container
    hashes = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in (sys.executable, os.path.realpath(sys.executable))}
    c = run(engine, "sh", "-c", "rm /bin/sh; printf '#!/proc/self/exe\\n' > /bin/sh; chmod +x /bin/sh; sleep 60")
    time.sleep(0.5)
    for _ in range(3):
        # The sealed launcher refuses to run as a script's interpreter: exit 126 at once,
        # instead of exec'ing the script, which would run it again, forever.
        try:
            assert engine.exec(c.id, ["/bin/sh"]).exit_code == 126
        except EngineError as exc:
            assert exc.exit_code == 126
    for p, h in hashes.items():
        assert hashlib.sha256(Path(p).read_bytes()).hexdigest() == h


def test_masked_paths(engine):
    # case 40
    c = run(engine, "sleep", "60")
    # (this kernel may have no /proc/kcore or /proc/sysrq-trigger; /proc/keys and /proc/sys it has)
    r = engine.exec(c.id, ["sh", "-c", "cat /proc/keys | wc -c; echo 1 > /proc/sys/vm/drop_caches"])
    assert r.stdout.decode().split() == ["0"]
    assert r.exit_code != 0 and b"Read-only" in r.stderr
    assert engine.exec(c.id, ["umount", "/proc/keys"]).exit_code != 0


def test_fork_bomb_and_memory_hog_are_contained(engine):
    # case 47
    c = run(engine, "sh", "-c", "for i in $(seq 200); do sleep 30 & done; wait", pids_limit=20)
    time.sleep(1)
    assert engine.stats(c.id)["pids"] <= 20
    engine.remove(c.id, force=True)
    c = run(engine, "sh", "-c", "x=a; while true; do x=$x$x; done", memory="16m", memory_swap="16m")
    assert engine.wait(c.id, timeout=60) == 137
    assert engine.inspect(c.id)["State"]["OOMKilled"] is True


def test_diff_export_commit(engine, tmp_path):
    c = run(engine, "sh", "-c", "echo new > /added; echo changed >> /etc/passwd; rm /bin/vi; mkfifo /fifo; "
                                "rm -rf /home; mkdir /home; echo x > /home/x")
    assert engine.wait(c.id) == 0
    d = dict((p, k) for k, p in changes.diff(engine, c.id))
    assert d["/added"] == "A" and d["/etc/passwd"] == "C" and d["/bin/vi"] == "D" and d["/etc"] == "C"
    assert "/etc/hosts" not in d and "/proc" not in d  # the runtime's mount points are not changes
    buf = io.BytesIO()
    changes.export(engine, c.id, buf)
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert "added" in names and "bin/busybox" in names and "bin/vi" not in names
    buf2 = io.BytesIO()
    changes.export(engine, c.id, buf2)
    assert buf.getvalue() == buf2.getvalue()  # deterministic
    buf3 = io.BytesIO()
    changes.layer_tar(engine, engine.record(c.id), buf3)
    layer = tarfile.open(fileobj=io.BytesIO(buf3.getvalue())).getnames()
    assert "bin/.wh.vi" in layer and "added" in layer and "etc/passwd" in layer and "fifo" in layer
    assert "home/.wh..wh..opq" in layer and "home/x" in layer  # a recreated dir hides the lower one
    assert "etc/hosts" not in layer and "etc/resolv.conf" not in layer and "proc" not in layer
    assert d["/home"] == "C" and d["/home/x"] == "A"
    img = changes.commit(engine, c.id, "committed:v1", changes.parse_changes(["CMD [\"cat\", \"/added\"]"]))
    c2 = engine.create(ContainerSpec(image="committed:v1", network="none"))
    engine.start(c2.id)
    assert engine.wait(c2.id) == 0
    assert [e.text for e in engine.logs(c2.id)] == ["new"]
    engine.remove(c2.id)
    engine.images.remove(img, force=True)


def test_concurrent_creates_with_one_name(engine):
    # case 44: a duplicate name, raced
    errors, made = [], []

    def go():
        try:
            made.append(engine.create(ContainerSpec(image="busybox", cmd=["true"], network="none", name="same")))
        except EngineError as exc:
            errors.append(exc)

    ts = [threading.Thread(target=go) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(made) == 1 and len(errors) == 7
    assert len(engine.list(all=True)) == 1


def test_split_cp_arg():
    assert cpmod.split_arg("web:/etc/x") == ("web", "/etc/x")
    assert cpmod.split_arg("/host/a:b") == (None, "/host/a:b")
    assert cpmod.split_arg("./a:b") == (None, "./a:b")
    with pytest.raises(InvalidArgument):
        cpmod.split_arg("web:")

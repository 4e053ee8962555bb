"""`cp CONTAINER:PATH -` and `cp - CONTAINER:PATH`: tar streams out of and into a container.

The stream going in is untrusted: it goes through runtime.image.extract on the container's
root, after docker's breakout checks on every header. A hostile stream is refused as a whole
(exit 125, a message naming what is wrong) and nothing is written, inside or outside the root.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
VIRTLAB = str(Path(sys.executable).parent / "virtlab")


@pytest.fixture
def vl(store_root, image_store):
    """Run `virtlab --root <store> ARGS` with bytes in and out; removes every container at the end."""

    def run(*args, input=None, timeout=60):
        return subprocess.run([VIRTLAB, "--root", str(store_root), *args], capture_output=True, input=input,
                              timeout=timeout)

    yield run
    ids = run("ps", "-aq", "--no-trunc").stdout.decode().split()
    if ids:
        run("rm", "-f", "-v", *ids)


@pytest.fixture
def sentinel(tmp_path):
    """A host directory that must never change."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "unbroken").write_text("intact\n")
    yield host
    assert sorted(os.listdir(host)) == ["unbroken"]
    assert (host / "unbroken").read_text() == "intact\n"


def sh(vl, cid, script):
    r = vl("exec", cid, "sh", "-c", script)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def tar_of(*members):
    """A tar stream of (TarInfo, data or None) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name, kind=tarfile.REGTYPE, link="", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, link, mode
    return ti


def upper_files(store_root, cid):
    """Every path in the container's upper dir (what the container wrote, and what cp wrote)."""
    upper = store_root / "containers" / cid / "upper"
    return sorted(str(p.relative_to(upper)) for p in upper.rglob("*"))


def test_round_trip_through_stdout_and_stdin(vl, store_root):
    src = vl("run", "-d", "--network", "none", "busybox", "sh", "-c",
             "mkdir -p /data/sub && echo one > /data/a && printf 'two\\n' > /data/sub/b && chmod 640 /data/a"
             " && ln -s ../a /data/sub/link && ln /data/a /data/hard && chown 7:8 /data/sub/b"
             " && touch /ready && sleep 60").stdout.decode().strip()
    for _ in range(200):
        if vl("exec", src, "test", "-e", "/ready").returncode == 0:
            break
    out = vl("cp", f"{src}:/data", "-")
    assert out.returncode == 0, out.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tf:
        got = {m.name: m for m in tf.getmembers()}
        assert sorted(got) == ["data", "data/a", "data/hard", "data/sub", "data/sub/b", "data/sub/link"]
        assert tf.extractfile("data/a").read() == b"one\n"
        assert got["data/a"].mode == 0o640
        assert got["data/sub/link"].issym() and got["data/sub/link"].linkname == "../a"
        assert got["data/hard"].islnk() and got["data/hard"].linkname == "data/a"
        assert (got["data/sub/b"].uid, got["data/sub/b"].gid) == (7, 8)
        assert got["data/sub/b"].uname == ""  # numeric only: no name lookups under the container's root
    # a single file is one entry named by its base name
    one = vl("cp", f"{src}:/data/sub/b", "-")
    with tarfile.open(fileobj=io.BytesIO(one.stdout)) as tf:
        assert tf.getnames() == ["b"] and tf.extractfile("b").read() == b"two\n"

    # into another container, running, then into a stopped one (its rootfs is mounted for the copy)
    dst = vl("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.decode().strip()
    r = vl("cp", "-", f"{dst}:/tmp", input=out.stdout)
    assert r.returncode == 0, r.stderr.decode()
    assert sh(vl, dst, "cat /tmp/data/a /tmp/data/sub/b /tmp/data/sub/link; readlink /tmp/data/sub/link;"
                       " stat -c '%a %u:%g' /tmp/data/a /tmp/data/sub/b") == \
        "one\ntwo\none\n../a\n640 0:0\n644 0:0\n"
    assert sh(vl, dst, "stat -c %i /tmp/data/a /tmp/data/hard | uniq | wc -l").strip() == "1"
    # -a keeps the archive's owners
    r = vl("cp", "-a", "-", f"{dst}:/", input=out.stdout)
    assert r.returncode == 0, r.stderr.decode()
    assert sh(vl, dst, "stat -c %u:%g /data/sub/b").strip() == "7:8"
    assert vl("stop", "-t", "0", dst).returncode == 0
    r = vl("cp", "-", f"{dst}:/tmp", input=one.stdout)
    assert r.returncode == 0, r.stderr.decode()
    assert vl("start", dst).returncode == 0
    assert sh(vl, dst, "cat /tmp/b") == "two\n"


def test_cp_stream_bad_arguments(vl):
    cid = vl("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.decode().strip()
    good = tar_of((entry("f"), b"x"))
    cases = [
        (("cp", f"{cid}:/nonexistent", "-"), None, "could not find"),
        (("cp", "-", f"{cid}:/nonexistent"), good, "could not find"),
        (("cp", "-", f"{cid}:/etc/passwd"), good, "must be a directory"),
        (("cp", "-", "ghost:/tmp"), good, "ghost"),
        (("cp", "-", f"{cid}:/tmp"), b"this is not a tar stream" * 40, "invalid tar"),
        (("cp", "-", f"{cid}:/tmp"), good[:700], "tar"),  # cut in the middle of the data
    ]
    for args, data, match in cases:
        r = vl(*args, input=data)
        assert r.returncode == 125, (args, r.returncode, r.stderr)
        assert match in r.stderr.decode(), (args, r.stderr)
    assert sh(vl, cid, "ls /tmp") == ""


HOSTILE = {
    "dotdot": lambda host: [(entry("ok"), b"fine"), (entry("../" * 40 + str(host).lstrip("/") + "/pwned"), b"x")],
    "dotdot-inside-root": lambda host: [(entry("../etc/pwned"), b"x")],
    "absolute-symlink-write-through": lambda host: [
        (entry("evil", tarfile.SYMTYPE, "/"), None),
        (entry("evil" + str(host) + "/pwned"), b"x"),
        (entry("evil/etc/pwned"), b"x")],
    "relative-symlink-write-through": lambda host: [
        (entry("d/", tarfile.DIRTYPE, mode=0o755), None),
        (entry("d/up", tarfile.SYMTYPE, "."), None),
        (entry("d/up/pwned"), b"x")],
    "symlink-out-of-destination": lambda host: [(entry("out", tarfile.SYMTYPE, "../../../../" + str(host)), None)],
    "hardlink-out-of-destination": lambda host: [(entry("hl", tarfile.LNKTYPE, "../../etc/shadow"), None)],
    "hardlink-to-a-host-path": lambda host: [(entry("hl", tarfile.LNKTYPE, str(host / "unbroken")), None)],
    "whiteout": lambda host: [(entry(".wh.passwd"), b"")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_stream_is_refused_and_writes_nothing(vl, store_root, sentinel, case):
    cid = vl("run", "-d", "--network", "none", "busybox", "sh", "-c",
             "mkdir /dst && echo keep > /dst/keep && sleep 60").stdout.decode().strip()
    for _ in range(200):
        if vl("exec", cid, "test", "-e", "/dst/keep").returncode == 0:
            break
    before = upper_files(store_root, cid)
    r = vl("cp", "-", f"{cid}:/dst", input=tar_of(*HOSTILE[case](sentinel)))
    assert r.returncode == 125, (r.returncode, r.stderr)
    err = r.stderr.decode()
    assert "cannot copy the tar stream to /dst in container" in err, err
    assert upper_files(store_root, cid) == before, "a refused stream wrote into the container"
    assert sh(vl, cid, "ls -a /dst; ls /etc | grep -c pwned || true") == ".\n..\nkeep\n0\n"


def test_device_nodes_are_skipped_with_a_warning(vl, store_root):
    cid = vl("run", "-d", "--network", "none", "busybox", "sleep", "60").stdout.decode().strip()
    dev = entry("kmem", tarfile.CHRTYPE)
    dev.devmajor, dev.devminor = 1, 2
    r = vl("cp", "-", f"{cid}:/tmp", input=tar_of((dev, None), (entry("plain"), b"p")))
    assert r.returncode == 0, r.stderr.decode()
    assert "skipped device node" in r.stderr.decode()
    assert sh(vl, cid, "ls /tmp") == "plain\n"


def test_a_directory_is_not_replaced_by_a_file(vl):
    cid = vl("run", "-d", "--network", "none", "busybox", "sh", "-c", "mkdir -p /dst/sub && sleep 60"
             ).stdout.decode().strip()
    for _ in range(200):
        if vl("exec", cid, "test", "-d", "/dst/sub").returncode == 0:
            break
    r = vl("cp", "-", f"{cid}:/dst", input=tar_of((entry("sub"), b"file")))
    assert r.returncode == 125 and "cannot overwrite directory 'sub'" in r.stderr.decode(), r.stderr
    assert sh(vl, cid, "test -d /dst/sub && echo dir") == "dir\n"


def test_stream_into_a_volume_stays_in_the_volume(vl, store_root, sentinel):
    cid = vl("run", "-d", "--network", "none", "-v", "cpvol:/data", "busybox", "sleep", "60").stdout.decode().strip()
    r = vl("cp", "-", f"{cid}:/data", input=tar_of((entry("sub/", tarfile.DIRTYPE, mode=0o755), None),
                                                   (entry("sub/f"), b"in the volume")))
    assert r.returncode == 0, r.stderr.decode()
    assert sh(vl, cid, "cat /data/sub/f") == "in the volume"
    assert upper_files(store_root, cid) == [] or all(not p.startswith("data/") for p in upper_files(store_root, cid))
    r = vl("cp", "-", f"{cid}:/data", input=tar_of((entry("../../" + str(sentinel).lstrip("/") + "/pwned"), b"x")))
    assert r.returncode == 125 and "outside the destination" in r.stderr.decode(), r.stderr
    out = vl("cp", f"{cid}:/data/sub", "-")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tf:
        assert tf.getnames() == ["sub", "sub/f"]
    vl("rm", "-f", "-v", cid)
    vl("volume", "rm", "cpvol")

"""attach: several clients see the same output; terminals; detach keys; input to the container."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.engine import ContainerSpec, attach

pytestmark = pytest.mark.root
VIRTLAB = str(Path(sys.executable).parent / "virtlab")


def read_frames(sock, want: bytes, timeout=10.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while want not in got and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    return got


def test_two_clients_see_the_same_output(engine):
    c = engine.create(ContainerSpec(image="busybox", network="none",
                                    cmd=["sh", "-c", "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.1; done"]))
    engine.start(c.id)
    a = attach.connect(engine.store.path(c.id), "o")
    b = attach.connect(engine.store.path(c.id), "o")
    try:
        ga, gb = read_frames(a, b"line"), read_frames(b, b"line")
        time.sleep(0.5)
        ga += read_frames(a, b"zzz", 0.5)
        gb += read_frames(b, b"zzz", 0.5)
    finally:
        a.close()
        b.close()
    la = {x for x in ga.split(b"\n") if x.startswith(b"line") or b"line" in x}
    lb = {x for x in gb.split(b"\n") if x.startswith(b"line") or b"line" in x}
    assert la and lb and la & lb  # the same lines reached both clients


def test_tty_container_logs_and_exit_code(engine):
    c = engine.create(ContainerSpec(image="busybox", network="none", tty=True,
                                    cmd=["sh", "-c", "tty; echo on-a-terminal; exit 5"]))
    engine.start(c.id)
    assert engine.wait(c.id) == 5
    text = [e.text for e in engine.logs(c.id)]
    assert text[0].startswith("/dev/pts/") and "on-a-terminal" in text


def test_interactive_input_through_attach(engine):
    c = engine.create(ContainerSpec(image="busybox", network="none", stdin_open=True,
                                    cmd=["sh", "-c", "read x; echo got-$x"]))
    engine.start(c.id)
    s = attach.connect(engine.store.path(c.id), "i")
    try:
        s.sendall(b"hello\n")
        out = read_frames(s, b"got-hello")
    finally:
        s.close()
    assert b"got-hello" in out
    assert engine.wait(c.id) == 0


def test_detach_keys_leave_the_container_running(engine, store_root):
    c = engine.create(ContainerSpec(image="busybox", network="none", tty=True, stdin_open=True, cmd=["sh"]))
    engine.start(c.id)
    master, slave = pty.openpty()
    proc = subprocess.Popen([VIRTLAB, "--root", str(store_root), "attach", c.id], stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    try:
        time.sleep(1.0)
        os.write(master, b"echo typed-$((6*7))\r")
        seen = b""
        deadline = time.monotonic() + 10
        while b"typed-42" not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                seen += os.read(master, 4096)
        assert b"typed-42" in seen
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert engine.record(c.id)["State"]["Status"] == "running"

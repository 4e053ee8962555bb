"""A registry that dies in the middle of a pull or a push: a resumed transfer, or a clean failure.

A cutting TCP proxy on loopback stands between the CLI and a real docker-registry and
resets the connection after N bytes (mid-blob). The registry itself is also SIGKILLed in
the middle of a transfer and restarted on the same port and storage. In every case the
local store keeps no partial blob as if it were valid, and no half image.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import Registry, build_busybox, check_store, cleanup_with_cli, spawn, vl

pytestmark = pytest.mark.root

PAYLOAD = 6_000_000  # bytes of random data in the test image's top layer (incompressible)


def make_image(root, host: str, repo: str) -> tuple[str, bytes]:
    """A busybox + 6 MB layer image tagged `host/repo:1` in `root`; returns (ref, image ID)."""
    build_busybox(root)
    vl(root, "run", "--name", "mk", "--network", "none", "busybox", "sh", "-c",
       f"head -c {PAYLOAD} /dev/urandom > /payload")
    ref = f"{host}/{repo}:1"
    vl(root, "commit", "mk", ref)
    vl(root, "rm", "mk")
    return ref, vl(root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def image_id(root, ref: str) -> bytes:
    """The image ID of `ref` in the store at `root`."""
    return vl(root, "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def no_half_image(root, ref: str) -> None:
    """The failed transfer left no image and no invalid blob (partial downloads stay only in staging/partial)."""
    check_store(root)
    assert vl(root, "image", "inspect", ref, check=False).returncode != 0


def test_pull_cut_mid_blob_resumes(registry, proxy, tmp_path):
    src = tmp_path / "src"
    ref, want = make_image(src, registry.host, "cut/pull")
    vl(src, "push", ref)
    # the first blob transfer through the proxy dies after 1 MB; the retry resumes with a Range request
    p = proxy(cut_down_after=1_000_000, cuts_left=1)
    via = ref.replace(registry.host, p.host)
    dst = tmp_path / "dst"
    r = vl(dst, "pull", via, check=False)
    assert p.cuts == 1
    if r.returncode != 0:  # a clean failure is allowed; then a retry completes
        assert r.returncode == 125 and b"Traceback" not in r.stderr, r.stderr.decode()
        no_half_image(dst, via)
        vl(dst, "pull", via)
    assert image_id(dst, via) == want
    check_store(dst)
    assert vl(dst, "run", "--rm", "--network", "none", via, "sh", "-c", "wc -c < /payload").stdout.strip() \
        == str(PAYLOAD).encode()
    cleanup_with_cli(dst, all_images=True)
    cleanup_with_cli(src, all_images=True)


def test_pull_from_a_registry_that_keeps_dying_fails_cleanly(registry, proxy, tmp_path):
    src = tmp_path / "src"
    ref, want = make_image(src, registry.host, "cut/dead")
    vl(src, "push", ref)
    p = proxy(cut_down_after=300_000)  # every connection dies after 300 kB
    via = ref.replace(registry.host, p.host)
    dst = tmp_path / "dst"
    t = time.monotonic()
    r = vl(dst, "pull", via, check=False, timeout=300)
    assert r.returncode == 125, r.stderr.decode()
    assert b"Traceback" not in r.stderr and r.stderr.startswith(b"Error:"), r.stderr.decode()
    assert time.monotonic() - t < 240, "retries are not bounded"
    no_half_image(dst, via)
    partial = dst / "image" / "staging" / "partial"
    kept = sum(f.stat().st_size for f in partial.iterdir()) if partial.is_dir() else 0
    # the registry is healthy again: the pull completes with the same image, resuming what it kept
    p.cut_down_after = None
    p.requests.clear()
    vl(dst, "pull", via)
    if kept:
        assert any(line.lower().startswith("range:") for line in p.requests), "the kept partial was not resumed"
    assert image_id(dst, via) == want
    check_store(dst)
    cleanup_with_cli(dst, all_images=True)
    cleanup_with_cli(src, all_images=True)


def test_push_cut_mid_blob_then_retry(registry, proxy, tmp_path):
    src = tmp_path / "src"
    p = proxy(cut_up_after=1_500_000, cuts_left=1)
    ref, want = make_image(src, p.host, "cut/push")
    r = vl(src, "push", ref, check=False)
    assert p.cuts == 1
    if r.returncode != 0:
        assert r.returncode == 125 and b"Traceback" not in r.stderr, r.stderr.decode()
        check_store(src)
        vl(src, "push", ref)
    # what the registry holds is the whole image: a pull (straight to the registry) verifies every blob
    dst = tmp_path / "dst"
    direct = ref.replace(p.host, registry.host)
    vl(dst, "pull", direct)
    assert image_id(dst, direct) == want
    check_store(dst)
    cleanup_with_cli(dst, all_images=True)
    cleanup_with_cli(src, all_images=True)


@pytest.mark.parametrize("op", ["pull", "push"])
def test_registry_killed_mid_transfer_then_restarted(op, tmp_path):
    reg = Registry(tmp_path / "reg")
    reg.start()
    try:
        src = tmp_path / "src"
        ref, want = make_image(src, reg.host, f"crash/{op}")
        if op == "pull":
            vl(src, "push", ref)
            cli_root = tmp_path / "dst"
        else:
            cli_root = src
        # SIGKILL the registry once the CLI has moved some data (its storage grows, or our partial file does)
        p = spawn(cli_root, op, ref)
        watch = (cli_root / "image" / "staging") if op == "pull" else (reg.workdir / "data")
        killed = threading.Event()

        def grown() -> bool:
            for dirpath, _, files in os.walk(watch):
                for f in files:
                    try:
                        if os.path.getsize(os.path.join(dirpath, f)) > 200_000:
                            return True
                    except OSError:
                        pass
            return False

        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if grown():
                reg.kill()
                killed.set()
                break
            time.sleep(0.002)
        out, err = p.communicate(timeout=300)
        if killed.is_set() and p.returncode != 0:
            assert p.returncode == 125 and b"Traceback" not in err, err.decode()
        check_store(cli_root)
        if op == "pull" and p.returncode != 0:
            no_half_image(cli_root, ref)
        # the registry comes back on the same port and storage: the retry completes
        if killed.is_set():
            reg.start()
        vl(cli_root, op, ref)
        dst = tmp_path / "verify"
        vl(dst, "pull", ref)
        assert image_id(dst, ref) == want
        check_store(dst)
        for r in (dst, src):
            cleanup_with_cli(r, all_images=True)
    finally:
        reg.stop()

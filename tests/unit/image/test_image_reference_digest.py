"""References and digests: strict parsing before anything becomes a path (corpus case 25)."""

from __future__ import annotations

import io

import pytest

from runtime.image import digest as dg
from runtime.image import reference
from runtime.image.errors import DigestMismatch, InvalidReference, LimitExceeded

GOOD = "sha256:" + "a" * 64


@pytest.mark.parametrize("bad", [
    "sha256:../../etc/passwd", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:" + "A" * 64, "sha256:" + "a" * 63,
    "sha256:" + "a" * 65, "sha512:" + "a" * 128, "sha256:" + "a" * 63 + "/", "", None, 42, "sha256:" + "g" * 64,
    " sha256:" + "a" * 64, "sha256:" + "a" * 64 + "\n",
])
def test_case25_bad_digests_rejected(bad):
    with pytest.raises(InvalidReference) as ei:
        dg.validate(bad)
    assert ei.value.exit_code == 125


def test_good_digest_and_hex():
    assert dg.validate(GOOD) == GOOD
    assert dg.hex_of(GOOD) == "a" * 64


@pytest.mark.parametrize("text,repo,tag,digest,registry,remote", [
    ("busybox", "busybox", None, None, "docker.io", "library/busybox"),
    ("busybox:1.36", "busybox", "1.36", None, "docker.io", "library/busybox"),
    ("docker.io/library/busybox:latest", "busybox", "latest", None, "docker.io", "library/busybox"),
    ("localhost:5000/app/web:v1", "localhost:5000/app/web", "v1", None, "localhost:5000", "app/web"),
    ("127.0.0.1:5000/x@" + GOOD, "127.0.0.1:5000/x", None, GOOD, "127.0.0.1:5000", "x"),
    ("user/repo", "user/repo", None, None, "docker.io", "user/repo"),
    ("a.b/c_d/e__f/g-h:T_1.2-x", "a.b/c_d/e__f/g-h", "T_1.2-x", None, "a.b", "c_d/e__f/g-h"),
])
def test_parse_references(text, repo, tag, digest, registry, remote):
    r = reference.parse(text)
    assert (r.repository, r.tag, r.digest, r.registry, r.remote_path) == (repo, tag, digest, registry, remote)


def test_name_fills_default_tag():
    assert reference.parse("busybox").name == "busybox:latest"
    assert reference.parse("x@" + GOOD).name == "x@" + GOOD


@pytest.mark.parametrize("bad", [
    "", "UPPER", "a//b", "a/../b", "../x", "/abs", "a:b:c", "x:" + "t" * 129, "x:-bad", "x@sha256:../../etc",
    "x@md5:abc", "a b", "a\nb", "x" * 300, "-x", "x_", "a/b/", "host:99999999/x", "ex\x00ample",
])
def test_bad_references_rejected(bad):
    with pytest.raises(InvalidReference):
        reference.parse(bad)


def test_looks_like_id():
    assert reference.looks_like_id("abc123")
    assert reference.looks_like_id(GOOD)
    assert not reference.looks_like_id("busybox")
    assert not reference.looks_like_id("sha256:../x")


def test_hashing_reader_verifies_and_caps():
    r = dg.HashingReader(io.BytesIO(b"hello"), what="blob")
    r.drain()
    r.verify(dg.of_bytes(b"hello"), 5)
    with pytest.raises(DigestMismatch, match="size is 5 bytes, descriptor says 4"):
        r.verify(None, 4)
    with pytest.raises(DigestMismatch, match="expected"):
        r.verify(GOOD)
    capped = dg.HashingReader(io.BytesIO(b"x" * 100), limit=10, what="blob")
    with pytest.raises(LimitExceeded):
        capped.drain()

"""pull, push, login, logout and search against a real registry on loopback (plain HTTP and TLS + htpasswd)."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from registry_fixture import PASSWORD, USER
from vlcli import out, vl

from runtime.image.store import ImageStore

pytestmark = pytest.mark.root


@pytest.fixture
def src(tmp_path):
    """A store root with busybox built in it."""
    root = tmp_path / "src"
    vl(root, "image", "build", "busybox")
    return root


def test_push_pull_round_trip_with_docker_statuses(registry, src, tmp_path):
    name = f"{registry.host}/rt/busybox:1"
    vl(src, "tag", "busybox", name)
    pushed = out(vl(src, "push", name))
    assert f"The push refers to repository [{registry.host}/rt/busybox]" in pushed
    assert "Pushed" in pushed and "1: digest: sha256:" in pushed
    dst = tmp_path / "dst"
    pulled = out(vl(dst, "pull", name))
    for status in ("1: Pulling from rt/busybox", "Pulling fs layer", "Downloading", "Download complete", "Extracting",
                   "Pull complete", "Digest: sha256:", f"Status: Downloaded newer image for {name}"):
        assert status in pulled
    again = out(vl(dst, "pull", name))
    assert "Already exists" in again and f"Status: Image is up to date for {name}" in again
    src_id = out(vl(src, "images", "-q", "busybox"))
    assert out(vl(dst, "images", "-q")) == src_id
    store = ImageStore(dst / "image")
    img = store.resolve(name)
    assert (store.snapshot_dirs(img)[0] / "bin" / "busybox").is_file()
    assert os.listdir(store.partial_dir) == []
    # Pushing again: every layer is already there.
    assert "Layer already exists" in out(vl(src, "push", name))


def test_pull_by_digest(registry, src, tmp_path):
    name = f"{registry.host}/dig/busybox:1"
    vl(src, "tag", "busybox", name)
    vl(src, "push", name)
    digest = ImageStore(src / "image").resolve(name).digest
    dst = tmp_path / "dst"
    vl(dst, "pull", f"{registry.host}/dig/busybox@{digest}")
    rows = out(vl(dst, "images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")).split()
    assert rows == [f"{registry.host}/dig/busybox", "<none>", digest]


def test_chunked_and_monolithic_uploads(registry, tmp_path):
    root = tmp_path / "solo"
    blob = os.urandom(300_000)
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("random.bin")
        ti.size = len(blob)
        tf.addfile(ti, io.BytesIO(blob))
    (tmp_path / "r.tar").write_bytes(buf.getvalue())
    name = f"{registry.host}/chunked/rand:1"
    vl(root, "import", str(tmp_path / "r.tar"), name)
    r = vl(root, "push", "--chunk-size", "65536", name)
    assert "Pushed" in out(r)
    mono = f"{registry.host}/mono/rand:1"
    root2 = tmp_path / "solo2"
    vl(root2, "import", str(tmp_path / "r.tar"), mono)
    assert "Pushed" in out(vl(root2, "push", mono))
    for n in (name, mono):
        dst = tmp_path / ("d" + n.rsplit("/", 2)[1])
        vl(dst, "pull", n)
        img = ImageStore(dst / "image").resolve(n)
        assert (ImageStore(dst / "image").snapshot_dirs(img)[0] / "random.bin").read_bytes() == blob


def test_cross_repository_mount(registry, src):
    a, b = f"{registry.host}/mnt/one:1", f"{registry.host}/mnt/two:1"
    vl(src, "tag", "busybox", a)
    vl(src, "push", a)
    vl(src, "tag", "busybox", b)
    assert "Mounted from mnt/one" in out(vl(src, "push", b))


def test_search_catalog(registry, src):
    name = f"{registry.host}/findme/needle:1"
    vl(src, "tag", "busybox", name)
    vl(src, "push", name)
    r = out(vl(src, "search", f"{registry.host}/needle"))
    assert f"{registry.host}/findme/needle" in r
    r = out(vl(src, "search", "--registry", registry.host, "--format", "{{.Name}}", "needle"))
    assert r.strip() == f"{registry.host}/findme/needle"


def test_missing_image_is_an_error(registry, tmp_path):
    r = vl(tmp_path / "x", "pull", f"{registry.host}/nope/nothing:1", check=False)
    assert r.returncode == 125 and b"not found" in r.stderr
    assert ImageStore(tmp_path / "x" / "image").images() == []


def test_resume_interrupted_download(registry, src, tmp_path):
    name = f"{registry.host}/resume/busybox:1"
    vl(src, "tag", "busybox", name)
    vl(src, "push", name)
    s = ImageStore(src / "image")
    layer = s.resolve(name).layers[0]
    blob = s.blob_path(layer.digest).read_bytes()
    dst = ImageStore(tmp_path / "dst" / "image")
    dst.ensure()
    part = dst.partial_dir / layer.digest.split(":")[1]
    part.write_bytes(blob[: len(blob) // 2])  # what an interrupted pull leaves behind
    vl(tmp_path / "dst", "pull", name)
    assert not part.exists()
    assert dst.resolve(name).layers[0].digest == layer.digest
    # A corrupt partial download is detected by the digest check, discarded, and the next pull works.
    dst2 = ImageStore(tmp_path / "dst2" / "image")
    dst2.ensure()
    part2 = dst2.partial_dir / layer.digest.split(":")[1]
    part2.write_bytes(b"\0" * (len(blob) // 2))
    r = vl(tmp_path / "dst2", "pull", name, check=False)
    assert r.returncode == 125 and b"digest" in r.stderr
    assert not part2.exists() and dst2.images() == [] and os.listdir(dst2.blob_dir) == []
    vl(tmp_path / "dst2", "pull", name)


def test_tls_and_htpasswd_login_flow(tls_registry, src, tmp_path):
    host = tls_registry.host
    name = f"{host}/secure/busybox:1"
    vl(src, "tag", "busybox", name)
    # The CA is not trusted: refused, and never downgraded to plain HTTP.
    r = vl(src, "push", name, check=False)
    assert r.returncode == 125 and b"certificate" in r.stderr.lower()
    # Trusted CA but no credentials.
    r = vl(src, "push", "--tls-ca", str(tls_registry.ca), name, check=False)
    assert r.returncode == 125 and b"authentication required" in r.stderr
    # Wrong password: refused, nothing saved.
    r = vl(src, "login", "--tls-ca", str(tls_registry.ca), "-u", USER, "--password-stdin", host,
           input=b"wrong\n", check=False)
    assert r.returncode == 125 and not (src / "auth.json").exists()
    r = vl(src, "login", "--tls-ca", str(tls_registry.ca), "-u", USER, "--password-stdin", host,
           input=PASSWORD.encode() + b"\n")
    assert "Login Succeeded" in out(r)
    auth = src / "auth.json"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert host in json.loads(auth.read_text())["auths"]
    vl(src, "push", "--tls-ca", str(tls_registry.ca), name)
    # The CA from the registries config file instead of the flag.
    (src / "image" / "registries.json").write_text(json.dumps({"registries": {host: {"ca": str(tls_registry.ca)}}}))
    assert "Image is up to date" in out(vl(src, "pull", name))
    assert "secure/busybox" in out(vl(src, "search", f"{host}/busybox"))
    assert f"Removing login credentials for {host}" in out(vl(src, "logout", host))
    assert f"Not logged in to {host}" in out(vl(src, "logout", host))
    r = vl(src, "pull", name, check=False)
    assert r.returncode == 125 and b"authentication required" in r.stderr


def test_multi_layer_image_round_trip(registry, src, tmp_path):
    store = ImageStore(src / "image")
    base = store.resolve("busybox")
    img = base
    for i in range(4):
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = os.urandom(50_000 * (i + 1))
            ti = tarfile.TarInfo(f"layer{i}/data")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
            if i:
                wh = tarfile.TarInfo(f"layer{i - 1}/.wh.data")
                tf.addfile(wh)
        buf.seek(0)
        img = store.commit(img, buf, None)
    name = f"{registry.host}/multi/app:5"
    store.tag(img, name)
    vl(src, "push", name)
    dst = tmp_path / "dst"
    pulled = out(vl(dst, "pull", name))
    assert pulled.count("Pull complete") == 5
    got = ImageStore(dst / "image").resolve(name)
    assert [lyr.diff_id for lyr in got.layers] == [lyr.diff_id for lyr in img.layers]
    flat = tmp_path / "flat"
    ImageStore(dst / "image").flatten(got, flat)
    assert sorted(p.name for p in flat.glob("layer*/*")) == ["data"]
    assert (flat / "layer3" / "data").stat().st_size == 200_000


def test_bearer_token_auth_realm_on_the_same_host(token_registry, src, tmp_path):
    host = token_registry.host
    name = f"{host}/tok/busybox:1"
    vl(src, "tag", "busybox", name)
    r = vl(src, "push", name, check=False)
    assert r.returncode == 125 and b"authentication required" in r.stderr
    r = vl(src, "login", "-u", USER, "--password-stdin", host, input=b"wrong\n", check=False)
    assert r.returncode == 125 and b"credentials refused" in r.stderr
    vl(src, "login", "-u", USER, "--password-stdin", host, input=PASSWORD.encode() + b"\n")
    assert "Pushed" in out(vl(src, "push", name))
    seen = token_registry.tokens.seen
    assert any(a and a.startswith("Basic ") for a in seen)  # the realm is on the registry's host: credentials go
    dst = tmp_path / "dst"
    vl(dst, "login", "-u", USER, "--password-stdin", host, input=PASSWORD.encode() + b"\n")
    assert "Pull complete" in out(vl(dst, "pull", name))


def test_bearer_realm_on_another_host_gets_no_credentials(token_registry_elsewhere, src):
    host = token_registry_elsewhere.host
    name = f"{host}/tok/busybox:1"
    (src / "auth.json").unlink(missing_ok=True)
    from runtime.image.auth import AuthFile

    AuthFile(src).set(host, USER, PASSWORD)
    vl(src, "tag", "busybox", name)
    r = vl(src, "push", name, check=False)
    assert r.returncode == 125 and b"plain HTTP on another host" in r.stderr
    assert token_registry_elsewhere.tokens.seen == []  # not even asked, let alone given the password

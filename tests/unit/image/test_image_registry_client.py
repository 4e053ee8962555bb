"""The registry client against an httpx MockTransport: auth realms, retries, redirects, limits, resume (case 33)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from imgtools import entry, gz, make_tar

from runtime.image import oci
from runtime.image.digest import of_bytes
from runtime.image.errors import AuthError, DigestMismatch, InvalidArchive, LimitExceeded, RegistryError
from runtime.image.reference import parse
from runtime.image.registry import RegistryClient, Reporter

HOST = "reg.example"
LAYER = gz(make_tar(entry("file", "etc/motd", "hello")))
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [of_bytes(make_tar(entry("file", "etc/motd", "hello")))]}}
                    ).encode()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                       "config": {"mediaType": oci.OCI_CONFIG, "digest": of_bytes(CONFIG), "size": len(CONFIG)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": of_bytes(LAYER), "size": len(LAYER)}]}).encode()


class FakeRegistry:
    """Serves one image at reg.example/app:1; records requests; behaviours switched by attributes."""

    def __init__(self):
        self.blobs = {of_bytes(CONFIG): CONFIG, of_bytes(LAYER): LAYER}
        self.manifest = MANIFEST
        self.content_type = oci.OCI_MANIFEST
        self.requests: list[httpx.Request] = []
        self.auth = None  # None, or ("bearer", realm)
        self.fail_500 = 0
        self.redirect_loop = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = request.url
        if url.host != HOST:  # a token server
            return httpx.Response(200, json={"token": "tok-" + url.host})
        if self.fail_500:
            self.fail_500 -= 1
            return httpx.Response(500)
        if self.auth and request.headers.get("authorization") != f"Bearer tok-{httpx.URL(self.auth[1]).host}":
            return httpx.Response(401, headers={"www-authenticate":
                                                f'Bearer realm="{self.auth[1]}",service="{HOST}"'})
        if self.redirect_loop and "/blobs/" in url.path:
            return httpx.Response(307, headers={"location": str(url)})
        if url.path == "/v2/":
            return httpx.Response(200, json={})
        if "/manifests/" in url.path:
            return httpx.Response(200, content=self.manifest, headers={"content-type": self.content_type})
        if "/blobs/" in url.path:
            d = url.path.rsplit("/", 1)[1]
            data = self.blobs[d]
            rng = request.headers.get("range")
            if rng:
                start = int(rng.split("=")[1].rstrip("-"))
                return httpx.Response(206, content=data[start:])
            return httpx.Response(200, content=data)
        return httpx.Response(404)


def client(tmp_path, fake, credentials=None) -> RegistryClient:
    return RegistryClient(HOST, tmp_path / "root", tmp_path / "root" / "image", transport=httpx.MockTransport(fake),
                          credentials=credentials)


def test_pull_through_mock(tmp_path, store):
    fake = FakeRegistry()
    lines = []
    with client(tmp_path, fake) as c:
        img = c.pull(parse(f"{HOST}/app:1"), store, Reporter(lines.append))
    assert img.refs == [f"{HOST}/app:1"]
    assert "Status: Downloaded newer image for reg.example/app:1" in lines


def test_token_realm_on_same_host_gets_credentials(tmp_path, store):
    fake = FakeRegistry()
    fake.auth = ("bearer", f"https://{HOST}/token")

    def handler(request):
        if request.url.path == "/token":
            fake.requests.append(request)
            return httpx.Response(200, json={"token": f"tok-{HOST}"})
        return fake(request)

    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(handler), credentials=("u", "p")) as c:
        c.pull(parse(f"{HOST}/app:1"), store)
    token_reqs = [r for r in fake.requests if r.url.path == "/token"]
    assert token_reqs[0].headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert token_reqs[0].url.params["scope"] == "repository:app:pull"


def test_token_realm_on_another_host_gets_no_credentials(tmp_path, store):
    fake = FakeRegistry()
    fake.auth = ("bearer", "https://auth.elsewhere.example/token")
    with client(tmp_path, fake, credentials=("u", "secret")) as c:
        c.pull(parse(f"{HOST}/app:1"), store)
    elsewhere = [r for r in fake.requests if r.url.host != HOST]
    assert elsewhere and all("authorization" not in r.headers for r in elsewhere)


def test_plain_http_realm_elsewhere_refused(tmp_path, store):
    fake = FakeRegistry()
    fake.auth = ("bearer", "http://auth.elsewhere.example/token")
    with client(tmp_path, fake, credentials=("u", "p")) as c, pytest.raises(AuthError, match="plain HTTP"):
        c.pull(parse(f"{HOST}/app:1"), store)


def test_500_is_retried_a_bounded_number_of_times(tmp_path, store):
    fake = FakeRegistry()
    fake.fail_500 = 2
    with client(tmp_path, fake) as c:
        c.pull(parse(f"{HOST}/app:1"), store)
    fake2 = FakeRegistry()
    fake2.fail_500 = 10**6
    with client(tmp_path, fake2) as c, pytest.raises(RegistryError, match="giving up after 3 attempts"):
        c.pull(parse(f"{HOST}/app:2"), store)
    assert len(fake2.requests) <= 4
    assert store.resolve(f"{HOST}/app:1")


def test_redirect_loop_is_bounded(tmp_path, store):
    fake = FakeRegistry()
    fake.redirect_loop = True
    with client(tmp_path, fake) as c, pytest.raises(RegistryError, match="too many redirects"):
        c.pull(parse(f"{HOST}/app:1"), store)
    assert len(fake.requests) < 20
    assert store.images() == []


def test_oversized_manifest_refused(tmp_path, store):
    fake = FakeRegistry()
    fake.manifest = b" " * (5 << 20)
    with client(tmp_path, fake) as c, pytest.raises(LimitExceeded):
        c.pull(parse(f"{HOST}/app:1"), store)


def test_manifest_digest_checks(tmp_path, store):
    fake = FakeRegistry()
    with client(tmp_path, fake) as c, pytest.raises(DigestMismatch):
        c.pull(parse(f"{HOST}/app@sha256:" + "0" * 64), store)
    fake.content_type = oci.DOCKER_MANIFEST
    with client(tmp_path, fake) as c, pytest.raises(InvalidArchive, match="Content-Type"):
        c.pull(parse(f"{HOST}/app:1"), store)


def test_layer_content_not_matching_digest(tmp_path, store):
    fake = FakeRegistry()
    fake.blobs[of_bytes(LAYER)] = LAYER[:-1] + bytes([LAYER[-1] ^ 1])
    with client(tmp_path, fake) as c, pytest.raises(DigestMismatch):
        c.pull(parse(f"{HOST}/app:1"), store)
    assert store.images() == [] and list(store.partial_dir.iterdir()) == []


def test_blob_larger_than_descriptor(tmp_path, store):
    fake = FakeRegistry()
    fake.blobs[of_bytes(LAYER)] = LAYER + b"extra"
    with client(tmp_path, fake) as c, pytest.raises(DigestMismatch, match="larger than its descriptor"):
        c.pull(parse(f"{HOST}/app:1"), store)
    assert list(store.partial_dir.iterdir()) == []


def test_resume_uses_range(tmp_path, store):
    fake = FakeRegistry()
    store.ensure()
    part = store.partial_dir / of_bytes(LAYER)[7:]
    part.write_bytes(LAYER[:10])
    with client(tmp_path, fake) as c:
        c.pull(parse(f"{HOST}/app:1"), store)
    ranges = [r.headers.get("range") for r in fake.requests if "/blobs/" in r.url.path]
    assert "bytes=10-" in ranges
    assert not part.exists()


def test_index_picks_platform_or_explains(tmp_path, store):
    fake = FakeRegistry()
    os_name, arch = oci.host_platform()
    index = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        {"mediaType": oci.OCI_MANIFEST, "digest": of_bytes(MANIFEST), "size": len(MANIFEST),
         "platform": {"os": os_name, "architecture": arch}}]}

    def handler(request):
        if request.url.path.endswith("/manifests/1"):
            fake.requests.append(request)
            return httpx.Response(200, content=json.dumps(index).encode(), headers={"content-type": oci.OCI_INDEX})
        return fake(request)

    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(handler)) as c:
        img = c.pull(parse(f"{HOST}/app:1"), store)
    assert img.digest == of_bytes(MANIFEST)
    index["manifests"][0]["platform"]["architecture"] = "mips"
    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(handler)) as c, \
            pytest.raises(InvalidArchive, match=f"no matching manifest for linux/{arch}"):
        c.pull(parse(f"{HOST}/app:1"), store)


def test_credentials_file_shape_and_mode(tmp_path):
    import os
    import stat

    from runtime.image.auth import AuthFile, is_loopback

    a = AuthFile(tmp_path)
    a.set("localhost:5000", "me", "pw:with:colons")
    assert a.get("localhost:5000") == ("me", "pw:with:colons")
    assert stat.S_IMODE(os.stat(tmp_path / "auth.json").st_mode) == 0o600
    assert json.loads((tmp_path / "auth.json").read_text())["auths"]["localhost:5000"]["auth"]
    assert a.remove("localhost:5000") and not a.remove("localhost:5000")
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")


def test_truncated_bodies_keep_partial_for_resume(tmp_path, store):
    """A registry that keeps cutting the blob short: bounded attempts, partial kept, a later pull resumes."""
    big = gz(make_tar(entry("file", "big", bytes(range(256)) * 4000)))
    diff = of_bytes(make_tar(entry("file", "big", bytes(range(256)) * 4000)))
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                      "config": {"mediaType": oci.OCI_CONFIG, "digest": of_bytes(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": of_bytes(big), "size": len(big)}]}).encode()
    fake = FakeRegistry()
    fake.manifest = man
    fake.blobs = {of_bytes(cfg): cfg, of_bytes(big): big}
    served = []

    def stingy(request):
        resp = fake(request)
        if "/blobs/" in request.url.path and of_bytes(big)[7:] in request.url.path:
            body = resp.content[:100]
            served.append(len(body))
            return httpx.Response(resp.status_code, content=body)
        return resp

    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(stingy)) as c, \
            pytest.raises(RegistryError, match="run pull again to resume"):
        c.pull(parse(f"{HOST}/app:1"), store)
    part = store.partial_dir / of_bytes(big)[7:]
    assert part.stat().st_size == sum(served) == 300
    assert store.images() == []
    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(fake)) as c:
        c.pull(parse(f"{HOST}/app:1"), store)
    assert not part.exists()
    assert any(r.headers.get("range") == "bytes=300-" for r in fake.requests)


def test_credentials_never_follow_a_location_or_link_elsewhere(tmp_path, store):
    """Upload Locations and catalog Links on another host get no Authorization header."""
    from runtime.image import build

    img = build.build_busybox(store)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host != HOST:
            if request.method == "PUT":
                return httpx.Response(201)
            return httpx.Response(202, headers={"location": "https://storage.elsewhere.example/upload/2"})
        if request.url.path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": ["a"]},
                                  headers={"link": '<https://evil.example/v2/_catalog?n=1&last=a>; rel="next"'})
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(202, headers={"location": "https://storage.elsewhere.example/upload/1"})
        if request.method == "PUT" and "/manifests/" in request.url.path:
            return httpx.Response(201)
        return httpx.Response(200, json={})

    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(handler),
                        credentials=("u", "secret")) as c:
        c.basic = True  # as after a Basic challenge: credentials on every same-host request
        c.push(img, parse(f"{HOST}/app:1"), store)
        with pytest.raises(RegistryError, match="links to another host"):
            c.catalog()
    elsewhere = [r for r in seen if r.url.host != HOST]
    assert elsewhere and all("authorization" not in r.headers for r in elsewhere)
    assert any("authorization" in r.headers for r in seen if r.url.host == HOST)


def test_token_response_shapes(tmp_path, store):
    fake = FakeRegistry()
    fake.auth = ("bearer", f"https://{HOST}/token")

    def handler(request):
        if request.url.path == "/token":
            return httpx.Response(200, json=["not", "an", "object"])
        return fake(request)

    with RegistryClient(HOST, tmp_path / "r", transport=httpx.MockTransport(handler)) as c, \
            pytest.raises(AuthError, match="no token"):
        c.pull(parse(f"{HOST}/app:1"), store)

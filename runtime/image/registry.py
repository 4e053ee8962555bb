"""A client for the OCI distribution API: pull, push, catalog search, login checks.

Safety rules (SECURITY.md corpus 25-33): every document is capped at 4 MiB and parsed
strictly; every blob is verified against its digest and size before it is kept;
downloads go to `staging/partial/<hex>` and resume with Range requests; retries
are bounded; redirects are bounded (and httpx drops Authorization when a redirect
leaves the origin); credentials go to a token realm only on the registry's own host;
TLS verification is never disabled (a private CA is trusted by naming it) and plain
HTTP is used only when allowed (loopback or configured) and only when the server
does not speak TLS at all, never after a certificate failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.image import digest as dg
from runtime.image import oci
from runtime.image.auth import AuthFile, RegistrySettings
from runtime.image.errors import AuthError, DigestMismatch, ImageError, LimitExceeded, RegistryError
from runtime.image.reference import Reference
from runtime.image.reference import parse as parse_reference
from runtime.image.store import Image, ImageStore

ACCEPT = ", ".join([oci.OCI_MANIFEST, oci.DOCKER_MANIFEST, oci.OCI_INDEX, oci.DOCKER_LIST])
RETRIES = 3
DOWNLOADS = 3  # layers downloaded at once, as docker does
CHUNK = 1 << 20
MONOLITHIC_MAX = 8 << 20  # blobs up to this size go up in one PUT; bigger ones in PATCH chunks
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


class Reporter:
    """Per-layer progress: plain docker-style lines, or a rich live view when attached to a terminal."""

    def __init__(self, out: Callable[[str], None] | None = None):
        self.out = out or (lambda line: None)

    def status(self, ident: str, text: str) -> None:
        """A layer (or the image) changed state: `Pulling fs layer`, `Pull complete`, ..."""
        self.out(f"{ident}: {text}" if ident else text)

    def progress(self, ident: str, done: int, total: int, verb: str = "Downloading") -> None:
        """Bytes moved so far for one layer (plain mode prints nothing for these)."""

    def close(self) -> None:
        """Stop drawing."""


class RichReporter(Reporter):
    """The same statuses drawn as rich progress bars, one per layer."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        super().__init__()
        self.console = Console(highlight=False)  # digests and hosts are not code to colour
        self.bars = Progress(TextColumn("{task.fields[ident]}: {task.description}"), BarColumn(), DownloadColumn(),
                             console=self.console, transient=False)
        self.tasks: dict[str, int] = {}
        self.bars.start()

    def _task(self, ident: str) -> int:
        if ident not in self.tasks:
            self.tasks[ident] = self.bars.add_task("", ident=ident, total=None)
        return self.tasks[ident]

    def status(self, ident: str, text: str) -> None:
        """Update the layer's line, or print an image-level line."""
        if not ident:
            self.bars.console.print(text, highlight=False, markup=False)
            return
        self.bars.update(self._task(ident), description=text)

    def progress(self, ident: str, done: int, total: int, verb: str = "Downloading") -> None:
        """Move the layer's bar."""
        self.bars.update(self._task(ident), description=verb, completed=done, total=total or None)

    def close(self) -> None:
        """Stop the live display."""
        self.bars.stop()


def _www_authenticate(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM_RE.findall(rest))


class RegistryClient:
    """One registry host: transport, scheme, authentication and the distribution API calls."""

    def __init__(self, registry: str, root: str | os.PathLike, store_path: str | os.PathLike | None = None,
                 ca: str | None = None, transport=None, credentials: tuple[str, str] | None = None,
                 timeout: float = 60.0):
        import httpx

        self.httpx = httpx
        self.registry = registry
        # Docker Hub's API lives on another host than its name; credentials stay keyed by the name.
        self.api_host = "registry-1.docker.io" if registry == "docker.io" else registry
        self.auth_file = AuthFile(root)
        self.settings = RegistrySettings.load(store_path or Path(root) / "image", registry, ca)
        self.credentials = credentials if credentials is not None else self.auth_file.get(registry)
        verify: object = True
        if self.settings.ca:
            import ssl

            verify = ssl.create_default_context(cafile=self.settings.ca)
        kwargs: dict[str, Any] = {"timeout": timeout, "follow_redirects": True, "max_redirects": 5, "verify": verify,
                  "headers": {"User-Agent": "virtlab/0.1"}}
        if transport is not None:
            kwargs["transport"] = transport
        self.client = httpx.Client(**kwargs)
        self.base: str | None = None
        self.tokens: dict[str, str] = {}
        self.basic = False

    def close(self) -> None:
        """Close connections."""
        self.client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _base(self) -> str:
        if self.base:
            return self.base
        httpx = self.httpx
        try:
            self.client.get(f"https://{self.api_host}/v2/")
            self.base = f"https://{self.api_host}"
        except httpx.ConnectError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
                raise RegistryError(f"TLS certificate of {self.registry} is not trusted: {text} "
                                    f"(trust its CA with --tls-ca or {self.settings_path()})") from exc
            if not self.settings.http:
                raise RegistryError(f"cannot reach https://{self.api_host}: {text}") from exc
            self.base = f"http://{self.api_host}"
        except httpx.HTTPError as exc:
            if not self.settings.http:
                raise RegistryError(f"cannot reach https://{self.api_host}: {exc}") from exc
            self.base = f"http://{self.api_host}"
        return self.base

    def settings_path(self) -> str:
        """Where per-registry settings are read from."""
        return "registries.json in the image store"

    def _same_origin(self, url: str) -> bool:
        a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self._base())
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self.basic and self.credentials:
            user, pw = self.credentials
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
        return {}

    def _authenticate(self, resp, scope: str) -> bool:
        """Handle a 401: Basic (send our credentials) or Bearer (fetch a token). False if we cannot."""
        scheme, params = _www_authenticate(resp.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if not self.credentials or self.basic:
                return False
            self.basic = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        if scope in self.tokens:
            return False  # a fresh token was refused already
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("https", "http") or not realm.hostname:
            raise AuthError(f"registry {self.registry} sent an invalid token realm {params['realm']!r}")
        base = urllib.parse.urlsplit(self._base())
        same_host = realm.hostname == base.hostname
        if realm.scheme == "http" and not (same_host and base.scheme == "http"):
            raise AuthError(f"refusing token realm {params['realm']!r}: plain HTTP on another host")
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        headers = {}
        if self.credentials and same_host:
            user, pw = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        # Credentials go only to a realm on the registry's own host (SECURITY.md case 33).
        for attempt in range(RETRIES):
            try:
                r = self.client.get(params["realm"], params=query, headers=headers)
                break
            except self.httpx.TransportError as exc:
                if attempt + 1 == RETRIES:
                    raise AuthError(f"cannot get a token from {realm.hostname}: {exc}") from exc
                time.sleep(0.2 * (attempt + 1))
            except self.httpx.HTTPError as exc:
                raise AuthError(f"cannot get a token from {realm.hostname}: {exc}") from exc
        if r.status_code in (401, 403):
            raise AuthError(f"{self.registry}: authentication required"
                            + (" (run `virtlab login`)" if not self.credentials else " (credentials refused)"))
        if r.status_code != 200:
            raise AuthError(f"token request to {realm.hostname} failed: HTTP {r.status_code}")
        if len(r.content) > 1 << 20:
            raise AuthError("token response is too large")
        try:
            doc = r.json()
        except ValueError as exc:
            raise AuthError("token response is not JSON") from exc
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("token response has no token")
        self.tokens[scope] = token
        return True

    def request(self, method: str, path: str, scope: str = "", stream: bool = False, ok=(200,), **kw):
        """One API call with auth, bounded retries on 5xx and connection errors; returns the response."""
        url = path if path.startswith(("http://", "https://")) else self._base() + path
        last: Exception | None = None
        attempts = 0
        auth_tries = 0
        while attempts < RETRIES:
            headers = dict(kw.pop("headers", None) or {})
            kw["headers"] = headers
            if self._same_origin(url):
                headers.update(self._auth_header(scope))
            else:
                headers.pop("Authorization", None)  # a Location or Link elsewhere never gets our credentials
            try:
                req = self.client.build_request(method, url, **kw)
                resp = self.client.send(req, stream=stream)
            except self.httpx.TooManyRedirects as exc:
                raise RegistryError(f"{method} {url}: too many redirects") from exc
            except self.httpx.TransportError as exc:
                last = exc
                attempts += 1
                time.sleep(0.2 * attempts)
                continue
            if resp.status_code == 401 and auth_tries < 2:
                auth_tries += 1
                resp.close()
                if self._authenticate(resp, scope):
                    continue
                raise AuthError(f"{self.registry}: authentication required"
                                + (" (run `virtlab login`)" if not self.credentials else " (credentials refused)"))
            if resp.status_code >= 500:
                last = RegistryError(f"{method} {url}: HTTP {resp.status_code}")
                resp.close()
                attempts += 1
                time.sleep(0.2 * attempts)
                continue
            if resp.status_code not in ok:
                body = resp.read()[:300].decode(errors="replace") if not stream else ""
                resp.close()
                raise RegistryError(f"{method} {url}: HTTP {resp.status_code} {body}".strip())
            return resp
        raise RegistryError(f"{method} {url}: giving up after {RETRIES} attempts: {last}")

    def _read_capped(self, resp, limit: int, what: str) -> bytes:
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            resp.close()
            raise LimitExceeded(f"{what} is {declared} bytes, over the limit of {limit}")
        buf = bytearray()
        try:
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > limit:
                    raise LimitExceeded(f"{what} is over the limit of {limit} bytes")
        except self.httpx.HTTPError as exc:
            raise RegistryError(f"{what}: transfer failed: {exc}") from exc
        finally:
            resp.close()
        return bytes(buf)

    # ------------------------------------------------------------- pulling

    def get_manifest(self, ref: Reference, limit: int) -> tuple[bytes, str, str]:
        """(bytes, content type, digest) of the manifest or index `ref` names."""
        scope = f"repository:{ref.remote_path}:pull"
        what = ref.digest or ref.tag or "latest"
        resp = self.request("GET", f"/v2/{ref.remote_path}/manifests/{what}", scope, stream=True,
                            headers={"Accept": ACCEPT}, ok=(200, 404))
        if resp.status_code == 404:
            resp.close()
            raise RegistryError(f"manifest for {ref} not found: manifest unknown")
        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        data = self._read_capped(resp, limit, f"manifest of {ref}")
        digest = dg.of_bytes(data)
        if ref.digest and digest != ref.digest:
            raise DigestMismatch(f"manifest of {ref} has digest {digest}")
        header = resp.headers.get("docker-content-digest")
        if header and header != digest and header.startswith("sha256:"):
            raise DigestMismatch(f"manifest of {ref}: registry says {header}, content is {digest}")
        return data, ctype, digest

    def get_blob_bytes(self, ref: Reference, desc: dict, limit: int) -> bytes:
        """A small blob (config), verified."""
        resp = self.request("GET", f"/v2/{ref.remote_path}/blobs/{desc['digest']}",
                            f"repository:{ref.remote_path}:pull", stream=True)
        data = self._read_capped(resp, min(limit, desc["size"] + 1), f"blob {desc['digest']}")
        if len(data) != desc["size"]:
            raise DigestMismatch(f"blob {desc['digest']}: {len(data)} bytes, descriptor says {desc['size']}")
        if dg.of_bytes(data) != desc["digest"]:
            raise DigestMismatch(f"blob {desc['digest']}: content does not match its digest")
        return data

    def download_blob(self, ref: Reference, desc: dict, dest: Path, report: Reporter, ident: str) -> None:
        """Download a layer blob into `dest`, resuming a partial file with Range; verify digest and size."""
        size = desc["size"]
        scope = f"repository:{ref.remote_path}:pull"
        for attempt in range(RETRIES):
            have = dest.stat().st_size if dest.exists() else 0
            if have > size:
                dest.unlink()
                have = 0
            if have < size:
                headers = {"Range": f"bytes={have}-"} if have else {}
                resp = self.request("GET", f"/v2/{ref.remote_path}/blobs/{desc['digest']}", scope, stream=True,
                                    headers=headers, ok=(200, 206))
                mode = "ab" if resp.status_code == 206 and have else "wb"
                done = have if mode == "ab" else 0
                try:
                    with open(dest, mode) as f:
                        for chunk in resp.iter_bytes(CHUNK):
                            done += len(chunk)
                            if done > size:
                                raise DigestMismatch(f"blob {desc['digest']} is larger than its descriptor says "
                                                     f"({size} bytes)")
                            f.write(chunk)
                            report.progress(ident, done, size)
                except DigestMismatch:
                    dest.unlink(missing_ok=True)
                    raise
                except self.httpx.HTTPError:
                    resp.close()
                    if attempt + 1 < RETRIES:
                        continue  # keep the partial file and resume
                    raise RegistryError(f"download of {desc['digest']} interrupted; run pull again to resume") \
                        from None
                finally:
                    resp.close()
            if dest.stat().st_size < size:
                continue
            report.status(ident, "Verifying Checksum")
            h = dg.HashingReader(open(dest, "rb"), what=f"blob {desc['digest']}")
            try:
                h.drain()
            finally:
                h.raw.close()
            try:
                h.verify(desc["digest"], size)
            except DigestMismatch:
                dest.unlink()
                raise
            return
        raise RegistryError(f"download of {desc['digest']} did not complete; run pull again to resume")

    def _fetch_and_extract(self, ref: Reference, store: ImageStore, todo: list, report: Reporter) -> None:
        """Download up to DOWNLOADS layers at once; unpack them in order as each arrives (like docker)."""
        from concurrent.futures import ThreadPoolExecutor

        def fetch(layer: dict, ident: str) -> Path:
            part = store.partial_dir / dg.hex_of(layer["digest"])
            report.status(ident, "Downloading")
            self.download_blob(ref, layer, part, report, ident)
            report.status(ident, "Download complete")
            return part

        with ThreadPoolExecutor(max_workers=DOWNLOADS) as pool:
            futures = [pool.submit(fetch, layer, ident) for layer, _, ident in todo]
            try:
                for (layer, diff_id, ident), fut in zip(todo, futures, strict=True):
                    part = fut.result()
                    report.status(ident, "Extracting")
                    with open(part, "rb") as f:
                        store.ingest_layer(f, digest=layer["digest"], size=layer["size"], diff_id=diff_id,
                                           media_type=layer["mediaType"], what=f"layer {layer['digest']}")
                    part.unlink(missing_ok=True)
                    report.status(ident, "Pull complete")
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise

    def pull(self, ref: Reference, store: ImageStore, report: Reporter | None = None) -> Image:
        """Pull `ref` into `store`, layer by layer, like docker (statuses on `report`)."""
        report = report or Reporter()
        limits = store.limits
        ref = ref.with_tag()
        report.status("", f"{ref.tag or ref.digest}: Pulling from {ref.remote_path}")
        data, ctype, digest = self.get_manifest(ref, limits.max_json_bytes)
        doc = oci.load_json(data, f"manifest of {ref}", limits)
        if oci.kind_of(doc, f"manifest of {ref}", ctype or None) == "index":
            index = oci.parse_index(data, f"index of {ref}", limits, content_type=ctype or None)
            desc = oci.pick_platform(index, f"index of {ref}")
            sub = Reference(ref.domain, ref.path, None, desc["digest"])
            data, ctype, digest = self.get_manifest(sub, limits.max_json_bytes)
            if len(data) != desc["size"]:
                raise DigestMismatch(f"manifest {desc['digest']}: size differs from the index")
        manifest = oci.parse_manifest(data, f"manifest of {ref}", limits, content_type=ctype or None)
        with store.writing():
            cfg_bytes = self.get_blob_bytes(ref, manifest["config"], limits.max_json_bytes)
            config = oci.parse_config(cfg_bytes, len(manifest["layers"]), f"config of {ref}", limits)
            diff_ids = config["rootfs"]["diff_ids"]
            todo = []
            for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
                ident = layer["digest"][7:19]
                if store.has_blob(layer["digest"]) and store.has_snapshot(diff_id):
                    report.status(ident, "Already exists")
                else:
                    report.status(ident, "Pulling fs layer")
                    todo.append((layer, diff_id, ident))
            for _, _, ident in todo[DOWNLOADS:]:
                report.status(ident, "Waiting")
            self._fetch_and_extract(ref, store, todo, report)
            store.put_blob_bytes(cfg_bytes)
            try:
                before = store.resolve(ref.name).digest
            except ImageError:
                before = None
            img = store.add_manifest(data, ref.name)
        report.status("", f"Digest: {digest}")
        shown = str(ref)
        if before == img.digest:
            report.status("", f"Status: Image is up to date for {shown}")
        else:
            report.status("", f"Status: Downloaded newer image for {shown}")
        return img

    # ------------------------------------------------------------- pushing

    def blob_exists(self, repo: str, digest: str) -> bool:
        """HEAD the blob in `repo`."""
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull,push", ok=(200, 404))
        r.close()
        return r.status_code == 200

    def mount_blob(self, repo: str, digest: str, source: str) -> bool:
        """Cross-repository mount of `digest` from `source`; True if the registry did it."""
        q = urllib.parse.urlencode({"mount": digest, "from": source})
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", f"repository:{repo}:pull,push",
                         ok=(201, 202))
        r.close()
        if r.status_code == 201:
            return True
        loc = r.headers.get("location")
        if loc:  # the registry opened an upload instead; cancel it
            try:
                self.request("DELETE", self._location(loc), f"repository:{repo}:pull,push", ok=(204, 404, 200)).close()
            except RegistryError:
                pass
        return False

    def _location(self, loc: str) -> str:
        return urllib.parse.urljoin(self._base() + "/", loc)

    def upload_blob(self, repo: str, digest: str, path: Path, size: int, report: Reporter, ident: str,
                    chunk_size: int | None = None) -> None:
        """Upload a blob: one PUT up to MONOLITHIC_MAX, else PATCH chunks then PUT (chunked upload)."""
        scope = f"repository:{repo}:pull,push"
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope, ok=(202,))
        r.close()
        loc = self._location(r.headers["location"])
        chunk_size = chunk_size or (MONOLITHIC_MAX if size <= MONOLITHIC_MAX else 4 * CHUNK)
        with open(path, "rb") as f:
            if size <= chunk_size:
                data = f.read()
                sep = "&" if "?" in loc else "?"
                r = self.request("PUT", f"{loc}{sep}digest={digest}", scope, content=data,
                                 headers={"Content-Type": "application/octet-stream"}, ok=(201,))
                r.close()
                report.progress(ident, size, size, "Pushing")
                return
            sent = 0
            while sent < size:
                data = f.read(chunk_size)
                end = sent + len(data) - 1
                r = self.request("PATCH", loc, scope, content=data, ok=(202,),
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Range": f"{sent}-{end}", "Content-Length": str(len(data))})
                r.close()
                loc = self._location(r.headers.get("location", loc))
                sent += len(data)
                report.progress(ident, sent, size, "Pushing")
        sep = "&" if "?" in loc else "?"
        r = self.request("PUT", f"{loc}{sep}digest={digest}", scope, content=b"", ok=(201,))
        r.close()

    def push(self, img: Image, ref: Reference, store: ImageStore, report: Reporter | None = None,
             chunk_size: int | None = None) -> str:
        """Push `img` as `ref`: layers (skipped if present, mounted across repositories if possible), config, manifest."""
        report = report or Reporter()
        ref = ref.with_tag()
        repo = ref.remote_path
        report.status("", f"The push refers to repository [{ref.repository}]")
        sources = []
        for name in img.refs:
            r = parse_reference(name)
            if r.registry == ref.registry and r.remote_path != repo:
                sources.append(r.remote_path)
        blobs = [(lyr.digest, lyr.size) for lyr in img.layers]
        for digest, size in blobs:
            ident = digest[7:19]
            if self.blob_exists(repo, digest):
                report.status(ident, "Layer already exists")
                continue
            mounted = next((s for s in sources if self.mount_blob(repo, digest, s)), None)
            if mounted:
                report.status(ident, f"Mounted from {mounted}")
                continue
            report.status(ident, "Preparing")
            self.upload_blob(repo, digest, store.blob_path(digest), size, report, ident, chunk_size)
            report.status(ident, "Pushed")
        cfg = store.blob_path(img.id)
        if not self.blob_exists(repo, img.id):
            self.upload_blob(repo, img.id, cfg, cfg.stat().st_size, Reporter(), img.id[7:19])
        data = store.read_blob(img.digest)
        r = self.request("PUT", f"/v2/{repo}/manifests/{ref.tag}", f"repository:{repo}:pull,push", content=data,
                         headers={"Content-Type": img.manifest_media_type}, ok=(201,))
        r.close()
        report.status("", f"{ref.tag}: digest: {img.digest} size: {len(data)}")
        return img.digest

    # ------------------------------------------------------- search / login

    def catalog(self, limit: int = 10_000) -> list[str]:
        """Repository names from /v2/_catalog (following Link pagination, bounded)."""
        names: list[str] = []
        path = "/v2/_catalog?n=1000"
        for _ in range(100):
            r = self.request("GET", path, "registry:catalog:*", stream=True)
            link = r.headers.get("link", "")
            data = self._read_capped(r, 4 << 20, "catalog")
            try:
                doc = json.loads(data)
            except ValueError as exc:
                raise RegistryError(f"catalog of {self.registry} is not JSON") from exc
            repos = (doc.get("repositories") if isinstance(doc, dict) else None) or []
            if not isinstance(repos, list):
                raise RegistryError(f"catalog of {self.registry} has no repository list")
            names.extend(n for n in repos if isinstance(n, str))
            m = re.match(r"<([^>]+)>", link)
            if not m or len(names) >= limit:
                break
            path = self._location(m.group(1))
            if not self._same_origin(path):
                raise RegistryError(f"catalog of {self.registry} links to another host: {path[:100]}")
        return names[:limit]

    def check_login(self) -> None:
        """GET /v2/ with the credentials; AuthError if the registry refuses them."""
        r = self.request("GET", "/v2/", "", ok=(200,))
        r.close()

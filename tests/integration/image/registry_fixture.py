"""Start and stop a real registry (Debian's docker-registry) on a free loopback port; make a test CA with openssl."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pass"  # the test registries' htpasswd / token-service account


@dataclass
class Registry:
    """A running registry: `host` is what goes in image names (127.0.0.1:PORT)."""

    host: str
    proc: subprocess.Popen
    ca: Path | None = None
    log: Path | None = None
    tokens: object = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("docker-registry did not start listening")


def start(workdir: Path, extra: str) -> Registry:
    port = _free_port()
    (workdir / "data").mkdir(parents=True)
    cfg = workdir / "config.yml"
    cfg.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {workdir / 'data'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{extra}""")
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY, "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    _wait_port(port, proc, log)
    return Registry(f"127.0.0.1:{port}", proc, log=log)


def stop(reg: Registry) -> None:
    reg.proc.terminate()
    try:
        reg.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.proc.kill()
        reg.proc.wait()


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost, with openssl."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=virtlab test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out",
        "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext.cnf", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


class TokenServer:
    """A small token service for the registry's Bearer auth: JWTs signed (RS256) with openssl.

    It records the Authorization header of every token request, so tests can check
    where credentials went, and grants what the scope asks for to anyone (or only
    to `user`/`password` when they are given).
    """

    def __init__(self, workdir: Path, issuer: str = "virtlab-test-issuer", service: str = "virtlab-registry",
                 user: str | None = None, password: str | None = None, host: str = "127.0.0.1"):
        import http.server
        import threading

        self.workdir, self.issuer, self.service = workdir, issuer, service
        self.user, self.password = user, password
        self.key = workdir / "token.key"
        self.cert = workdir / "token.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=virtlab token issuer", "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        self.seen: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                import base64
                import json
                import urllib.parse

                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization")
                server.seen.append(auth)
                if server.user is not None:
                    want = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                    if auth != want:
                        self.send_response(401)
                        self.end_headers()
                        return
                body = json.dumps({"token": server.token(q.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://{host}:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scopes: list[str]) -> str:
        """A JWT granting every action the scopes name."""
        import base64
        import json
        import os

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": self.issuer, "sub": self.user or "anonymous", "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{b64(sig)}"

    def registry_config(self, realm: str | None = None) -> str:
        """The `auth:` section of a registry config that trusts this token service."""
        return f"""auth:
  token:
    realm: {realm or self.realm}
    service: {self.service}
    issuer: {self.issuer}
    rootcertbundle: {self.cert}
"""

    def stop(self) -> None:
        """Shut the HTTP server down."""
        self.httpd.shutdown()
        self.httpd.server_close()

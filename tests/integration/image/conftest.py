"""A real registry (Debian's docker-registry) on loopback for the whole session: plain HTTP, and TLS + htpasswd.

Each registry gets a free port, storage in a temporary directory, and is stopped
(by its pid) at the end of the session. The TLS one uses a CA made here with openssl
and basic auth from `htpasswd -B`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pass"


@dataclass
class Registry:
    """A running registry: `host` is what goes in image names (127.0.0.1:PORT)."""

    host: str
    proc: subprocess.Popen
    ca: Path | None = None
    log: Path | None = None


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


def _start(workdir: Path, extra: str) -> Registry:
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


def _stop(reg: Registry) -> None:
    reg.proc.terminate()
    try:
        reg.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.proc.kill()
        reg.proc.wait()


def _need_registry() -> None:
    if not Path(REGISTRY).exists():
        pytest.skip("requires docker-registry (Debian package docker-registry)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A plain-HTTP registry on 127.0.0.1."""
    _need_registry()
    reg = _start(tmp_path_factory.mktemp("registry-http"), "")
    yield reg
    _stop(reg)


def _make_ca(d: Path) -> tuple[Path, Path, Path]:
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


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    """A registry with TLS (self-signed CA) and htpasswd basic auth."""
    _need_registry()
    if not shutil.which("openssl") or not shutil.which("htpasswd"):
        pytest.skip("requires openssl and htpasswd (apache2-utils)")
    d = tmp_path_factory.mktemp("registry-tls")
    ca, cert, key = _make_ca(d)
    htp = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True).stdout
    (d / "htpasswd").write_text(htp)
    extra = f"""  tls:
    certificate: {cert}
    key: {key}
auth:
  htpasswd:
    realm: virtlab-test
    path: {d / 'htpasswd'}
"""
    reg = _start(d / "srv", extra)
    reg.ca = ca
    yield reg
    _stop(reg)

"""A real registry (Debian's docker-registry) on loopback for the whole session: plain HTTP, and TLS + htpasswd.

Each registry gets a free port, storage in a temporary directory, and is stopped
(by its pid) at the end of the session. The TLS one uses a CA made here with openssl
and basic auth from `htpasswd -B`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from registry_fixture import PASSWORD, REGISTRY, USER, TokenServer, make_ca, start, stop


def _need_registry() -> None:
    if not Path(REGISTRY).exists():
        pytest.skip("requires docker-registry (Debian package docker-registry)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A plain-HTTP registry on 127.0.0.1."""
    _need_registry()
    reg = start(tmp_path_factory.mktemp("registry-http"), "")
    yield reg
    stop(reg)


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    """A registry with TLS (self-signed CA) and htpasswd basic auth."""
    _need_registry()
    if not shutil.which("openssl") or not shutil.which("htpasswd"):
        pytest.skip("requires openssl and htpasswd (apache2-utils)")
    d = tmp_path_factory.mktemp("registry-tls")
    ca, cert, key = make_ca(d)
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
    reg = start(d / "srv", extra)
    reg.ca = ca
    yield reg
    stop(reg)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory):
    """A registry with Bearer token auth; its token service (same host) wants USER/PASSWORD."""
    _need_registry()
    if not shutil.which("openssl"):
        pytest.skip("requires openssl")
    d = tmp_path_factory.mktemp("registry-token")
    tokens = TokenServer(d, user=USER, password=PASSWORD)
    reg = start(d / "srv", tokens.registry_config())
    reg.tokens = tokens
    yield reg
    stop(reg)
    tokens.stop()


@pytest.fixture(scope="session")
def token_registry_elsewhere(tmp_path_factory):
    """A registry whose token realm is on another host name (localhost vs 127.0.0.1), over plain HTTP."""
    _need_registry()
    if not shutil.which("openssl"):
        pytest.skip("requires openssl")
    d = tmp_path_factory.mktemp("registry-token-elsewhere")
    tokens = TokenServer(d, host="127.0.0.1")
    reg = start(d / "srv", tokens.registry_config(realm=f"http://localhost:{tokens.port}/token"))
    reg.tokens = tokens
    yield reg
    stop(reg)
    tokens.stop()

"""Fixtures for network tests: a store per test, network namespaces the test owns."""

from __future__ import annotations

import uuid

import pytest
from netns_helpers import Netns


@pytest.fixture
def netns(tmp_path):
    """Factory: netns() -> Netns; every namespace is removed at teardown."""
    made: list[Netns] = []

    def make() -> Netns:
        ns = Netns(str(tmp_path / f"ns-{uuid.uuid4().hex[:8]}"))
        made.append(ns)
        return ns

    yield make
    for ns in made:
        ns.destroy()


@pytest.fixture
def nm(tmp_path):
    """A NetworkManager on a fresh store; teardown removes every kernel object it made."""
    from runtime.network import NetworkManager

    mgr = NetworkManager(tmp_path / "root" / "network")
    yield mgr
    mgr.teardown()
    mgr.close()

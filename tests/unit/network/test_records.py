"""The network store: locking across threads and processes, atomic records, layout and modes."""

import multiprocessing
import os
import threading
import time

from runtime.network.records import Store


def test_lock_excludes_threads_sharing_one_store_and_is_reentrant(tmp_path):
    store = Store(tmp_path / "network")
    inside, peak = [0], [0]

    def work():
        for _ in range(20):
            with store.locked():
                with store.locked():  # re-entrant in the holding thread
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                    time.sleep(0.001)
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


def _hold(path, started, release):
    with Store(path).locked():
        started.set()
        release.wait(10)


def test_lock_excludes_other_processes(tmp_path):
    path = tmp_path / "network"
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(path, started, release))
    p.start()
    try:
        assert started.wait(10)
        got = threading.Event()

        def take():
            with Store(path).locked():
                got.set()

        t = threading.Thread(target=take)
        t.start()
        assert not got.wait(0.3)  # blocked while the other process holds it
        release.set()
        assert got.wait(10)
        t.join()
    finally:
        release.set()
        p.join(10)


def test_records_are_written_atomically_and_dirs_are_private(tmp_path):
    store = Store(tmp_path / "network")
    store.ensure()
    rec = {"id": "n1", "name": "lab", "created": "x"}
    store.save_network(rec)
    assert store.networks() == [rec]
    assert not [n for n in os.listdir(store.networks_dir) if n.endswith(".tmp")]
    for d in (store.path, store.networks_dir, store.ipam_dir, store.endpoints_dir):
        assert os.stat(d).st_mode & 0o777 == 0o700
    assert os.stat(store.hosts_dir).st_mode & 0o777 == 0o711  # bind-mount sources, traversable only


def test_endpoint_records_per_network(tmp_path):
    store = Store(tmp_path / "network")
    store.ensure()
    store.save_endpoint({"container_id": "c1", "network_id": "n1", "ifname": "eth0"})
    store.save_endpoint({"container_id": "c1", "network_id": "n2", "ifname": "eth1"})
    store.save_endpoint({"container_id": "c2", "network_id": "n1", "ifname": "eth0"})
    assert [e["network_id"] for e in store.endpoints_of("c1")] == ["n1", "n2"]
    assert [e["container_id"] for e in store.members("n1")] == ["c1", "c2"]
    assert store.has_members("n2")
    store.drop_endpoint("n2", "c1")
    assert not store.has_members("n2")
    assert not (store.endpoints_dir / "n2").exists()
    assert len(store.all_endpoints()) == 2

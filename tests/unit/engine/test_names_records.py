import threading

import pytest

from runtime.engine.errors import InvalidArgument, NameConflict, NoSuchContainer
from runtime.engine.names import new_id, random_name, validate_name
from runtime.engine.records import ContainerStore


@pytest.mark.parametrize("good", ["web", "a1", "my_app.v2-x", "/web", "x"])
def test_valid_names(good):
    assert validate_name(good) == good.lstrip("/")


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "-x", "_x", "a b", "x" * 10_000, "", "é", "a\nb", "../../etc"])
def test_invalid_names(bad):
    with pytest.raises(InvalidArgument):
        validate_name(bad)


def test_ids_and_random_names():
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 64 for i in ids)
    validate_name(random_name())


def _rec(cid, name):
    return {"Id": cid, "Name": name, "State": {"Status": "created"}}


def test_store_names_and_resolution(tmp_path):
    s = ContainerStore(tmp_path)
    s.ensure()
    a, b = "a" * 64, "ab" + "c" * 62
    for cid, name in ((a, "one"), (b, "two")):
        s.path(cid).mkdir()
        s.reserve_name(name, cid)
        s.save(_rec(cid, name))
    assert s.resolve("one") == a
    assert s.resolve(b) == b
    assert s.resolve("abc") == b
    with pytest.raises(Exception, match="multiple"):
        s.resolve("a")
    for bad in ("nope", "../x", "..", "", "x" * 300, ".names"):
        with pytest.raises(NoSuchContainer):
            s.resolve(bad)
    with pytest.raises(NameConflict, match="already in use"):
        s.reserve_name("one", b)
    s.release_name("one", b)  # not the owner: nothing happens
    assert s.name_owner("one") == a


def test_reserve_name_is_atomic(tmp_path):
    s = ContainerStore(tmp_path)
    s.ensure()
    won = []

    def grab(i):
        try:
            s.reserve_name("race", f"{i:064x}")
            won.append(i)
        except NameConflict:
            pass

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


def test_records_round_trip(tmp_path):
    s = ContainerStore(tmp_path)
    s.ensure()
    cid = new_id()
    s.path(cid).mkdir()
    s.save(_rec(cid, "x"))
    assert s.load(cid)["Name"] == "x"
    assert s.ids() == [cid]
    with s.locked(cid):
        pass

"""hosts-file rendering, in-place rewrite (bind mounts keep the inode), resolv.conf filtering."""

import os

import pytest

from runtime.network import hosts
from runtime.network.errors import InvalidArgument


def test_render_orders_localhost_own_then_peers_and_dedupes():
    text = hosts.render([("10.1.0.2", ["web", "web", "www"])], [("10.1.0.3", ["db", "abc"]), ("10.1.0.3", ["db", "abc"])])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.1.0.2\tweb www" in lines
    assert lines.count("10.1.0.3\tdb abc") == 1
    assert lines.index("10.1.0.2\tweb www") < lines.index("10.1.0.3\tdb abc")
    assert text.endswith("\n")


def test_render_without_localhost():
    assert hosts.render([("10.1.0.2", ["web"])], [], localhost=False) == "10.1.0.2\tweb\n"
    assert hosts.render([], [], localhost=False) == ""


@pytest.mark.parametrize("bad", ["a b", "a\nb", "", "-x", ".x", "x" * 300, "a\tb", "a#b", None])
def test_names_that_could_inject_lines_are_refused(bad):
    with pytest.raises(InvalidArgument):
        hosts.check_name(bad)


def test_good_names():
    for ok in ("web", "my_app.1", "A-b", "x" * 253):
        assert hosts.check_name(ok) == ok


def test_write_in_place_keeps_inode_and_truncates(tmp_path):
    p = tmp_path / "hosts"
    hosts.write_in_place(p, "a long first version\n" * 10)
    ino = os.stat(p).st_ino
    hosts.write_in_place(p, "short\n")
    assert os.stat(p).st_ino == ino
    assert p.read_text() == "short\n"


def test_write_in_place_does_not_follow_symlinks(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep\n")
    (tmp_path / "hosts").symlink_to(target)
    with pytest.raises(OSError):
        hosts.write_in_place(tmp_path / "hosts", "pwned\n")
    assert target.read_text() == "keep\n"


def test_resolv_conf_drops_loopback_nameservers(tmp_path):
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\nsearch lab\noptions edns0\n")
    out = hosts.resolv_conf(str(f), forwarding=True)
    assert "127.0.0.53" not in out and "::1" not in out
    assert "nameserver 192.0.2.53" in out and "search lab" in out
    f.write_text("nameserver 127.0.0.1\n")
    assert "nameserver" not in hosts.resolv_conf(str(f), forwarding=True).replace("no nameserver", "")
    assert hosts.resolv_conf(str(tmp_path / "missing")) == ""


def test_resolv_conf_without_forwarding_has_no_unreachable_nameserver(tmp_path):
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 192.0.2.53\nsearch lab\n")
    out = hosts.resolv_conf(str(f), forwarding=False)
    assert [ln for ln in out.splitlines() if ln.startswith("nameserver")] == []
    assert "search lab" in out and out.startswith("# virtlab:")

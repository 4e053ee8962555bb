"""SECURITY.md bad-input corpus, layer cases 1-24: import (overlay snapshots) and flatten (apply).

Oracle for each case: a clear ImageError (exit code 125) or a confined result; the
host tree outside the store unchanged; no image and no staging leftovers after a refusal.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from imgtools import entry, gz, make_tar, tree_state

from runtime.image import rootpath
from runtime.image.errors import ImageError, InvalidArchive, LimitExceeded


@pytest.fixture(autouse=True, params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Every case runs with the kernel's in-root resolution and with the userspace walk."""
    monkeypatch.setattr(rootpath, "USE_OPENAT2", request.param == "openat2")
    return request.param


def _guard(host: Path, store):
    store.ensure()
    flat = store.path.parent / "flat"
    return flat, tree_state(host, exclude=(store.path, flat))


def _unchanged(host: Path, store, before: dict) -> None:
    assert tree_state(host, exclude=(store.path, store.path.parent / "flat")) == before
    assert (host / "etc" / "unbroken").read_text() == "unbroken\n"
    assert (host / "root" / ".ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA owner\n"


def _refused(store, data: bytes, match: str, exc=ImageError) -> None:
    with pytest.raises(exc, match=match) as ei:
        store.import_tar(io.BytesIO(data), "bad:1")
    assert ei.value.exit_code == 125
    assert store.images() == []
    assert os.listdir(store.staging_dir) == ["partial"]
    assert os.listdir(store.snap_dir) == []
    assert os.listdir(store.blob_dir) == []


def _both(store, data: bytes, ref: str = "t:1"):
    """Import (overlay snapshot) and flatten (apply) the layer; return (snapshot fs, flat dir)."""
    img = store.import_tar(io.BytesIO(data), ref)
    flat = store.path.parent / "flat"
    store.flatten(img, flat)
    return store.snapshot_dirs(img)[0], flat


# ------------------------------------------------------------------ paths


@pytest.mark.parametrize("name", ["../../etc/x", "../../../../../../../../../../etc/x", "a/../../../etc/x"])
def test_case01_dotdot_member_is_confined(host, store, name):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(entry("file", name, "pwned")))
    assert (snap / "etc" / "x").read_text() == "pwned"
    assert (flat / "etc" / "x").read_text() == "pwned"
    _unchanged(host, store, before)


def test_case02_absolute_member_lands_in_root(host, store):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(entry("file", "/etc/x", "abs")))
    assert (snap / "etc" / "x").read_text() == "abs"
    assert (flat / "etc" / "x").read_text() == "abs"
    _unchanged(host, store, before)


def test_case03_absolute_symlink_then_write_through_it(host, store):
    flat, before = _guard(host, store)
    data = make_tar(entry("dir", "etc"), entry("sym", "localetc", "/etc"), entry("file", "localetc/unbroken", "x"))
    snap, flat = _both(store, data)
    for root in (snap, flat):
        assert os.readlink(root / "localetc") == "/etc"
        assert (root / "etc" / "unbroken").read_text() == "x"
    _unchanged(host, store, before)


@pytest.mark.parametrize("chain", [
    [entry("sym", "up", "../../../../../../etc")],
    [entry("sym", "a", "b/../../../"), entry("dir", "b"), entry("sym", "up", "a/../../etc")],
    [entry("sym", "s1", "/s2"), entry("sym", "s2", "../../../.."), entry("sym", "up", "s1/etc")],
])
def test_case04_relative_escaping_symlink_chain_is_confined(host, store, chain):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(*chain, entry("file", "up/unbroken", "owned")))
    for root in (snap, flat):
        assert (root / "etc" / "unbroken").read_text() == "owned"
    _unchanged(host, store, before)


@pytest.mark.parametrize("target", ["../../../../../../etc/passwd", "/etc/passwd", "../../../../host/etc/passwd"])
def test_case05_hardlink_out_of_root_is_refused(host, store, target):
    flat, before = _guard(host, store)
    nlink = os.stat(host / "etc" / "passwd").st_nlink
    _refused(store, make_tar(entry("link", "passwd", target)), "not found in the layer")
    assert os.stat(host / "etc" / "passwd").st_nlink == nlink
    _unchanged(host, store, before)


def test_case05_hardlink_in_root_target_is_linked(host, store):
    flat, before = _guard(host, store)
    data = make_tar(entry("dir", "etc"), entry("file", "etc/passwd", "inside"), entry("link", "p2", "../../etc/passwd"))
    snap, flat = _both(store, data)
    for root in (snap, flat):
        assert os.path.samefile(root / "p2", root / "etc" / "passwd")
    _unchanged(host, store, before)


def test_case06_hardlink_to_symlink_then_chmod_keeps_host_mode(host, store):
    """CVE-2021-32760 / HardlinkSymlinkChmod: linking a symlink must not chmod what it points to."""
    flat, before = _guard(host, store)
    target = str(host / "etc" / "passwd")
    data = make_tar(entry("sym", "evil", target), entry("link", "hl", "evil", mode=0o777),
                    entry("link", "hl2", "hl", mode=0o4777))
    snap, flat = _both(store, data)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert os.path.islink(snap / "hl")
    assert os.readlink(snap / "hl") == target  # a second name for the symlink itself
    _unchanged(host, store, before)


@pytest.mark.parametrize("name", ["..", "", ".", "./", "../"])
def test_case07_symlink_named_dotdot_or_empty_is_ignored(host, store, name):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(entry("sym", name, "/etc"), entry("file", "ok", "1")))
    assert sorted(os.listdir(snap)) == ["ok"]
    assert not os.path.islink(snap)
    _unchanged(host, store, before)


def test_case08_directory_over_lower_symlink_replaces_it(host, store):
    flat, before = _guard(host, store)
    l1 = store.import_tar(io.BytesIO(make_tar(entry("sym", "d", str(host / "etc")))), "l1:1")
    layer1 = l1.layers[0]
    l2 = store.import_tar(io.BytesIO(make_tar(entry("dir", "d"), entry("file", "d/f", "in"))), "l2:1")
    img = store.write_image({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [layer1.diff_id, l2.layers[0].diff_id]}},
                            [layer1, l2.layers[0]], "two:1")
    store.flatten(img, flat)
    assert (flat / "d").is_dir() and not (flat / "d").is_symlink()
    assert (flat / "d" / "f").read_text() == "in"
    assert not (host / "etc" / "f").exists()
    _unchanged(host, store, before)


# ------------------------------------------------------------- whiteouts


@pytest.mark.parametrize("name", [".wh..", ".wh...", "etc/.wh..", "etc/.wh.", "a/b/.wh..."])
def test_case09_invalid_whiteouts_are_refused(host, store, name):
    flat, before = _guard(host, store)
    _refused(store, make_tar(entry("file", "keep", "1"), entry("file", name)), "invalid whiteout", InvalidArchive)
    _unchanged(host, store, before)


def _stack(store, *layers: bytes, ref: str = "stack:1"):
    imgs = [store.import_tar(io.BytesIO(data), f"layer{i}:1") for i, data in enumerate(layers)]
    ls = [i.layers[0] for i in imgs]
    return store.write_image({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [lyr.diff_id for lyr in ls]}}, ls, ref)


def test_case10_whiteout_through_symlinked_parent_removes_in_root_only(host, store):
    flat, before = _guard(host, store)
    img = _stack(store,
                 make_tar(entry("dir", "etc"), entry("file", "etc/passwd", "in-root"), entry("sym", "localetc", "/etc")),
                 make_tar(entry("file", "localetc/.wh.passwd")))
    store.flatten(img, flat)
    assert not (flat / "etc" / "passwd").exists()
    assert (host / "etc" / "passwd").exists()
    _unchanged(host, store, before)


def test_case11_opaque_dir_hides_lower_keeps_own(host, store):
    flat, before = _guard(host, store)
    img = _stack(store,
                 make_tar(entry("dir", "d"), entry("file", "d/lower", "1"), entry("dir", "d/sub"),
                          entry("file", "d/sub/deep", "2")),
                 make_tar(entry("dir", "d"), entry("file", "d/own", "3"), entry("file", "d/new/x", "4"),
                          entry("file", "d/.wh..wh..opq")))
    store.flatten(img, flat)
    assert sorted(os.listdir(flat / "d")) == ["new", "own"]
    upper = store.snapshot_dirs(img)[1]
    assert sorted(os.listdir(upper / "d")) == ["new", "own"]
    if os.geteuid() == 0:
        assert os.getxattr(upper / "d", "trusted.overlay.opaque") == b"y"
    _unchanged(host, store, before)


def test_whiteout_becomes_overlay_char_device(host, store):
    img = _stack(store, make_tar(entry("file", "gone", "x"), entry("file", "stay", "y")),
                 make_tar(entry("file", ".wh.gone")))
    upper = store.snapshot_dirs(img)[1]
    st = os.lstat(upper / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    flat = store.path.parent / "flat"
    store.flatten(img, flat)
    assert sorted(os.listdir(flat)) == ["stay"]


def test_case12_cross_layer_symlink_plant_is_confined(host, store):
    """CVE-2025-45582: layer 1 plants x -> ../../../../root/.ssh, layer 2 writes x/authorized_keys."""
    flat, before = _guard(host, store)
    img = _stack(store, make_tar(entry("sym", "x", "../../../../../../../../root/.ssh")),
                 make_tar(entry("file", "x/authorized_keys", "attacker-key")))
    store.flatten(img, flat)
    assert (flat / "root" / ".ssh" / "authorized_keys").read_text() == "attacker-key"
    upper = store.snapshot_dirs(img)[1]
    assert (upper / "x" / "authorized_keys").read_text() == "attacker-key"  # a plain dir in its own snapshot
    _unchanged(host, store, before)


# ------------------------------------------------------- special members


@pytest.mark.skipif(os.geteuid() != 0, reason="requires root (mknod)")
def test_case13_devices_created_only_inside_the_store(host, store):
    flat, before = _guard(host, store)
    data = make_tar(entry("dir", "dev"), entry("chr", "dev/mem", (1, 1)), entry("blk", "dev/sda", (8, 0)))
    img = store.import_tar(io.BytesIO(data), "dev:1")
    snap = store.snapshot_dirs(img)[0]
    assert stat.S_ISCHR(os.lstat(snap / "dev" / "mem").st_mode)
    assert os.lstat(snap / "dev" / "mem").st_rdev == os.makedev(1, 1)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700
    store.flatten(img, flat)  # outside the store: devices skipped by default
    assert not (flat / "dev" / "mem").exists()
    _unchanged(host, store, before)


def test_case13_devices_skipped_with_a_warning_when_not_allowed(host, tmp_path):
    from runtime.image.extract import apply_layer

    root = tmp_path / "r"
    root.mkdir()
    warnings = []
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        stats = apply_layer(io.BytesIO(make_tar(entry("chr", "mem", (1, 1)))), fd, devices=False,
                            warn=warnings.append)
    finally:
        os.close(fd)
    assert os.listdir(root) == [] and stats.skipped == ["mem"]
    assert "device" in warnings[0]


def test_case14_setuid_kept_inside_private_store(host, store):
    img = store.import_tar(io.BytesIO(make_tar(entry("file", "bin/su", "x", mode=0o4755))), "su:1")
    snap = store.snapshot_dirs(img)[0]
    assert stat.S_IMODE(os.stat(snap / "bin" / "su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700


def test_case15_fifo_created_in_root(host, store):
    snap, flat = _both(store, make_tar(entry("fifo", "run/fifo")))
    assert stat.S_ISFIFO(os.lstat(snap / "run" / "fifo").st_mode)
    assert stat.S_ISFIFO(os.lstat(flat / "run" / "fifo").st_mode)


# ---------------------------------------------------------- broken tars


def test_case16_truncated_member_is_refused(host, store):
    data = make_tar(entry("file", "big", b"A" * (1 << 20)))
    _refused(store, data[: 512 + 1024 + 10], "file incomplete|truncated|unexpected end")


def test_case16_truncated_gzip_is_refused(host, store):
    data = gz(make_tar(entry("file", "big", os.urandom(200_000))))
    _refused(store, data[: len(data) // 2], "truncated|incomplete")


def test_truncated_header_and_garbage_are_refused(host, store):
    data = make_tar(entry("file", "a", "1"), entry("file", "b", "2"))
    one = len(make_tar(entry("file", "a", "1"))) - 1024 * 9  # not used: keep the real layout below
    del one
    # Cut inside the second member's header: tarfile would stop silently, we must not.
    cut = data.index(b"b\x00") + 100
    _refused(store, data[:cut], "truncated|corrupt|incomplete")
    garbage = make_tar(entry("file", "a", "1"))[:1024] + b"\x01" * 512 + b"\0" * 1024
    _refused(store, garbage, "corrupt|invalid")


def test_case17_gzip_bomb_stops_at_the_limit(host, small_store):
    store = small_store
    bomb = gz(make_tar(entry("file", "zeros", b"\0" * (8 << 20))))
    assert len(bomb) < 20_000
    _refused(store, bomb, "larger than the limit|over the layer limit", LimitExceeded)


def test_case17_zstd_bomb_stops_at_the_limit(host, small_store):
    import zstandard

    bomb = zstandard.ZstdCompressor().compress(make_tar(entry("file", "zeros", b"\0" * (8 << 20))))
    _refused(small_store, bomb, "limit", LimitExceeded)


def _raw_header(name: bytes, size_field: bytes, typeflag: bytes = b"0") -> bytes:
    hdr = bytearray(512)
    hdr[0 : len(name)] = name
    hdr[100:108] = b"0000644\0"
    hdr[108:116] = b"0000000\0"
    hdr[116:124] = b"0000000\0"
    hdr[124:136] = size_field
    hdr[136:148] = b"00000000000\0"
    hdr[156:157] = typeflag
    hdr[257:263] = b"ustar\0"
    hdr[263:265] = b"00"
    hdr[148:156] = b" " * 8
    csum = sum(hdr)
    hdr[148:156] = f"{csum:06o}\0 ".encode()
    return bytes(hdr)


@pytest.mark.parametrize("size_field,match", [
    (b"\x80" + b"\0" * 3 + b"\x80" + b"\0" * 7, "over the layer limit"),  # base-256: 2**63 bytes (8 EiB)
    (b"\xff" * 12, "negative size"),  # base-256 negative
])
def test_case18_absurd_header_sizes_are_refused(host, store, size_field, match):
    data = _raw_header(b"huge", size_field) + b"\0" * 1024
    _refused(store, data, match)


def test_case18_huge_pax_header_refused_before_allocation(host, small_store):
    data = _raw_header(b"././@PaxHeader", b"%011o\0" % (1 << 40), b"x") + b"\0" * 1024
    _refused(small_store, data, "extended header", LimitExceeded)


def test_case18_sparse_member_refused(host, store):
    data = _raw_header(b"sparse", b"00000000000\0", b"S") + b"\0" * 1024
    _refused(store, data, "sparse")


def test_case19_too_many_members(host, small_store):
    data = make_tar(*[entry("file", f"f{i}", "") for i in range(60)])
    _refused(small_store, data, "more than 50 entries", LimitExceeded)


def test_case19_long_path_and_deep_dirs(host, small_store):
    _refused(small_store, make_tar(entry("file", "a" * 100 + "/" + "b" * 150, "x")), "over the limit", LimitExceeded)
    _refused(small_store, make_tar(entry("file", "d/" * 30 + "f", "x")), "deeper than", LimitExceeded)
    _refused(small_store, make_tar(entry("sym", "s", "x" * 300)), "link target", LimitExceeded)


def test_case19_symlink_loop_is_bounded(host, store):
    data = make_tar(entry("sym", "a", "b"), entry("sym", "b", "a"), entry("file", "a/x", "1"))
    _refused(store, data, "too many levels of symbolic links", LimitExceeded)


def test_case20_duplicate_path_last_wins(host, store):
    data = make_tar(entry("file", "f", "first"), entry("file", "f", "second"), entry("dir", "d"),
                    entry("file", "d", "now a file"))
    snap, flat = _both(store, data)
    for root in (snap, flat):
        assert (root / "f").read_text() == "second"
        assert (root / "d").read_text() == "now a file"


def test_case21_unknown_typeflag_refused_pax_global_ignored(host, store):
    _refused(store, make_tar(entry("Z", "weird")), "unhandled tar header type")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as tf:
        ti = entry("file", "f", "x")
        tf.addfile(ti, io.BytesIO(ti.payload))
    snap, _ = _both(store, buf.getvalue())
    assert (snap / "f").read_text() == "x"


def test_case22_xattrs_by_policy(host, store):
    ti = entry("file", "f", "x")
    ti.pax_headers = {"SCHILY.xattr.user.note": "hello", "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                      "SCHILY.xattr.security.selinux": "system_u:object_r:shadow_t:s0"}
    warnings = []
    store.warn = warnings.append
    img = store.import_tar(io.BytesIO(make_tar(ti)), "x:1")
    f = store.snapshot_dirs(img)[0] / "f"
    names = os.listxattr(f)
    assert "trusted.overlay.redirect" not in names
    assert "security.selinux" not in names or os.getxattr(f, "security.selinux") != b"system_u:object_r:shadow_t:s0"
    if "user.note" in names:
        assert os.getxattr(f, "user.note") == b"hello"
    assert any("trusted.overlay.redirect" in w for w in warnings)


@pytest.mark.skipif(os.geteuid() != 0, reason="requires root (chown)")
def test_case23_numeric_owner_wins_over_names(host, store):
    ti = entry("file", "f", "x", uid=1000, gid=1001, uname="root", gname="root")
    snap, _ = _both(store, make_tar(ti))
    st = os.stat(snap / "f")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


def test_case24_non_utf8_and_newline_names_byte_exact(host, store):
    names = [b"caf\xe9", b"line\nbreak", "ünïcode".encode()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for n in names:
            ti = tarfile.TarInfo(os.fsdecode(n))
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
    snap, _ = _both(store, buf.getvalue())
    assert sorted(os.listdir(os.fsencode(snap))) == sorted(names)


def test_case24_nul_in_pax_path_refused(host, store):
    ti = entry("file", "ok", "x")
    ti.pax_headers = {"path": "a\x00b"}
    _refused(store, make_tar(ti), "NUL|invalid")


# ------------------------------------------- containerd's TestBreakouts shapes


def _flat_two(store, lower: bytes, upper: bytes):
    img = _stack(store, lower, upper, ref="brk:1")
    flat = store.path.parent / "flat"
    store.flatten(img, flat)
    return img, flat


def test_symlink_slash_ended_name(host, store):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(entry("dir", "etc"), entry("sym", "foo/", "/etc"),
                                       entry("file", "foo/unbroken", "in")))
    assert (snap / "etc" / "unbroken").read_text() == "in"
    _unchanged(host, store, before)


def test_whiteout_of_a_symlink_removes_the_link_not_its_target(host, store):
    flat, before = _guard(host, store)
    img, flat = _flat_two(store, make_tar(entry("dir", "etc"), entry("file", "etc/unbroken", "in"),
                                          entry("sym", "link", "/etc/unbroken")),
                          make_tar(entry("file", ".wh.link")))
    assert not os.path.lexists(flat / "link") and (flat / "etc" / "unbroken").read_text() == "in"
    _unchanged(host, store, before)


def test_whiteout_under_dead_symlink_parent_is_harmless(host, store):
    flat, before = _guard(host, store)
    img, flat = _flat_two(store, make_tar(entry("sym", "localetc", "/mnt/nonexistent")),
                          make_tar(entry("file", "localetc/.wh.unbroken")))
    assert os.readlink(flat / "localetc") == "/mnt/nonexistent"
    _unchanged(host, store, before)


def test_whiteout_relative_path_is_clamped(host, store):
    flat, before = _guard(host, store)
    img, flat = _flat_two(store, make_tar(entry("file", "etc/unbroken", "in"), entry("file", "keep", "k")),
                          make_tar(entry("file", "../../../.wh.etc")))
    assert not (flat / "etc").exists() and (flat / "keep").exists()
    _unchanged(host, store, before)


@pytest.mark.parametrize("name", ["./.wh..", "etc/./.wh..", "a/.wh.."])
def test_whiteout_current_or_parent_directory_refused(host, store, name):
    flat, before = _guard(host, store)
    _refused(store, make_tar(entry("file", name)), "invalid whiteout", InvalidArchive)
    _unchanged(host, store, before)


def test_hardlink_symlink_before_create_target(host, store):
    """Link a symlink that points at /etc/passwd, then create etc/passwd: the link stays a symlink."""
    flat, before = _guard(host, store)
    data = make_tar(entry("sym", "localpasswd", "/etc/passwd"), entry("link", "localpasswd_link", "localpasswd"),
                    entry("file", "etc/passwd", "inside"))
    snap, flat = _both(store, data)
    for root in (snap, flat):
        assert os.path.islink(root / "localpasswd_link")
        assert (root / "etc" / "passwd").read_text() == "inside"
    _unchanged(host, store, before)


def test_hardlink_relative_long_is_clamped_in_root(host, store):
    flat, before = _guard(host, store)
    data = make_tar(entry("file", "etc/passwd", "inside"),
                    entry("link", "p", "../../../../../../../../../../../../etc/passwd"))
    snap, flat = _both(store, data)
    assert os.path.samefile(snap / "p", snap / "etc" / "passwd")
    _unchanged(host, store, before)


def test_directory_override_symlink_and_hardlink(host, store):
    flat, before = _guard(host, store)
    data = make_tar(entry("file", "f", "x"), entry("sym", "s", str(host / "etc")), entry("link", "h", "f"),
                    entry("dir", "s"), entry("dir", "h"), entry("file", "s/in", "1"), entry("file", "h/in", "2"))
    snap, flat = _both(store, data)
    for root in (snap, flat):
        assert (root / "s").is_dir() and not (root / "s").is_symlink() and (root / "h").is_dir()
        assert (root / "f").read_text() == "x"
    assert not (host / "etc" / "in").exists()
    _unchanged(host, store, before)


def test_whiteout_named_directory_is_just_a_directory(host, store):
    flat, before = _guard(host, store)
    snap, flat = _both(store, make_tar(entry("file", ".wh.etc/unbroken", "x")))
    assert (snap / ".wh.etc" / "unbroken").read_text() == "x"
    _unchanged(host, store, before)


@pytest.mark.parametrize("field,value", [("mtime", 2**70), ("uid", 2**40), ("gid", 2**40), ("mtime", -(2**70))])
def test_absurd_header_numbers_are_refused_cleanly(host, store, field, value):
    flat, before = _guard(host, store)
    ti = entry("file", "f", "x")
    setattr(ti, field, value)
    if field != "mtime" and os.geteuid() != 0:
        pytest.skip("ownership is applied only as root")
    _refused(store, make_tar(ti), "cannot extract")
    _unchanged(host, store, before)


@pytest.mark.skipif(os.geteuid() != 0, reason="requires root (mknod)")
def test_absurd_device_numbers_are_refused_cleanly(host, store):
    ti = entry("chr", "dev/x", (2**40, 1))
    _refused(store, make_tar(ti, fmt=tarfile.GNU_FORMAT), "cannot extract|invalid")


def test_absurd_directory_time_is_refused_too(host, store):
    _refused(store, make_tar(entry("dir", "d", mtime=2**70), entry("file", "d/f", "x")), "timestamp")

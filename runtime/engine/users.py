"""Resolve `--user` / the image's User inside the container's root (bounded, no host NSS lookups)."""

from __future__ import annotations

from runtime.engine import inroot
from runtime.engine.errors import InvalidArgument

MAX_DB = 4 << 20  # /etc/passwd or /etc/group larger than this is not parsed (CVE-2026-47262 class)
MAX_GROUPS = 64


def _entries(rootfs: str, path: str) -> list[list[str]]:
    data = inroot.read_file(rootfs, path, MAX_DB + 1) or b""
    if len(data) > MAX_DB:
        raise InvalidArgument(f"the image's {path} is larger than {MAX_DB >> 20} MiB")
    out = []
    for line in data.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def resolve(rootfs: str, user: str | None) -> tuple[int, int, list[int], str]:
    """`name`, `uid`, `name:group`, `uid:gid` -> (uid, gid, supplementary gids, home)."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _entries(rootfs, "/etc/passwd")
    uid = gid = None
    home = "/"
    username = None
    for e in passwd:
        if len(e) >= 6 and (e[0] == name or (name.isdigit() and e[2] == name)):
            try:
                uid, gid = int(e[2]), int(e[3])
            except ValueError:
                continue
            home, username = e[5] or "/", e[0]
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), 0
    groups_db = _entries(rootfs, "/etc/group")
    if group:
        for e in groups_db:
            if len(e) >= 3 and (e[0] == group or (group.isdigit() and e[2] == group)):
                gid = int(e[2]) if e[2].isdigit() else gid
                break
        else:
            if not group.isdigit():
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
            gid = int(group)
    extra: list[int] = []
    if username and not group:
        for e in groups_db:
            if len(e) >= 4 and username in e[3].split(",") and e[2].isdigit() and int(e[2]) != gid:
                extra.append(int(e[2]))
                if len(extra) >= MAX_GROUPS:
                    break
    if uid > 0xFFFFFFFE or (gid or 0) > 0xFFFFFFFE:
        raise InvalidArgument(f"invalid --user {user!r}: ID out of range")
    return uid, gid or 0, extra, home

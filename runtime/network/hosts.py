"""/etc/hosts and /etc/resolv.conf for containers: name resolution without a DNS server.

virtlab resolves container names with hosts files instead of docker's embedded DNS
server: each container gets `hosts/<container id>` in the store, which the engine
bind-mounts on /etc/hosts. When a container joins or leaves a user-defined network, the
hosts files of every container on that network are rewritten *in place* (same inode), so
the bind mounts inside running containers see the change. glibc, musl and busybox read
/etc/hosts on every lookup, so no cache has to be flushed. On the default `bridge`
network, containers see only themselves, as in docker.
"""

from __future__ import annotations

import os
import re

from runtime.network.errors import InvalidArgument

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)

# RFC 1123 labels plus '_' (docker allows it in container names); no whitespace, so a
# name can never inject a second hosts entry.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is safe in a hosts file, else raise InvalidArgument."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' (max 253)")
    return name


def render(own: list[tuple[str, list[str]]], peers: list[tuple[str, list[str]]]) -> str:
    """The hosts file: localhost lines, the container's own addresses, then its peers'.

    `own` and `peers` are (ip, [names]) pairs; duplicates are dropped, order is kept.
    """
    lines = list(LOCALHOST_LINES)
    seen = set()
    for ip, names in [*own, *peers]:
        uniq = [n for n in dict.fromkeys(names) if n]
        key = (ip, tuple(uniq))
        if not uniq or key in seen:
            continue
        seen.add(key)
        lines.append(f"{ip}\t{' '.join(uniq)}")
    return "\n".join(lines) + "\n"


def write_in_place(path: str | os.PathLike, content: str) -> None:
    """Write `content` keeping the file's inode (it may be bind-mounted into a container)."""
    data = content.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def resolv_conf(host_file: str = "/etc/resolv.conf") -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from a container netns).

    Like docker, a stub resolver on 127.0.0.x (systemd-resolved, dnsmasq) is dropped. No public
    fallback server is added: virtlab never routes container traffic out of the machine.
    """
    try:
        with open(host_file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1 and (
            fields[1].startswith("127.") or fields[1] == "::1"
        ):
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n" if any(s.strip() for s in out) else ""

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


def render(own: list[tuple[str, list[str]]], peers: list[tuple[str, list[str]]], localhost: bool = True) -> str:
    """The hosts file: localhost lines (unless `localhost` is False), the container's own addresses, its peers'.

    `own` and `peers` are (ip, [names]) pairs; duplicates are dropped, order is kept.
    """
    lines = list(LOCALHOST_LINES) if localhost else []
    seen = set()
    for ip, names in [*own, *peers]:
        uniq = [n for n in dict.fromkeys(names) if n]
        key = (ip, tuple(uniq))
        if not uniq or key in seen:
            continue
        seen.add(key)
        lines.append(f"{ip}\t{' '.join(uniq)}")
    return "\n".join(lines) + "\n" if lines else ""


def write_in_place(path: str | os.PathLike, content: str) -> None:
    """Write `content` keeping the file's inode (it may be bind-mounted into a container)."""
    data = content.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def ip_forwarding() -> bool:
    """True when the host routes IPv4 between interfaces (net.ipv4.ip_forward=1)."""
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def resolv_conf(host_file: str = "/etc/resolv.conf", forwarding: bool | None = None) -> str:
    """resolv.conf for a container: the host's, without nameservers the container cannot reach.

    Like docker, loopback nameservers (systemd-resolved, dnsmasq on 127.0.0.x) are dropped. When
    the host does not forward IPv4 (virtlab never turns forwarding on), no nameserver outside
    the container is reachable at all, so every nameserver line is dropped: lookups of unknown
    names then fail at once instead of after resolver timeouts (5 s x attempts). Container
    names never need DNS: they are in /etc/hosts.
    """
    if forwarding is None:
        forwarding = ip_forwarding()
    try:
        with open(host_file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    out = []
    dropped = False
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            if not forwarding or fields[1].startswith("127.") or fields[1] == "::1":
                dropped = True
                continue
        out.append(line)
    if dropped and not any(line.split()[:1] == ["nameserver"] for line in out):
        out.insert(0, "# virtlab: no nameserver of the host is reachable from this container "
                      "(loopback-only, or net.ipv4.ip_forward=0); container names are in /etc/hosts")
    body = "\n".join(out).strip()
    return body + "\n" if body else ""

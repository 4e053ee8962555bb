"""Port publishing rules: DNAT to containers, a loopback path, and a guard, in one table per store.

nftables (preferred) -- table `ip virtlab_<tag>` where tag is a hash of the store path, so two
stores on one host never touch each other's rules and removing a store's last network is
one `delete table`:

    prerouting  nat hook: traffic to any local address        -> jump ports
    output      nat hook: the host's own traffic to itself     -> jump ports
    ports       one `jump c_<hash>` per container (deleted by handle)
    c_<hash>    the container's DNAT rules
    postrouting masquerade loopback-sourced, DNAT-ed traffic leaving on our bridges
    guard       raw prerouting: drop 127.0.0.0/8 arriving on our bridges/veths
    isolate     filter forward: drop what one of the store's bridges routes to any other
                virtlab bridge (docker's DOCKER-ISOLATION; matters only on a host with
                ip_forward=1), rewritten whenever the store's set of bridges changes

The loopback path (curl 127.0.0.1:HOSTPORT) is kernel-only: OUTPUT DNAT, route_localnet=1 on
our bridges (scoped to those interfaces, gone with them) and a masquerade so the container
answers the bridge gateway rather than its own 127.0.0.1. route_localnet is what
CVE-2020-8558 abused (containers reaching host services on 127.0.0.1), hence `guard`.
iptables (fallback when nftables is missing) builds the same in chains VL<tag>_*.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass

from runtime.network.errors import FirewallError

BRIDGE_PATTERNS = ("virtlab0", "vlbr-*", "vlv*")


@dataclass(frozen=True)
class PortRule:
    """One DNAT rule: host (ip, port, proto) -> container (ip, port)."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


def store_tag(store_path: str) -> str:
    """8 hex chars naming one store root's firewall objects."""
    return hashlib.sha256(store_path.encode()).hexdigest()[:8]


def _check_ifname(name: str) -> None:
    """Interface names go into rule text: only what the kernel and virtlab's own names use."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
        raise FirewallError(f"refusing interface name {name!r} in a firewall rule")


def chain_of(container_id: str) -> str:
    """The per-container chain name: `c_` + 16 hex chars of the container ID's hash."""
    return "c_" + hashlib.sha256(container_id.encode()).hexdigest()[:16]


def _tail(text: str, n: int) -> str:
    """At most n chars, keeping the end (nft comments are limited to 128 bytes)."""
    return text if len(text) <= n else "..." + text[-(n - 3):]


def _safe_comment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_./:=-]", "_", text)


# ---------------------------------------------------------------- nftables


class NftFirewall:
    """The nftables backend (libnftables in-process, `nft` binary as fallback)."""

    kind = "nftables"

    def __init__(self, store_path: str):
        self.store_path = store_path
        self.table = f"virtlab_{store_tag(store_path)}"

    # -- pure rule text (unit-tested)

    def base_script(self) -> str:
        """The table with its hook chains, created once per store."""
        t = self.table
        lines = [
            f"table ip {t} {{",
            f'  comment "virtlab store {_tail(_safe_comment(self.store_path), 100)}"',
            "  chain prerouting { type nat hook prerouting priority dstnat; policy accept; fib daddr type local jump ports; }",
            "  chain output { type nat hook output priority -100; policy accept; fib daddr type local jump ports; }",
            "  chain ports { }",
            "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;",
        ]
        for pat in BRIDGE_PATTERNS[:2]:
            lines.append(f'    ip saddr 127.0.0.0/8 ct status dnat oifname "{pat}" masquerade;')
        lines.append("  }")
        lines.append("  chain guard { type filter hook prerouting priority raw; policy accept;")
        for pat in BRIDGE_PATTERNS:
            lines.append(f'    iifname "{pat}" ip saddr 127.0.0.0/8 drop;')
            lines.append(f'    iifname "{pat}" ip daddr 127.0.0.0/8 drop;')
        lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def isolate_script(self, bridges: list[str]) -> str:
        """The isolate chain (made if missing: tables of older versions lack it) for these bridges."""
        t = self.table
        others = ", ".join(f'"{pat}"' for pat in BRIDGE_PATTERNS[:2])
        lines = [f"add chain ip {t} isolate {{ type filter hook forward priority filter; policy accept; }}",
                 f"flush chain ip {t} isolate"]
        for br in bridges:
            _check_ifname(br)
            lines.append(f'add rule ip {t} isolate iifname "{br}" oifname != "{br}" oifname {{ {others} }} drop')
        return "\n".join(lines) + "\n"

    def add_script(self, container_id: str, rules: list[PortRule]) -> str:
        """Create the container's chain, its DNAT rules and the jump to it."""
        t, c = self.table, chain_of(container_id)
        lines = [f"add chain ip {t} {c}", f"flush chain ip {t} {c}"]  # a crash leftover must not add up
        for r in rules:
            match = "" if r.host_ip == "0.0.0.0" else f"ip daddr {r.host_ip} "
            lines.append(
                f"add rule ip {t} {c} {match}{r.proto} dport {r.host_port} dnat to {r.container_ip}:{r.container_port}"
            )
        lines.append(f'add rule ip {t} ports jump {c} comment "{_safe_comment(container_id)[:120]}"')
        return "\n".join(lines) + "\n"

    def remove_script(self, container_id: str, handle: int | None) -> str:
        """Delete the jump (by handle) and the container's chain."""
        t, c = self.table, chain_of(container_id)
        lines = [f"delete rule ip {t} ports handle {int(handle)}"] if handle is not None else []
        lines += [f"flush chain ip {t} {c}", f"delete chain ip {t} {c}"]
        return "\n".join(lines) + "\n"

    # -- applying

    def _run(self, script: str, echo: bool = False, json: bool = False) -> str:
        from runtime.network import nft

        return nft.run(script, echo=echo, json=json)

    def exists(self) -> bool:
        """True when this store's table is present."""
        try:
            self._run(f"list table ip {self.table}")
            return True
        except FirewallError:
            return False

    def ensure_base(self) -> None:
        """Create the table and hook chains unless present (caller holds the store lock)."""
        if not self.exists():
            self._run(self.base_script())

    def isolate(self, bridges: list[str]) -> None:
        """Drop traffic routed from each of `bridges` to any other virtlab bridge (the table must exist)."""
        self._run(self.isolate_script(bridges))

    def add_ports(self, container_id: str, rules: list[PortRule]) -> dict:
        """Install the container's DNAT rules; returns state for remove_ports (the jump's handle)."""
        try:
            out = self._run(self.add_script(container_id, rules), echo=True)
        except FirewallError:
            if self.exists():
                raise
            self.ensure_base()  # the table went away behind our back (flush ruleset): rebuild it
            out = self._run(self.add_script(container_id, rules), echo=True)
        handle = None
        for line in out.splitlines():
            if "jump " + chain_of(container_id) in line:
                m = re.search(r"# handle (\d+)", line)
                if m:
                    handle = int(m.group(1))
        return {"backend": self.kind, "handle": handle}

    def _jump_handles(self, container_id: str) -> list[int]:
        import json

        try:
            out = self._run(f"list chain ip {self.table} ports", json=True)
        except FirewallError:
            return []
        target = chain_of(container_id)
        handles = []
        for item in json.loads(out).get("nftables", []):
            rule = item.get("rule")
            if not rule:
                continue
            for expr in rule.get("expr", []):
                if expr.get("jump", {}).get("target") == target:
                    handles.append(rule["handle"])
        return handles

    def remove_ports(self, container_id: str, state: dict | None) -> None:
        """Remove the container's rules; idempotent, and exact (other containers' rules stay)."""
        handle = (state or {}).get("handle")
        try:
            self._run(self.remove_script(container_id, handle))
            return
        except FirewallError:
            if not self.exists():
                return
            # stale handle or half-made chain (crash): find the jumps by target instead
        script = "".join(f"delete rule ip {self.table} ports handle {h}\n" for h in self._jump_handles(container_id))
        try:
            self._run(script + f"flush chain ip {self.table} {chain_of(container_id)}\n"
                      f"delete chain ip {self.table} {chain_of(container_id)}\n")
        except FirewallError:
            if script:
                self._run(script)

    def chain_for(self, container_id: str) -> str:
        """The container's chain name."""
        return chain_of(container_id)

    def remove_chain(self, chain: str) -> None:
        """Delete a per-container chain and every jump to it (gc of crash leftovers)."""
        import json

        out = self._run(f"list chain ip {self.table} ports", json=True)
        handles = [
            item["rule"]["handle"]
            for item in json.loads(out).get("nftables", [])
            if "rule" in item and any(e.get("jump", {}).get("target") == chain for e in item["rule"].get("expr", []))
        ]
        script = "".join(f"delete rule ip {self.table} ports handle {h}\n" for h in handles)
        self._run(script + f"flush chain ip {self.table} {chain}\ndelete chain ip {self.table} {chain}\n")

    def foreign_ports(self) -> list[dict]:
        """Ports published by other virtlab stores on this host (their tables): proto, host_ip, host_port."""
        import json

        try:
            tables = self._run("list tables").split()
        except FirewallError:
            return []
        out = []
        for name in tables:
            if not name.startswith("virtlab_") or name == self.table:
                continue
            try:
                doc = json.loads(self._run(f"list table ip {name}", json=True))
            except (FirewallError, ValueError):
                continue
            for item in doc.get("nftables", []):
                rule = item.get("rule")
                if not rule or not rule.get("chain", "").startswith("c_"):
                    continue
                found = {"host_ip": "0.0.0.0", "container_id": f"another virtlab store (nft table {name})"}
                for expr in rule.get("expr", []):
                    m = expr.get("match", {})
                    payload = m.get("left", {}).get("payload", {})
                    if payload.get("field") == "dport":
                        found["proto"], found["host_port"] = payload.get("protocol"), m.get("right")
                    elif payload.get("field") == "daddr":
                        found["host_ip"] = m.get("right")
                if "host_port" in found:
                    out.append(found)
        return out

    def chains(self) -> set[str]:
        """Names of the per-container chains present (for gc)."""
        import json

        try:
            out = self._run(f"list table ip {self.table}", json=True)
        except FirewallError:
            return set()
        return {
            i["chain"]["name"]
            for i in json.loads(out).get("nftables", [])
            if "chain" in i and i["chain"]["name"].startswith("c_")
        }

    def drop_all(self) -> None:
        """Delete this store's table (idempotent)."""
        if self.exists():
            self._run(f"delete table ip {self.table}")


# ---------------------------------------------------------------- iptables


class IptablesFirewall:
    """The iptables fallback: the same design with chains named VL<tag>_*."""

    kind = "iptables"

    def __init__(self, store_path: str):
        self.store_path = store_path
        self.prefix = f"VL{store_tag(store_path)}"
        self.ports_chain = f"{self.prefix}_PORTS"
        self.post_chain = f"{self.prefix}_POST"
        self.guard_chain = f"{self.prefix}_GUARD"
        self.iso_chain = f"{self.prefix}_ISO"  # filter FORWARD: -i OURS ! -o OURS -> ISO2
        self.iso2_chain = f"{self.prefix}_ISO2"  # -o any virtlab bridge -> DROP (docker's two stages)

    def container_chain(self, container_id: str) -> str:
        """Per-container nat chain (iptables allows 28 chars): VL<tag>_c<12 hex>."""
        return f"{self.prefix}_c" + hashlib.sha256(container_id.encode()).hexdigest()[:12]

    def base_commands(self) -> list[list[str]]:
        """iptables argv lists creating the chains and hooks (without the leading binary)."""
        p, post, g = self.ports_chain, self.post_chain, self.guard_chain
        cmds = [
            ["-t", "nat", "-N", p],
            ["-t", "nat", "-N", post],
            ["-t", "raw", "-N", g],
            ["-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", p],
            ["-t", "nat", "-A", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", p],
            ["-t", "nat", "-A", "POSTROUTING", "-j", post],
            ["-t", "raw", "-A", "PREROUTING", "-j", g],
        ]
        for pat in ("virtlab0", "vlbr-+"):
            cmds.append(["-t", "nat", "-A", post, "-s", "127.0.0.0/8", "-o", pat, "-m", "conntrack",
                         "--ctstate", "DNAT", "-j", "MASQUERADE"])
        for pat in ("virtlab0", "vlbr-+", "vlv+"):
            cmds.append(["-t", "raw", "-A", g, "-i", pat, "-s", "127.0.0.0/8", "-j", "DROP"])
            cmds.append(["-t", "raw", "-A", g, "-i", pat, "-d", "127.0.0.0/8", "-j", "DROP"])
        return cmds

    def isolate_commands(self, bridges: list[str]) -> list[list[str]]:
        """iptables argv lists rewriting the two isolation chains for these bridges (both must exist)."""
        iso, iso2 = self.iso_chain, self.iso2_chain
        cmds = [["-t", "filter", "-F", iso], ["-t", "filter", "-F", iso2]]
        for br in bridges:
            _check_ifname(br)
            cmds.append(["-t", "filter", "-A", iso, "-i", br, "!", "-o", br, "-j", iso2])
        for pat in ("virtlab0", "vlbr-+"):
            cmds.append(["-t", "filter", "-A", iso2, "-o", pat, "-j", "DROP"])
        return cmds

    def isolate(self, bridges: list[str]) -> None:
        """Drop traffic routed from each of `bridges` to any other virtlab bridge."""
        for chain in (self.iso_chain, self.iso2_chain):
            if not self._ipt(["-t", "filter", "-S", chain], check=False):
                self._ipt(["-t", "filter", "-N", chain])
        if not self._ipt(["-t", "filter", "-C", "FORWARD", "-j", self.iso_chain], check=False):
            self._ipt(["-t", "filter", "-I", "FORWARD", "-j", self.iso_chain])
        for cmd in self.isolate_commands(bridges):
            self._ipt(cmd)

    def add_commands(self, container_id: str, rules: list[PortRule]) -> list[list[str]]:
        """iptables argv lists for one container's DNAT rules."""
        c = self.container_chain(container_id)
        cmds = [["-t", "nat", "-N", c]]
        for r in rules:
            match = [] if r.host_ip == "0.0.0.0" else ["-d", r.host_ip]
            cmds.append(["-t", "nat", "-A", c, *match, "-p", r.proto, "--dport", str(r.host_port), "-j", "DNAT",
                         "--to-destination", f"{r.container_ip}:{r.container_port}"])
        cmds.append(["-t", "nat", "-A", self.ports_chain, "-j", c])
        return cmds

    def _ipt(self, args: list[str], check: bool = True) -> bool:
        ipt = shutil.which("iptables")
        if ipt is None:
            raise FirewallError("neither nftables nor iptables is available to publish ports")
        r = subprocess.run([ipt, "-w", *args], capture_output=True, text=True)
        if r.returncode != 0 and check:
            raise FirewallError(f"iptables {' '.join(args)}: {r.stderr.strip()}")
        return r.returncode == 0

    def exists(self) -> bool:
        """True when this store's chains are present."""
        return self._ipt(["-t", "nat", "-S", self.ports_chain], check=False)

    def ensure_base(self) -> None:
        """Create the chains and hooks unless present."""
        if not self.exists():
            for cmd in self.base_commands():
                self._ipt(cmd)

    def add_ports(self, container_id: str, rules: list[PortRule]) -> dict:
        """Install the container's rules; on failure remove what was added."""
        self.ensure_base()
        try:
            for cmd in self.add_commands(container_id, rules):
                self._ipt(cmd)
        except FirewallError:
            self.remove_ports(container_id, None)
            raise
        return {"backend": self.kind}

    def chain_for(self, container_id: str) -> str:
        """The container's chain name."""
        return self.container_chain(container_id)

    def remove_chain(self, c: str) -> None:
        """Delete a per-container chain and its jump (gc of crash leftovers)."""
        while self._ipt(["-t", "nat", "-D", self.ports_chain, "-j", c], check=False):
            pass
        self._ipt(["-t", "nat", "-F", c], check=False)
        self._ipt(["-t", "nat", "-X", c], check=False)

    def remove_ports(self, container_id: str, state: dict | None) -> None:
        """Remove the jump and the container's chain (idempotent)."""
        c = self.container_chain(container_id)
        while self._ipt(["-t", "nat", "-D", self.ports_chain, "-j", c], check=False):
            pass
        self._ipt(["-t", "nat", "-F", c], check=False)
        self._ipt(["-t", "nat", "-X", c], check=False)

    def chains(self) -> set[str]:
        """Per-container chains present."""
        ipt = shutil.which("iptables-save")
        if not ipt:
            return set()
        r = subprocess.run([ipt, "-t", "nat"], capture_output=True, text=True)
        return {
            line[1:].split()[0] for line in r.stdout.splitlines() if line.startswith(f":{self.prefix}_c")
        }

    def drop_all(self) -> None:
        """Remove every chain and hook of this store (idempotent)."""
        p, post, g = self.ports_chain, self.post_chain, self.guard_chain
        for hook, chain, table in (("PREROUTING", p, "nat"), ("OUTPUT", p, "nat"), ("POSTROUTING", post, "nat"),
                                   ("PREROUTING", g, "raw")):
            args = ["-m", "addrtype", "--dst-type", "LOCAL"] if chain == p else []
            while self._ipt(["-t", table, "-D", hook, *args, "-j", chain], check=False):
                pass
        for c in self.chains():
            self._ipt(["-t", "nat", "-F", c], check=False)
            self._ipt(["-t", "nat", "-X", c], check=False)
        while self._ipt(["-t", "filter", "-D", "FORWARD", "-j", self.iso_chain], check=False):
            pass
        for chain, table in ((p, "nat"), (post, "nat"), (g, "raw"), (self.iso_chain, "filter"),
                             (self.iso2_chain, "filter")):
            self._ipt(["-t", table, "-F", chain], check=False)
            self._ipt(["-t", table, "-X", chain], check=False)


def open_firewall(store_path: str, prefer: str | None = None) -> NftFirewall | IptablesFirewall:
    """nftables when available, else iptables. `prefer` ("nftables"/"iptables") overrides (tests, env)."""
    from runtime.network import nft

    if prefer == "iptables":
        return IptablesFirewall(store_path)
    if prefer == "nftables" or nft.available():
        return NftFirewall(store_path)
    if shutil.which("iptables"):
        return IptablesFirewall(store_path)
    raise FirewallError("cannot publish ports: neither nftables nor iptables is installed")

"""Rule generation for nftables and iptables (pure text, no root)."""

import re

from runtime.network.firewall import IptablesFirewall, NftFirewall, PortRule, chain_of, store_tag

RULES = [PortRule("tcp", "0.0.0.0", 8080, "10.88.0.2", 80), PortRule("udp", "127.0.0.1", 5353, "10.88.0.2", 53)]
CID = "f" * 64


def test_one_table_per_store_path():
    a, b = NftFirewall("/var/lib/virtlab/network"), NftFirewall("/tmp/x/network")
    assert a.table != b.table
    assert re.fullmatch(r"virtlab_[0-9a-f]{8}", a.table)
    assert store_tag("/x") == store_tag("/x")


def test_base_table_hooks_loopback_path_and_guard():
    s = NftFirewall("/r/network").base_script()
    assert "type nat hook prerouting priority dstnat" in s
    assert "type nat hook output priority -100" in s
    assert s.count("fib daddr type local jump ports") == 2
    # masquerade only loopback-sourced, DNAT-ed traffic, and only towards our own bridges
    masq = [line for line in s.splitlines() if "masquerade" in line]
    assert masq and all("ip saddr 127.0.0.0/8 ct status dnat oifname" in m for m in masq)
    assert all('"virtlab0"' in m or '"vlbr-*"' in m for m in masq)
    assert "eth" not in s
    # CVE-2020-8558 guard: 127/8 from our bridges and veths is dropped before routing
    assert 'iifname "vlv*" ip daddr 127.0.0.0/8 drop' in s
    assert 'iifname "virtlab0" ip saddr 127.0.0.0/8 drop' in s
    assert "priority raw" in s


def test_comment_cannot_break_out_of_quotes():
    s = NftFirewall('/tmp/a"b;c\nd/network').base_script()
    comment = [line for line in s.splitlines() if "comment" in line][0]
    assert comment.count('"') == 2


def test_container_rules():
    fw = NftFirewall("/r/network")
    s = fw.add_script(CID, RULES)
    c = chain_of(CID)
    assert re.fullmatch(r"c_[0-9a-f]{16}", c)
    assert f"add chain ip {fw.table} {c}\nflush chain ip {fw.table} {c}\n" in s
    assert f"add rule ip {fw.table} {c} tcp dport 8080 dnat to 10.88.0.2:80" in s  # 0.0.0.0: no daddr match
    assert f"add rule ip {fw.table} {c} ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.2:53" in s
    assert s.strip().endswith(f'add rule ip {fw.table} ports jump {c} comment "{CID}"')


def test_remove_script_is_exact():
    fw = NftFirewall("/r/network")
    c = chain_of(CID)
    assert fw.remove_script(CID, 7).splitlines() == [
        f"delete rule ip {fw.table} ports handle 7",
        f"flush chain ip {fw.table} {c}",
        f"delete chain ip {fw.table} {c}",
    ]
    assert "handle" not in fw.remove_script(CID, None)
    assert chain_of("a") != chain_of("b")


def test_iptables_equivalent():
    fw = IptablesFirewall("/r/network")
    base = [" ".join(c) for c in fw.base_commands()]
    assert f"-t nat -A OUTPUT -m addrtype --dst-type LOCAL -j {fw.ports_chain}" in base
    assert any("MASQUERADE" in c and "-s 127.0.0.0/8" in c and "-o vlbr-+" in c for c in base)
    assert not any("MASQUERADE" in c and "-o vl" not in c and "-o virtlab0" not in c for c in base)
    add = [" ".join(c) for c in fw.add_commands(CID, RULES)]
    c = fw.container_chain(CID)
    assert len(c) <= 28 and len(fw.guard_chain) <= 28
    assert f"-t nat -A {c} -p tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80" in add
    assert f"-t nat -A {c} -d 127.0.0.1 -p udp --dport 5353 -j DNAT --to-destination 10.88.0.2:53" in add
    assert add[-1] == f"-t nat -A {fw.ports_chain} -j {c}"
    assert fw.container_chain(CID).startswith(fw.prefix)
    assert IptablesFirewall("/other/network").prefix != fw.prefix


def test_table_comment_fits_nft_limit_for_long_store_paths():
    s = NftFirewall("/tmp/" + "x" * 300 + "/network").base_script()
    comment = [line for line in s.splitlines() if "comment" in line][0]
    text = comment.split('"')[1]
    assert len(text) <= 127 and text.endswith("/network")


def test_isolation_drops_what_one_bridge_routes_to_another_virtlab_bridge():
    s = NftFirewall("/r/network").isolate_script(["virtlab0", "vlbr-0123456789"])
    assert "type filter hook forward priority filter; policy accept;" in s
    assert s.index("flush chain") < s.index("add rule")  # rewritten, never appended twice
    assert 'iifname "vlbr-0123456789" oifname != "vlbr-0123456789" oifname { "virtlab0", "vlbr-*" } drop' in s
    assert 'iifname "virtlab0" oifname != "virtlab0"' in s
    assert "add rule" not in NftFirewall("/r/network").isolate_script([])  # no bridges: an empty chain


def test_iptables_isolation_in_two_stages_as_docker():
    fw = IptablesFirewall("/r/network")
    cmds = fw.isolate_commands(["vlbr-0123456789"])
    assert cmds[0] == ["-t", "filter", "-F", fw.iso_chain]
    assert ["-t", "filter", "-A", fw.iso_chain, "-i", "vlbr-0123456789", "!", "-o", "vlbr-0123456789", "-j",
            fw.iso2_chain] in cmds
    assert ["-t", "filter", "-A", fw.iso2_chain, "-o", "vlbr-+", "-j", "DROP"] in cmds


def test_an_interface_name_cannot_inject_rules():
    import pytest

    from runtime.network.errors import FirewallError

    for bad in ['x" drop; flush ruleset; "', "a b", "", "x" * 16]:
        with pytest.raises(FirewallError, match="refusing interface name"):
            NftFirewall("/r/network").isolate_script([bad])
        with pytest.raises(FirewallError):
            IptablesFirewall("/r/network").isolate_commands([bad])

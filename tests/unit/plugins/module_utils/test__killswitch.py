# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch model: validation (errors name the option) and the desired policy's shape."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _killswitch as ks
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import for_family

HOST = dict(mode="host", interfaces=["wg0"], fwmark="0xca6c", dns_servers=["10.66.4.1"])
FORWARD = dict(mode="forward", interfaces=["wg0"], sources=["br-app", "172.20.0.0/16"], dns_servers=["10.66.4.1"])


def spec(base, **overrides):
    params = dict(base)
    params.update(overrides)
    return ks.KillswitchSpec(params)


# --- validation -------------------------------------------------------------------------------

BAD_INPUT = [
    ("iface-space", HOST, dict(interfaces=["wg 0"]), "interfaces"),
    ("iface-slash", HOST, dict(interfaces=["wg0/1"]), "interfaces"),
    ("iface-too-long", HOST, dict(interfaces=["wireguard-tunnel0"]), "interfaces"),
    ("iface-only-wildcard", HOST, dict(interfaces=["+"]), "interfaces"),
    ("iface-dash-first", HOST, dict(interfaces=["-wg0"]), "interfaces"),
    ("iface-loopback", HOST, dict(interfaces=["lo"]), "interfaces"),
    ("iface-newline", HOST, dict(interfaces=["wg0\n"]), "interfaces"),
    ("no-interfaces", HOST, dict(interfaces=[]), "interfaces"),
    ("lan-host-bits", HOST, dict(allow_lan=["192.168.1.1/24"]), "allow_lan"),
    ("lan-garbage", HOST, dict(allow_lan=["lan"]), "allow_lan"),
    ("lan-everything-v4", HOST, dict(allow_lan=["0.0.0.0/0"]), "allow_lan"),
    ("lan-everything-v6", HOST, dict(allow_lan=["::/0"]), "allow_lan"),
    ("lan-two-halves", HOST, dict(allow_lan=["0.0.0.0/1", "128.0.0.0/1"]), "allow_lan"),
    ("exclude-everything", FORWARD, dict(exclude=["0.0.0.0/0"]), "exclude"),
    ("exclude-halves-v6", FORWARD, dict(exclude=["::/1", "8000::/1"]), "exclude"),
    ("exclude-bad", FORWARD, dict(exclude=["10.0.0.0/33"]), "exclude"),
    ("dns-in-lan", HOST, dict(allow_lan=["10.66.0.0/16"]), "dns_servers"),
    ("dns-in-exclude", FORWARD, dict(exclude=["10.66.4.0/24"]), "dns_servers"),
    ("dns-v6-blocked", HOST, dict(dns_servers=["fd66:4::1"]), "dns_servers"),
    ("dns-loopback", HOST, dict(dns_servers=["127.0.0.53"]), "dns_servers"),
    ("dns-hostname", HOST, dict(dns_servers=["dns.example"]), "dns_servers"),
    ("dns-cidr", HOST, dict(dns_servers=["10.66.4.0/24"]), "dns_servers"),
    ("endpoint-hostname", HOST, dict(endpoints=["vpn.example:51820"]), "endpoints"),
    ("endpoint-no-port", HOST, dict(endpoints=["192.0.2.1"]), "endpoints"),
    ("endpoint-port-0", HOST, dict(endpoints=["192.0.2.1:0"]), "endpoints"),
    ("endpoint-v6-unbracketed", HOST, dict(endpoints=["2001:db8::1:51820"]), "endpoints"),
    ("fwmark-garbage", HOST, dict(fwmark="mark"), "fwmark"),
    ("fwmark-too-big", HOST, dict(fwmark=2 ** 32), "fwmark"),
    ("fwmark-bool", HOST, dict(fwmark=True), "fwmark"),
    ("host-no-tunnel-udp", HOST, dict(fwmark=None), "fwmark"),
    ("host-with-sources", HOST, dict(sources=["br-app"]), "sources"),
    ("host-with-exclude", HOST, dict(exclude=["10.0.0.0/8"]), "exclude"),
    ("forward-no-sources", FORWARD, dict(sources=[]), "sources"),
    ("forward-bad-source", FORWARD, dict(sources=["172.20.0.1/16"]), "sources"),
    ("forward-bad-source-name", FORWARD, dict(sources=["br app"]), "sources"),
    ("forward-with-lan", FORWARD, dict(allow_lan=["10.0.0.0/8"]), "allow_lan"),
    ("forward-with-dhcp", FORWARD, dict(allow_dhcp=True), "allow_dhcp"),
    ("dhcp-garbage", HOST, dict(allow_dhcp="sometimes"), "allow_dhcp"),
    ("forward-bypass-outside-mask", FORWARD, dict(bypass_fwmark={"mark": "0x3000", "mask": "0x1000"}), "bypass_fwmark"),
    ("bypass-outside-mask", HOST, dict(bypass_fwmark={"mark": "0x3000", "mask": "0x1000"}), "bypass_fwmark"),
    ("bypass-garbage", HOST, dict(bypass_fwmark={"mark": "x"}), "bypass_fwmark.mark"),
    ("bypass-zero", HOST, dict(bypass_fwmark={"mark": 0}), "bypass_fwmark.mark"),
    ("bad-mode", HOST, dict(mode="router"), "mode"),
    ("bad-backend", HOST, dict(backend="pf"), "backend"),
    ("bad-ipv6", HOST, dict(ipv6="maybe"), "ipv6"),
]


@pytest.mark.parametrize("base,overrides,option", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_the_option(base, overrides, option):
    with pytest.raises(TunnelgateError) as err:
        spec(base, **overrides)
    assert err.value.option == option
    assert str(err.value).startswith(option)


def test_absent_needs_nothing_else():
    s = ks.KillswitchSpec(dict(state="absent", mode="forward"))
    assert s.state == "absent" and s.interfaces == []


@pytest.mark.parametrize("value,expected", [("0xca6c", 0xCA6C), (51820, 51820), ("51820", 51820), ("off", 0), (None, 0)])
def test_fwmark_forms(value, expected):
    params = dict(HOST, fwmark=value, endpoints=["192.0.2.1:51820"])
    assert ks.KillswitchSpec(params).fwmark == expected


def test_endpoints_parse_both_families():
    s = spec(HOST, endpoints=["192.0.2.1:51820", "[2001:db8::1]:443"])
    assert [(str(a), p) for a, p in s.endpoints] == [("192.0.2.1", 51820), ("2001:db8::1", 443)]


def test_wildcard_interface_accepted():
    assert spec(HOST, interfaces=["wg+", "tg-home.1"]).interfaces == ["wg+", "tg-home.1"]


def test_ipv4_only_subnet_sources_warn_about_ipv6():
    s = spec(FORWARD, sources=["172.20.0.0/16"])
    assert any("IPv6" in w for w in s.warnings)
    assert spec(FORWARD).warnings == []  # an interface source covers IPv6 too


# --- the desired policy -----------------------------------------------------------------------


def rules_of(chains, name):
    return dict(chains)[name]


def test_host_order_fail_closed():
    s = spec(HOST, endpoints=["192.0.2.1:51820"], allow_lan=["192.168.0.0/16"], ipv6="tunnel")
    chains = ks.build_chains(s, "iptables")
    assert [c for c, _rules in chains] == ["TUNNELGATE-OUT", "TUNNELGATE-OUT-DNS"]
    out = rules_of(chains, "TUNNELGATE-OUT")
    assert out[0] == {"oif": "lo", "verdict": "return"}
    assert out[-1] == {"verdict": "reject"}
    verdicts = [r["verdict"] for r in out]
    first_dns = verdicts.index("jump TUNNELGATE-OUT-DNS")
    lan = out.index({"family": 4, "daddr": "192.168.0.0/16", "verdict": "return"})
    assert first_dns < lan, "DNS enforcement must come before the LAN exception"
    assert {"proto": "udp", "mark": 0xCA6C, "verdict": "return"} in out
    assert {"oif": "wg0", "verdict": "return"} in out
    dns = rules_of(chains, "TUNNELGATE-OUT-DNS")
    assert dns == [{"family": 4, "daddr": "10.66.4.1/32", "oif": "wg0", "verdict": "return"}, {"verdict": "reject"}]


def test_ipv6_block_allows_tunnel_for_ipv4_only():
    out = rules_of(ks.build_chains(spec(HOST), "nftables"), "host_output")
    assert {"family": 4, "oif": "wg0", "verdict": "accept"} in out
    assert {"oif": "wg0", "verdict": "accept"} not in out
    assert for_family(out, 6)[-1] == {"verdict": "reject"}
    assert not [r for r in for_family(out, 6) if r.get("oif") == "wg0"]


def test_forward_excludes_before_dns_and_sources_goto_egress():
    s = spec(FORWARD, exclude=["10.96.0.0/12"], reject=False)
    chains = ks.build_chains(s, "iptables")
    assert [c for c, _rules in chains] == ["TUNNELGATE-FWD", "TUNNELGATE-FWD-EGRESS", "TUNNELGATE-FWD-DNS"]
    assert rules_of(chains, "TUNNELGATE-FWD") == [
        {"iif": "br-app", "verdict": "goto TUNNELGATE-FWD-EGRESS"},
        {"family": 4, "saddr": "172.20.0.0/16", "verdict": "goto TUNNELGATE-FWD-EGRESS"},
    ]
    egress = rules_of(chains, "TUNNELGATE-FWD-EGRESS")
    verdicts = [r["verdict"] for r in egress]
    assert egress.index({"family": 4, "daddr": "10.96.0.0/12", "verdict": "return"}) < verdicts.index("jump TUNNELGATE-FWD-DNS")
    assert egress[-1] == {"verdict": "drop"}
    assert rules_of(chains, "TUNNELGATE-FWD-DNS")[-1] == {"verdict": "drop"}


def test_inbound_replies_can_be_disabled():
    out = rules_of(ks.build_chains(spec(HOST, allow_inbound_replies=False), "iptables"), "TUNNELGATE-OUT")
    assert not [r for r in out if "ctstate" in r]


def test_every_dns_port_and_protocol_is_enforced():
    out = rules_of(ks.build_chains(spec(HOST), "iptables"), "TUNNELGATE-OUT")
    jumps = {(r["proto"], r["dport"]) for r in out if r["verdict"] == "jump TUNNELGATE-OUT-DNS"}
    assert jumps == {("udp", 53), ("udp", 853), ("tcp", 53), ("tcp", 853)}


def test_for_family_strips_tag_and_other_family():
    rules = [{"family": 4, "daddr": "10.0.0.0/8", "verdict": "return"}, {"family": 6, "daddr": "fd00::/8", "verdict": "return"}, {"verdict": "drop"}]
    assert for_family(rules, 6) == [{"daddr": "fd00::/8", "verdict": "return"}, {"verdict": "drop"}]


@pytest.mark.parametrize("value,expected", [
    ("auto", "auto"), ("AUTO", "auto"), (None, "auto"), (True, True), ("yes", True), ("true", True),
    (False, False), ("no", False), ("off", False)])
def test_allow_dhcp_forms(value, expected):
    s = spec(HOST, allow_dhcp=value)
    assert s.allow_dhcp == expected
    assert s.dhcp_interfaces == (None if expected is True else [])


def test_routing_lock_defaults_on_in_both_modes():
    assert spec(HOST).routing_lock is True
    assert spec(HOST, routing_lock=False).routing_lock is False
    assert spec(FORWARD).routing_lock is True
    assert spec(FORWARD, routing_lock=False).routing_lock is False
    assert spec(FORWARD, bypass_fwmark={"mark": 4096}).bypass_fwmark == (4096, 4096)
    assert spec(FORWARD, allow_dhcp="auto").allow_dhcp == "auto"  # auto is harmless in forward mode


def test_dhcp_rules_per_detected_interface():
    s = spec(HOST)
    s.dhcp_interfaces = ["eth0", "wlan0"]
    out = rules_of(ks.build_chains(s, "iptables"), "TUNNELGATE-OUT")
    dhcp = [r for r in out if r.get("dport") in (67, 547)]
    assert [(r["oif"], r["family"], r["dport"]) for r in dhcp] == [("eth0", 4, 67), ("eth0", 6, 547), ("wlan0", 4, 67), ("wlan0", 6, 547)]
    s.dhcp_interfaces = []
    assert not [r for r in rules_of(ks.build_chains(s, "iptables"), "TUNNELGATE-OUT") if r.get("dport") in (67, 547)]

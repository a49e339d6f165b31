# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state: option validation (errors name the option and peer), routes/rules derived from table/routing."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import rule_argv
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.desired import build_desired

from .fakes import PEER_A, PEER_B, params, peer


@pytest.mark.parametrize("overrides, option, text", [
    ({"name": "this-name-is-too-long"}, "name", "not a valid interface name"),
    ({"name": "wg 0"}, "name", "not a valid interface name"),
    ({"addresses": ["10.66.3.1"]}, "addresses", None),  # a bare address is a /32: accepted
    ({"addresses": ["10.66.3.300/24"]}, "addresses", "not an address"),
    ({"addresses": ["10.66.3.1/24", "10.66.3.1/24"]}, "addresses", "listed twice"),
    ({"listen_port": 0}, "listen_port", "1-65535"),
    ({"listen_port": 70000}, "listen_port", "1-65535"),
    ({"mtu": 1200}, "mtu", "IPv6 needs 1280"),
    ({"mtu": 500, "addresses": ["10.66.3.1/24"]}, "mtu", "576-65535"),
    ({"private_key_path": None}, "private_key_path", "required"),
    ({"private_key_path": "keys/wg0.key"}, "private_key_path", "absolute"),
    ({"private_key_path": "/etc/wire guard/k"}, "private_key_path", "white space"),
    ({"private_key_path": "/etc/wg#/k"}, "private_key_path", "white space"),
    ({"table": "main"}, "table", "auto, off or a routing table number"),
    ({"table": "254"}, "table", "'main' table"),
    ({"table": "off", "routing": {"sources": ["172.18.0.0/16"], "exclude": [], "priority": 10000}}, "routing",
     "needs a routing table"),
    ({"routing": {"sources": ["172.18.0.0/33"], "exclude": [], "priority": 10000}}, "routing.sources", "CIDR"),
    ({"routing": {"sources": [], "exclude": ["nope"], "priority": 10000}}, "routing.exclude", "CIDR"),
    ({"routing": {"sources": [], "exclude": [], "priority": 40000}}, "routing.priority", "1-32000"),
    ({"dns": ["bad host!"]}, "dns", "search domain"),
    ({"fwmark": -1}, "fwmark", "0-4294967295"),
])
def test_validation_names_the_option(overrides, option, text):
    if text is None:
        build_desired(params(**overrides))
        return
    with pytest.raises(TunnelgateError) as err:
        build_desired(params(**overrides))
    assert err.value.option == option
    assert str(err.value).startswith(option)
    assert text in str(err.value)


@pytest.mark.parametrize("peer_spec, option, text", [
    (peer("not-a-key", ["10.66.3.9/32"]), "peers[1].public_key", "44 characters"),
    (peer(PEER_A, ["10.66.3.9/32"]), "peers[1].public_key", "listed for a too"),
    (peer(PEER_B, ["10.66.3.2/32"], description="bee"), "peers[1].allowed_ips", "also allowed for peer a"),
    (peer(PEER_B, ["fd66:3::2/128"]), "peers[1].allowed_ips", "fd66:3::2/128 is also allowed"),
    (peer(PEER_B, ["10.66.3.300/32"]), "peers[1].allowed_ips", "not a valid"),
    (peer(PEER_B, [], endpoint="fd42::1:51820"), "peers[1].endpoint", "brackets"),
    (peer(PEER_B, [], endpoint="host:0"), "peers[1].endpoint", "1-65535"),
    (peer(PEER_B, [], persistent_keepalive=70000), "peers[1].persistent_keepalive", "0-65535"),
    (peer(PEER_B, [], description="two\nlines"), "peers[1].description", "one line"),
    (peer(PEER_B, [], preshared_key_path="psk"), "peers[1].preshared_key_path", "absolute"),
])
def test_peer_validation_names_peer_and_option(peer_spec, option, text):
    first = peer(PEER_A, ["10.66.3.2/32", "fd66:3::2/128"], description="a")
    with pytest.raises(TunnelgateError) as err:
        build_desired(params(peers=[first, peer_spec]))
    assert err.value.option == option
    assert text in str(err.value)
    label = peer_spec["description"] or (peer_spec["public_key"][:8] + "...")
    if peer_spec["public_key"] != "not-a-key":
        assert label in str(err.value)


def test_same_network_twice_for_one_peer_is_collapsed_not_an_error():
    desired = build_desired(params(peers=[peer(PEER_A, ["10.66.3.2/32", "10.66.3.2/32"])]))
    assert desired.peers[PEER_A].allowed_ips == ["10.66.3.2/32"]


def test_host_bits_in_allowed_ips_are_masked_like_wg_does():
    desired = build_desired(params(peers=[peer(PEER_A, ["10.70.1.2/16", "fd66:3::2:1/112"])]))
    assert desired.peers[PEER_A].allowed_ips == ["10.70.0.0/16", "fd66:3::2:0/112"]


# ---------------------------------------------------------------------------------------------
# routes and rules derived from table/routing
# ---------------------------------------------------------------------------------------------

def routes_of(desired):
    return sorted((r.family, r.table, r.dst, r.kind) for r in desired.routes.elements())


def rules_of(desired):
    return sorted(" ".join(rule_argv(r)[1:2] + rule_argv(r)[4:]) for r in desired.rules.elements())


def test_auto_routes_only_what_the_connected_prefixes_do_not_cover():
    desired = build_desired(params())
    # 10.66.3.2/32, .3/32 and fd66:3::2/128 are inside the interface's own prefixes
    assert routes_of(desired) == [(4, "main", "10.70.0.0/16", "unicast")]
    assert not desired.rules and desired.tunnel_table is None and desired.fwmark is None
    assert not desired.sysctls


def test_auto_full_tunnel_ipv4_and_ipv6_like_wg_quick():
    desired = build_desired(params(addresses=["10.66.3.2/32", "fd66:3::2/128"], listen_port=None,
                                   peers=[peer(PEER_A, ["0.0.0.0/0", "::/0"], endpoint="[fd42:7467:3::10]:51820")]))
    assert desired.fwmark == 51820 and desired.tunnel_table == "51820"
    assert routes_of(desired) == [(4, "51820", "0.0.0.0/0", "unicast"), (6, "51820", "::/0", "unicast")]
    assert rules_of(desired) == [
        "-4 not fwmark 51820 table 51820 priority 10001",
        "-4 table main suppress_prefixlength 0 priority 10000",
        "-6 not fwmark 51820 table 51820 priority 10001",
        "-6 table main suppress_prefixlength 0 priority 10000",
    ]
    assert desired.sysctls == {"net.ipv4.conf.all.src_valid_mark": "1"}


def test_auto_full_tunnel_ipv6_only_needs_no_ipv4_sysctl_and_honours_fwmark():
    desired = build_desired(params(fwmark=4242, peers=[peer(PEER_A, ["::/0"])]))
    assert desired.tunnel_table == "4242" and desired.fwmark == 4242
    assert rules_of(desired) == ["-6 not fwmark 4242 table 4242 priority 10001",
                                 "-6 table main suppress_prefixlength 0 priority 10000"]
    assert desired.sysctls == {}


def test_numeric_table_with_routing_sources_and_exclusions():
    routing = {"sources": ["172.18.0.0/16", "fd00:18::/64"], "exclude": ["192.168.0.0/16", "fd00:1::/64"],
               "priority": 2000}
    desired = build_desired(params(table="1066", routing=routing, peers=[
        peer(PEER_A, ["0.0.0.0/0", "::/0"]),
    ]))
    assert desired.tunnel_table == "1066" and desired.fwmark is None
    assert routes_of(desired) == [
        (4, "1066", "0.0.0.0/0", "unicast"), (4, "1066", "192.168.0.0/16", "throw"),
        (6, "1066", "::/0", "unicast"), (6, "1066", "fd00:1::/64", "throw"),
    ]
    assert rules_of(desired) == ["-4 from 172.18.0.0/16 table 1066 priority 2002",
                                 "-6 from fd00:18::/64 table 1066 priority 2002"]


def test_numeric_table_collapses_adjacent_allowed_ips():
    desired = build_desired(params(table="100", peers=[
        peer(PEER_A, ["10.66.3.2/32", "10.66.3.3/32"]), peer(PEER_B, ["10.66.3.0/31"]),
    ]))
    assert routes_of(desired) == [(4, "100", "10.66.3.0/30", "unicast")]


def test_table_off_has_no_routes():
    desired = build_desired(params(table="off", peers=[peer(PEER_A, ["0.0.0.0/0"])]))
    assert not desired.routes and not desired.rules and desired.fwmark is None


# ---------------------------------------------------------------------------------------------
# routing.bypass_fwmark: marked packets (replies to inbound connections) use the main table
# ---------------------------------------------------------------------------------------------

FULL = ["0.0.0.0/0", "::/0"]


def test_bypass_fwmark_rule_before_the_full_tunnel_rules_both_families():
    desired = build_desired(params(addresses=["10.66.3.2/32", "fd66:3::2/128"], peers=[peer(PEER_A, FULL)],
                                   routing={"sources": [], "exclude": [], "priority": 10000,
                                            "bypass_fwmark": {"mark": 0x1000, "mask": 0x1000}}))
    assert rules_of(desired) == [
        "-4 fwmark 0x1000/0x1000 table main priority 9999",
        "-4 not fwmark 51820 table 51820 priority 10001",
        "-4 table main suppress_prefixlength 0 priority 10000",
        "-6 fwmark 0x1000/0x1000 table main priority 9999",
        "-6 not fwmark 51820 table 51820 priority 10001",
        "-6 table main suppress_prefixlength 0 priority 10000",
    ]


def test_bypass_fwmark_full_mask_is_written_without_mask_and_only_where_the_tunnel_has_rules():
    desired = build_desired(params(peers=[peer(PEER_A, ["0.0.0.0/0"])], routing={
        "sources": [], "exclude": [], "priority": 500, "bypass_fwmark": {"mark": 7, "mask": 0xFFFFFFFF}}))
    assert [r for r in rules_of(desired) if "fwmark 7" in r] == ["-4 fwmark 7 table main priority 499"]


def test_bypass_fwmark_without_tunnel_rules_adds_nothing():
    # split tunnel: the allowed IPs are routes of the main table, there is no rule to get around
    desired = build_desired(params(routing={"sources": [], "exclude": [], "priority": 10000,
                                            "bypass_fwmark": {"mark": 0x1000, "mask": 0x1000}}))
    assert not desired.rules


@pytest.mark.parametrize("bypass, priority, option, text", [
    ({"mark": 0x3000, "mask": 0x1000}, 10000, "routing.bypass_fwmark.mark", "within the mask 0x1000"),
    ({"mark": 0, "mask": 0x1000}, 10000, "routing.bypass_fwmark.mark", "non-zero"),
    ({"mark": None, "mask": 0x1000}, 10000, "routing.bypass_fwmark.mark", "non-zero"),
    ({"mark": 1, "mask": 0}, 10000, "routing.bypass_fwmark.mask", "1-0xffffffff"),
    ({"mark": 1, "mask": 1 << 32}, 10000, "routing.bypass_fwmark.mask", "1-0xffffffff"),
    ({"mark": 0x1000, "mask": 0x1000}, 1, "routing.priority", "at least 2"),
])
def test_bypass_fwmark_validation_names_the_option(bypass, priority, option, text):
    with pytest.raises(TunnelgateError) as err:
        build_desired(params(peers=[peer(PEER_A, FULL)], routing={
            "sources": [], "exclude": [], "priority": priority, "bypass_fwmark": bypass}))
    assert err.value.option == option and text in str(err.value)


def test_bypass_fwmark_needs_a_table():
    with pytest.raises(TunnelgateError) as err:
        build_desired(params(table="off", peers=[peer(PEER_A, FULL)], routing={
            "sources": [], "exclude": [], "priority": 10000, "bypass_fwmark": {"mark": 1, "mask": 1}}))
    assert err.value.option == "routing"

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoints given as DNS names: which address is pinned (pure logic, no Ansible)."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils import _endpoints as e
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import InventoryError

NAME = "vpn.example.net:51820"
# what `getent ahosts vpn.example.net` prints: one line per address and socket type
GETENT_BOTH = """\
203.0.113.7     STREAM vpn.example.net
203.0.113.7     DGRAM
203.0.113.7     RAW
2001:db8::7     STREAM
2001:db8::7     DGRAM
2001:db8::7     RAW
"""
GETENT_V6_FIRST = """\
2001:db8::7     STREAM vpn.example.net
2001:db8::7     DGRAM
203.0.113.7     STREAM
203.0.113.7     DGRAM
"""
GETENT_TWO_V4 = """\
203.0.113.8     STREAM vpn.example.net
203.0.113.7     STREAM
"""


def prev(pinned, endpoint=NAME):
    return {"endpoint": endpoint, "pinned": pinned}


@pytest.mark.parametrize("answer, expected", [
    (GETENT_BOTH, ["203.0.113.7", "2001:db8::7"]),
    (GETENT_V6_FIRST, ["2001:db8::7", "203.0.113.7"]),
    (["203.0.113.7", "203.0.113.7", "2001:db8::7"], ["203.0.113.7", "2001:db8::7"]),
    ("", []),
    (None, []),
    ("0.0.0.0 STREAM x\n:: STREAM\n127.0.0.1 STREAM\n::1 DGRAM\n", []),        # a blocking resolver's answers
    ("224.0.0.1 STREAM x\nfe80::1 STREAM\nfe80::1%eth0 DGRAM\nnonsense\n\n", []),  # multicast, link-local, junk
])
def test_parse_resolved(answer, expected):
    assert [str(ip) for ip in e.parse_resolved(answer)] == expected


@pytest.mark.parametrize("endpoint, resolved, previous, family, routable, pinned, source", [
    # a literal address is used as it is, whatever the resolver says
    ("203.0.113.9:51820", GETENT_BOTH, None, "auto", None, "203.0.113.9:51820", "literal"),
    ("[2001:db8::9]:4500", "", None, "auto", None, "[2001:db8::9]:4500", "literal"),
    # a name: the resolver's first usable answer
    (NAME, GETENT_BOTH, None, "auto", None, "203.0.113.7:51820", "resolved"),
    (NAME, GETENT_V6_FIRST, None, "auto", None, "[2001:db8::7]:51820", "resolved"),
    (NAME, GETENT_V6_FIRST, None, "auto", [4, 6], "[2001:db8::7]:51820", "resolved"),
    # auto: families the host has no default route for are used only when nothing else is left
    (NAME, GETENT_V6_FIRST, None, "auto", [4], "203.0.113.7:51820", "resolved"),
    (NAME, "2001:db8::7 STREAM x\n", None, "auto", [4], "[2001:db8::7]:51820", "resolved"),
    # a family chosen by the user
    (NAME, GETENT_V6_FIRST, None, "ipv4", None, "203.0.113.7:51820", "resolved"),
    (NAME, GETENT_BOTH, None, "ipv6", None, "[2001:db8::7]:51820", "resolved"),
    # the address pinned last time stays while the name still resolves to it (round robin does not flap)
    (NAME, GETENT_TWO_V4, prev("203.0.113.7:51820"), "auto", None, "203.0.113.7:51820", "resolved"),
    (NAME, GETENT_V6_FIRST, prev("203.0.113.7:51820"), "auto", None, "203.0.113.7:51820", "resolved"),
    # ... and is replaced when the name moved
    (NAME, GETENT_TWO_V4, prev("198.51.100.1:51820"), "auto", None, "203.0.113.8:51820", "resolved"),
    # ... or when it belongs to another name or port
    (NAME, GETENT_TWO_V4, prev("203.0.113.7:51820", "other.example.net:51820"), "auto", None,
     "203.0.113.8:51820", "resolved"),
    (NAME, GETENT_TWO_V4, prev("203.0.113.7:4500"), "auto", None, "203.0.113.8:51820", "resolved"),
    # ... or when the user asked for the other family
    (NAME, GETENT_BOTH, prev("203.0.113.7:51820"), "ipv6", None, "[2001:db8::7]:51820", "resolved"),
    # no answer (tunnel down, DNS only through it): the last pinned address is kept
    (NAME, "", prev("203.0.113.7:51820"), "auto", [4, 6], "203.0.113.7:51820", "previous"),
    (NAME, None, prev("[2001:db8::7]:51820"), "auto", None, "[2001:db8::7]:51820", "previous"),
    (NAME, "0.0.0.0 STREAM x\n", prev("203.0.113.7:51820"), "ipv4", None, "203.0.113.7:51820", "previous"),
])
def test_pin_endpoint(endpoint, resolved, previous, family, routable, pinned, source):
    out = e.pin_endpoint(endpoint, resolved, previous, family, routable, "h1", "tunnelgate_endpoint")
    assert (out["endpoint"], out["source"]) == (pinned, source)
    assert out["address"] == pinned.rsplit(":", 1)[0].strip("[]")
    assert out["port"] == int(pinned.rsplit(":", 1)[1])


def test_pin_endpoint_result_names_the_answers():
    out = e.pin_endpoint(NAME, GETENT_V6_FIRST, None, "auto", None, "h1")
    assert out == {"endpoint": "[2001:db8::7]:51820", "address": "2001:db8::7", "port": 51820,
                   "name": "vpn.example.net", "addresses": ["2001:db8::7", "203.0.113.7"], "source": "resolved"}
    assert e.pin_endpoint("203.0.113.9:51820")["name"] is None


@pytest.mark.parametrize("endpoint, resolved, previous, family, message", [
    (NAME, "", None, "auto",
     "tunnelgate_endpoint (host h1): the host cannot resolve vpn.example.net and no earlier run pinned"),
    (NAME, "", prev("garbage"), "auto", "the host cannot resolve vpn.example.net"),
    (NAME, "", {"endpoint": NAME}, "auto", "the host cannot resolve vpn.example.net"),
    (NAME, "", "not a dict", "auto", "the host cannot resolve vpn.example.net"),
    (NAME, "", prev("203.0.113.7:51820"), "ipv6", "the host cannot resolve vpn.example.net (ipv6)"),
    (NAME, "2001:db8::7 STREAM x\n", None, "ipv4", "the host cannot resolve vpn.example.net (ipv4)"),
    (NAME, GETENT_BOTH, None, "ipv5", "host_vpn_endpoint_family (host h1): 'ipv5' is not one of auto, ipv4, ipv6"),
    ("203.0.113.9:51820", "", None, "ipv6",
     "host_vpn_endpoint_family (host h1): is ipv6 but the endpoint 203.0.113.9:51820 is an IPv4 address"),
    ("vpn.example.net", GETENT_BOTH, None, "auto", "tunnelgate_endpoint (host h1): 'vpn.example.net' is not an endpoint"),
    ("-rf:51820", GETENT_BOTH, None, "auto", "tunnelgate_endpoint (host h1): '-rf' is not a valid host name"),
])
def test_pin_endpoint_errors_name_the_variable_and_host(endpoint, resolved, previous, family, message):
    with pytest.raises(InventoryError) as err:
        e.pin_endpoint(endpoint, resolved, previous, family, None, "h1", "tunnelgate_endpoint")
    assert message in str(err.value)

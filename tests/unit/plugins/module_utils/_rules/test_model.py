# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine model: marks, shared input checks, chains and rule comparison."""

from __future__ import annotations

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules import model


@pytest.mark.parametrize("text,expected", [
    ("0x1000/0x1000", (0x1000, 0x1000)), ("4096", (4096, 0xFFFFFFFF)), ("0xca6c", (0xCA6C, 0xFFFFFFFF)),
])
def test_parse_mark(text, expected):
    assert model.parse_mark(text) == expected
    assert model.parse_mark(model.format_mark(*expected)) == expected


@pytest.mark.parametrize("value,expected", [(51820, 51820), ("0xca6c", 0xCA6C), (" 4096 ", 4096), (0, 0)])
def test_mark_value(value, expected):
    assert model.mark_value("m", value) == expected


@pytest.mark.parametrize("value", [True, None, "x", -1, 2 ** 32, "0x1g"])
def test_mark_value_rejects(value):
    with pytest.raises(TunnelgateError) as err:
        model.mark_value("inbound_connmark.mark", value)
    assert err.value.option == "inbound_connmark.mark"


@pytest.mark.parametrize("value", [0, 65536, "53a", "５３", " ", True, "-1", "1e3"])
def test_port_rejects(value):
    with pytest.raises(TunnelgateError):
        model.port("p", value)


@pytest.mark.parametrize("value", ["lo", "wg+", "eth0", "br-0123456789ab"])
def test_interface_accepts(value):
    assert model.interface("i", value, allow_lo=True) == value


@pytest.mark.parametrize("value", ["", "+", "wg 0", "a/b", "..", "x" * 16, "-wg", "wg0\n", "$(id)"])
def test_interface_rejects(value):
    with pytest.raises(TunnelgateError):
        model.interface("i", value)


def test_lo_needs_allow_lo():
    with pytest.raises(TunnelgateError):
        model.interface("i", "lo")


def test_rules_equal_is_order_of_rules_not_of_keys():
    a = [{"oif": "wg0", "verdict": "accept"}, {"verdict": "drop"}]
    b = [{"verdict": "accept", "oif": "wg0"}, {"verdict": "drop"}]
    assert model.rules_equal(a, b)
    assert not model.rules_equal(a, list(reversed(b)))


def test_base_spec_only_for_hooked_chains():
    assert model.Chain("x", []).base_spec() == {}
    hooked = model.Chain("y", [], hook="output", kind="route", priority=model.PRIORITY["mangle"])
    assert hooked.base_spec() == {"type": "route", "hook": "output", "prio": -150, "policy": "accept"}

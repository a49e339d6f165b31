# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The info module's logic: facts about interfaces and peers, never secrets."""

from __future__ import annotations

import json

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.info import wireguard_info

from .fakes import PRIVATE_B64, PUBLIC_B64, PEER_A, PSK_B64, FakeRunner, live_interface


def test_info_never_returns_secrets():
    runner = FakeRunner(live_interface())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64

    original = runner.answer

    def answer(argv):
        if argv == ["wg", "show", "all", "dump"]:
            rc, out = original(["wg", "show", "wg0", "dump"])
            return rc, "".join("wg0\t" + line + "\n" for line in out.splitlines())
        return original(argv)

    runner.answer = answer
    interfaces, warnings = wireguard_info(runner, now=100)
    assert warnings == []
    wg0 = interfaces["wg0"]
    assert wg0["public_key"] == PUBLIC_B64 and wg0["listen_port"] == 51820 and wg0["mtu"] == 1420
    assert wg0["addresses"] == ["10.66.3.1/24", "fd66:3::1/64"]
    assert wg0["peers"][0]["preshared_key"] is True and wg0["peers"][0]["latest_handshake"] is None
    assert wg0["peers"][1]["endpoint"] == "[fd42:7467:3::11]:51820"
    dumped = json.dumps(interfaces)
    assert PRIVATE_B64 not in dumped and PSK_B64 not in dumped


def test_info_without_wireguard_tools_warns():
    interfaces, warnings = wireguard_info(FakeRunner(None, binaries=()))
    assert interfaces == {} and "not installed" in warnings[0]

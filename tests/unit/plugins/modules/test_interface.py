# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface and info modules end to end through main(), the host faked at the runner seam."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface import apply as itf_apply
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface import base as itf_base
from ansible_collections.tunnelgate.wireguard.plugins.modules import info, interface

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from _interface.fakes import FakeRunner, PEER_A, PRIVATE_B64, PSK_B64, PUBLIC_B64, live_interface  # noqa: E402

from module_args import patch_module_args  # noqa: E402  (tests/unit is on sys.path)


def run_main(module, capsys, monkeypatch, runner, check_mode=False, diff=False, **args):
    monkeypatch.setattr(module, "CommandRunner", lambda _module: runner)
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return json.loads(out), out


@pytest.fixture
def fresh_host(tmp_path, monkeypatch):
    monkeypatch.setattr(itf_base, "CONFIG_DIR", str(tmp_path / "etc"))
    monkeypatch.setattr(itf_apply.Host.__init__, "__defaults__",
                        (str(tmp_path / "etc"), str(tmp_path / "systemd"), str(tmp_path / "proc"), False))
    return tmp_path


def test_interface_check_mode_with_diff_on_a_fresh_host(capsys, monkeypatch, fresh_host):
    runner = FakeRunner(None, binaries=())
    result, raw = run_main(interface, capsys, monkeypatch, runner, check_mode=True, diff=True,
                           name="wg0", addresses=["10.66.3.2/32", "fd66:3::2/128"],
                           private_key_path="/etc/wireguard/keys/wg0.key",
                           peers=[{"public_key": PEER_A, "endpoint": "[fd42:7467:3::10]:51820",
                                   "allowed_ips": ["0.0.0.0/0", "::/0"], "persistent_keepalive": 25}])
    assert result["changed"] is True and result["restarted"] is False
    assert result["peers_added"] == [{"public_key": PEER_A}]
    assert "FwMark = 51820" in result["diff"][0]["after"]
    assert runner.calls == [] and not os.path.exists(str(fresh_host / "etc" / "wg0.conf"))
    assert PRIVATE_B64 not in raw


def test_interface_without_diff_mode_returns_no_diff(capsys, monkeypatch, fresh_host):
    result = run_main(interface, capsys, monkeypatch, FakeRunner(None, binaries=()), check_mode=True,
                      name="wg0", private_key_path="/etc/wireguard/keys/wg0.key")[0]
    assert "diff" not in result and result["changed"]


@pytest.mark.parametrize("args, message", [
    ({"name": "wg0"}, "private_key_path"),  # required_if state=present
    ({"name": "wg0", "private_key_path": "/k", "peers": [{"public_key": "short", "description": "db-1"}]},
     "peers[0].public_key (db-1): the public key must be 44 characters"),
    ({"name": "wg0", "private_key_path": "/k", "table": "main"}, "table: must be auto, off or a routing table"),
    ({"name": "wg0", "private_key_path": "/k", "implementation": "magic"}, "implementation"),
])
def test_interface_errors_name_the_option(capsys, monkeypatch, fresh_host, args, message):
    result = run_main(interface, capsys, monkeypatch, FakeRunner(None), check_mode=True, **args)[0]
    assert result["failed"] is True
    assert message in result["msg"]


def test_info_module_reports_peers_without_secrets(capsys, monkeypatch):
    runner = FakeRunner(live_interface())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64
    result, raw = run_main(info, capsys, monkeypatch, runner, name="wg0")
    assert result["changed"] is False
    wg0 = result["interfaces"]["wg0"]
    assert wg0["public_key"] == PUBLIC_B64
    assert [p["public_key"] for p in wg0["peers"]][0] == PEER_A
    assert PRIVATE_B64 not in raw and PSK_B64 not in raw


def test_info_module_unknown_interface_fails_naming_it(capsys, monkeypatch):
    result = run_main(info, capsys, monkeypatch, FakeRunner(None), name="wg9")[0]
    assert result["failed"] and result["msg"].startswith("name: wg9 is not a WireGuard interface")


def test_interface_main_check_diff_of_a_hand_made_file_shows_no_key(capsys, monkeypatch, fresh_host):
    (fresh_host / "etc").mkdir()
    (fresh_host / "etc" / "wg0.conf").write_text(
        "[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n[Peer]\nPublicKey = %s\nPresharedKey = %s\n"
        "AllowedIPs = 10.66.3.2/32\n" % (PRIVATE_B64, PEER_A, PSK_B64))
    result, raw = run_main(interface, capsys, monkeypatch, FakeRunner(None, binaries=()), check_mode=True, diff=True,
                           name="wg0", state="absent")
    assert result["changed"] is True and "PublicKey = %s" % PEER_A in result["diff"][0]["before"]
    assert PRIVATE_B64 not in raw and PSK_B64 not in raw


def test_interface_main_command_failure_puts_no_output_in_the_result(capsys, monkeypatch, fresh_host):
    runner = FakeRunner(live_interface())
    # state=absent: "ip link del" is the one mutating command run with check=True outside a restore
    runner.fail[("ip", "link", "del")] = (1, "%s\n" % PRIVATE_B64, "Cannot delete: %s\n" % PSK_B64)
    result, raw = run_main(interface, capsys, monkeypatch, runner, name="wg0", state="absent")
    assert result["failed"] is True and "ip link del dev wg0" in result["msg"]
    assert PRIVATE_B64 not in raw and PSK_B64 not in raw


def test_info_main_failure_of_wg_show_puts_no_output_in_the_result(capsys, monkeypatch):
    runner = FakeRunner(live_interface())
    runner.fail[("wg", "show", "all", "dump")] = (1, "wg0\t%s\t%s\t51820\toff\n" % (PRIVATE_B64, PEER_A),
                                                  "warning: %s\n" % PSK_B64)
    result, raw = run_main(info, capsys, monkeypatch, runner)
    assert result["failed"] is True and "wg show all dump" in result["msg"]
    assert PRIVATE_B64 not in raw and PSK_B64 not in raw

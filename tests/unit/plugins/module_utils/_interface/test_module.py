# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole runs (module body and apply) against a fake host: check mode, apply, restore, absent, systemd."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.desired import build_desired
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.render import render_desired

from .fakes import (
    PRIVATE_B64,
    PUBLIC_B64,
    OTHER_PRIVATE_B64,
    OTHER_PUBLIC_B64,
    PEER_A,
    PEER_B,
    PEER_C,
    PSK_B64,
    peer,
    FakeRunner,
    live_interface,
    run_params,
    mutating,
)


def test_check_mode_on_a_fresh_host_without_tools_or_key(host):
    runner = FakeRunner(None, binaries=())
    p = run_params(host)
    p["private_key_path"] = "/nonexistent/wg0.key"
    result = run_interface(p, runner, host=host, check_mode=True)
    assert result["changed"] and not result["restarted"]
    assert "create interface wg0" in result["changes"]
    assert [e["public_key"] for e in result["peers_added"]] == [PEER_A, PEER_B]
    assert runner.calls == []
    assert not os.path.exists(host.config_path("wg0"))
    assert "PostUp = wg set %i private-key /nonexistent/wg0.key" in result["diff"][0]["after"]


def test_missing_key_file_fails_outside_check_mode(host):
    p = run_params(host)
    p["private_key_path"] = "/nonexistent/wg0.key"
    with pytest.raises(TunnelgateError, match="private_key_path: /nonexistent/wg0.key does not exist"):
        run_interface(p, FakeRunner(None), host=host)


def test_key_file_with_garbage_names_the_option(host, tmp_path):
    bad = tmp_path / "keys" / "bad.key"
    bad.write_text("not a key\n")
    p = run_params(host)
    p["private_key_path"] = str(bad)
    with pytest.raises(TunnelgateError, match="private_key_path: .* does not hold a WireGuard private key"):
        run_interface(p, FakeRunner(None), host=host)


def test_own_public_key_as_peer_is_refused(host):
    p = run_params(host, peers=[peer(PUBLIC_B64, ["10.66.3.9/32"], description="me")])
    with pytest.raises(TunnelgateError, match="own public key"):
        run_interface(p, FakeRunner(None), host=host)


def test_fresh_host_brings_up_with_wg_quick_and_writes_0600(host):
    runner = FakeRunner(None)

    def wg_quick_up(argv):
        runner.live = live_interface()
        runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
        return 0, ""

    original = runner.mutate
    runner.mutate = lambda argv: wg_quick_up(argv) if argv[:2] == ["wg-quick", "up"] else original(argv)
    result = run_interface(run_params(host), runner, host=host)
    assert result["changed"] and not result["restarted"]
    assert result["public_key"] == PUBLIC_B64
    assert ["ip", "link", "add", "dev", "tgprobe%d" % (os.getpid() % 100000), "type", "wireguard"] in runner.calls
    assert ["wg-quick", "up", "wg0"] in runner.calls
    mode = stat.S_IMODE(os.stat(host.config_path("wg0")).st_mode)
    assert mode == 0o600
    text = open(host.config_path("wg0")).read()
    assert PRIVATE_B64 not in text
    # the follow-up reconcile found nothing to do: wg-quick created it all
    assert not [c for c in mutating(runner.calls) if c[:2] == ["wg", "set"]]


def test_second_run_is_idempotent_and_runs_only_reads(host):
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    first = run_interface(run_params(host), runner, host=host)
    assert first["changes"] == ["write configuration file"]
    runner.calls = []
    second = run_interface(run_params(host), runner, host=host)
    assert not second["changed"] and second["changes"] == []
    assert mutating(runner.calls) == []


def test_live_peer_add_is_applied_without_restart_and_converges(host):
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    run_interface(run_params(host), runner, host=host)
    runner.calls = []
    p = run_params(host)
    p["peers"].append(peer(PEER_C, ["10.66.3.4/32", "fd66:3::4/128", "10.90.0.0/16"], description="c",
                           preshared_key_path="A_PSK"))
    p = run_params(host, peers=p["peers"])
    result = run_interface(p, runner, host=host)
    assert result["changed"] and result["restarted"] is False
    assert result["peers_added"] == [{"public_key": PEER_C, "description": "c"}]
    assert not any(c[0] in ("wg-quick", "systemctl") for c in runner.calls)
    wg_sets = [c for c in runner.calls if c[:2] == ["wg", "set"]]
    assert len(wg_sets) == 1 and wg_sets[0][3:5] == ["peer", PEER_C]
    assert ["ip", "-4", "route", "replace", "10.90.0.0/16", "dev", "wg0", "table", "main"] in runner.calls
    assert all(PSK_B64 not in " ".join(c) and PRIVATE_B64 not in " ".join(c) for c in runner.calls)
    assert runner.live["peers"][PEER_C]["psk"] == PSK_B64
    runner.calls = []
    again = run_interface(p, runner, host=host)
    assert not again["changed"], again["changes"]


def test_guard_failure_restores_previous_state_and_fails(host):
    runner = FakeRunner(live_interface(public=OTHER_PUBLIC_B64, private=OTHER_PRIVATE_B64))
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    previous = "# previous file\n[Interface]\nListenPort = 51820\n"
    with open(host.config_path("wg0"), "w") as handle:
        handle.write(previous)
    runner.after_wg_set_public_key = "x" * 43 + "="  # the kernel ends up with something else
    with pytest.raises(TunnelgateError) as err:
        run_interface(run_params(host), runner, host=host)
    assert err.value.option == "private_key_path"
    assert "previous state was restored" in str(err.value)
    assert open(host.config_path("wg0")).read() == previous
    # the old private key went back through a 0600 temp file, never argv
    restore_call = [c for c in runner.calls if c[:2] == ["wg", "set"]][-1]
    assert restore_call[3] == "private-key" and restore_call[4] != OTHER_PRIVATE_B64
    assert runner.live["private"] == OTHER_PRIVATE_B64
    assert all(OTHER_PRIVATE_B64 not in " ".join(c) for c in runner.calls)
    assert not [p for p in os.listdir(host.config_dir) if p.startswith(".tunnelgate-")]


def test_failed_command_restores_and_reports(host):
    runner = FakeRunner(live_interface())
    p = run_params(host, mtu=1380)
    runner.fail[("ip", "link", "set")] = (2, "", "RTNETLINK answers: Invalid argument")
    with pytest.raises(TunnelgateError, match="Invalid argument; the previous state was restored"):
        run_interface(p, runner, host=host)
    assert not os.path.exists(host.config_path("wg0"))


def test_absent_stops_removes_file_and_our_rules_only(host):
    runner = FakeRunner(live_interface())
    text = render_desired(build_desired(run_params(host, table="1066", routing={
        "sources": ["172.18.0.0/16"], "exclude": [], "priority": 10000})))
    with open(host.config_path("wg0"), "w") as handle:
        handle.write(text)
    runner.rules[4] += [{"priority": 10002, "src": "172.18.0.0", "srclen": 16, "table": "1066"},
                        {"priority": 100, "src": "10.0.0.0", "srclen": 8, "table": "200"}]
    result = run_interface({"name": "wg0", "state": "absent"}, runner, host=host, check_mode=True)
    assert result["changed"] and os.path.exists(host.config_path("wg0"))
    assert mutating(runner.calls) == []
    run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
    assert ["wg-quick", "down", "wg0"] in runner.calls
    assert ["ip", "-4", "rule", "del", "from", "172.18.0.0/16", "table", "1066", "priority", "10002"] in runner.calls
    assert not any(c[:3] == ["ip", "-4", "rule"] and "200" in c for c in runner.calls)
    assert not os.path.exists(host.config_path("wg0"))


def test_absent_when_nothing_is_there_is_not_a_change(host):
    runner = FakeRunner(None)
    result = run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
    assert not result["changed"]


def test_systemd_host_uses_the_unit_and_a_dropin(host):
    host.systemd = True
    runner = FakeRunner(None)
    started = []

    def mutate(argv, original=runner.mutate):
        if argv[:2] == ["systemctl", "start"]:
            started.append(argv)
            runner.live = live_interface()
            runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
            return 0, ""
        return original(argv)

    runner.mutate = mutate
    p = run_params(host, implementation="userspace")
    p["enabled"] = True
    result = run_interface(p, runner, host=host)
    assert started == [["systemctl", "start", "wg-quick@wg0.service"]]
    assert ["systemctl", "daemon-reload"] in runner.calls
    dropin = open(host.dropin_path("wg0")).read()
    assert "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go" in dropin
    assert "write systemd drop-in" in result["changes"]


# ---------------------------------------------------------------------------------------------
# routing.bypass_fwmark: applied live, idempotent, removed when dropped or on absent
# ---------------------------------------------------------------------------------------------

BYPASS = {"sources": [], "exclude": [], "priority": 10000, "bypass_fwmark": {"mark": 0x1000, "mask": 0x1000}}
NO_BYPASS = {"sources": [], "exclude": [], "priority": 10000, "bypass_fwmark": None}
BYPASS_ADD = ["ip", "-4", "rule", "add", "fwmark", "0x1000/0x1000", "table", "main", "priority", "9999"]


def _full_tunnel(host, routing):
    return run_params(host, addresses=["10.66.3.2/32"], listen_port=None, routing=routing,
                      peers=[peer(PEER_A, ["0.0.0.0/0"], endpoint="172.30.3.10:51820")])


def _converge(runner, host, routing):
    run_interface(_full_tunnel(host, routing), runner, host=host)
    runner.calls = []
    return run_interface(_full_tunnel(host, routing), runner, host=host)


def test_bypass_fwmark_is_applied_live_hooked_in_the_file_and_idempotent(host):
    runner = FakeRunner(live_interface())
    first = run_interface(_full_tunnel(host, BYPASS), runner, host=host)
    assert first["changed"] and BYPASS_ADD in runner.calls
    text = open(host.config_path("wg0")).read()
    assert "PostUp = %s" % " ".join(BYPASS_ADD) in text
    assert "PostDown = ip -4 rule del fwmark 0x1000/0x1000 table main priority 9999 || true" in text
    assert "bypass=0x1000/0x1000@9999" in text
    runner.calls = []
    second = run_interface(_full_tunnel(host, BYPASS), runner, host=host)
    assert not second["changed"] and mutating(runner.calls) == []


def test_bypass_fwmark_dropped_is_removed_and_foreign_main_rules_stay(host):
    runner = FakeRunner(live_interface())
    _converge(runner, host, BYPASS)
    runner.rules[4].append({"priority": 9000, "src": "all", "fwmark": "0x4000", "fwmask": "0x4000", "table": "main"})
    runner.calls = []
    result = run_interface(_full_tunnel(host, NO_BYPASS), runner, host=host)
    assert result["changed"]
    assert ["ip", "-4", "rule", "del", "fwmark", "0x1000/0x1000", "table", "main", "priority", "9999"] in runner.calls
    assert not any("0x4000/0x4000" in c for c in runner.calls)  # someone else's rule (kube-proxy's bit)
    runner.calls = []
    again = run_interface(_full_tunnel(host, NO_BYPASS), runner, host=host)
    assert not again["changed"] and mutating(runner.calls) == []


def test_absent_removes_a_leftover_bypass_rule(host):
    runner = FakeRunner(live_interface())
    _converge(runner, host, BYPASS)
    runner.live = None  # the interface is gone (crash, foreign teardown) but the rule is still there
    runner.calls = []
    run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
    assert ["ip", "-4", "rule", "del", "fwmark", "0x1000/0x1000", "table", "main", "priority", "9999"] in runner.calls

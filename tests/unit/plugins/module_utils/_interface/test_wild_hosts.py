# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts as they are in the wild (issue #8.5): IPv6 disabled for new interfaces, and reruns that repair
a broken tunnel (interface down, wg-quick stuck, unit failed) instead of failing and restoring it."""

from __future__ import annotations

import os

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import parse_config

from .fakes import PEER_A, PEER_B, PUBLIC_B64, FakeRunner, mutating, peer, run_params, wg_quick_up


def disable_ipv6(host, default="1", name=None):
    conf = os.path.join(host.proc_sys, "net", "ipv6", "conf")
    for dev, value in (("default", default), ("all", default), (name, "1")):
        if dev:
            os.makedirs(os.path.join(conf, dev), exist_ok=True)
            with open(os.path.join(conf, dev, "disable_ipv6"), "w") as handle:
                handle.write(value + "\n")


def full_tunnel(host, **extra):
    return run_params(host, addresses=["10.66.3.2/32", "fd66:3::2/128"], listen_port=None,
                      peers=[peer(PEER_A, ["0.0.0.0/0", "::/0"], endpoint="172.30.3.10:51820",
                                  persistent_keepalive=25, description="exit")], **extra)


def bring_up_with_wg_quick(runner, host):
    """wg-quick up/down as the fake host does them: from the file the module wrote."""
    original = runner.mutate

    def mutate(argv):
        if argv[:2] == ["wg-quick", "up"] or argv[:2] == ["systemctl", "start"]:
            wg_quick_up(runner, host.config_path("wg0"))
            runner.unit_status = "active"
            return 0, ""
        if argv[:2] == ["systemctl", "stop"]:
            runner.unit_status = "inactive"
            return 0, ""
        return original(argv)

    runner.mutate = mutate


# ---------------------------------------------------------------------------------------------
# IPv6 disabled for new interfaces (Docker containers, hardened hosts)
# ---------------------------------------------------------------------------------------------

def test_ipv6_disabled_full_tunnel_comes_up_ipv4_only_and_blocks_ipv6(host):
    disable_ipv6(host)
    runner = FakeRunner(None)
    bring_up_with_wg_quick(runner, host)
    result = run_interface(full_tunnel(host), runner, host=host)
    assert result["changed"] and result["ipv6_disabled"] is True
    assert result["public_key"] == PUBLIC_B64
    assert any("IPv6 is disabled" in w and "fd66:3::2/128" in w for w in result["warnings"])
    conf = parse_config(open(host.config_path("wg0")).read())
    assert conf.interface_value("Address") == "10.66.3.2/32"  # an IPv6 address would fail wg-quick up
    post_up = conf.interface_values("PostUp")
    assert "ip -4 route replace 0.0.0.0/0 dev %i table 51820" in post_up
    assert not [h for h in post_up if h.startswith("ip -6 route") and "dev %i" in h]
    # fail closed: IPv6 that would use the tunnel has no route at all, instead of leaking via the uplink
    assert "ip -6 route replace unreachable ::/0 table 51820" in post_up
    assert "ip -6 rule add not fwmark 51820 table 51820 priority 10001" in post_up
    assert "ip -6 route del unreachable ::/0 table 51820 || true" in conf.interface_values("PostDown")
    # the peer still carries ::/0, so wg never sends IPv6 elsewhere either
    assert runner.live["peers"][PEER_A]["allowed"] == ["0.0.0.0/0", "::/0"]
    assert {"type": "unreachable", "dst": "::/0"} in runner.tables[(6, "51820")]

    again = run_interface(full_tunnel(host), runner, host=host)
    assert again["changed"] is False and again["ipv6_disabled"] is True, again["changes"]
    assert any("IPv6 is disabled" in w for w in again["warnings"])


def test_ipv6_disabled_check_mode_reports_it_and_touches_nothing(host):
    disable_ipv6(host)
    runner = FakeRunner(None, binaries=())
    result = run_interface(full_tunnel(host), runner, host=host, check_mode=True)
    assert result["changed"] and result["ipv6_disabled"] is True
    assert "fd66:3::2" not in result["diff"][0]["after"]
    assert runner.calls == [] and not os.path.exists(host.config_path("wg0"))


def test_ipv6_disabled_only_on_the_existing_interface_counts_too(host):
    disable_ipv6(host, default="0", name="wg0")
    result = run_interface(full_tunnel(host), FakeRunner(None, binaries=()), host=host, check_mode=True)
    assert result["ipv6_disabled"] is True


def test_ipv6_enabled_host_is_unchanged_by_all_this(host):
    disable_ipv6(host, default="0")
    runner = FakeRunner(None)
    bring_up_with_wg_quick(runner, host)
    result = run_interface(full_tunnel(host), runner, host=host)
    assert result["ipv6_disabled"] is False and not result.get("warnings")
    conf = parse_config(open(host.config_path("wg0")).read())
    assert conf.interface_value("Address") == "10.66.3.2/32, fd66:3::2/128"
    assert "ip -6 route replace ::/0 dev %i table 51820" in conf.interface_values("PostUp")
    assert run_interface(full_tunnel(host), runner, host=host)["changed"] is False


# ---------------------------------------------------------------------------------------------
# a rerun repairs a broken tunnel
# ---------------------------------------------------------------------------------------------

def base_params(host, enabled=False):
    p = run_params(host)
    p["enabled"] = enabled
    return p


def converged(host, runner, enabled=False):
    bring_up_with_wg_quick(runner, host)
    first = run_interface(base_params(host, enabled), runner, host=host)
    assert first["changed"]
    assert run_interface(base_params(host, enabled), runner, host=host)["changed"] is False
    return runner


def moved_endpoint_params(host, enabled=False):
    p = base_params(host, enabled)
    p["peers"][1]["endpoint"] = "[fd42:7467:3::12]:51820"
    return p


def test_interface_down_is_restarted_and_an_endpoint_change_applies(host):
    runner = converged(host, FakeRunner(None))
    runner.live["up"] = False   # ip link set wg0 down
    runner.calls.clear()
    result = run_interface(moved_endpoint_params(host), runner, host=host)
    assert result["changed"] and result["restarted"] is True
    assert "restart: wg0 is down" in result["changes"]
    assert ["wg-quick", "down", "wg0"] in runner.calls and ["wg-quick", "up", "wg0"] in runner.calls
    assert runner.live["up"] is True and runner.live["peers"][PEER_B]["endpoint"] == "[fd42:7467:3::12]:51820"
    assert run_interface(moved_endpoint_params(host), runner, host=host)["changed"] is False


def test_interface_down_in_check_mode_reports_the_repair_only(host):
    runner = converged(host, FakeRunner(None))
    runner.live["up"] = False
    runner.calls.clear()
    result = run_interface(base_params(host), runner, host=host, check_mode=True)
    assert result["changed"] and "restart: wg0 is down" in result["changes"]
    assert mutating(runner.calls) == []


@pytest.mark.parametrize("status, reason", [
    ("activating", "restart: wg-quick@wg0.service is stuck starting (e.g. resolving an endpoint name)"),
    ("failed", "restart: wg-quick@wg0.service has failed"),
])
def test_stuck_or_failed_unit_is_restarted_through_the_unit(host, status, reason):
    host.systemd = True
    runner = converged(host, FakeRunner(None), enabled=True)
    runner.unit_status = status
    if status == "activating":   # wg-quick created the link and hangs in wg setconf: down, no key
        runner.live.update(up=False, private=None, public=None)
    runner.calls.clear()
    result = run_interface(moved_endpoint_params(host, enabled=True), runner, host=host)
    assert result["changed"] and result["restarted"] is True
    assert reason in result["changes"]
    calls = mutating(runner.calls)
    if status == "activating":
        assert calls.index(["systemctl", "stop", "wg-quick@wg0.service"]) < calls.index(
            ["systemctl", "start", "wg-quick@wg0.service"])
    assert ["systemctl", "reset-failed", "wg-quick@wg0.service"] in calls
    assert runner.unit_status == "active" and runner.live["public"] == PUBLIC_B64
    assert runner.live["peers"][PEER_B]["endpoint"] == "[fd42:7467:3::12]:51820"
    assert run_interface(moved_endpoint_params(host, enabled=True), runner, host=host)["changed"] is False


def test_failed_unit_without_an_interface_is_started_again(host):
    host.systemd = True
    runner = converged(host, FakeRunner(None), enabled=True)
    runner.live, runner.unit_status = None, "failed"
    result = run_interface(base_params(host, True), runner, host=host)
    assert result["changed"] and "create interface wg0" in result["changes"]
    assert runner.unit_status == "active" and runner.live is not None

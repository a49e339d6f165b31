# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface module's ``dns`` option end to end against the fake host: applied live through _dns (no
resolvconf, no restart), rendered as hooks, idempotent, check mode, given back by dns: [] and state=absent."""

from __future__ import annotations

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import parse_config

from .fakes import FakeRunner, live_interface, mutating, run_params

ISP = "nameserver 192.0.2.53\n"  # what tests/unit/conftest.py puts in the fake root's resolv.conf


def resolv(root):
    return (root / "etc" / "resolv.conf").read_text()


def test_dns_is_applied_live_rendered_as_hooks_and_given_back(host, dns_files_in_tmp):
    runner = FakeRunner(live_interface())
    run_interface(run_params(host), runner, host=host)  # the tunnel as an earlier run left it, no DNS
    runner.calls.clear()
    result = run_interface(run_params(host, dns=["10.66.3.1", "corp.example"]), runner, host=host)
    assert result["changed"] and not result["restarted"]
    assert "/etc/resolv.conf: nameserver 10.66.3.1" in result["changes"]
    assert not [c for c in mutating(runner.calls) if c[0] == "wg-quick" or c[:2] == ["systemctl", "restart"]]
    assert resolv(dns_files_in_tmp).splitlines()[1:] == ["nameserver 10.66.3.1", "search corp.example"]
    conf = parse_config(open(host.config_path("wg0")).read())
    assert conf.interface_value("DNS") is None
    assert any("resolv.conf.wg0" in line for line in conf.interface_values("PostUp"))
    assert any("resolv.conf.wg0.orig" in line for line in conf.interface_values("PostDown"))
    assert "nameserver 10.66.3.1" in result["diff"][-1]["after"] and ISP.strip() in result["diff"][-1]["before"]

    again = run_interface(run_params(host, dns=["10.66.3.1", "corp.example"]), runner, host=host)
    assert not again["changed"], again["changes"]

    # someone rewrote resolv.conf: the next run puts it back (and keeps that file to give back)
    (dns_files_in_tmp / "etc" / "resolv.conf").write_text("nameserver 192.0.2.99\n")
    fixed = run_interface(run_params(host, dns=["10.66.3.1", "corp.example"]), runner, host=host)
    assert fixed["changed"] and "nameserver 10.66.3.1" in resolv(dns_files_in_tmp)

    gone = run_interface(run_params(host, dns=[]), runner, host=host)
    assert gone["changed"] and resolv(dns_files_in_tmp) == "nameserver 192.0.2.99\n"
    assert "resolv.conf.wg0" not in open(host.config_path("wg0")).read()


def test_check_mode_reports_dns_and_changes_nothing(host, dns_files_in_tmp):
    runner = FakeRunner(live_interface())
    run_interface(run_params(host), runner, host=host)
    runner.calls.clear()
    result = run_interface(run_params(host, dns=["10.66.3.1"]), runner, host=host, check_mode=True)
    assert result["changed"] and "/etc/resolv.conf: nameserver 10.66.3.1" in result["changes"]
    assert resolv(dns_files_in_tmp) == ISP and mutating(runner.calls) == []


def test_absent_gives_the_previous_dns_back(host, dns_files_in_tmp):
    runner = FakeRunner(live_interface())
    run_interface(run_params(host, dns=["10.66.3.1"]), runner, host=host)
    assert "nameserver 10.66.3.1" in resolv(dns_files_in_tmp)
    check = run_interface({"name": "wg0", "state": "absent"}, runner, host=host, check_mode=True)
    assert "give back the previous /etc/resolv.conf" in check["changes"]
    assert "nameserver 10.66.3.1" in resolv(dns_files_in_tmp)
    run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
    assert resolv(dns_files_in_tmp) == ISP
    assert not run_interface({"name": "wg0", "state": "absent"}, runner, host=host)["changed"]

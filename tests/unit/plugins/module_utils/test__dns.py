# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS through the tunnel: validation, method detection, plans for resolv.conf and systemd-resolved,
give-back on removal, migration from the role script, and the rendered hooks and DHCP guards run
for real with sh/bash against files in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _dns as dns
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError

ISP = "# from DHCP\nnameserver 192.0.2.53\nsearch lan\n"


class TmpHost(dns.DnsHost):
    """A DnsHost whose every path lives under ``base`` (absolute paths, so the hooks use them too)."""

    def __init__(self, base, dhclient=False, dhcpcd=False, nm=False):
        super().__init__("/")
        base = str(base)
        self.resolv_conf = os.path.join(base, "etc", "resolv.conf")
        self.state_dir = os.path.join(base, "var", "lib", "tunnelgate")
        self.dhclient_hooks_dir = os.path.join(base, "etc", "dhcp", "dhclient-enter-hooks.d")
        self.dhcpcd_enter_hook = os.path.join(base, "etc", "dhcpcd.enter-hook")
        self.dhcpcd_run_hooks = (os.path.join(base, "usr", "lib", "dhcpcd", "dhcpcd-run-hooks"),)
        self.nm_conf_dir = os.path.join(base, "etc", "NetworkManager", "conf.d")
        os.makedirs(os.path.dirname(self.resolv_conf), exist_ok=True)
        if dhclient:
            os.makedirs(self.dhclient_hooks_dir)
        if dhcpcd:
            os.makedirs(os.path.dirname(self.dhcpcd_run_hooks[0]))
            with open(self.dhcpcd_run_hooks[0], "w", encoding="utf-8") as handle:
                handle.write("#!/bin/sh\n")
        if nm:
            os.makedirs(self.nm_conf_dir)

    def put(self, absolute, text):
        with open(absolute, "w", encoding="utf-8") as handle:
            handle.write(text)

    def text(self, absolute):
        with open(absolute, encoding="utf-8") as handle:
            return handle.read()


class FakeRunner:
    """systemctl and resolvectl of a simulated host; records every command."""

    def __init__(self, resolved=False, nm=False, links=("wg0",), binaries=("systemctl", "resolvectl")):
        self.resolved = resolved
        self.nm = nm
        self.binaries = set(binaries)
        self.links = {name: {"dns": [], "domain": [], "default-route": False} for name in links}
        self.calls = []

    def bin_path(self, name, required=True):
        return "/usr/bin/%s" % name if name in self.binaries else None

    def run(self, argv, check=True, data=None, environ=None):
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "is-active"]:
            active = self.resolved if argv[2] == "systemd-resolved.service" else self.nm
            return (0, "active\n", "") if active else (3, "inactive\n", "")
        if argv[0] == "resolvectl":
            what, name = argv[1], argv[2]
            link = self.links.get(name)
            if link is None or not self.resolved:
                return 1, "", "Failed to resolve interface \"%s\"" % name
            if what == "revert":
                link.update({"dns": [], "domain": [], "default-route": False})
                return 0, "", ""
            if len(argv) > 3:
                link[what] = argv[3] == "yes" if what == "default-route" else argv[3:]
                return 0, "", ""
            value = link[what]
            shown = ("yes" if value else "no") if what == "default-route" else " ".join(value)
            return 0, "Link 7 (%s): %s\n" % (name, shown), ""
        return 0, "", ""

    def mutations(self):
        return [c for c in self.calls if c[0] == "resolvectl" and len(c) > 3 or c[:2] == ["resolvectl", "revert"]
                or c[:2] == ["systemctl", "reload"]]


def converge(host, runner, config, previous=None):
    live = dns.read_live(runner, host, config.name)
    plan = dns.plan_present(config, host, live, previous)
    dns.apply(plan, runner, host)
    return plan


def remove(host, runner, name="wg0"):
    plan = dns.plan_absent(host, dns.read_live(runner, host, name))
    dns.apply(plan, runner, host)
    return plan


def sh(script, shell="sh"):
    return subprocess.run([shell, "-c", script], capture_output=True, text=True, check=False)


# ---------------------------------------------------------------------------------------------
# validation and detection
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entries, servers, domains", [
    ([], [], []),
    (["10.66.0.1"], ["10.66.0.1"], []),
    ([" fd66::1 ", "10.66.0.1", "corp.example"], ["fd66::1", "10.66.0.1"], ["corp.example"]),
])
def test_parse_entries(entries, servers, domains):
    assert dns.parse_entries(entries) == (servers, domains)


@pytest.mark.parametrize("entries, text", [
    (["bad host!"], "neither an IP address nor a search domain"),
    (["10.0.0.1; rm -rf /"], "neither"),
    (["$(reboot)"], "neither"),
    (["a\nnameserver 192.0.2.1"], "neither"),
    (["corp.example"], "need at least one server"),
    (["10.66.0.1", "10.66.0.1"], "listed twice"),
])
def test_parse_entries_rejects(entries, text):
    with pytest.raises(TunnelgateError) as err:
        dns.parse_entries(entries)
    assert str(err.value).startswith("dns: ") and text in str(err.value)


def test_detect_method(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, "nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    assert dns.detect_method("auto", FakeRunner(resolved=True), host) == "resolved"
    assert dns.detect_method("auto", FakeRunner(resolved=False), host) == "resolv_conf"
    assert dns.detect_method("auto", FakeRunner(resolved=True, binaries=("systemctl",)), host) == "resolv_conf"
    host.put(host.resolv_conf, "nameserver 192.0.2.53\n")  # resolved runs but the file is foreign
    assert dns.detect_method("auto", FakeRunner(resolved=True), host) == "resolv_conf"
    assert dns.detect_method("resolv_conf", FakeRunner(resolved=True), host) == "resolv_conf"
    os.unlink(host.resolv_conf)
    os.symlink("../run/systemd/resolve/stub-resolv.conf", host.resolv_conf)
    assert dns.detect_method("auto", FakeRunner(resolved=True), host) == "resolved"


def test_detect_method_errors_name_the_option(tmp_path):
    host = TmpHost(tmp_path)
    with pytest.raises(TunnelgateError, match=r"^dns_method: resolved: systemd-resolved is not running"):
        dns.detect_method("resolved", FakeRunner(resolved=False), host)
    with pytest.raises(TunnelgateError, match=r"^dns_method: must be one of"):
        dns.detect_method("resolvconf", FakeRunner(), host)


# ---------------------------------------------------------------------------------------------
# /etc/resolv.conf
# ---------------------------------------------------------------------------------------------

def test_resolv_conf_converge_is_idempotent_and_removal_gives_the_original_back(tmp_path):
    host = TmpHost(tmp_path, dhclient=True)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    config = dns.DnsConfig("wg0", ["10.66.0.1", "fd66::1"], ["corp.example"], "resolv_conf")
    plan = converge(host, runner, config)
    assert plan.changed
    assert any("keep the current /etc/resolv.conf" in c for c in plan.changes)
    assert host.text(host.resolv_conf) == (dns.marker(host, "wg0") + "\nnameserver 10.66.0.1\nnameserver fd66::1\n"
                                           "search corp.example\n")
    assert host.text(host.saved_path("wg0")) == ISP
    assert host.text(host.ours_path("wg0")) == host.text(host.resolv_conf)
    assert os.path.exists(host.dhclient_hook_path("wg0"))
    assert not os.path.exists(host.dhcpcd_enter_hook)  # no dhcpcd on this host
    again = dns.plan_present(config, host, dns.read_live(runner, host, "wg0"))
    assert not again.changed, again.changes
    plan = remove(host, runner)
    assert plan.changed and host.text(host.resolv_conf) == ISP
    assert not os.listdir(host.state_dir) and not os.listdir(host.dhclient_hooks_dir)
    assert not dns.plan_absent(host, dns.read_live(runner, host, "wg0")).changed


def test_check_mode_plan_touches_nothing(tmp_path):
    host = TmpHost(tmp_path, dhclient=True, nm=True, dhcpcd=True)
    host.put(host.resolv_conf, ISP)
    plan = dns.plan_present(dns.DnsConfig("wg0", ["10.66.0.1"]), host, dns.read_live(FakeRunner(), host, "wg0"))
    assert plan.changed and plan.resolv_conf is not None
    assert host.text(host.resolv_conf) == ISP and not os.path.exists(host.state_dir)
    assert not os.listdir(host.dhclient_hooks_dir) and not os.listdir(host.nm_conf_dir)
    before, after = plan.tracker.get_before_after()
    assert before["resolv.conf"] == ISP and "nameserver 10.66.0.1" in after["resolv.conf"]


def test_server_change_rewrites_but_keeps_the_first_original(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    plan = converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.2"]))
    assert plan.save_original is None and "nameserver 10.66.0.2" in host.text(host.resolv_conf)
    assert host.text(host.saved_path("wg0")) == ISP


def test_a_rewrite_behind_our_back_becomes_the_new_original(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    config = dns.DnsConfig("wg0", ["10.66.0.1"])
    converge(host, runner, config)
    host.put(host.resolv_conf, "nameserver 192.0.2.99\n")  # a client without a guard rewrote it
    plan = converge(host, runner, config)
    assert plan.changed and host.text(host.saved_path("wg0")) == "nameserver 192.0.2.99\n"
    assert "nameserver 10.66.0.1" in host.text(host.resolv_conf)


def test_more_than_three_servers_is_refused_for_resolv_conf(tmp_path):
    host = TmpHost(tmp_path)
    config = dns.DnsConfig("wg0", ["10.66.0.%d" % i for i in range(1, 5)])
    with pytest.raises(TunnelgateError, match="^dns: /etc/resolv.conf takes at most 3 servers"):
        dns.plan_present(config, host, dns.read_live(FakeRunner(), host, "wg0"))


def test_symlinked_resolv_conf_is_replaced_and_comes_back(tmp_path):
    host = TmpHost(tmp_path)
    target = os.path.join(str(tmp_path), "run-resolv.conf")
    host.put(target, ISP)
    os.symlink(target, host.resolv_conf)
    runner = FakeRunner()
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    assert not os.path.islink(host.resolv_conf) and "10.66.0.1" in host.text(host.resolv_conf)
    assert host.text(target) == ISP  # the generator's file is left alone
    remove(host, runner)
    assert os.readlink(host.resolv_conf) == target


def test_symlink_comes_back_after_the_tunnel_went_down_first(tmp_path):
    host = TmpHost(tmp_path)
    target = os.path.join(str(tmp_path), "run-resolv.conf")
    host.put(target, ISP)
    os.symlink(target, host.resolv_conf)
    runner = FakeRunner()
    config = dns.DnsConfig("wg0", ["10.66.0.1"])
    converge(host, runner, config)
    post_down = [v for k, v in dns.hooks(host, config) if k == "PostDown"]
    assert sh(post_down[0]).returncode == 0 and host.text(host.resolv_conf) == ISP
    remove(host, runner)
    assert os.readlink(host.resolv_conf) == target


def test_hosts_of_the_role_script_are_adopted(tmp_path):
    """The role's old script wrote the same marker line and kept the original in the same file."""
    host = TmpHost(tmp_path)
    os.makedirs(host.state_dir)
    host.put(host.saved_path("wg0"), ISP)
    old = dns.marker(host, "wg0") + "\nnameserver 10.66.0.1\n"
    host.put(host.resolv_conf, old)
    runner = FakeRunner()
    plan = converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    assert plan.save_original is None and plan.resolv_conf is None  # nothing to rewrite, original kept
    assert host.text(host.saved_path("wg0")) == ISP
    remove(host, runner)
    assert host.text(host.resolv_conf) == ISP


def test_no_servers_gives_back_what_we_made(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    plan = converge(host, runner, dns.DnsConfig("wg0", []))
    assert plan.changed and host.text(host.resolv_conf) == ISP
    assert not converge(host, runner, dns.DnsConfig("wg0", [])).changed


def test_someone_elses_resolv_conf_is_left_alone_on_removal(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    host.put(host.resolv_conf, "nameserver 198.51.100.1\n")  # the admin took it over
    remove(host, runner)
    assert host.text(host.resolv_conf) == "nameserver 198.51.100.1\n"
    assert not os.listdir(host.state_dir)


def test_interfaces_do_not_touch_each_others_files(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner(links=("wg0", "wg1"))
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    assert not remove(host, runner, "wg1").changed
    assert "10.66.0.1" in host.text(host.resolv_conf)


# ---------------------------------------------------------------------------------------------
# guards against DHCP clients and NetworkManager
# ---------------------------------------------------------------------------------------------

def test_guards_only_where_the_client_is_installed(tmp_path):
    host = TmpHost(tmp_path, dhclient=True, dhcpcd=True, nm=True)
    host.put(host.resolv_conf, ISP)
    host.put(host.dhcpcd_enter_hook, "# the admin's own hook\nexport FOO=1\n")
    runner = FakeRunner(nm=True)
    plan = converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"]))
    assert ["systemctl", "reload", "NetworkManager.service"] in runner.calls and plan.reload_nm
    nm_conf = host.text(host.nm_dropin_path("wg0"))
    assert "[main]\ndns=none\nrc-manager=unmanaged\n" in nm_conf
    hook = host.text(host.dhcpcd_enter_hook)
    assert hook.startswith("# the admin's own hook\nexport FOO=1\n") and "skip_hooks" in hook
    assert not dns.plan_present(dns.DnsConfig("wg0", ["10.66.0.1"]), host, dns.read_live(runner, host, "wg0")).changed
    runner.calls.clear()
    remove(host, runner)
    assert host.text(host.dhcpcd_enter_hook) == "# the admin's own hook\nexport FOO=1\n"
    assert not os.path.exists(host.nm_dropin_path("wg0"))
    assert ["systemctl", "reload", "NetworkManager.service"] in runner.calls


def test_dhclient_renewal_keeps_our_resolvers_while_the_tunnel_is_up(tmp_path):
    """dhclient-script sources the enter hooks, then calls make_resolv_conf on RENEW."""
    host = TmpHost(tmp_path, dhclient=True)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    config = dns.DnsConfig("wg0", ["10.66.0.1"])
    converge(host, runner, config)
    renewal = ("make_resolv_conf() { echo 'nameserver 192.0.2.77' > %s; }\n. %s\nmake_resolv_conf\n"
               % (host.resolv_conf, host.dhclient_hook_path("wg0")))
    assert sh(renewal).returncode == 0
    assert "nameserver 10.66.0.1" in host.text(host.resolv_conf)
    # positive control: once the tunnel gave the file back, the renewal writes as usual
    post_down = [v for k, v in dns.hooks(host, config) if k == "PostDown"][0]
    assert sh(post_down).returncode == 0 and host.text(host.resolv_conf) == ISP
    assert sh(renewal).returncode == 0
    assert host.text(host.resolv_conf) == "nameserver 192.0.2.77\n"


def test_dhcpcd_enter_hook_skips_the_resolv_conf_hook_while_the_tunnel_is_up(tmp_path):
    host = TmpHost(tmp_path, dhcpcd=True)
    host.put(host.resolv_conf, ISP)
    converge(host, FakeRunner(), dns.DnsConfig("wg0", ["10.66.0.1"]))
    probe = 'skip_hooks="lookup-hostname"; . %s; echo "$skip_hooks"' % host.dhcpcd_enter_hook
    assert sh(probe).stdout.split() == ["lookup-hostname", "resolv.conf"]
    host.put(host.resolv_conf, ISP)  # tunnel down: nothing skipped
    assert sh(probe).stdout.split() == ["lookup-hostname"]


def test_dhcpcd_block_edit_keeps_other_text():
    host = dns.DnsHost()
    text = dns.dhcpcd_hook_text("a=1\n", host, "wg0", True)
    text = dns.dhcpcd_hook_text(text, host, "wg1", True)
    assert text.count("BEGIN tunnelgate.wireguard") == 2
    assert dns.dhcpcd_hook_text(text, host, "wg0", True) == text  # idempotent
    text = dns.dhcpcd_hook_text(text, host, "wg0", False)
    assert "through wg0" not in text and "through wg1" in text and text.startswith("a=1\n")
    assert dns.dhcpcd_hook_text(dns.dhcpcd_hook_text(None, host, "wg0", True), host, "wg0", False) is None


# ---------------------------------------------------------------------------------------------
# wg-quick hooks: re-applied whenever the tunnel comes up
# ---------------------------------------------------------------------------------------------

def test_hooks_have_no_comment_or_percent_characters(tmp_path):
    host = dns.DnsHost()
    for method in ("resolv_conf", "resolved"):
        lines = dns.hooks(host, dns.DnsConfig("wg0", ["10.66.0.1", "fd66::1"], ["corp.example"], method))
        assert lines and all("#" not in v and "%" not in v for dummy, v in lines)
        assert dns.hooks_method("[Interface]\n" + "".join("%s = %s\n" % kv for kv in lines)) == method
    assert dns.hooks(host, dns.DnsConfig("wg0", [])) == []
    assert dns.hooks_method("[Interface]\nPostUp = wg set %i private-key /k\n") is None


def test_resolved_hooks():
    lines = dns.hooks(dns.DnsHost(), dns.DnsConfig("wg0", ["10.66.0.1", "fd66::1"], ["corp.example"], "resolved"))
    assert lines == [("PostUp", "resolvectl dns wg0 10.66.0.1 fd66::1"),
                     ("PostUp", "resolvectl domain wg0 '~.' corp.example"),
                     ("PostUp", "resolvectl default-route wg0 yes")]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash runs wg-quick's hooks")
def test_resolv_conf_hooks_across_a_reboot(tmp_path):
    """Boot: the uplink (DHCP) writes a fresh resolv.conf, then wg-quick's PostUp puts ours back."""
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    config = dns.DnsConfig("wg0", ["10.66.0.1"])
    converge(host, runner, config)
    ours = host.text(host.resolv_conf)
    lines = dict((k, []) for k in ("PostUp", "PostDown"))
    for key, value in dns.hooks(host, config):
        lines[key].append(value)
    host.put(host.resolv_conf, "nameserver 192.0.2.88\n")  # the boot's DHCP lease
    for line in lines["PostUp"]:
        assert sh(line, "bash").returncode == 0
    assert host.text(host.resolv_conf) == ours
    assert host.text(host.saved_path("wg0")) == "nameserver 192.0.2.88\n"
    for line in lines["PostUp"]:  # a second up (restart) keeps the saved original
        assert sh(line, "bash").returncode == 0
    assert host.text(host.saved_path("wg0")) == "nameserver 192.0.2.88\n"
    for line in lines["PostDown"]:
        assert sh(line, "bash").returncode == 0
    assert host.text(host.resolv_conf) == "nameserver 192.0.2.88\n"
    remove(host, runner)
    assert host.text(host.resolv_conf) == "nameserver 192.0.2.88\n" and not os.listdir(host.state_dir)


def test_post_down_without_a_saved_file_never_empties_resolv_conf(tmp_path):
    host = TmpHost(tmp_path)
    config = dns.DnsConfig("wg0", ["10.66.0.1"])
    content = dns.render_resolv_conf(host, config)
    host.put(host.resolv_conf, content)
    post_down = [v for k, v in dns.hooks(host, config) if k == "PostDown"][0]
    assert sh(post_down).returncode == 0 and host.text(host.resolv_conf) == content


# ---------------------------------------------------------------------------------------------
# systemd-resolved
# ---------------------------------------------------------------------------------------------

def test_resolved_converge_is_idempotent_and_reverted_on_removal(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, "nameserver 127.0.0.53\n")
    runner = FakeRunner(resolved=True)
    config = dns.DnsConfig("wg0", ["10.66.0.1", "fd66::1"], [], "resolved")
    plan = converge(host, runner, config)
    assert runner.mutations() == [["resolvectl", "dns", "wg0", "10.66.0.1", "fd66::1"],
                                  ["resolvectl", "domain", "wg0", "~."],
                                  ["resolvectl", "default-route", "wg0", "yes"]]
    assert plan.changed and host.text(host.resolv_conf) == "nameserver 127.0.0.53\n"
    assert not os.path.exists(host.state_dir)
    runner.calls.clear()
    assert not converge(host, runner, config).changed and not runner.mutations()
    runner.links["wg0"]["domain"] = []  # someone reverted the link
    assert converge(host, runner, config).resolvectl == [["resolvectl", "domain", "wg0", "~."]]
    runner.calls.clear()
    remove(host, runner)
    assert runner.mutations() == [["resolvectl", "revert", "wg0"]]


def test_resolved_link_gone_means_nothing_to_revert(tmp_path):
    host = TmpHost(tmp_path)
    assert not remove(host, FakeRunner(resolved=True, links=())).changed


def test_switching_methods_gives_back_the_other_one(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner(resolved=True)
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"], [], "resolv_conf"))
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"], [], "resolved"))
    assert host.text(host.resolv_conf) == ISP and not os.listdir(host.state_dir)
    assert runner.links["wg0"]["dns"] == ["10.66.0.1"]
    converge(host, runner, dns.DnsConfig("wg0", ["10.66.0.1"], [], "resolv_conf"), previous="resolved")
    assert runner.links["wg0"]["dns"] == [] and "10.66.0.1" in host.text(host.resolv_conf)


# ---------------------------------------------------------------------------------------------
# the interface module's side
# ---------------------------------------------------------------------------------------------

def test_first_post_up_before_the_module_wrote_our_file_leaves_resolv_conf_alone(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    post_up = [v for k, v in dns.hooks(host, dns.DnsConfig("wg0", ["10.66.0.1"])) if k == "PostUp"][0]
    assert sh(post_up, "bash").returncode == 0
    assert host.text(host.resolv_conf) == ISP and not os.path.exists(host.saved_path("wg0"))


def test_interface_dns_detects_plans_applies_and_removes(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, ISP)
    runner = FakeRunner()
    side = dns.InterfaceDns("wg0", ["10.66.0.1", "corp.example"], "auto", runner, host)
    assert side.config.method == "resolv_conf" and side.config.domains == ["corp.example"]
    assert side.plan().changed and host.text(host.resolv_conf) == ISP  # planning changes nothing
    side.apply()
    assert not side.plan().changed
    entry = dns.diff_entry(dns.plan_absent(host, dns.read_live(runner, host, "wg0")))
    assert "nameserver 10.66.0.1" in entry["before"] and "from DHCP" in entry["after"]
    assert dns.remove_interface_dns("wg0", runner, host, check_mode=True).changed
    assert "10.66.0.1" in host.text(host.resolv_conf)
    assert dns.remove_interface_dns("wg0", runner, host).changed and host.text(host.resolv_conf) == ISP


def test_interface_dns_with_no_servers_undoes_the_previous_method(tmp_path):
    host = TmpHost(tmp_path)
    host.put(host.resolv_conf, "nameserver 127.0.0.53\n")
    runner = FakeRunner(resolved=True)
    first = dns.InterfaceDns("wg0", ["10.66.0.1"], "auto", runner, host)
    assert first.config.method == "resolved"
    first.apply()
    previous = "[Interface]\n" + "".join("%s = %s\n" % kv for kv in first.hooks())
    assert dns.InterfaceDns("wg0", [], "auto", runner, host, previous).apply().resolvectl == [
        ["resolvectl", "revert", "wg0"]]
    # without our hooks in the previous file, a link's DNS is not ours to revert
    runner.links["wg0"]["dns"] = ["192.0.2.1"]
    assert not dns.InterfaceDns("wg0", [], "auto", runner, host, "[Interface]\n").plan().changed


def test_interface_dns_errors_name_the_option(tmp_path):
    host = TmpHost(tmp_path)
    with pytest.raises(TunnelgateError, match="^dns: "):
        dns.InterfaceDns("wg0", ["not a server!"], "auto", FakeRunner(), host)
    with pytest.raises(TunnelgateError, match="^dns_method: "):
        dns.InterfaceDns("wg0", ["10.66.0.1"], "resolved", FakeRunner(resolved=False), host)

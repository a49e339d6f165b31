# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kill switch as a whole (_ks_switch): routing lock, watcher, DHCP detection and the order of changes.

The host is faked at its one seam (the CommandRunner): iptables-save/nft listings come from the
real-tool fixtures, ``ip -j rule show`` from canned rule lists, every command is recorded, files go
to a temporary directory. The firewall rule set alone is covered by _rules/test_engine.py.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _ks_switch as mgr
from fake_module import FakeModule  # noqa: E402  (tests/unit is on sys.path)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "killswitch")
HOST = dict(
    mode="host", interfaces=["wg0"], fwmark="0xca6c", endpoints=["192.0.2.1:51820", "[2001:db8::1]:51820"],
    dns_servers=["10.66.4.1", "fd66:4::1"], allow_lan=["192.168.0.0/16", "fd00:1::/64"], allow_dhcp=True, ipv6="tunnel",
)
EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
NFT_MISSING = (1, "", "Error: No such file or directory\n")
MUTATING = ("iptables-restore", "ip6tables-restore", "enable", "disable", "daemon-reload", "-f", "-batch")
LOCK_HOST = {  # the routing lock HOST wants, as ``ip -j rule show`` prints it
    4: [{"priority": 32764, "src": "all", "table": "main", "suppress_prefixlen": 0},
        {"priority": 32764, "src": "all", "fwmark": "0xca6c", "table": "main"},
        {"priority": 32764, "src": "all", "dst": "192.0.2.1", "table": "main"},
        {"priority": 32764, "src": "all", "dst": "192.168.0.0", "dstlen": 16, "table": "main"},
        {"priority": 32764, "src": "all", "ipproto": "udp", "dport": 67, "table": "main"},
        {"priority": 32765, "src": "all", "action": "prohibit"}],
    6: [{"priority": 32764, "src": "all", "table": "main", "suppress_prefixlen": 0},
        {"priority": 32764, "src": "all", "fwmark": "0xca6c", "table": "main"},
        {"priority": 32764, "src": "all", "dst": "2001:db8::1", "table": "main"},
        {"priority": 32764, "src": "all", "dst": "fd00:1::", "dstlen": 64, "table": "main"},
        {"priority": 32764, "src": "all", "ipproto": "udp", "dport": 547, "table": "main"},
        {"priority": 32765, "src": "all", "action": "prohibit"}],
}
BASE_RULES = [{"priority": 0, "src": "all", "table": "local"}, {"priority": 32766, "src": "all", "table": "main"}]


def rules_json(family, lock=None):
    return json.dumps([BASE_RULES[0]] + list((lock or {}).get(family, [])) + [BASE_RULES[1]])


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


class FakeHost:
    """Canned command output per tool; records every call."""

    def __init__(self, v4=EMPTY, v6=EMPTY, nft=NFT_MISSING, enabled=False, missing=(), fail=(), lock=None):
        self.answers = {
            "iptables-save": (0, v4, ""),
            "ip6tables-save": (0, v6, ""),
            "nft": nft,
            "systemctl": (0 if enabled else 1, "enabled\n" if enabled else "disabled\n", ""),
        }
        self.rules = {4: rules_json(4, lock), 6: rules_json(6, lock)}
        for tool in fail:
            self.answers[tool] = (1, "", "%s: can't initialize filter table: Table does not exist" % tool)
        self.missing = set(missing)
        self.calls = []

    def bin_path(self, name, required=True):
        if name in self.missing or name == "dockerd":
            if required:
                raise AssertionError("required binary %s missing" % name)
            return None
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        self.calls.append((argv, data))
        tool = os.path.basename(argv[0])
        if tool == "systemctl" and argv[1] == "is-active":
            enabled = self.answers["systemctl"][0] == 0
            return (0, "active\n", "") if enabled else (3, "inactive\n", "")
        if tool == "systemctl" and argv[1] != "is-enabled":
            return 0, "", ""
        if tool == "nft" and argv[1] == "-f":
            return 0, "", ""
        if tool == "ip" and argv[1:2] == ["-j"] and argv[3:] == ["rule", "show"]:
            return 0, self.rules[int(argv[2][1])], ""
        return self.answers.get(tool, (0, "", ""))

    def mutations(self):
        return [argv for argv, _data in self.calls if any(m in argv or os.path.basename(argv[0]) == m for m in MUTATING)]


@pytest.fixture
def dirs(tmp_path):
    rules, units, root = tmp_path / "rules", tmp_path / "units", tmp_path / "root"
    units.mkdir()
    root.mkdir()
    return str(rules), str(units), str(root)


def run(params, host, dirs, check_mode=False):
    return mgr.run_module(FakeModule(params, check_mode=check_mode), host, rules_dir=dirs[0], unit_dir=dirs[1], root=dirs[2])


def test_check_mode_changes_nothing(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs, check_mode=True)
    assert result["changed"]
    assert host.mutations() == []
    assert not os.path.exists(dirs[0])
    assert os.listdir(dirs[1]) == []


def test_second_run_is_unchanged(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=LOCK_HOST)
    result = run(HOST, host, dirs)
    assert result["changed"] is False
    assert host.mutations() == []
    assert result["diff"]["before"] == result["diff"]["after"]


# --------------------------------------------------------------------------- closed means closed (issue 8.4)


def _order(host):
    """The mutating steps in the order they ran, named by what they touch."""
    steps = []
    for argv, data in host.calls:
        tool = os.path.basename(argv[0])
        if tool.endswith("-restore"):
            steps.append("iptables remove" if "-X TUNNELGATE-OUT" in data else "iptables load")
        elif tool == "nft" and argv[1] == "-f":
            steps.append("nft load" if "add rule" in data else "nft remove")
        elif tool == "ip" and "-batch" in argv:
            steps.append("lock remove" if "rule add" not in data else "lock load")
    return steps


def test_backend_switch_loads_the_new_switch_before_removing_the_old(dirs):
    """Failed before the fix: the old backend's chains were removed first (a window with no switch)."""
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), lock=LOCK_HOST)
    run(dict(HOST, backend="nftables"), host, dirs)
    assert _order(host) == ["nft load", "iptables remove", "iptables remove"]


def test_backend_switch_back_to_iptables_loads_first(dirs):
    host = FakeHost(nft=(0, fixture("nft.json"), ""), lock=LOCK_HOST)
    run(HOST, host, dirs)
    assert _order(host) == ["iptables load", "iptables load", "nft remove"]


def test_fresh_host_closes_the_routing_lock_before_the_firewall(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs)
    assert _order(host) == ["lock load", "lock load", "iptables load", "iptables load"]
    batches = [data for argv, data in host.calls if "-batch" in argv]
    assert batches[0].splitlines() == [
        "rule add priority 32765 prohibit",  # closed first, then the exceptions
        "rule add priority 32764 lookup main suppress_prefixlength 0",
        "rule add priority 32764 fwmark 0xca6c lookup main",
        "rule add priority 32764 to 192.0.2.1/32 lookup main",
        "rule add priority 32764 to 192.168.0.0/16 lookup main",
        "rule add priority 32764 ipproto udp dport 67 lookup main",
    ]
    assert result["routing_lock"]["ipv6"][-1] == "priority 32765 prohibit"
    assert "ip -6 rule priority 32765 prohibit" in result["diff"]["after"]


def test_boot_unit_closes_the_routing_lock_first_without_any_file(dirs):
    """Failed before the fix: a boot whose rules file was corrupt or missing came up open."""
    run(HOST, FakeHost(), dirs)
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-host.service"), encoding="utf-8") as handle:
        execs = [line for line in handle.read().splitlines() if line.startswith("ExecStart=")]
    assert execs[0].startswith("ExecStart=/bin/sh -c '/usr/sbin/ip -4 rule add priority 32764 lookup main "
                               "suppress_prefixlength 0 2>/dev/null; ")
    assert execs[0].endswith("; /usr/sbin/ip -4 rule add priority 32765 prohibit 2>/dev/null || "
                             "/usr/sbin/ip -4 rule show priority 32765 | grep -q \"from all prohibit\"'")
    assert execs[1].startswith("ExecStart=/bin/sh -c '[ -e /proc/net/if_inet6 ] || exit 0; /usr/sbin/ip -6 rule add")
    assert "/etc/tunnelgate" not in execs[0] + execs[1] and "tables" not in execs[0] + execs[1]
    assert "iptables-restore" in execs[2]


def test_routing_lock_false_removes_it_after_the_firewall(dirs):
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=LOCK_HOST)
    result = run(dict(HOST, routing_lock=False), host, dirs)
    assert result["changed"] and result["routing_lock"] == {}
    assert _order(host) == ["lock remove", "lock remove"]
    batch = [data for argv, data in host.calls if "-batch" in argv][0]
    assert batch.splitlines()[-1] == "rule del priority 32765 prohibit"
    assert len(batch.splitlines()) == 6


def test_absent_removes_the_lock_last(dirs):
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=LOCK_HOST)
    run(dict(mode="host", state="absent"), host, dirs)
    assert _order(host) == ["iptables remove", "iptables remove", "lock remove", "lock remove"]


FORWARD = dict(mode="forward", interfaces=["wg0"], sources=["br-x", "10.244.0.0/16"], exclude=["10.96.0.0/12"],
               bypass_fwmark={"mark": "0x1000"})
LOCK_FORWARD = {  # the forward-mode lock FORWARD wants, as ``ip -j rule show`` prints it
    4: [{"priority": 32762, "src": "all", "iif": "br-x", "dst": "10.96.0.0", "dstlen": 12, "table": "main"},
        {"priority": 32762, "src": "all", "iif": "br-x", "fwmark": "0x1000", "fwmask": "0x1000", "table": "main"},
        {"priority": 32763, "src": "all", "iif": "br-x", "action": "prohibit"},
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "dst": "10.96.0.0", "dstlen": 12, "table": "main"},
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "fwmark": "0x1000", "fwmask": "0x1000", "table": "main"},
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "iif": "lo", "table": "main"},
        {"priority": 32763, "src": "10.244.0.0", "srclen": 16, "action": "prohibit"}],
    6: [{"priority": 32762, "src": "all", "iif": "br-x", "fwmark": "0x1000", "fwmask": "0x1000", "table": "main"},
        {"priority": 32763, "src": "all", "iif": "br-x", "action": "prohibit"}],
}


def _both(*locks):
    return {f: [r for lock in locks for r in lock[f]] for f in (4, 6)}


def test_forward_mode_locks_its_sources_and_leaves_host_mode_alone(dirs):
    host = FakeHost(lock=LOCK_HOST)
    result = run(FORWARD, host, dirs)
    assert result["routing_lock"]["ipv4"][-1] == "priority 32763 from 10.244.0.0/16 prohibit"
    assert result["routing_lock"]["ipv6"] == ["priority 32762 iif br-x fwmark 0x1000/0x1000 lookup main",
                                              "priority 32763 iif br-x prohibit"]
    batches = [data for argv, data in host.calls if "-batch" in argv]
    assert batches[0].splitlines()[:2] == ["rule add priority 32763 iif br-x prohibit",
                                           "rule add priority 32763 from 10.244.0.0/16 prohibit"]
    assert "32764" not in "".join(batches) and "32765" not in "".join(batches)
    assert _order(host) == ["lock load", "lock load", "iptables load", "iptables load"]
    assert "# routing lock (policy rules at priorities 32762/32763" in result["diff"]["after"]


def test_forward_mode_boot_unit_and_watcher_hold_the_lock(dirs):
    run(FORWARD, FakeHost(), dirs)
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-forward.service"), encoding="utf-8") as handle:
        execs = [line for line in handle.read().splitlines() if line.startswith("ExecStart=")]
    assert execs[0].startswith("ExecStart=/bin/sh -c '/usr/sbin/ip -4 rule add priority 32762 iif br-x to 10.96.0.0/12")
    assert execs[0].endswith("/usr/sbin/ip -4 rule show priority 32763 from 10.244.0.0/16 | grep -q prohibit'")
    assert execs[1].startswith("ExecStart=/bin/sh -c '[ -e /proc/net/if_inet6 ] || exit 0; /usr/sbin/ip -6 rule add")
    assert "iptables-restore" in execs[2]
    with open(os.path.join(dirs[0], "forward.watch"), encoding="utf-8") as handle:
        script = handle.read().splitlines()
    assert "    /usr/sbin/ip -6 rule show priority 32763 iif br-x | grep -q prohibit || return 1" in script


def test_forward_mode_lock_in_place_is_not_touched(dirs):
    """Judged on the live ``ip rule`` listing (the firewall rules are the engine's tests)."""
    host = FakeHost(lock=_both(LOCK_HOST, LOCK_FORWARD))
    result = run(dict(FORWARD, persist=False, watch=False), host, dirs)
    assert [argv for argv, _data in host.calls if "-batch" in argv] == []
    assert result["diff"]["before"].split("# routing lock")[1] == result["diff"]["after"].split("# routing lock")[1]


def test_forward_mode_check_mode_changes_nothing(dirs):
    host = FakeHost()
    result = run(FORWARD, host, dirs, check_mode=True)
    assert result["changed"] and host.mutations() == []
    assert "ip -4 rule priority 32763 iif br-x prohibit" in result["diff"]["after"]


def test_forward_mode_absent_or_lock_off_removes_only_its_own_lock(dirs):
    for params in (dict(mode="forward", state="absent"), dict(FORWARD, routing_lock=False, persist=False, watch=False)):
        host = FakeHost(lock=_both(LOCK_HOST, LOCK_FORWARD))
        result = run(params, host, dirs)
        assert result["routing_lock"] == {}
        batches = {argv[1]: data for argv, data in host.calls if "-batch" in argv}
        assert len(batches["-4"].splitlines()) == 7 and len(batches["-6"].splitlines()) == 2
        assert all(line.startswith("rule del priority 3276") for b in batches.values() for line in b.splitlines())
        assert "32764" not in "".join(batches.values()) and "32765" not in "".join(batches.values())
        assert batches["-4"].splitlines()[-2:] == ["rule del priority 32763 iif br-x prohibit",
                                                   "rule del priority 32763 from 10.244.0.0/16 prohibit"]


def test_host_mode_leaves_the_forward_lock_alone(dirs):
    host = FakeHost(lock=_both(LOCK_HOST, LOCK_FORWARD))
    run(dict(mode="host", state="absent"), host, dirs)
    batches = "".join(data for argv, data in host.calls if "-batch" in argv)
    assert "3276" in batches and "32762" not in batches and "32763" not in batches


def test_check_mode_does_not_touch_the_lock(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs, check_mode=True)
    assert result["changed"] and host.mutations() == []


def test_lock_in_another_order_is_unchanged_and_a_new_exception_is_added_alone(dirs):
    """The exceptions are a set (all lead to the main table): kernel order is not a change."""
    shuffled = {4: list(reversed(LOCK_HOST[4])), 6: LOCK_HOST[6]}
    run(HOST, FakeHost(), dirs)
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=shuffled)
    assert run(HOST, host, dirs)["changed"] is False
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=LOCK_HOST)
    result = run(dict(HOST, allow_lan=["192.168.0.0/16", "10.9.0.0/16", "fd00:1::/64"]), host, dirs)
    assert result["changed"]
    batches = [(argv[1], data) for argv, data in host.calls if "-batch" in argv]
    assert batches == [("-4", "rule add priority 32764 to 10.9.0.0/16 lookup main\n")]


def test_exception_removed_before_anything_is_added(dirs):
    host = FakeHost(v4=fixture("iptables-nft-v4.save"), v6=fixture("iptables-nft-v6.save"), enabled=True, lock=LOCK_HOST)
    run(dict(HOST, allow_lan=["10.9.0.0/16", "fd00:1::/64"]), host, dirs)
    batches = [(argv[1], data) for argv, data in host.calls if "-batch" in argv]
    assert batches == [("-4", "rule del priority 32764 to 192.168.0.0/16 lookup main\n"
                              "rule add priority 32764 to 10.9.0.0/16 lookup main\n")]


# --------------------------------------------------------------------------- allow_dhcp (issue 8.5)


def test_allow_dhcp_auto_allows_the_detected_interface_only(dirs):
    """Failed before the fix: allow_dhcp defaulted to false, a renewal from a DHCP uplink was rejected."""
    os.makedirs(os.path.join(dirs[2], "run/systemd/netif/leases"))
    with open(os.path.join(dirs[2], "run/systemd/netif/leases/2"), "w", encoding="utf-8") as handle:
        handle.write("ADDRESS=10.0.0.5\n")
    host = FakeHost()
    host.answers["ip"] = (0, json.dumps([{"ifindex": 1, "ifname": "lo"}, {"ifindex": 2, "ifname": "eth0"}]), "")
    params = {k: v for k, v in HOST.items() if k != "allow_dhcp"}
    result = run(params, host, dirs)
    assert result["dhcp_interfaces"] == {"eth0": ["systemd-networkd lease"]}
    v4 = "\n".join(result["rules"]["ipv4"])
    assert "-A TUNNELGATE-OUT -o eth0 -p udp -m udp --sport 68 --dport 67 -j RETURN" in v4
    assert "--dport 67" not in v4.replace("-o eth0 -p udp -m udp --sport 68 --dport 67", "")
    assert "priority 32764 ipproto udp dport 67 lookup main" in result["routing_lock"]["ipv4"]


def test_allow_dhcp_auto_without_dhcp_adds_nothing(dirs):
    params = {k: v for k, v in HOST.items() if k != "allow_dhcp"}
    result = run(params, FakeHost(), dirs)
    assert result["dhcp_interfaces"] == {}
    assert "--dport 67" not in "\n".join(result["rules"]["ipv4"])
    assert not [r for r in result["routing_lock"]["ipv4"] if "dport" in r]


def test_allow_dhcp_true_any_interface(dirs):
    result = run(HOST, FakeHost(), dirs)
    assert result["dhcp_interfaces"] == {"*": ["allow_dhcp: true"]}
    assert "-A TUNNELGATE-OUT -p udp -m udp --sport 68 --dport 67 -j RETURN" in result["rules"]["ipv4"]


# --------------------------------------------------------------------------- watcher (issue 8.4, flushes)


def test_watcher_installed_with_checks_and_started(dirs):
    host = FakeHost()
    result = run(HOST, host, dirs)
    assert result["watcher"] == "tunnelgate-killswitch-host-watch.service"
    with open(os.path.join(dirs[0], "host.watch"), encoding="utf-8") as handle:
        script = handle.read()
    for check in ("/usr/sbin/iptables -w -C OUTPUT -j TUNNELGATE-OUT || return 1",
                  "/usr/sbin/ip6tables -w -C OUTPUT -j TUNNELGATE-OUT || return 1",
                  "/usr/sbin/iptables -w -C TUNNELGATE-OUT -j REJECT --reject-with icmp-admin-prohibited || return 1",
                  "/usr/sbin/iptables -w -C TUNNELGATE-OUT-DNS -j REJECT --reject-with icmp-admin-prohibited || return 1",
                  '/usr/sbin/ip -4 rule show priority 32765 | grep -q "from all prohibit" || return 1',
                  "systemctl restart tunnelgate-killswitch-host.service || sleep 10"):
        assert "    " + check in script.splitlines() or "        " + check in script.splitlines(), check
    with open(os.path.join(dirs[1], "tunnelgate-killswitch-host-watch.service"), encoding="utf-8") as handle:
        unit = handle.read()
    assert "ExecStart=/bin/sh %s\n" % os.path.join(dirs[0], "host.watch") in unit
    calls = [argv[1:] for argv, _data in host.calls if argv[0].endswith("systemctl")]
    assert ["enable", "tunnelgate-killswitch-host-watch.service"] in calls
    assert calls[-1] == ["restart", "tunnelgate-killswitch-host-watch.service"]


def test_watcher_stopped_during_a_change(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(enabled=True, lock=LOCK_HOST)  # live rules flushed, watcher running
    run(dict(HOST, backend="nftables"), host, dirs)
    steps = [" ".join([os.path.basename(argv[0])] + argv[1:]) for argv in host.mutations()
             + [a for a, _d in host.calls if a[1:2] in (["stop"], ["restart"])]]
    order = [" ".join([os.path.basename(a[0])] + a[1:]) for a, _d in host.calls]
    stop = order.index("systemctl stop tunnelgate-killswitch-host-watch.service")
    restart = order.index("systemctl restart tunnelgate-killswitch-host-watch.service")
    changes = [order.index(step) for step in steps if "watch" not in step]
    assert changes and stop < min(changes) and restart > max(changes)


def test_nft_watcher_counts_rules(dirs):
    run(dict(HOST, backend="nftables"), FakeHost(), dirs)
    with open(os.path.join(dirs[0], "host.watch"), encoding="utf-8") as handle:
        script = handle.read()
    assert '    [ "$(/usr/sbin/nft -a list chain inet tunnelgate host_output | grep -c "# handle")" -ge 18 ] || return 1' in script


def test_watch_false_or_absent_removes_the_watcher(dirs):
    run(HOST, FakeHost(), dirs)
    host = FakeHost(enabled=True, lock=LOCK_HOST)
    result = run(dict(HOST, watch=False), host, dirs)
    assert result["watcher"] is None
    assert ["/usr/sbin/systemctl", "disable", "--now", "tunnelgate-killswitch-host-watch.service"] in [a for a, _d in host.calls]
    assert not os.path.exists(os.path.join(dirs[1], "tunnelgate-killswitch-host-watch.service"))
    assert not os.path.exists(os.path.join(dirs[0], "host.watch"))


def test_watcher_check_mode_exits_with_the_verdict_instead_of_looping(tmp_path):
    """``sh MODE.watch --check`` (asked by the metrics program) looks once and exits 0 (intact) or 1."""
    from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_watch import render_script
    import subprocess
    for checks, expected in ((["true", "true"], 0), (["true", "false"], 1)):
        script = tmp_path / "host.watch"
        script.write_text(render_script("host", "tunnelgate-killswitch-host.service", checks))
        done = subprocess.run(["sh", str(script), "--check"], timeout=5, check=False)
        assert done.returncode == expected

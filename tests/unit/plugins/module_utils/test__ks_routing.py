# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routing lock: desired policy rules, parsing of ``ip -j rule show``, plan/apply order, boot lines."""

from __future__ import annotations

import json

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _ks_routing as routing
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchSpec

# iproute2 6.1 output (Debian 12): the tunnel's rules, wg-quick-style rules that came before ours
# and foreign rules at our priorities with other selectors
LIVE_V4 = json.dumps([
    {"priority": 0, "src": "all", "table": "local"},
    {"priority": 10000, "src": "all", "table": "main", "suppress_prefixlen": 0},
    {"priority": 10001, "not": None, "src": "all", "fwmark": "0xca6c", "table": "51820"},
    {"priority": 32764, "not": None, "src": "all", "fwmark": "0xca6c", "table": "51820"},  # wg-quick's, not ours
    {"priority": 32764, "src": "all", "table": "main", "suppress_prefixlen": 0},
    {"priority": 32764, "src": "all", "fwmark": "0xca6c", "table": "main"},
    {"priority": 32764, "src": "all", "dst": "10.9.0.0", "dstlen": 16, "table": "main"},
    {"priority": 32764, "src": "all", "dst": "192.0.2.1", "table": "main"},
    {"priority": 32764, "src": "all", "ipproto": "udp", "dport": 67, "table": "main"},
    {"priority": 32764, "src": "10.1.0.0", "srclen": 16, "table": "main"},  # not ours: a source selector
    {"priority": 32765, "src": "all", "iif": "eth1", "action": "prohibit"},  # not ours: an iif selector
    {"priority": 32765, "src": "all", "action": "prohibit"},
    {"priority": 32766, "src": "all", "table": "main"},
    {"priority": 32767, "src": "all", "table": "default"},
])


def spec(**extra):
    params = dict(mode="host", interfaces=["wg0"], fwmark="0xca6c")
    params.update(extra)
    return KillswitchSpec(params)


def test_desired_per_family():
    rules = routing.lock_rules(spec(endpoints=["192.0.2.1:51820", "[2001:db8::1]:51820"],
                                    allow_lan=["10.9.0.0/16", "fd00::/64"]), dhcp=True)
    assert [routing.render(r) for r in rules[4]] == [
        "priority 32764 lookup main suppress_prefixlength 0",
        "priority 32764 fwmark 0xca6c lookup main",
        "priority 32764 to 192.0.2.1/32 lookup main",
        "priority 32764 to 10.9.0.0/16 lookup main",
        "priority 32764 ipproto udp dport 67 lookup main",
        "priority 32765 prohibit",
    ]
    assert [routing.render(r) for r in rules[6]][2:5] == [
        "priority 32764 to 2001:db8::1/128 lookup main",
        "priority 32764 to fd00::/64 lookup main",
        "priority 32764 ipproto udp dport 547 lookup main",
    ]


def test_no_fwmark_no_dhcp_minimal():
    rules = routing.lock_rules(spec(fwmark=None, endpoints=["192.0.2.1:51820"]))
    assert [routing.render(r) for r in rules[6]] == [
        "priority 32764 lookup main suppress_prefixlength 0", "priority 32765 prohibit"]


def test_parse_keeps_only_our_shapes():
    ours = routing.parse_rules(LIVE_V4, 4)
    assert [routing.render(r) for r in ours] == [
        "priority 32764 lookup main suppress_prefixlength 0",
        "priority 32764 fwmark 0xca6c lookup main",
        "priority 32764 to 10.9.0.0/16 lookup main",
        "priority 32764 to 192.0.2.1/32 lookup main",
        "priority 32764 ipproto udp dport 67 lookup main",
        "priority 32765 prohibit",
    ]


@pytest.mark.parametrize("entry", [
    {"priority": 32764, "src": "all", "table": "51820"},
    {"priority": 32765, "not": None, "src": "all", "action": "prohibit"},
    {"priority": 32764, "src": "all", "table": "main", "suppress_prefixlen": 0, "oif": "eth0"},
    {"priority": 32764, "src": "all", "ipproto": "tcp", "dport": 67, "table": "main"},
    {"priority": 32765, "src": "all", "action": "blackhole"},
    {"priority": 32764, "src": "all", "action": "prohibit"},  # a prohibit at the exceptions' priority
    {"priority": 32765, "src": "all", "table": "main", "suppress_prefixlen": 0},  # an exception at the wrong one
    {"priority": 100, "src": "all", "table": "main", "suppress_prefixlen": 0},
])
def test_foreign_rules_are_not_ours(entry):
    assert routing.parse_rules(json.dumps([entry]), 4) == []


class Runner:
    def __init__(self, v4="[]", v6="[]", v6_rc=0):
        self.out = {"-4": (0, v4, ""), "-6": (v6_rc, v6, "RTNETLINK answers: Address family not supported" if v6_rc else "")}
        self.calls = []

    def bin_path(self, name, required=True):
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        self.calls.append((argv, data))
        if argv[1] == "-j":
            return self.out[argv[2]]
        return 0, "", ""


def test_same_set_in_another_order_is_unchanged():
    desired = routing.lock_rules(spec(endpoints=["192.0.2.1:51820"], allow_lan=["10.9.0.0/16"]), dhcp=True)
    lock = routing.RoutingLock(Runner(v4=LIVE_V4)).plan({4: desired[4], 6: []})
    assert lock.batch(4) is None and lock.batch(6) is None
    assert not lock.changed
    assert lock.diff_lines("before") == lock.diff_lines("after")


def test_change_deletes_first_then_adds_and_keeps_the_prohibit():
    desired = routing.lock_rules(spec(allow_lan=["10.10.0.0/16"]))
    runner = Runner(v4=LIVE_V4)
    lock = routing.RoutingLock(runner).plan(desired)
    assert lock.changed
    lock.apply()
    batches = [(argv, data) for argv, data in runner.calls if "-batch" in argv]
    assert [argv for argv, _data in batches] == [["/usr/sbin/ip", "-4", "-batch", "-"], ["/usr/sbin/ip", "-6", "-batch", "-"]]
    assert batches[0][1].splitlines() == [
        "rule del priority 32764 to 10.9.0.0/16 lookup main",
        "rule del priority 32764 to 192.0.2.1/32 lookup main",
        "rule del priority 32764 ipproto udp dport 67 lookup main",
        "rule add priority 32764 to 10.10.0.0/16 lookup main",
    ]
    assert batches[1][1].splitlines() == [  # a fresh family: the prohibit before any exception
        "rule add priority 32765 prohibit",
        "rule add priority 32764 lookup main suppress_prefixlength 0",
        "rule add priority 32764 fwmark 0xca6c lookup main",
    ]


def test_removal_takes_the_prohibit_last_and_skips_a_missing_family():
    runner = Runner(v4=LIVE_V4, v6_rc=1)
    lock = routing.RoutingLock(runner).plan(None)
    assert lock.families == [4]
    assert lock.changed and lock.result() == {}
    lock.apply()
    lines = [d for argv, d in runner.calls if "-batch" in argv][0].splitlines()
    assert len(lines) == 6 and all(line.startswith("rule del") for line in lines)
    assert lines[-1] == "rule del priority 32765 prohibit"


def test_boot_commands_need_only_ip():
    lock = routing.RoutingLock(Runner()).plan(routing.lock_rules(spec()))
    v4, v6 = lock.boot_commands()
    assert v4 == ("/bin/sh -c '/usr/sbin/ip -4 rule add priority 32764 lookup main suppress_prefixlength 0 2>/dev/null; "
                  "/usr/sbin/ip -4 rule add priority 32764 fwmark 0xca6c lookup main 2>/dev/null; "
                  "/usr/sbin/ip -4 rule add priority 32765 prohibit 2>/dev/null || "
                  "/usr/sbin/ip -4 rule show priority 32765 | grep -q \"from all prohibit\"'")
    assert v6.startswith("/bin/sh -c '[ -e /proc/net/if_inet6 ] || exit 0; /usr/sbin/ip -6 rule add")
    assert "%" not in v4 + v6 and "\\" not in v4 + v6  # nothing systemd would expand


def test_bypass_fwmark_exception_round_trips():
    rules = routing.lock_rules(spec(bypass_fwmark={"mark": "0x1000", "mask": "0x1000"}))
    assert "priority 32764 fwmark 0x1000/0x1000 lookup main" in [routing.render(r) for r in rules[4]]
    live = json.dumps([{"priority": 32764, "src": "all", "fwmark": "0x1000", "fwmask": "0x1000", "table": "main"},
                       {"priority": 32764, "src": "all", "fwmark": "0xca6c", "fwmask": "0xffffffff", "table": "main"}])
    assert [routing.render(r) for r in routing.parse_rules(live, 4)] == [
        "priority 32764 fwmark 0x1000/0x1000 lookup main", "priority 32764 fwmark 0xca6c lookup main"]


# --------------------------------------------------------------------------- forward mode (sources)


def fwd_spec(**extra):
    params = dict(mode="forward", interfaces=["wg0"], sources=["10.244.0.0/16", "fd42:7467:7:1::/64", "br-x"],
                  exclude=["10.244.0.0/16", "10.96.0.0/12", "fd42:7467:7::/48"])
    params.update(extra)
    return KillswitchSpec(params)


def fwd_render(rules):
    return [routing.render(r, routing.FORWARD) for r in rules]


def test_forward_desired_per_source_and_family():
    rules = routing.forward_lock_rules(fwd_spec(bypass_fwmark={"mark": "0x1000"}))
    assert fwd_render(rules[4]) == [
        "priority 32762 from 10.244.0.0/16 to 10.244.0.0/16 lookup main",
        "priority 32762 from 10.244.0.0/16 to 10.96.0.0/12 lookup main",
        "priority 32762 from 10.244.0.0/16 fwmark 0x1000/0x1000 lookup main",
        "priority 32762 from 10.244.0.0/16 iif lo lookup main",  # the host's own sockets: host mode's business
        "priority 32763 from 10.244.0.0/16 prohibit",
        "priority 32762 iif br-x to 10.244.0.0/16 lookup main",
        "priority 32762 iif br-x to 10.96.0.0/12 lookup main",
        "priority 32762 iif br-x fwmark 0x1000/0x1000 lookup main",
        "priority 32763 iif br-x prohibit",
    ]
    assert fwd_render(rules[6]) == [
        "priority 32762 from fd42:7467:7:1::/64 to fd42:7467:7::/48 lookup main",
        "priority 32762 from fd42:7467:7:1::/64 fwmark 0x1000/0x1000 lookup main",
        "priority 32762 from fd42:7467:7:1::/64 iif lo lookup main",
        "priority 32763 from fd42:7467:7:1::/64 prohibit",
        "priority 32762 iif br-x to fd42:7467:7::/48 lookup main",
        "priority 32762 iif br-x fwmark 0x1000/0x1000 lookup main",
        "priority 32763 iif br-x prohibit",
    ]


def test_forward_priorities_sit_between_the_interface_rules_and_host_mode():
    assert 32002 < routing.FORWARD.exception_priority < routing.FORWARD.lock_priority < routing.HOST.exception_priority
    assert routing.HOST.lock_priority < 32766


def test_forward_pattern_sources_are_left_out_with_a_warning():
    spec = fwd_spec(sources=["cali+", "10.244.0.0/16"], exclude=[])
    assert fwd_render(routing.forward_lock_rules(spec)[4]) == [
        "priority 32762 from 10.244.0.0/16 iif lo lookup main", "priority 32763 from 10.244.0.0/16 prohibit"]
    assert routing.pattern_sources(spec) == ["cali+"]
    assert any(w.startswith("sources: cali+ is an interface pattern") for w in spec.warnings)
    assert not any("pattern" in w for w in fwd_spec(sources=["cali+"], routing_lock=False).warnings)


def test_full_mask_bypass_round_trips():
    """``ip`` does not print a full mask: the desired rule must not hold one either (else never idempotent)."""
    rules = routing.lock_rules(spec(bypass_fwmark={"mark": 1, "mask": 0xFFFFFFFF}))
    live = json.dumps([{"priority": 32764, "src": "all", "fwmark": "0x1", "table": "main"}])
    assert routing.parse_rules(live, 4) == [r for r in rules[4] if "fwmark" in r and r["fwmark"] == 1]


# iproute2 6.1 (Debian 12) as it prints the forward lock, a detached bridge, and rules not ours
LIVE_FWD_V4 = json.dumps([
    {"priority": 0, "src": "all", "table": "local"},
    {"priority": 10002, "src": "10.244.0.0", "srclen": 16, "table": "51820"},  # the interface module's
    {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "dst": "10.96.0.0", "dstlen": 12, "table": "main"},
    {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "iif": "lo", "table": "main"},
    {"priority": 32762, "src": "all", "fwmark": "0x1000", "fwmask": "0x1000", "iif": "br-x", "iif_detached": None,
     "table": "main"},
    {"priority": 32763, "src": "all", "iif": "br-x", "iif_detached": None, "action": "prohibit"},
    {"priority": 32763, "src": "10.244.0.0", "srclen": 16, "action": "prohibit"},
    {"priority": 32764, "src": "all", "table": "main", "suppress_prefixlen": 0},  # host mode's
    {"priority": 32765, "src": "all", "action": "prohibit"},  # host mode's
    {"priority": 32766, "src": "all", "table": "main"},
])


def test_forward_parse_keeps_only_its_own_shapes_and_priorities():
    assert fwd_render(routing.parse_rules(LIVE_FWD_V4, 4, routing.FORWARD)) == [
        "priority 32762 from 10.244.0.0/16 to 10.96.0.0/12 lookup main",
        "priority 32762 from 10.244.0.0/16 iif lo lookup main",
        "priority 32762 iif br-x fwmark 0x1000/0x1000 lookup main",
        "priority 32763 iif br-x prohibit",
        "priority 32763 from 10.244.0.0/16 prohibit",
    ]
    # and host mode does not see the forward lock
    assert [routing.render(r) for r in routing.parse_rules(LIVE_FWD_V4, 4)] == [
        "priority 32764 lookup main suppress_prefixlength 0", "priority 32765 prohibit"]


@pytest.mark.parametrize("entry", [
    {"priority": 32763, "src": "all", "action": "prohibit"},  # no source: not of a shape forward mode makes
    {"priority": 32762, "src": "all", "table": "main"},
    {"priority": 32762, "src": "all", "iif": "lo", "table": "main"},
    {"priority": 32763, "src": "10.1.0.0", "srclen": 16, "iif": "lo", "action": "prohibit"},
    {"priority": 32763, "src": "10.1.0.0", "srclen": 16, "iif": "eth0", "action": "prohibit"},
    {"priority": 32762, "src": "10.1.0.0", "srclen": 16, "iif": "lo", "dst": "10.2.0.0", "dstlen": 16, "table": "main"},
    {"priority": 32762, "src": "10.1.0.0", "srclen": 16, "table": "51820"},
    {"priority": 32762, "src": "10.1.0.0", "srclen": 16, "table": "main", "suppress_prefixlen": 0},
    {"priority": 32762, "src": "10.1.0.0", "srclen": 16, "ipproto": "udp", "dport": 67, "table": "main"},
    {"priority": 32762, "not": None, "src": "10.1.0.0", "srclen": 16, "table": "main"},
    {"priority": 32762, "src": "10.1.0.0", "srclen": 16, "oif": "eth0", "table": "main"},
    {"priority": 32763, "src": "10.1.0.0", "srclen": 16, "action": "blackhole"},
    {"priority": 32761, "src": "10.1.0.0", "srclen": 16, "action": "prohibit"},
])
def test_forward_foreign_rules_are_not_ours(entry):
    assert routing.parse_rules(json.dumps([entry]), 4, routing.FORWARD) == []


def test_forward_plan_is_idempotent_against_the_kernel_listing():
    spec = fwd_spec(sources=["10.244.0.0/16", "br-x"], exclude=["10.96.0.0/12"], bypass_fwmark={"mark": "0x1000"})
    desired = routing.forward_lock_rules(spec)
    live = json.dumps([
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "dst": "10.96.0.0", "dstlen": 12, "table": "main"},
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "fwmark": "0x1000", "fwmask": "0x1000", "table": "main"},
        {"priority": 32762, "src": "10.244.0.0", "srclen": 16, "iif": "lo", "table": "main"},
        {"priority": 32763, "src": "10.244.0.0", "srclen": 16, "action": "prohibit"},
        {"priority": 32762, "src": "all", "iif": "br-x", "iif_detached": None, "dst": "10.96.0.0", "dstlen": 12,
         "table": "main"},
        {"priority": 32762, "src": "all", "fwmark": "0x1000", "fwmask": "0x1000", "iif": "br-x", "table": "main"},
        {"priority": 32763, "src": "all", "iif": "br-x", "action": "prohibit"},
    ])
    lock = routing.RoutingLock(Runner(v4=live), routing.FORWARD).plan({4: desired[4], 6: []})
    assert not lock.changed and lock.batch(4) is None


def test_forward_source_replaced_never_opens():
    """New prohibits before anything goes; exceptions that go before their prohibit; new exceptions last."""
    old = routing.forward_lock_rules(fwd_spec(sources=["10.244.0.0/16"], exclude=["10.96.0.0/12"]))
    new = routing.forward_lock_rules(fwd_spec(sources=["10.245.0.0/16"], exclude=["10.96.0.0/12"]))
    live = json.dumps([dict(parsed_entry(r), priority=32763 if routing.is_prohibit(r) else 32762) for r in old[4]])
    lock = routing.RoutingLock(Runner(v4=live), routing.FORWARD).plan({4: new[4], 6: []})
    assert lock.batch(4).splitlines() == [
        "rule del priority 32762 from 10.244.0.0/16 to 10.96.0.0/12 lookup main",
        "rule del priority 32762 from 10.244.0.0/16 iif lo lookup main",
        "rule add priority 32763 from 10.245.0.0/16 prohibit",
        "rule del priority 32763 from 10.244.0.0/16 prohibit",
        "rule add priority 32762 from 10.245.0.0/16 to 10.96.0.0/12 lookup main",
        "rule add priority 32762 from 10.245.0.0/16 iif lo lookup main",
    ]


def parsed_entry(rule):
    """A rule dict as ``ip -j rule show`` prints it (IPv4)."""
    entry = {"src": "all"}
    if "src" in rule:
        address, length = rule["src"].split("/")
        entry.update(src=address, srclen=int(length))
    for key in ("iif", "table", "action"):
        if key in rule:
            entry[key] = rule[key]
    if "dst" in rule:
        address, length = rule["dst"].split("/")
        entry.update(dst=address, dstlen=int(length))
    return entry


def test_forward_boot_commands_add_every_prohibit_and_check_each():
    spec = fwd_spec(sources=["10.244.0.0/16", "br-x"], exclude=[])
    lock = routing.RoutingLock(Runner(), routing.FORWARD).plan(routing.forward_lock_rules(spec))
    v4, v6 = lock.boot_commands()
    assert v4 == ("/bin/sh -c '/usr/sbin/ip -4 rule add priority 32762 from 10.244.0.0/16 iif lo lookup main 2>/dev/null; "
                  "/usr/sbin/ip -4 rule add priority 32763 from 10.244.0.0/16 prohibit 2>/dev/null; "
                  "/usr/sbin/ip -4 rule add priority 32763 iif br-x prohibit 2>/dev/null; "
                  "/usr/sbin/ip -4 rule show priority 32763 from 10.244.0.0/16 | grep -q prohibit && "
                  "/usr/sbin/ip -4 rule show priority 32763 iif br-x | grep -q prohibit'")
    assert v6 == ("/bin/sh -c '[ -e /proc/net/if_inet6 ] || exit 0; "
                  "/usr/sbin/ip -6 rule add priority 32763 iif br-x prohibit 2>/dev/null; "
                  "/usr/sbin/ip -6 rule show priority 32763 iif br-x | grep -q prohibit'")
    assert "%" not in v4 + v6 and "\\" not in v4 + v6 and "$" not in v4 + v6
    assert lock.watch_checks() == ["/usr/sbin/ip -4 rule show priority 32763 from 10.244.0.0/16 | grep -q prohibit",
                                   "/usr/sbin/ip -4 rule show priority 32763 iif br-x | grep -q prohibit",
                                   "/usr/sbin/ip -6 rule show priority 32763 iif br-x | grep -q prohibit"]


def test_forward_without_ipv6_in_the_kernel_adds_no_v6_rules():
    spec = fwd_spec(sources=["10.244.0.0/16", "fd42:7467:7:1::/64", "br-x"], exclude=[])
    runner = Runner(v6_rc=1)
    lock = routing.RoutingLock(runner, routing.FORWARD).plan(routing.forward_lock_rules(spec))
    assert lock.families == [4] and set(lock.result()) == {"ipv4"}
    lock.apply()
    assert [argv[1] for argv, _data in runner.calls if "-batch" in argv] == ["-4"]
    assert len(lock.boot_commands()) == 1

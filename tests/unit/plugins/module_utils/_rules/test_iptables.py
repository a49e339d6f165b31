# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine, iptables backend (with the kill switch's rule set): rendering, parsing real iptables-save/-S output, and the plan's decisions.

The fixtures are the real output of iptables-nft and iptables-legacy 1.8.9 after the module
applied HOST and FORWARD below in a scratch network namespace (plus a Docker-like DOCKER-USER).
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchSpec, build_chains, choose_hook
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules import iptables as ipt
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import for_family

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "killswitch")
HOST = dict(
    mode="host", interfaces=["wg0"], fwmark="0xca6c", endpoints=["192.0.2.1:51820", "[2001:db8::1]:51820"],
    dns_servers=["10.66.4.1", "fd66:4::1"], allow_lan=["192.168.0.0/16", "fd00:1::/64"], allow_dhcp=True, ipv6="tunnel",
)
FORWARD = dict(
    mode="forward", interfaces=["wg0"], sources=["br-x", "172.20.0.0/16", "fd42:20::/64"],
    exclude=["172.20.0.0/16", "fd42:20::/64", "10.96.0.0/12"], dns_servers=["10.66.4.1"], ipv6="block", reject=False,
    forward_chain="DOCKER-USER",
)
PARAMS = {"host": HOST, "forward": FORWARD}
HOOK = {"host": "OUTPUT", "forward": "DOCKER-USER"}


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def desired(mode, family):
    chains = build_chains(KillswitchSpec(PARAMS[mode]), "iptables")
    return [(name, for_family(rules, family)) for name, rules in chains]


def by_chain(lines, mode):
    """Our -A lines grouped per chain, in order (iptables-save sorts chains by name)."""
    prefix = "TUNNELGATE-OUT" if mode == "host" else "TUNNELGATE-FWD"
    chains = {}
    for line in lines:
        if line.startswith("-A " + prefix):
            chains.setdefault(line.split()[1], []).append(line)
    return chains


# --- rendering: every mode x family renders exactly what iptables-save prints ------------------


@pytest.mark.parametrize("variant", ["nft", "legacy"])
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("mode", ["host", "forward"])
def test_rendering_matches_iptables_save(mode, family, variant):
    rendered = ipt.render_chain_file(desired(mode, family), family).splitlines()
    live = fixture("iptables-%s-v%d.save" % (variant, family))
    assert by_chain(rendered, mode) == by_chain(live.splitlines(), mode)
    assert len(by_chain(rendered, mode)) == (2 if mode == "host" else 3)


def test_chain_file_only_declares_our_chains():
    text = ipt.render_chain_file(desired("forward", 4), 4)
    assert [line for line in text.splitlines() if line.startswith(":")] == [
        ":TUNNELGATE-FWD - [0:0]", ":TUNNELGATE-FWD-EGRESS - [0:0]", ":TUNNELGATE-FWD-DNS - [0:0]"]
    assert text.startswith("*filter\n") and text.endswith("COMMIT\n")
    assert "DOCKER-USER" not in text
    assert not [line for line in text.splitlines() if line.startswith(("-F", "-X", "-D", "-I"))]


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iptables-nft-v4.save", "iptables-legacy-v4.save", "iptables-nft-v4.S", "iptables-legacy-v4.S"])
def test_parse_save_and_S_formats(name):
    live = ipt.parse_save(fixture(name))
    assert live["chains"]["OUTPUT"] == "ACCEPT"
    assert live["chains"]["TUNNELGATE-OUT"] == "-"
    assert live["rules"]["OUTPUT"] == [["-j", "TUNNELGATE-OUT"]]
    assert live["rules"]["DOCKER-USER"][0] == ["-j", "TUNNELGATE-FWD"]
    assert live["rules"]["DOCKER-USER"][1] == ["-i", "tg-+", "-o", "tg-+", "-j", "ACCEPT"]


def test_parse_save_ignores_other_tables():
    text = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    assert ipt.parse_save(text) == {"chains": {"OUTPUT": "ACCEPT"}, "rules": {"OUTPUT": []}}


PARSE_CASES = [
    ("-o lo -j RETURN", {"oif": "lo", "verdict": "return"}),
    ("-d 192.0.2.1/32 -p udp -m udp --dport 51820 -j RETURN", {"daddr": "192.0.2.1/32", "proto": "udp", "dport": 51820, "verdict": "return"}),
    ("-d 192.0.2.1 -p 17 --dport 51820 -j RETURN", {"daddr": "192.0.2.1/32", "proto": "udp", "dport": 51820, "verdict": "return"}),
    ("-p udp -m mark --mark 0xca6c/0xffffffff -j RETURN", {"proto": "udp", "mark": 0xCA6C, "verdict": "return"}),
    ("-m conntrack --ctstate ESTABLISHED,RELATED --ctdir REPLY -j RETURN", {"ctstate": "established,related", "ctdir": "reply", "verdict": "return"}),
    ("-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j RETURN",
     {"proto": "icmpv6", "icmpv6type": 135, "hoplimit": 255, "verdict": "return"}),
    ("-m comment --comment \"tunnelgate kill switch\" -o wg0 -j RETURN", {"oif": "wg0", "verdict": "return"}),
    ("-i br-x -g TUNNELGATE-FWD-EGRESS", {"iif": "br-x", "verdict": "goto TUNNELGATE-FWD-EGRESS"}),
    ("-j REJECT --reject-with icmp-admin-prohibited", {"verdict": "reject"}),
    ("-j REJECT --reject-with icmp-port-unreachable", {"verdict": "reject icmp-port-unreachable"}),
]


@pytest.mark.parametrize("line,expected", PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_rule(line, expected):
    assert ipt.parse_rule(line.split() if '"' not in line else __import__("shlex").split(line), 4) == expected


@pytest.mark.parametrize("line", ["! -o wg0 -j RETURN", "-m owner --uid-owner 0 -j RETURN", "-o wg0", "-p udp --dport x -j RETURN"])
def test_parse_rule_unknown_never_equals_ours(line):
    rule = ipt.parse_rule(line.split(), 4)
    assert "unknown" in rule


def test_render_roundtrip_through_parser():
    for mode in ("host", "forward"):
        for family in (4, 6):
            for _name, rules in desired(mode, family):
                for rule in rules:
                    assert ipt.parse_rule(ipt.render_rule(rule, family), family) == rule


# --- the plan -----------------------------------------------------------------------------------

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def plan(mode, family, text, state="present", hook=None):
    live = ipt.parse_save(text)
    names = [n for n, _rules in desired(mode, family)]
    if state == "absent":
        return ipt.TablePlan(lambda name: name in names, None, None, live, family)
    return ipt.TablePlan(lambda name: name in names, desired(mode, family), [(hook or HOOK[mode], names[0])], live, family)


@pytest.mark.parametrize("variant", ["nft", "legacy"])
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("mode", ["host", "forward"])
def test_live_equal_to_desired_is_unchanged(mode, family, variant):
    p = plan(mode, family, fixture("iptables-%s-v%d.save" % (variant, family)))
    assert p.changed is False
    assert p.restore_text is None
    assert p.before == p.after


def test_fresh_host_creates_chains_and_one_jump():
    p = plan("host", 4, EMPTY)
    assert p.changed
    lines = p.restore_text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert ":TUNNELGATE-OUT - [0:0]" in lines and ":TUNNELGATE-OUT-DNS - [0:0]" in lines
    assert lines[-2] == "-I OUTPUT 1 -j TUNNELGATE-OUT"
    assert not [line for line in lines if line.startswith("-D")]
    # never touches a chain that is not ours, except to insert our jump
    touched = {line.split()[0].lstrip(":") if line.startswith(":") else line.split()[1]
               for line in lines if line.startswith((":", "-A", "-D", "-I", "-F", "-X"))}
    assert touched == {"TUNNELGATE-OUT", "TUNNELGATE-OUT-DNS", "OUTPUT"}
    assert [line for line in lines if "OUTPUT " in line] == ["-I OUTPUT 1 -j TUNNELGATE-OUT"]


def test_flushed_chain_is_restored():
    live = fixture("iptables-nft-v4.save").replace("-A TUNNELGATE-OUT ", "#")
    p = plan("host", 4, live)
    assert p.changed
    assert "-A TUNNELGATE-OUT -o lo -j RETURN" in p.restore_text
    # the jump is in place: it is re-inserted after removing the existing one, in the same transaction
    assert "-D OUTPUT -j TUNNELGATE-OUT\n-I OUTPUT 1 -j TUNNELGATE-OUT" in p.restore_text


def test_one_rule_changed_is_detected():
    live = fixture("iptables-nft-v4.save").replace("-A TUNNELGATE-OUT -o wg0 -j RETURN", "-A TUNNELGATE-OUT -o wg1 -j RETURN")
    assert plan("host", 4, live).changed


def test_jump_pushed_down_by_docker_is_moved_back_to_top():
    live = fixture("iptables-nft-v4.save").replace(
        "-A DOCKER-USER -j TUNNELGATE-FWD\n-A DOCKER-USER -i tg-+", "-A DOCKER-USER -i tg-+")
    live = live.replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j TUNNELGATE-FWD\n-A DOCKER-USER -j RETURN")
    p = plan("forward", 4, live)
    assert p.changed
    assert "-D DOCKER-USER -j TUNNELGATE-FWD" in p.restore_text
    assert p.restore_text.rstrip().splitlines()[-2] == "-I DOCKER-USER 1 -j TUNNELGATE-FWD"
    assert ":DOCKER-USER" not in p.restore_text, "declaring DOCKER-USER would flush Docker's chain"


def test_duplicate_and_stale_jumps_are_removed():
    live = fixture("iptables-nft-v4.save").replace(
        "-A OUTPUT -j TUNNELGATE-OUT", "-A OUTPUT -j TUNNELGATE-OUT\n-A OUTPUT -j TUNNELGATE-OUT")
    live = live.replace("-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-USER\n-A FORWARD -j TUNNELGATE-FWD")
    assert plan("host", 4, live).restore_text.count("-D OUTPUT -j TUNNELGATE-OUT") == 2
    p = plan("forward", 4, live)
    assert "-D FORWARD -j TUNNELGATE-FWD" in p.restore_text
    assert "-D DOCKER-USER -j TUNNELGATE-FWD" in p.restore_text


def test_docker_user_created_only_when_missing():
    p = plan("forward", 4, EMPTY)
    assert ":DOCKER-USER - [0:0]" in p.restore_text
    assert p.restore_text.index(":DOCKER-USER") < p.restore_text.index("-I DOCKER-USER 1 -j TUNNELGATE-FWD")
    p = plan("forward", 4, EMPTY, hook="FORWARD")
    assert ":FORWARD" not in p.restore_text and "-I FORWARD 1 -j TUNNELGATE-FWD" in p.restore_text


def test_absent_removes_only_ours():
    p = plan("host", 6, fixture("iptables-legacy-v6.save"), state="absent")
    assert p.changed and p.after == []
    lines = p.restore_text.splitlines()
    assert lines == [
        "*filter",
        ":TUNNELGATE-OUT - [0:0]",
        ":TUNNELGATE-OUT-DNS - [0:0]",
        "-D OUTPUT -j TUNNELGATE-OUT",
        "-X TUNNELGATE-OUT",
        "-X TUNNELGATE-OUT-DNS",
        "COMMIT",
    ]


def test_absent_when_nothing_there_is_unchanged():
    p = plan("forward", 4, EMPTY, state="absent")
    assert p.changed is False and p.restore_text is None


class _Spec:
    def __init__(self, mode, forward_chain="auto"):
        self.mode = mode
        self.forward_chain = forward_chain


@pytest.mark.parametrize("mode,chain,family,live,docker,expected", [
    ("host", "auto", 4, {}, True, "OUTPUT"),
    ("forward", "auto", 4, {"DOCKER-USER": "-"}, False, "DOCKER-USER"),
    ("forward", "auto", 4, {}, True, "DOCKER-USER"),
    ("forward", "auto", 6, {}, True, "FORWARD"),
    ("forward", "auto", 6, {"DOCKER-USER": "-"}, True, "DOCKER-USER"),
    ("forward", "auto", 4, {}, False, "FORWARD"),
    ("forward", "FORWARD", 4, {"DOCKER-USER": "-"}, True, "FORWARD"),
])
def test_choose_hook(mode, chain, family, live, docker, expected):
    assert choose_hook(_Spec(mode, chain), family, live, docker) == expected

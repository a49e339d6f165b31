# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine, nftables backend (with the kill switch's rule set): the nft -f file, parsing real ``nft -j`` output, and the plan's decisions.

fixtures/killswitch/nft.json is the real ``nft -j list table inet tunnelgate`` (nft 1.0.6) after
the module applied HOST and FORWARD below; nft.txt is the same ruleset as nft prints it.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchRules, KillswitchSpec, build_chains
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules import nftables as nft

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "killswitch")
HOST = dict(
    mode="host", interfaces=["wg0"], fwmark="0xca6c", endpoints=["192.0.2.1:51820", "[2001:db8::1]:51820"],
    dns_servers=["10.66.4.1", "fd66:4::1"], allow_lan=["192.168.0.0/16", "fd00:1::/64"], allow_dhcp=True, ipv6="tunnel",
    backend="nftables",
)
FORWARD = dict(
    mode="forward", interfaces=["wg0"], sources=["br-x", "172.20.0.0/16", "fd42:20::/64"],
    exclude=["172.20.0.0/16", "fd42:20::/64", "10.96.0.0/12"], dns_servers=["10.66.4.1"], ipv6="block", reject=False,
    backend="nftables",
)
PARAMS = {"host": HOST, "forward": FORWARD}


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def spec(mode, **overrides):
    params = dict(PARAMS[mode])
    params.update(overrides)
    return KillswitchSpec(params)


class FakeRunner:
    """The one seam: canned answers for nft commands, every call recorded."""

    def __init__(self, listing="", rc=0, err=""):
        self.listing, self.rc, self.err = listing, rc, err
        self.calls = []

    def bin_path(self, name, required=True):
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        self.calls.append((argv, data))
        if argv[1:] == ["-j", "list", "table", "inet", "tunnelgate"]:
            return self.rc, self.listing, self.err
        return 0, "", ""


MISSING = dict(rc=1, err="Error: No such file or directory\nlist table inet tunnelgate\n")


# --- rendering -----------------------------------------------------------------------------------

EXPECTED_HOST = """\
add rule inet tunnelgate host_output oifname "lo" accept
add rule inet tunnelgate host_output ct direction reply ct state established,related accept
add rule inet tunnelgate host_output meta l4proto udp meta mark 0x0000ca6c accept
add rule inet tunnelgate host_output ip daddr 192.0.2.1 udp dport 51820 accept
add rule inet tunnelgate host_output ip6 daddr 2001:db8::1 udp dport 51820 accept
add rule inet tunnelgate host_output meta nfproto ipv4 udp sport 68 udp dport 67 accept
add rule inet tunnelgate host_output meta nfproto ipv6 udp sport 546 udp dport 547 accept
add rule inet tunnelgate host_output icmpv6 type 133 ip6 hoplimit 255 accept
add rule inet tunnelgate host_output icmpv6 type 135 ip6 hoplimit 255 accept
add rule inet tunnelgate host_output icmpv6 type 136 ip6 hoplimit 255 accept
add rule inet tunnelgate host_output udp dport 53 jump host_dns
add rule inet tunnelgate host_output udp dport 853 jump host_dns
add rule inet tunnelgate host_output tcp dport 53 jump host_dns
add rule inet tunnelgate host_output tcp dport 853 jump host_dns
add rule inet tunnelgate host_output ip daddr 192.168.0.0/16 accept
add rule inet tunnelgate host_output ip6 daddr fd00:1::/64 accept
add rule inet tunnelgate host_output oifname "wg0" accept
add rule inet tunnelgate host_output reject with icmpx type admin-prohibited
add rule inet tunnelgate host_dns oifname "wg0" ip daddr 10.66.4.1 return
add rule inet tunnelgate host_dns oifname "wg0" ip6 daddr fd66:4::1 return
add rule inet tunnelgate host_dns reject with icmpx type admin-prohibited
"""

EXPECTED_FORWARD = """\
add rule inet tunnelgate forward iifname "br-x" goto forward_egress
add rule inet tunnelgate forward ip saddr 172.20.0.0/16 goto forward_egress
add rule inet tunnelgate forward ip6 saddr fd42:20::/64 goto forward_egress
add rule inet tunnelgate forward_egress ct direction reply ct state established,related accept
add rule inet tunnelgate forward_egress ip daddr 172.20.0.0/16 accept
add rule inet tunnelgate forward_egress ip6 daddr fd42:20::/64 accept
add rule inet tunnelgate forward_egress ip daddr 10.96.0.0/12 accept
add rule inet tunnelgate forward_egress udp dport 53 jump forward_dns
add rule inet tunnelgate forward_egress udp dport 853 jump forward_dns
add rule inet tunnelgate forward_egress tcp dport 53 jump forward_dns
add rule inet tunnelgate forward_egress tcp dport 853 jump forward_dns
add rule inet tunnelgate forward_egress meta nfproto ipv4 oifname "wg0" accept
add rule inet tunnelgate forward_egress drop
add rule inet tunnelgate forward_dns oifname "wg0" ip daddr 10.66.4.1 return
add rule inet tunnelgate forward_dns drop
"""


@pytest.mark.parametrize("mode,expected", [("host", EXPECTED_HOST), ("forward", EXPECTED_FORWARD)])
def test_render_file(mode, expected):
    text = render(spec(mode))
    lines = text.splitlines()
    assert lines[2] == "add table inet tunnelgate"
    top = "host_output" if mode == "host" else "forward"
    hook = "output" if mode == "host" else "forward"
    assert lines[3] == "add chain inet tunnelgate %s { type filter hook %s priority 0; policy accept; }" % (top, hook)
    flushes = [line for line in lines if line.startswith("flush")]
    assert len(flushes) == (2 if mode == "host" else 3)
    assert "flush ruleset" not in text and "delete" not in text
    assert "".join(line + "\n" for line in lines if line.startswith("add rule")) == expected


def test_ipv6_block_has_no_ipv6_tunnel_rule_and_drop_option():
    text = render(spec("host", ipv6="block", dns_servers=["10.66.4.1"], reject=False))
    assert 'meta nfproto ipv4 oifname "wg0" accept' in text
    assert 'host_output oifname "wg0" accept' not in text
    assert text.rstrip().endswith("host_dns drop")


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["host", "forward"])
def test_parse_real_json_equals_desired(mode):
    live = nft.parse_ruleset(fixture("nft.json"))
    for name, rules in build_chains(spec(mode), "nftables"):
        assert live["rules"][name] == rules, name
    top = "host_output" if mode == "host" else "forward"
    assert live["chains"][top] == KillswitchRules(spec(mode)).chains("nftables")[0].base_spec()


def test_parse_skips_other_tables():
    doc = {"nftables": [
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward", "type": "filter", "prio": 0}},
        {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "expr": [{"accept": None}]}},
    ]}
    assert nft.parse_ruleset(json.dumps(doc)) == {"chains": {}, "rules": {}}


def _m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


PARSE_CASES = [
    ("wildcard", [_m({"meta": {"key": "oifname"}}, "wg*"), {"accept": None}], {"oif": "wg+", "verdict": "accept"}),
    ("counter-ignored", [_m({"meta": {"key": "oifname"}}, "lo"), {"counter": {"packets": 3, "bytes": 9}}, {"accept": None}],
     {"oif": "lo", "verdict": "accept"}),
    ("ct-set-form", [_m({"ct": {"key": "state"}}, {"set": ["related", "established"]}, "in"), _m({"ct": {"key": "direction"}}, "reply"),
                     {"accept": None}], {"ctstate": "established,related", "ctdir": "reply", "verdict": "accept"}),
    ("prefix", [_m({"payload": {"protocol": "ip6", "field": "daddr"}}, {"prefix": {"addr": "fd00::", "len": 8}}), {"accept": None}],
     {"family": 6, "daddr": "fd00::/8", "verdict": "accept"}),
    ("icmpv6-number", [_m({"payload": {"protocol": "icmpv6", "field": "type"}}, 135), {"accept": None}],
     {"family": 6, "proto": "icmpv6", "icmpv6type": 135, "verdict": "accept"}),
    ("reject-other", [{"reject": {"type": "tcp reset"}}], {"verdict": 'reject {"type": "tcp reset"}'}),
    ("reject-plain", [{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}], {"verdict": "reject"}),
]


@pytest.mark.parametrize("exprs,expected", [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES])
def test_parse_rule(exprs, expected):
    assert nft.parse_rule(exprs) == expected


@pytest.mark.parametrize("exprs", [
    [_m({"meta": {"key": "oifname"}}, "wg0", "!="), {"accept": None}],
    [_m({"meta": {"key": "skuid"}}, 0), {"accept": None}],
    [_m({"meta": {"key": "oifname"}}, "wg0")],
    [_m({"payload": {"protocol": "ip", "field": "daddr"}}, "10.0.0.1"), _m({"payload": {"protocol": "ip", "field": "daddr"}}, "10.0.0.2"),
     {"accept": None}],
    [{"log": {"prefix": "x"}}, {"drop": None}],
])
def test_parse_rule_unknown(exprs):
    assert "unknown" in nft.parse_rule(exprs)


# --- the plan ------------------------------------------------------------------------------------


def render(killswitch_spec):
    ruleset = KillswitchRules(killswitch_spec)
    return nft.render_file(ruleset, ruleset.chains("nftables"))


def backend(killswitch_spec, runner):
    return nft.NftablesBackend(runner, KillswitchRules(killswitch_spec), "/etc/tunnelgate/killswitch")


def planned(killswitch_spec, runner):
    b = backend(killswitch_spec, runner)
    b.require()
    b.plan(killswitch_spec.state == "present")
    return b


def test_fresh_host_loads_the_file():
    runner = FakeRunner(**MISSING)
    b = planned(spec("host"), runner)
    assert b.changed
    assert b.apply_text == b.file_text
    b.apply()
    assert runner.calls[-1] == (["/usr/sbin/nft", "-f", "-"], b.file_text)


@pytest.mark.parametrize("mode", ["host", "forward"])
def test_live_equal_is_unchanged_and_apply_runs_nothing(mode):
    runner = FakeRunner(fixture("nft.json"))
    b = planned(spec(mode), runner)
    assert b.changed is False
    b.apply()
    assert [argv for argv, _data in runner.calls if "-f" in argv] == []
    before, after = b.diff_text()
    assert before == after


def test_removed_rule_is_restored():
    doc = json.loads(fixture("nft.json"))
    doc["nftables"] = [i for i in doc["nftables"] if not ("rule" in i and i["rule"]["chain"] == "host_dns")]
    b = planned(spec("host"), FakeRunner(json.dumps(doc)))
    assert b.changed and "delete" not in b.apply_text


def test_chain_with_wrong_hook_is_recreated():
    doc = json.loads(fixture("nft.json"))
    for item in doc["nftables"]:
        if "chain" in item and item["chain"]["name"] == "host_output":
            item["chain"]["prio"] = -300
    b = planned(spec("host"), FakeRunner(json.dumps(doc)))
    assert b.changed
    assert b.apply_text.startswith("flush chain inet tunnelgate host_output\nflush chain inet tunnelgate host_dns\n"
                                   "delete chain inet tunnelgate host_output\n")


def test_absent_keeps_the_other_modes_chains():
    b = planned(spec("host", state="absent"), FakeRunner(fixture("nft.json")))
    assert b.changed
    assert b.apply_text == (
        "flush chain inet tunnelgate host_output\nflush chain inet tunnelgate host_dns\n"
        "delete chain inet tunnelgate host_output\ndelete chain inet tunnelgate host_dns\n")


def test_absent_last_mode_deletes_our_table():
    doc = json.loads(fixture("nft.json"))
    doc["nftables"] = [i for i in doc["nftables"] if not (
        ("chain" in i and i["chain"]["name"].startswith("forward")) or ("rule" in i and i["rule"]["chain"].startswith("forward")))]
    b = planned(spec("host", state="absent"), FakeRunner(json.dumps(doc)))
    assert b.apply_text == "delete table inet tunnelgate\n"


def test_absent_without_table_is_unchanged():
    b = planned(spec("forward", state="absent"), FakeRunner(**MISSING))
    assert b.changed is False


def test_nft_failure_names_backend():
    from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError

    b = backend(spec("host"), FakeRunner(rc=1, err="Error: Could not process rule: Operation not supported"))
    b.require()
    with pytest.raises(TunnelgateError) as err:
        b.plan(True)
    assert err.value.option == "backend"

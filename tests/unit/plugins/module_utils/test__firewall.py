# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rule sets: validation (errors name the option), the rules by purpose, rendering and parsing
against the real tools' output (fixtures/rules/README.md), the plan's decisions and the module entry point."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _firewall as fw
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules import iptables as ipt
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules import nftables as nft
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import for_family
from fake_module import FakeModule  # noqa: E402  (tests/unit is on sys.path)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "rules")
SERVER = dict(
    name="server",
    input=[{"port": 51820, "proto": "udp"}, {"port": 53, "proto": "both", "interfaces": ["wg0"]}],
    forward=[
        {"in_interface": "wg0", "out_interface": "eth0", "sources": ["10.66.8.0/24", "fd66:8::/64"], "masquerade": True},
        {"in_interface": "wg1", "out_interface": "eth0", "sources": ["10.66.9.0/24", "fd66:9::/64"],
         "snat": ["192.0.2.1", "2001:db8::1"]},
    ],
    mss_clamp=["wg0"],
    inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": "0x1000"},
)
VARIANTS = ["bookworm", "trixie"]
# iptables 1.8.9 / 1.8.11 in both flavours: nf_tables (the variants above) and legacy (x_tables)
IPT_VARIANTS = VARIANTS + ["bookworm-legacy", "trixie-legacy"]
TABLES = ("filter", "nat", "mangle")


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


def spec(base=None, **overrides):
    params = dict(SERVER if base is None else base)
    params.update(overrides)
    return fw.FirewallSpec(params)


def chains(backend, **overrides):
    return fw.FirewallRules(spec(**overrides)).chains(backend)


# --- validation ---------------------------------------------------------------------------------

BAD_INPUT = [
    ("name-upper", dict(name="Server"), "name"),
    ("name-long", dict(name="averyverylongname"), "name"),
    ("name-dash", dict(name="my-set"), "name"),
    ("name-empty", dict(name=""), "name"),
    ("name-none", dict(name=None), "name"),
    ("name-newline", dict(name="server\n"), "name"),
    ("input-iface-newline", dict(input=[{"port": 22, "interfaces": ["eth0\n"]}]), "input[0].interfaces"),
    ("backend", dict(backend="ufw"), "backend"),
    ("input-no-port", dict(input=[{"proto": "udp"}]), "input[0].port"),
    ("input-port-0", dict(input=[{"port": 0}]), "input[0].port"),
    ("input-port-big", dict(input=[{"port": 70000}]), "input[0].port"),
    ("input-port-unicode", dict(input=[{"port": "５３"}]), "input[0].port"),
    ("input-port-bool", dict(input=[{"port": True}]), "input[0].port"),
    ("input-proto", dict(input=[{"port": 22, "proto": "sctp"}]), "input[0].proto"),
    ("input-iface", dict(input=[{"port": 22, "interfaces": ["eth0;reboot"]}]), "input[0].interfaces"),
    ("input-source", dict(input=[{"port": 22, "sources": ["10.0.0.1/8"]}]), "input[0].sources"),
    ("input-unknown-key", dict(input=[{"port": 22, "dport": 23}]), "input[0]"),
    ("input-not-dict", dict(input=["22/tcp"]), "input[0]"),
    ("forward-no-out", dict(forward=[{"in_interface": "wg0"}]), "forward[0].out_interface"),
    ("forward-same", dict(forward=[{"in_interface": "wg0", "out_interface": "wg0"}]), "forward[0].out_interface"),
    ("forward-bad-iface", dict(forward=[{"in_interface": "wg 0", "out_interface": "eth0"}]), "forward[0].in_interface"),
    ("forward-nat-no-sources", dict(forward=[{"in_interface": "wg0", "out_interface": "eth0", "masquerade": True}]),
     "forward[0].sources"),
    ("forward-nat-both", dict(forward=[{"in_interface": "wg0", "out_interface": "eth0", "sources": ["10.0.0.0/8"],
                                        "masquerade": True, "snat": ["192.0.2.1"]}]), "forward[0].snat"),
    ("forward-snat-family", dict(forward=[{"in_interface": "wg0", "out_interface": "eth0",
                                           "sources": ["10.0.0.0/8", "fd00::/8"], "snat": ["192.0.2.1"]}]), "forward[0].snat"),
    ("forward-snat-name", dict(forward=[{"in_interface": "wg0", "out_interface": "eth0", "sources": ["10.0.0.0/8"],
                                         "snat": ["exit.example"]}]), "forward[0].snat"),
    ("forward-bad-source", dict(forward=[{"in_interface": "wg0", "out_interface": "eth0", "sources": ["10.66.0.0/33"]}]),
     "forward[0].sources"),
    ("mss-iface", dict(mss_clamp=["$(id)"]), "mss_clamp"),
    ("connmark-no-tunnel", dict(inbound_connmark={"mark": "0x1000"}), "inbound_connmark.tunnel_interfaces"),
    ("connmark-lo-as-tunnel", dict(inbound_connmark={"tunnel_interfaces": ["lo"]}), "inbound_connmark.tunnel_interfaces"),
    ("connmark-mark-zero", dict(inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": 0}), "inbound_connmark.mark"),
    ("connmark-mark-garbage", dict(inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": "lots"}), "inbound_connmark.mark"),
    ("connmark-mark-big", dict(inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": 2 ** 32}), "inbound_connmark.mark"),
    ("connmark-outside-mask", dict(inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": "0x3000", "mask": "0x1000"}),
     "inbound_connmark.mark"),
    ("connmark-unknown-key", dict(inbound_connmark={"tunnel_interfaces": ["wg0"], "table": "main"}), "inbound_connmark"),
]


@pytest.mark.parametrize("case,overrides,option", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_the_option(case, overrides, option):
    with pytest.raises(TunnelgateError) as err:
        spec(**overrides)
    assert err.value.option == option
    assert str(err.value).startswith(option)


def test_connmark_defaults_avoid_known_marks():
    s = spec(dict(name="lockout", inbound_connmark={"tunnel_interfaces": ["wg0"]}))
    assert s.connmark == {"tunnels": ["wg0"], "mark": 0x1000, "mask": 0x1000}
    for bits in (0x4000, 0x8000, 0x0F00, 0xCA6C, 0xFFFF0000):
        assert not s.connmark["mask"] & bits
    assert s.warnings == []


@pytest.mark.parametrize("mask,owner", [("0x4000", "kube-proxy"), ("0x0100", "Cilium"), ("0x0004", "0xca6c")])
def test_connmark_on_known_bits_warns(mask, owner):
    s = spec(dict(name="lockout", inbound_connmark={"tunnel_interfaces": ["wg0"], "mark": mask}))
    assert len(s.warnings) >= 1 and any(owner in w for w in s.warnings)


def test_connmark_disabled_is_no_preset():
    assert spec(inbound_connmark={"enabled": False, "tunnel_interfaces": []}).connmark is None


# --- the rules by purpose -----------------------------------------------------------------------


def test_connmark_preset_rules():
    purposes = spec(dict(name="lockout", inbound_connmark={"tunnel_interfaces": ["wg0", "wg1"]})).rules()
    returns = [{"iif": "lo", "verdict": "return"}, {"iif": "wg0", "verdict": "return"}, {"iif": "wg1", "verdict": "return"}]
    assert purposes == {
        # the packet mark before the input route lookup (tcp_fwmark_accept, rp_filter=1), local destinations only
        "mangle_prerouting": returns + [
            {"daddrtype": "local", "ctdir": "original", "verdict": "mark set 0x1000/0x1000"}],
        "mangle_input": returns + [{"ctdir": "original", "verdict": "ctmark set 0x1000/0x1000"}],
        "route_output": [{"ctmark": 0x1000, "ctmarkmask": 0x1000, "verdict": "mark set 0x1000/0x1000"}],
    }


def test_connmark_preset_hooks_per_backend():
    ipt_chains = {c.name: (c.table, c.hook) for c in chains("iptables")}
    assert ipt_chains["TG-SERVER-MARK-IN"] == ("mangle", "INPUT")
    assert ipt_chains["TG-SERVER-MARK-OUT"] == ("mangle", "OUTPUT")
    nft_chains = {c.name: c.base_spec() for c in chains("nftables")}
    assert nft_chains["route_output"] == {"type": "route", "hook": "output", "prio": -150, "policy": "accept"}
    assert nft_chains["mangle_input"] == {"type": "filter", "hook": "input", "prio": -150, "policy": "accept"}
    assert nft_chains["nat_postrouting"] == {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}


def test_empty_purposes_have_no_chain():
    only_input = chains("iptables", forward=[], mss_clamp=[], inbound_connmark=None)
    assert [c.name for c in only_input] == ["TG-SERVER-IN"]


def test_forward_without_sources_forwards_all_and_no_nat():
    purposes = spec(dict(name="gw", forward=[{"in_interface": "wg0", "out_interface": "eth0"}])).rules()
    assert purposes == {"filter_forward": [
        {"iif": "wg0", "oif": "eth0", "verdict": "accept"},
        {"iif": "eth0", "oif": "wg0", "ctstate": "established,related", "verdict": "accept"}]}


# --- rendering and parsing against the real tools -----------------------------------------------


def our_lines(text, table):
    lines, current = [], None
    for line in text.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line.startswith("-A TG-SERVER-"):
            lines.append(line)
    return sorted(lines)


@pytest.mark.parametrize("variant", IPT_VARIANTS)
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("table", TABLES)
def test_iptables_rendering_matches_iptables_save(variant, family, table):
    desired = [(c.name, for_family(c.rules, family)) for c in chains("iptables") if c.table == table]
    rendered = ipt.render_chain_file(desired, family, table)
    live = fixture("%s-server-v%d.save" % (variant, family))
    assert our_lines(rendered, table) == our_lines(live, table)
    assert our_lines(rendered, table), "every table has rules of ours"


@pytest.mark.parametrize("variant", IPT_VARIANTS)
@pytest.mark.parametrize("family", [4, 6])
def test_iptables_live_equal_is_unchanged(variant, family):
    live_text = fixture("%s-server-v%d.save" % (variant, family))
    ruleset = fw.FirewallRules(spec())
    for table in TABLES:
        mine = [c for c in ruleset.chains("iptables") if c.table == table]
        plan = ipt.TablePlan(ruleset.prefix_owns, [(c.name, for_family(c.rules, family)) for c in mine],
                             [(c.hook, c.name) for c in mine], ipt.parse_save(live_text, table), family, table)
        assert plan.changed is False, table
        assert plan.before == plan.after


@pytest.mark.parametrize("variant", VARIANTS)
def test_nft_parse_real_json_equals_desired(variant):
    live = nft.parse_ruleset(fixture("nft-%s-server.json" % variant), "tunnelgate_server")
    desired = chains("nftables")
    assert sorted(live["chains"]) == sorted(c.name for c in desired)
    for chain in desired:
        assert live["rules"][chain.name] == chain.rules, chain.name
        assert live["chains"][chain.name] == chain.base_spec(), chain.name


PARSE = [
    ("-m addrtype --dst-type LOCAL -m conntrack --ctdir ORIGINAL -j MARK --set-xmark 0x1000/0x1000",
     {"daddrtype": "local", "ctdir": "original", "verdict": "mark set 0x1000/0x1000"}),
    ("-m connmark --mark 0x1000/0x1000 -j MARK --set-xmark 0x1000/0x1000",
     {"ctmark": 0x1000, "ctmarkmask": 0x1000, "verdict": "mark set 0x1000/0x1000"}),
    ("-m mark --mark 0x1000/0x1000 -j RETURN", {"mark": 0x1000, "markmask": 0x1000, "verdict": "return"}),
    ("-m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x1000/0x1000", {"ctstate": "new", "verdict": "ctmark set 0x1000/0x1000"}),
    ("-m conntrack --ctdir ORIGINAL -j CONNMARK --set-xmark 0x1000/0x1000",
     {"ctdir": "original", "verdict": "ctmark set 0x1000/0x1000"}),
    ("-o wg0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
     {"oif": "wg0", "proto": "tcp", "tcpflags": "syn/rst,syn", "verdict": "clampmss"}),
    ("-s 10.66.8.0/24 -o eth0 -j MASQUERADE", {"saddr": "10.66.8.0/24", "oif": "eth0", "verdict": "masquerade"}),
    ("-s 10.66.9.0/24 -o eth0 -j SNAT --to-source 192.0.2.1", {"saddr": "10.66.9.0/24", "oif": "eth0", "verdict": "snat 192.0.2.1"}),
]


@pytest.mark.parametrize("line,expected", PARSE, ids=[p[0] for p in PARSE])
def test_iptables_parse_new_shapes(line, expected):
    assert ipt.parse_rule(line.split(), 4) == expected
    assert ipt.render_rule(expected, 4) == line.split()


@pytest.mark.parametrize("line", [
    "-j CONNMARK --save-mark --nfmask 0x1000 --ctmask 0x1000",
    "-j CONNMARK --restore-mark --nfmask 0x1000 --ctmask 0x1000",
    "-j TCPMSS --set-mss 1200",
    "-j SNAT --to-source 192.0.2.1 --random",
    "-j MASQUERADE --to-ports 1024-2048",
    "-m addrtype --src-type LOCAL -j MARK --set-xmark 0x1000/0x1000",
    "-m addrtype --dst-type LOCAL --limit-iface-in -j MARK --set-xmark 0x1000/0x1000",
])
def test_iptables_unknown_target_options_never_equal_ours(line):
    assert "unknown" in ipt.parse_rule(line.split(), 4)


def _mangle_mark(key, value):
    return {"mangle": {"key": {key: {"key": "mark"}}, "value": value}}


@pytest.mark.parametrize("stmt,verdict", [
    (_mangle_mark("meta", {"|": [{"meta": {"key": "mark"}}, 4096]}), "mark set 0x1000/0x1000"),
    (_mangle_mark("ct", {"|": [{"ct": {"key": "mark"}}, 4096]}), "ctmark set 0x1000/0x1000"),
    # nft prints (x & ~0xf000) | 0x2000 as "& 0xffff2fff | 0x2000" (real output)
    (_mangle_mark("meta", {"|": [{"&": [{"meta": {"key": "mark"}}, 4294914047]}, 8192]}), "mark set 0x2000/0xf000"),
    (_mangle_mark("meta", {"&": [{"meta": {"key": "mark"}}, 4294967039]}), "mark set 0x0/0x100"),
    (_mangle_mark("meta", 4096), "mark set 0x1000/0xffffffff"),
])
def test_nft_mark_statements(stmt, verdict):
    assert nft.parse_rule([stmt]) == {"verdict": verdict}


@pytest.mark.parametrize("fib,known", [
    ({"result": "type", "flags": ["daddr"]}, True),
    ({"result": "type", "flags": ["saddr"]}, False),
    ({"result": "type", "flags": ["daddr", "iif"]}, False),
    ({"result": "oif", "flags": ["daddr"]}, False),
])
def test_nft_fib_daddr_type_only(fib, known):
    rule = nft.parse_rule([{"match": {"op": "==", "left": {"fib": fib}, "right": "local"}}, {"return": None}])
    assert (rule == {"daddrtype": "local", "verdict": "return"}) is known and ("unknown" in rule) is not known


@pytest.mark.parametrize("stmt", [
    # meta mark set ct mark and 0x1000: another register, not a constant
    _mangle_mark("meta", {"&": [{"ct": {"key": "mark"}}, 4096]}),
    {"masquerade": {"port": 1024}},
    {"snat": {"family": "ip", "addr": "192.0.2.1", "flags": ["random"]}},
    {"mangle": {"key": {"tcp option": {"name": "maxseg", "field": "size"}}, "value": 1200}},
])
def test_nft_unknown_statements_never_equal_ours(stmt):
    assert "unknown" in nft.parse_rule([stmt])


def test_nft_render_file_for_the_preset():
    ruleset = fw.FirewallRules(spec(dict(name="lockout", inbound_connmark={"tunnel_interfaces": ["wg0"]})))
    text = nft.render_file(ruleset, ruleset.chains("nftables"))
    assert text.splitlines()[2:] == [
        "add table inet tunnelgate_lockout",
        "add chain inet tunnelgate_lockout mangle_prerouting { type filter hook prerouting priority -150; policy accept; }",
        "add chain inet tunnelgate_lockout mangle_input { type filter hook input priority -150; policy accept; }",
        "add chain inet tunnelgate_lockout route_output { type route hook output priority -150; policy accept; }",
        "flush chain inet tunnelgate_lockout mangle_prerouting",
        "flush chain inet tunnelgate_lockout mangle_input",
        "flush chain inet tunnelgate_lockout route_output",
        'add rule inet tunnelgate_lockout mangle_prerouting iifname "lo" return',
        'add rule inet tunnelgate_lockout mangle_prerouting iifname "wg0" return',
        "add rule inet tunnelgate_lockout mangle_prerouting fib daddr type local ct direction original "
        "meta mark set meta mark and 0xffffefff or 0x00001000",
        'add rule inet tunnelgate_lockout mangle_input iifname "lo" return',
        'add rule inet tunnelgate_lockout mangle_input iifname "wg0" return',
        "add rule inet tunnelgate_lockout mangle_input ct direction original ct mark set ct mark and 0xffffefff or 0x00001000",
        "add rule inet tunnelgate_lockout route_output ct mark and 0x00001000 == 0x00001000 "
        "meta mark set meta mark and 0xffffefff or 0x00001000",
    ]


# --- plan decisions -----------------------------------------------------------------------------

# The server role's templated rules as they were before the engine (migration source).
OLD_SERVER_V4 = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:TG-SERVER-FORWARD - [0:0]
:TG-SERVER-INPUT - [0:0]
-A INPUT -j TG-SERVER-INPUT
-A FORWARD -j TG-SERVER-FORWARD
-A TG-SERVER-FORWARD -s 10.66.8.0/24 -i wg0 -o eth0 -j ACCEPT
-A TG-SERVER-INPUT -p udp -m udp --dport 51820 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:TG-SERVER-NAT - [0:0]
-A POSTROUTING -j TG-SERVER-NAT
-A TG-SERVER-NAT -s 10.66.8.0/24 -o eth0 -j MASQUERADE
COMMIT
"""


def test_migration_replaces_old_chains_in_one_transaction_per_table():
    ruleset = fw.FirewallRules(spec())
    mine = [c for c in ruleset.chains("iptables") if c.table == "nat"]
    plan = ipt.TablePlan(ruleset.prefix_owns, [(c.name, for_family(c.rules, 4)) for c in mine],
                         [(c.hook, c.name) for c in mine], ipt.parse_save(OLD_SERVER_V4, "nat"), 4, "nat")
    lines = plan.restore_text.splitlines()
    assert plan.changed and plan.stale == ["TG-SERVER-NAT"]
    filter_plan = ipt.TablePlan(ruleset.prefix_owns, [(c.name, for_family(c.rules, 4)) for c in ruleset.chains("iptables")
                                                      if c.table == "filter"],
                                [("INPUT", "TG-SERVER-IN"), ("FORWARD", "TG-SERVER-FWD")],
                                ipt.parse_save(OLD_SERVER_V4, "filter"), 4, "filter")
    assert filter_plan.stale == ["TG-SERVER-FORWARD", "TG-SERVER-INPUT"]
    assert "-X TG-SERVER-INPUT" in filter_plan.restore_text and "-D INPUT -j TG-SERVER-INPUT" in filter_plan.restore_text
    assert lines[0] == "*nat" and lines[-1] == "COMMIT"
    # new chain filled and hooked before the old one is unhooked and deleted, all in one COMMIT
    assert lines.index("-A TG-SERVER-SNAT -s 10.66.8.0/24 -o eth0 -j MASQUERADE") < lines.index("-D POSTROUTING -j TG-SERVER-NAT")
    assert lines.index("-I POSTROUTING 1 -j TG-SERVER-SNAT") < lines.index("-X TG-SERVER-NAT")
    assert lines.count("COMMIT") == 1


def test_foreign_and_killswitch_chains_are_never_ours():
    ruleset = fw.FirewallRules(spec())
    for name in ("TUNNELGATE-FWD", "TG-SERVERX-INPUT", "TG-LOCKOUT-MARK-IN", "DOCKER-USER", "KUBE-FORWARD"):
        assert not ruleset.prefix_owns(name)
    assert ruleset.prefix_owns("TG-SERVER-NAT")


def test_two_sets_on_one_hook_do_not_push_each_other_down():
    live = ipt.parse_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n:TG-SERVER-FWD - [0:0]\n:TUNNELGATE-FWD - [0:0]\n"
        "-A FORWARD -j TUNNELGATE-FWD\n-A FORWARD -j TG-SERVER-FWD\n-A FORWARD -j DOCKER-FORWARD\n"
        "-A TG-SERVER-FWD -i wg0 -o eth0 -j ACCEPT\n"
        "-A TG-SERVER-FWD -i eth0 -o wg0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")
    desired = [("TG-SERVER-FWD", fw.FirewallSpec(dict(name="server", forward=[
        {"in_interface": "wg0", "out_interface": "eth0"}])).rules()["filter_forward"])]
    owns = fw.FirewallRules(spec()).prefix_owns
    assert ipt.TablePlan(owns, desired, [("FORWARD", "TG-SERVER-FWD")], live, 4).changed is False
    pushed = dict(live, rules=dict(live["rules"], FORWARD=[["-j", "DOCKER-FORWARD"]] + live["rules"]["FORWARD"]))
    assert ipt.TablePlan(owns, desired, [("FORWARD", "TG-SERVER-FWD")], pushed, 4).changed is True


# --- the module entry point ---------------------------------------------------------------------

EMPTY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
NFT_MISSING = (1, "", "Error: No such file or directory\n")


class FakeHost:
    """Canned output per tool (iptables-save answers with a whole save; the parser picks the table)."""

    def __init__(self, v4=EMPTY, v6=EMPTY, nft_out=NFT_MISSING, enabled=False):
        self.answers = {"iptables-save": (0, v4, ""), "ip6tables-save": (0, v6, ""), "nft": nft_out,
                        "systemctl": (0 if enabled else 1, "enabled\n" if enabled else "disabled\n", "")}
        self.calls = []

    def bin_path(self, name, required=True):
        if name == "dockerd":
            return None
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        self.calls.append((argv, data))
        tool = os.path.basename(argv[0])
        if tool == "systemctl" and argv[1] != "is-enabled":
            return 0, "", ""
        if tool == "nft" and argv[1] == "-f":
            return 0, "", ""
        return self.answers.get(tool, (0, "", ""))

    def mutations(self):
        return [argv for argv, _data in self.calls
                if argv[0].endswith("-restore") or "-f" in argv or (argv[0].endswith("systemctl") and argv[1] != "is-enabled")]


@pytest.fixture
def dirs(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    return str(tmp_path / "firewall"), str(units)


def run(params, host, dirs, check_mode=False):
    return fw.run_module(FakeModule(params, check_mode=check_mode), host, rules_dir=dirs[0], unit_dir=dirs[1])


def test_fresh_host_iptables_applies_all_tables_and_persists(dirs):
    host = FakeHost()
    result = run(SERVER, host, dirs)
    assert result["changed"] and result["unit"] == "tunnelgate-firewall-server.service"
    assert result["connmark"] == {"mark": 0x1000, "mask": 0x1000, "fwmark": "0x1000/0x1000"}
    restores = [(argv, data) for argv, data in host.calls if argv[0].endswith("-restore")]
    assert [argv[0] for argv, _d in restores] == ["/usr/sbin/iptables-restore", "/usr/sbin/ip6tables-restore"]
    v4 = restores[0][1]
    assert [line for line in v4.splitlines() if line.startswith("*")] == ["*filter", "*nat", "*mangle"]
    for jump in ("-I INPUT 1 -j TG-SERVER-IN", "-I POSTROUTING 1 -j TG-SERVER-SNAT", "-I OUTPUT 1 -j TG-SERVER-MARK-OUT"):
        assert jump in v4
    path = os.path.join(dirs[0], "server.v4.rules")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(os.path.join(dirs[1], "tunnelgate-firewall-server.service"), encoding="utf-8") as handle:
        unit = handle.read().splitlines()
    assert "Before=network-pre.target shutdown.target" in unit and "DefaultDependencies=no" in unit
    assert ("ExecStart=/bin/sh -c '/usr/sbin/iptables -w -t nat -C POSTROUTING -j TG-SERVER-SNAT 2>/dev/null || "
            "/usr/sbin/iptables -w -t nat -I POSTROUTING 1 -j TG-SERVER-SNAT'") in unit
    assert result["hooks"]["ipv4"] == ["INPUT", "FORWARD", "nat POSTROUTING", "mangle FORWARD", "mangle PREROUTING",
                                       "mangle INPUT", "mangle OUTPUT"]


@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_second_run_against_real_output_is_unchanged(dirs, variant):
    run(SERVER, FakeHost(), dirs)
    host = FakeHost(v4=fixture("%s-server-v4.save" % variant), v6=fixture("%s-server-v6.save" % variant), enabled=True)
    result = run(SERVER, host, dirs)
    assert result["changed"] is False and host.mutations() == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_nftables_second_run_is_unchanged(dirs):
    params = dict(SERVER, backend="nftables")
    run(params, FakeHost(), dirs)
    host = FakeHost(nft_out=(0, fixture("nft-bookworm-server.json"), ""), enabled=True)
    result = run(params, host, dirs)
    assert result["changed"] is False and host.mutations() == []
    assert result["table"] == "tunnelgate_server"


def test_check_mode_changes_nothing(dirs):
    host = FakeHost()
    result = run(SERVER, host, dirs, check_mode=True)
    assert result["changed"] and host.mutations() == []
    assert not os.path.exists(dirs[0]) and os.listdir(dirs[1]) == []
    assert "-A TG-SERVER-IN -p udp -m udp --dport 51820 -j ACCEPT" in result["diff"]["after"]


def test_switch_to_nftables_loads_new_before_removing_old(dirs):
    host = FakeHost(v4=fixture("bookworm-server-v4.save"), v6=fixture("bookworm-server-v6.save"))
    run(dict(SERVER, backend="nftables"), host, dirs)
    order = [os.path.basename(argv[0]) for argv in host.mutations() if not argv[0].endswith("systemctl")]
    assert order == ["nft", "iptables-restore", "ip6tables-restore"]
    removal = [data for argv, data in host.calls if argv[0].endswith("iptables-restore")][0]
    for chain in ("TG-SERVER-IN", "TG-SERVER-SNAT", "TG-SERVER-MARK-OUT"):
        assert "-X %s\n" % chain in removal


def test_absent_removes_everything_and_rerun_is_unchanged(dirs):
    run(SERVER, FakeHost(), dirs)
    host = FakeHost(v4=fixture("bookworm-server-v4.save"), v6=fixture("bookworm-server-v6.save"), enabled=True)
    result = run(dict(name="server", state="absent"), host, dirs)
    assert result["changed"] and result["chains"] == [] and result["connmark"] is None
    calls = [argv for argv, _data in host.calls if argv[0].endswith("systemctl")]
    assert calls.index(["/usr/sbin/systemctl", "stop", "tunnelgate-firewall-server.service"]) < calls.index(
        ["/usr/sbin/systemctl", "disable", "tunnelgate-firewall-server.service"])
    assert not os.path.exists(dirs[0]) and os.listdir(dirs[1]) == []
    assert run(dict(name="server", state="absent"), FakeHost(), dirs)["changed"] is False


def test_bad_input_fails_before_any_command(dirs):
    host = FakeHost()
    with pytest.raises(TunnelgateError):
        run(dict(SERVER, mss_clamp=["wg0 ; reboot"]), host, dirs)
    assert host.calls == []


def test_nft_fixture_is_the_tools_json():
    assert json.loads(fixture("nft-trixie-server.json"))["nftables"][0]["metainfo"]["version"] == "1.1.3"


# --- DNS redirect (destination NAT of plain DNS from a gateway's sources) ------------------------

DNS_REDIRECT = dict(name="docker_gw", dns_redirect=[{"sources": ["172.31.50.0/24", "fd42:50::/64"],
                                                     "to": ["10.66.6.1", "fd66:6::1"]}])


def test_dns_redirect_rules_per_family_and_protocol():
    rules = fw.FirewallSpec(DNS_REDIRECT).rules()
    assert rules == {"nat_prerouting": [
        {"family": 4, "saddr": "172.31.50.0/24", "proto": "udp", "dport": 53, "verdict": "dnat 10.66.6.1"},
        {"family": 4, "saddr": "172.31.50.0/24", "proto": "tcp", "dport": 53, "verdict": "dnat 10.66.6.1"},
        {"family": 6, "saddr": "fd42:50::/64", "proto": "udp", "dport": 53, "verdict": "dnat fd66:6::1"},
        {"family": 6, "saddr": "fd42:50::/64", "proto": "tcp", "dport": 53, "verdict": "dnat fd66:6::1"},
    ]}


def test_dns_redirect_without_a_resolver_of_the_family_leaves_it_alone():
    rules = fw.FirewallSpec(dict(DNS_REDIRECT, dns_redirect=[{"sources": ["fd42:50::/64"], "to": ["10.66.6.1"]}])).rules()
    assert rules == {}


def test_dns_redirect_hooks():
    ipt_chains = fw.FirewallRules(fw.FirewallSpec(DNS_REDIRECT)).chains("iptables")
    assert [(c.name, c.table, c.hook) for c in ipt_chains] == [("TG-DOCKER_GW-DNAT", "nat", "PREROUTING")]
    nft_chains = fw.FirewallRules(fw.FirewallSpec(DNS_REDIRECT)).chains("nftables")
    assert [(c.name, c.kind, c.hook, c.priority) for c in nft_chains] == [("nat_prerouting", "nat", "prerouting", -100)]


@pytest.mark.parametrize("item,option", [
    ({"sources": [], "to": ["10.66.6.1"]}, "dns_redirect[0].sources"),
    ({"sources": ["172.31.50.0/24"], "to": []}, "dns_redirect[0].to"),
    ({"sources": ["172.31.50.0/24"], "to": ["10.66.6.1", "10.66.6.2"]}, "dns_redirect[0].to"),
    ({"sources": ["172.31.50.0/24"], "to": ["resolver.example"]}, "dns_redirect[0].to"),
    ({"sources": ["172.31.50.0/24"], "to": ["10.66.6.1"], "port": 53}, "dns_redirect[0]"),
])
def test_dns_redirect_bad_input_names_the_option(item, option):
    with pytest.raises(TunnelgateError) as err:
        fw.FirewallSpec(dict(name="docker_gw", dns_redirect=[item]))
    assert err.value.option == option


@pytest.mark.parametrize("line,family,expected", [
    ("-s 172.31.50.0/24 -p udp -m udp --dport 53 -j DNAT --to-destination 10.66.6.1", 4,
     {"saddr": "172.31.50.0/24", "proto": "udp", "dport": 53, "verdict": "dnat 10.66.6.1"}),
    ("-s fd42:50::/64 -p tcp -m tcp --dport 53 -j DNAT --to-destination fd66:6::1", 6,
     {"saddr": "fd42:50::/64", "proto": "tcp", "dport": 53, "verdict": "dnat fd66:6::1"}),
])
def test_iptables_dnat_round_trip(line, family, expected):
    assert ipt.parse_rule(line.split(), family) == expected
    assert ipt.render_rule(expected, family) == line.split()


@pytest.mark.parametrize("line", [
    "-j DNAT --to-destination 10.66.6.1:5353",
    "-j DNAT --to-destination 10.66.6.1 --random",
])
def test_iptables_dnat_with_options_never_equals_ours(line):
    assert "unknown" in ipt.parse_rule(line.split(), 4)


def test_nft_dnat_round_trip():
    assert nft.parse_rule([{"dnat": {"family": "ip6", "addr": "fd66:6::1"}}]) == {"family": 6, "verdict": "dnat fd66:6::1"}
    assert "unknown" in nft.parse_rule([{"dnat": {"family": "ip", "addr": "10.66.6.1", "port": 5353}}])
    assert nft.render_verdict("dnat 10.66.6.1") == "dnat ip to 10.66.6.1"

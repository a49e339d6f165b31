# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live state and plans: reads of ``wg show dump``/``ip -j`` and desired-vs-live plans, IPv4 and IPv6."""

from __future__ import annotations

import base64
import collections
import hashlib
import ipaddress
import json
import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import (
    Route,
    Rule,
    rule_argv,
    SRC_VALID_MARK,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.desired import build_desired, _read_psks
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.live import read_live
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.plan import make_plan
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.render import render_desired

from .fakes import (
    PUBLIC_B64,
    OTHER_PUBLIC_B64,
    PEER_A,
    PEER_B,
    PEER_C,
    PSK_B64,
    params,
    peer,
    FakeRunner,
    live_interface,
)


def plan_for(runner, p, resolver=None, file_before=None):
    desired = build_desired(p, resolver)
    desired.public_key = PUBLIC_B64
    live = read_live(runner, "wg0", {desired.tunnel_table} if desired.tunnel_table else set())
    text = render_desired(desired)
    return make_plan(desired, live, file_before if file_before is not None else text, text,
                     {desired.tunnel_table} - {None}), live


def test_live_state_is_read_from_dump_and_ip_json():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    live = read_live(runner, "wg0", set())
    assert live.exists and live.kind == "userspace" and live.mtu == 1420
    assert live.public_key == PUBLIC_B64 and live.listen_port == 51820 and live.fwmark is None
    assert live.address_strings() == ["10.66.3.1/24", "fd66:3::1/64"]  # link-local ignored
    assert live.peers[PEER_B].allowed_ips == ["10.66.3.3/32", "10.70.0.0/16"]
    assert live.routes == collections.Counter({Route(4, "main", "10.70.0.0/16", "unicast"): 1})
    assert Rule(4, 32766, None, "main", None, False, None) in live.rules


def test_matching_live_state_plans_nothing():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    plan = plan_for(runner, params())[0]
    assert not plan.changed, plan.changes()
    assert not plan.tracker.has_differences


def test_live_allowed_ips_in_another_order_or_spelling_are_no_change():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    runner.live["peers"][PEER_A]["allowed"] = ["fd66:3:0:0::2/128", "10.66.3.2/32"]
    plan = plan_for(runner, params())[0]
    assert not plan.changed, plan.changes()


def test_diff_lists_changed_peers_and_counts_the_rest():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    p = params()
    p["peers"][0]["allowed_ips"] = ["10.66.3.2/32"]
    before, after = plan_for(runner, p)[0].tracker.get_before_after()
    assert before["peer %s" % PEER_A]["allowed_ips"] == ["10.66.3.2/32", "fd66:3::2/128"]
    assert after["peer %s" % PEER_A]["allowed_ips"] == ["10.66.3.2/32"]
    assert "peer %s" % PEER_B not in after and after["peers unchanged"] == 1


def test_roaming_endpoint_is_not_a_change_but_a_configured_one_is():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    runner.live["peers"][PEER_B]["endpoint"] = "[fd42:7467:3::99]:51820"
    plan = plan_for(runner, params())[0]
    assert plan.peers_updated == [{"public_key": PEER_B, "description": "b", "changes": ["endpoint"]}]
    assert plan.wg_args == [["peer", PEER_B, "endpoint", "[fd42:7467:3::11]:51820"]]


def test_hostname_endpoint_matches_its_resolved_address():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    p = params()
    p["peers"][1]["endpoint"] = "exit.lab:51820"

    def resolver(host, port):
        assert host == "exit.lab"
        return {(ipaddress.ip_address("fd42:7467:3::11"), port), (ipaddress.ip_address("172.30.3.11"), port)}

    plan = plan_for(runner, p, resolver=resolver)[0]
    assert not plan.wg_args
    plan = plan_for(runner, p, resolver=lambda h, port: {(ipaddress.ip_address("172.30.3.12"), port)})[0]
    assert plan.wg_args == [["peer", PEER_B, "endpoint", "exit.lab:51820"]]


def test_peer_added_removed_and_updated_in_one_wg_set_call():
    runner = FakeRunner(live_interface())
    p = params(peers=[
        peer(PEER_A, ["10.66.3.2/32", "fd66:3::2/128", "10.80.0.0/16"], description="a", persistent_keepalive=10),
        peer(PEER_C, ["10.66.3.4/32", "fd66:3::4/128"], description="c", endpoint="172.30.3.14:51820"),
    ])
    plan = plan_for(runner, p)[0]
    assert plan.peers_added == [{"public_key": PEER_C, "description": "c"}]
    assert plan.peers_removed == [{"public_key": PEER_B}]
    assert plan.peers_updated == [{"public_key": PEER_A, "description": "a",
                                   "changes": ["allowed_ips", "persistent_keepalive"]}]
    assert plan.wg_args == [[
        "peer", PEER_B, "remove",
        "peer", PEER_A, "allowed-ips", "10.66.3.2/32,10.80.0.0/16,fd66:3::2/128", "persistent-keepalive", "10",
        "peer", PEER_C, "endpoint", "172.30.3.14:51820", "allowed-ips", "10.66.3.4/32,fd66:3::4/128",
    ]]
    # routes follow the peers: 10.80/16 is new, 10.70/16 (peer b) goes
    assert [r.dst for r in plan.route_add] == ["10.80.0.0/16"]
    assert not plan.restart_reasons


def test_many_peers_are_split_into_bounded_wg_set_calls():
    runner = FakeRunner(live_interface(peers=collections.OrderedDict()))
    peers = [peer(base64.b64encode(hashlib.sha256(b"%d" % i).digest()).decode(),
                  ["10.%d.%d.0/24" % (100 + i // 256, i % 256)]) for i in range(1, 601)]
    plan = plan_for(runner, params(peers=peers))[0]
    assert len(plan.peers_added) == 600
    assert [a.count("peer") for a in plan.wg_args] == [250, 250, 100]


def test_preshared_key_compared_by_value_and_removed_with_dev_null(host):
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    psk_path = os.path.join(os.path.dirname(host.config_dir), "keys", "a.psk")
    p = params()
    p["peers"][0]["preshared_key_path"] = psk_path
    desired = build_desired(p)
    _read_psks(desired, check_mode=False)
    desired.public_key = PUBLIC_B64
    live = read_live(runner, "wg0", set())
    plan = make_plan(desired, live, "x", "x", set())
    assert plan.wg_args == [["peer", PEER_A, "preshared-key", psk_path]]
    assert PSK_B64 not in json.dumps(plan.tracker.get_before_after())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64
    live = read_live(runner, "wg0", set())
    assert not make_plan(desired, live, "x", "x", set()).wg_args
    plan = plan_for(runner, params())[0]  # no preshared key wanted any more
    assert plan.wg_args == [["peer", PEER_A, "preshared-key", "/dev/null"]]
    assert plan.peers_updated[0]["changes"] == ["preshared_key"]


def test_address_and_mtu_change_in_place_ipv4_and_ipv6():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    plan = plan_for(runner, params(addresses=["10.66.3.1/24", "fd66:3::100/64"], mtu=1380))[0]
    assert plan.addr_del == ["fd66:3::1/64"] and plan.addr_add == ["fd66:3::100/64"]
    assert plan.mtu == 1380
    assert not plan.restart_reasons and not plan.wg_args


def test_listen_port_fwmark_and_private_key_changes_are_wg_set():
    runner = FakeRunner(live_interface(port=40000, fwmark=77, public=OTHER_PUBLIC_B64))
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    plan = plan_for(runner, params())[0]
    assert plan.wg_args == [["private-key", "/etc/wireguard/keys/wg0.key", "listen-port", "51820", "fwmark", "off"]]
    assert plan.private_key_change


def test_only_our_rules_are_touched():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    # a foreign rule (someone else's table) and a stale rule of our table
    runner.rules[4] += [{"priority": 100, "src": "10.0.0.0", "srclen": 8, "table": "200"},
                        {"priority": 10002, "src": "172.19.0.0", "srclen": 16, "table": "1066"}]
    routing = {"sources": ["172.18.0.0/16"], "exclude": [], "priority": 10000}
    plan = plan_for(runner, params(table="1066", routing=routing))[0]
    assert [" ".join(rule_argv(r)) for r in plan.rule_add] == [
        "ip -4 rule add from 172.18.0.0/16 table 1066 priority 10002"]
    assert [" ".join(rule_argv(r, "del")) for r in plan.rule_del] == [
        "ip -4 rule del from 172.19.0.0/16 table 1066 priority 10002"]
    # the main-table route of table=auto goes, table 1066 gets every allowed IP (collapsed)
    assert [(r.table, r.dst) for r in plan.route_del] == [("main", "10.70.0.0/16")]
    assert ("1066", "10.66.3.2/31") in [(r.table, r.dst) for r in plan.route_add]


def test_sysctl_written_only_when_it_differs():
    runner = FakeRunner(live_interface(addresses=["10.66.3.2/32"], port=None,
                                       peers=collections.OrderedDict([(PEER_A, {"allowed": ["0.0.0.0/0"]})])))
    p = params(addresses=["10.66.3.2/32"], listen_port=None, peers=[peer(PEER_A, ["0.0.0.0/0"])])
    desired = build_desired(p)
    desired.public_key = PUBLIC_B64
    live = read_live(runner, "wg0", {"51820"})
    assert make_plan(desired, live, "x", "x", {"51820"}, sysctl_values={SRC_VALID_MARK: "1"}).sysctls == []
    assert make_plan(desired, live, "x", "x", {"51820"}, sysctl_values={SRC_VALID_MARK: "0"}).sysctls == [
        (SRC_VALID_MARK, "1")]


def test_implementation_mismatch_is_the_one_restart():
    runner = FakeRunner(live_interface(kind="wireguard"))
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    plan = plan_for(runner, params(implementation="userspace"))[0]
    assert plan.restart_reasons == ["implementation is kernel, wanted userspace"]
    plan = plan_for(runner, params(implementation="auto"))[0]
    assert not plan.changed

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface module's logic: validation, derived routes/rules, rendering, live-vs-desired plans,
and whole runs against a fake host (the CommandRunner seam), IPv4 and IPv6."""

from __future__ import annotations

import base64
import collections
import hashlib
import ipaddress
import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _interface as itf
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import parse_config
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import clamp_scalar, public_key

PRIVATE_RAW = clamp_scalar(bytes(range(32)))
PRIVATE_B64 = base64.b64encode(PRIVATE_RAW).decode()
PUBLIC_B64 = base64.b64encode(public_key(PRIVATE_RAW)).decode()
OTHER_PRIVATE_B64 = base64.b64encode(clamp_scalar(bytes(range(1, 33)))).decode()
OTHER_PUBLIC_B64 = base64.b64encode(public_key(clamp_scalar(bytes(range(1, 33))))).decode()
PEER_A = base64.b64encode(public_key(clamp_scalar(b"a" * 32))).decode()
PEER_B = base64.b64encode(public_key(clamp_scalar(b"b" * 32))).decode()
PEER_C = base64.b64encode(public_key(clamp_scalar(b"c" * 32))).decode()
PSK_B64 = base64.b64encode(b"p" * 32).decode()


def params(**overrides):
    base = {
        "name": "wg0", "state": "present", "addresses": ["10.66.3.1/24", "fd66:3::1/64"], "listen_port": 51820,
        "private_key_path": "/etc/wireguard/keys/wg0.key", "mtu": None, "fwmark": None, "table": "auto", "dns": [],
        "peers": [
            {"public_key": PEER_A, "description": "a", "allowed_ips": ["10.66.3.2/32", "fd66:3::2/128"],
             "endpoint": None, "persistent_keepalive": None, "preshared_key_path": None},
            {"public_key": PEER_B, "description": "b", "allowed_ips": ["10.66.3.3/32", "10.70.0.0/16"],
             "endpoint": "[fd42:7467:3::11]:51820", "persistent_keepalive": 25, "preshared_key_path": None},
        ],
        "routing": None, "enabled": True, "implementation": "auto",
    }
    base.update(overrides)
    return base


def peer(key, allowed, **extra):
    entry = {"public_key": key, "description": None, "allowed_ips": allowed, "endpoint": None,
             "persistent_keepalive": None, "preshared_key_path": None}
    entry.update(extra)
    return entry


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, option, text", [
    ({"name": "this-name-is-too-long"}, "name", "not a valid interface name"),
    ({"name": "wg 0"}, "name", "not a valid interface name"),
    ({"addresses": ["10.66.3.1"]}, "addresses", None),  # a bare address is a /32: accepted
    ({"addresses": ["10.66.3.300/24"]}, "addresses", "not an address"),
    ({"addresses": ["10.66.3.1/24", "10.66.3.1/24"]}, "addresses", "listed twice"),
    ({"listen_port": 0}, "listen_port", "1-65535"),
    ({"listen_port": 70000}, "listen_port", "1-65535"),
    ({"mtu": 1200}, "mtu", "IPv6 needs 1280"),
    ({"mtu": 500, "addresses": ["10.66.3.1/24"]}, "mtu", "576-65535"),
    ({"private_key_path": None}, "private_key_path", "required"),
    ({"private_key_path": "keys/wg0.key"}, "private_key_path", "absolute"),
    ({"private_key_path": "/etc/wire guard/k"}, "private_key_path", "white space"),
    ({"private_key_path": "/etc/wg#/k"}, "private_key_path", "white space"),
    ({"table": "main"}, "table", "auto, off or a routing table number"),
    ({"table": "254"}, "table", "'main' table"),
    ({"table": "off", "routing": {"sources": ["172.18.0.0/16"], "exclude": [], "priority": 10000}}, "routing",
     "needs a routing table"),
    ({"routing": {"sources": ["172.18.0.0/33"], "exclude": [], "priority": 10000}}, "routing.sources", "CIDR"),
    ({"routing": {"sources": [], "exclude": ["nope"], "priority": 10000}}, "routing.exclude", "CIDR"),
    ({"routing": {"sources": [], "exclude": [], "priority": 40000}}, "routing.priority", "1-32000"),
    ({"dns": ["bad host!"]}, "dns", "search domain"),
    ({"fwmark": -1}, "fwmark", "0-4294967295"),
])
def test_validation_names_the_option(overrides, option, text):
    if text is None:
        itf.build_desired(params(**overrides))
        return
    with pytest.raises(TunnelgateError) as err:
        itf.build_desired(params(**overrides))
    assert err.value.option == option
    assert str(err.value).startswith(option)
    assert text in str(err.value)


@pytest.mark.parametrize("peer_spec, option, text", [
    (peer("not-a-key", ["10.66.3.9/32"]), "peers[1].public_key", "44 characters"),
    (peer(PEER_A, ["10.66.3.9/32"]), "peers[1].public_key", "listed for a too"),
    (peer(PEER_B, ["10.66.3.2/32"], description="bee"), "peers[1].allowed_ips", "also allowed for peer a"),
    (peer(PEER_B, ["fd66:3::2/128"]), "peers[1].allowed_ips", "fd66:3::2/128 is also allowed"),
    (peer(PEER_B, ["10.66.3.300/32"]), "peers[1].allowed_ips", "not a valid"),
    (peer(PEER_B, [], endpoint="fd42::1:51820"), "peers[1].endpoint", "brackets"),
    (peer(PEER_B, [], endpoint="host:0"), "peers[1].endpoint", "1-65535"),
    (peer(PEER_B, [], persistent_keepalive=70000), "peers[1].persistent_keepalive", "0-65535"),
    (peer(PEER_B, [], description="two\nlines"), "peers[1].description", "one line"),
    (peer(PEER_B, [], preshared_key_path="psk"), "peers[1].preshared_key_path", "absolute"),
])
def test_peer_validation_names_peer_and_option(peer_spec, option, text):
    first = peer(PEER_A, ["10.66.3.2/32", "fd66:3::2/128"], description="a")
    with pytest.raises(TunnelgateError) as err:
        itf.build_desired(params(peers=[first, peer_spec]))
    assert err.value.option == option
    assert text in str(err.value)
    label = peer_spec["description"] or (peer_spec["public_key"][:8] + "...")
    if peer_spec["public_key"] != "not-a-key":
        assert label in str(err.value)


def test_same_network_twice_for_one_peer_is_collapsed_not_an_error():
    desired = itf.build_desired(params(peers=[peer(PEER_A, ["10.66.3.2/32", "10.66.3.2/32"])]))
    assert desired.peers[PEER_A].allowed_ips == ["10.66.3.2/32"]


def test_host_bits_in_allowed_ips_are_masked_like_wg_does():
    desired = itf.build_desired(params(peers=[peer(PEER_A, ["10.70.1.2/16", "fd66:3::2:1/112"])]))
    assert desired.peers[PEER_A].allowed_ips == ["10.70.0.0/16", "fd66:3::2:0/112"]


# ---------------------------------------------------------------------------------------------
# routes and rules derived from table/routing
# ---------------------------------------------------------------------------------------------

def routes_of(desired):
    return sorted((r.family, r.table, r.dst, r.kind) for r in desired.routes.elements())


def rules_of(desired):
    return sorted(" ".join(itf.rule_argv(r)[1:2] + itf.rule_argv(r)[4:]) for r in desired.rules.elements())


def test_auto_routes_only_what_the_connected_prefixes_do_not_cover():
    desired = itf.build_desired(params())
    # 10.66.3.2/32, .3/32 and fd66:3::2/128 are inside the interface's own prefixes
    assert routes_of(desired) == [(4, "main", "10.70.0.0/16", "unicast")]
    assert not desired.rules and desired.tunnel_table is None and desired.fwmark is None
    assert not desired.sysctls


def test_auto_full_tunnel_ipv4_and_ipv6_like_wg_quick():
    desired = itf.build_desired(params(addresses=["10.66.3.2/32", "fd66:3::2/128"], listen_port=None,
                                       peers=[peer(PEER_A, ["0.0.0.0/0", "::/0"], endpoint="[fd42:7467:3::10]:51820")]))
    assert desired.fwmark == 51820 and desired.tunnel_table == "51820"
    assert routes_of(desired) == [(4, "51820", "0.0.0.0/0", "unicast"), (6, "51820", "::/0", "unicast")]
    assert rules_of(desired) == [
        "-4 not fwmark 51820 table 51820 priority 10001",
        "-4 table main suppress_prefixlength 0 priority 10000",
        "-6 not fwmark 51820 table 51820 priority 10001",
        "-6 table main suppress_prefixlength 0 priority 10000",
    ]
    assert desired.sysctls == {"net.ipv4.conf.all.src_valid_mark": "1"}


def test_auto_full_tunnel_ipv6_only_needs_no_ipv4_sysctl_and_honours_fwmark():
    desired = itf.build_desired(params(fwmark=4242, peers=[peer(PEER_A, ["::/0"])]))
    assert desired.tunnel_table == "4242" and desired.fwmark == 4242
    assert rules_of(desired) == ["-6 not fwmark 4242 table 4242 priority 10001",
                                 "-6 table main suppress_prefixlength 0 priority 10000"]
    assert desired.sysctls == {}


def test_numeric_table_with_routing_sources_and_exclusions():
    routing = {"sources": ["172.18.0.0/16", "fd00:18::/64"], "exclude": ["192.168.0.0/16", "fd00:1::/64"],
               "priority": 2000}
    desired = itf.build_desired(params(table="1066", routing=routing, peers=[
        peer(PEER_A, ["0.0.0.0/0", "::/0"]),
    ]))
    assert desired.tunnel_table == "1066" and desired.fwmark is None
    assert routes_of(desired) == [
        (4, "1066", "0.0.0.0/0", "unicast"), (4, "1066", "192.168.0.0/16", "throw"),
        (6, "1066", "::/0", "unicast"), (6, "1066", "fd00:1::/64", "throw"),
    ]
    assert rules_of(desired) == ["-4 from 172.18.0.0/16 table 1066 priority 2002",
                                 "-6 from fd00:18::/64 table 1066 priority 2002"]


def test_numeric_table_collapses_adjacent_allowed_ips():
    desired = itf.build_desired(params(table="100", peers=[
        peer(PEER_A, ["10.66.3.2/32", "10.66.3.3/32"]), peer(PEER_B, ["10.66.3.0/31"]),
    ]))
    assert routes_of(desired) == [(4, "100", "10.66.3.0/30", "unicast")]


def test_table_off_has_no_routes():
    desired = itf.build_desired(params(table="off", peers=[peer(PEER_A, ["0.0.0.0/0"])]))
    assert not desired.routes and not desired.rules and desired.fwmark is None


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------

def full_tunnel_params(**extra):
    return params(addresses=["10.66.3.2/32", "fd66:3::2/128"], listen_port=None, mtu=1380, dns=["10.66.3.1"],
                  routing={"sources": ["172.18.0.0/16"], "exclude": ["192.168.0.0/16"], "priority": 10000},
                  peers=[peer(PEER_A, ["0.0.0.0/0", "::/0"], endpoint="vpn.example.org:51820", persistent_keepalive=25,
                              preshared_key_path="/etc/wireguard/keys/a.psk", description="exit")], **extra)


def test_render_has_no_key_material_and_table_off():
    desired = itf.build_desired(full_tunnel_params())
    text = itf.render_desired(desired)
    conf = parse_config(text)
    assert conf.interface_value("Table") == "off"
    assert conf.interface_value("PrivateKey") is None
    assert all(k.lower() != "presharedkey" for p in conf.peers for k, dummy_value in p["items"])
    post_up = conf.interface_values("PostUp")
    assert post_up[0] == "wg set %i private-key /etc/wireguard/keys/wg0.key"
    assert "wg set %%i peer %s preshared-key /etc/wireguard/keys/a.psk" % PEER_A in post_up
    # the sysctl is only written when it differs (read-only /proc/sys in containers)
    assert ("grep -qx 1 /proc/sys/net/ipv4/conf/all/src_valid_mark || "
            "sysctl -q -w net.ipv4.conf.all.src_valid_mark=1") in post_up
    assert "ip -4 route replace 0.0.0.0/0 dev %i table 51820" in post_up
    assert "ip -4 route replace throw 192.168.0.0/16 table 51820" in post_up
    assert "ip -4 rule add not fwmark 51820 table 51820 priority 10001" in post_up
    assert "ip -4 rule add from 172.18.0.0/16 table 51820 priority 10002" in post_up
    post_down = conf.interface_values("PostDown")
    assert "ip -4 rule del from 172.18.0.0/16 table 51820 priority 10002 || true" in post_down
    assert "ip -4 route del throw 192.168.0.0/16 table 51820 || true" in post_down
    assert conf.meta["table"] == "51820"
    assert all("#" not in value for dummy_key, value in conf.interface)  # wg-quick would cut it as a comment


def test_render_round_trips_through_the_parser():
    desired = itf.build_desired(full_tunnel_params())
    conf = parse_config(itf.render_desired(desired))
    assert conf.interface_value("Address") == "10.66.3.2/32, fd66:3::2/128"
    assert conf.interface_value("MTU") == "1380"
    assert conf.interface_value("FwMark") == "51820"
    assert conf.interface_value("DNS") == "10.66.3.1"
    assert conf.peers == [{"description": "exit", "items": [
        ("PublicKey", PEER_A), ("AllowedIPs", "0.0.0.0/0, ::/0"), ("Endpoint", "vpn.example.org:51820"),
        ("PersistentKeepalive", "25")]}]
    assert itf.previous_tables(itf.render_desired(desired)) == {"51820"}
    assert itf.previous_tables(itf.render_desired(itf.build_desired(params()))) == set()


@pytest.mark.skipif(not shutil.which("wg-quick") or not shutil.which("wg"), reason="wireguard-tools not installed")
def test_wg_quick_strip_accepts_the_rendered_file(tmp_path):
    path = tmp_path / "wg7.conf"
    path.write_text(itf.render_desired(itf.build_desired(full_tunnel_params(name="wg7"))))
    stripped = subprocess.run(["wg-quick", "strip", str(path)], capture_output=True, text=True, check=True).stdout
    lines = [line for line in stripped.splitlines() if line and not line.startswith("#")]
    assert not [line for line in lines if line.split(" ")[0] in ("PostUp", "PreUp", "PostDown", "Table", "Address")]
    assert "PublicKey = %s" % PEER_A in stripped
    assert "FwMark = 51820" in stripped


def test_dropin_keeps_the_private_key_on_reload_without_putting_it_in_argv():
    desired = itf.build_desired(params())
    text = itf.render_dropin(desired, "userspace")
    assert "Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go" in text
    assert "ExecReload=\n" in text  # resets the stock syncconf reload that wipes the key
    assert '"$$(< /etc/wireguard/keys/wg0.key)"' in text  # bash builtin read, systemd-escaped
    assert "KERNEL" not in text.upper().replace("WG-QUICK", "")
    assert itf.KERNEL_ONLY_SENTINEL in itf.render_dropin(desired, "kernel")
    assert "Environment" not in itf.render_dropin(desired, "auto")


# ---------------------------------------------------------------------------------------------
# a fake host behind the CommandRunner seam
# ---------------------------------------------------------------------------------------------

class FakeRunner:
    """Answers the read commands from a simulated live interface and records every command.

    Mutating commands are applied to the simulation where that matters for the tests
    (wg set, ip address/route/rule), so a second plan after apply must be empty.
    """

    def __init__(self, live=None, binaries=("ip", "wg", "wg-quick", "systemctl", "wireguard-go", "sysctl")):
        self.binaries = set(binaries)
        self.calls = []
        self.stdin = []
        self.live = live  # dict or None (absent)
        self.rules = {4: [], 6: []}
        self.tables = collections.defaultdict(list)  # (family, table) -> route dicts
        self.fail = {}    # argv prefix tuple -> (rc, out, err)
        self.after_wg_set_public_key = None

    def bin_path(self, name, required=True):
        return "/usr/bin/%s" % name if name in self.binaries else None

    def run(self, argv, check=True, data=None, environ=None):
        argv = list(argv)
        self.calls.append(argv)
        self.stdin.append(data)
        for prefix, answer in self.fail.items():
            if tuple(argv[:len(prefix)]) == prefix:
                if check and answer[0] != 0:
                    raise CommandError(argv, *answer)
                return answer
        rc, out = self.answer(argv)
        if check and rc != 0:
            raise CommandError(argv, rc, out, "error")
        return rc, out, ""

    # -- reads ---------------------------------------------------------------------------------
    def answer(self, argv):
        live = self.live
        if argv[:2] == ["ip", "-d"] and argv[2:5] == ["-j", "link", "show"]:
            if not live:
                return 1, ""
            return 0, json.dumps([{"ifname": "wg0", "mtu": live["mtu"],
                                   "linkinfo": {"info_kind": live.get("kind", "tun")}}])
        if argv[:2] == ["wg", "show"] and argv[3] == "dump" and argv[2] != "all":
            if not live or argv[2] != "wg0":
                return 1, ""
            lines = ["%s\t%s\t%s\t%s" % (live["private"] or "(none)", live["public"] or "(none)",
                                         live["port"] or 0, hex(live["fwmark"]) if live["fwmark"] else "off")]
            for key, p in live["peers"].items():
                lines.append("\t".join([key, p.get("psk") or "(none)", p.get("endpoint") or "(none)",
                                        ",".join(p["allowed"]) or "(none)", "0", "0", "0",
                                        str(p.get("keepalive") or "off")]))
            return 0, "\n".join(lines) + "\n"
        if argv[:3] == ["ip", "-j", "addr"]:
            if not live:
                return 1, ""
            infos = [{"local": a.split("/")[0], "prefixlen": int(a.split("/")[1]), "scope": "global"}
                     for a in live["addresses"]] + [{"local": "fe80::1", "prefixlen": 64, "scope": "link"}]
            return 0, json.dumps([{"ifname": "wg0", "mtu": live["mtu"], "addr_info": infos}])
        if argv[:2] == ["ip", "-j"] and argv[3:5] == ["route", "show"]:
            family = int(argv[2][1])
            table = argv[6]
            routes = list(self.tables[(family, table)])
            if table == "main" and live:
                for addr in live["addresses"]:
                    net = ipaddress.ip_interface(addr).network
                    if net.version == family:
                        routes.append({"dst": str(net), "dev": "wg0", "protocol": "kernel"})
            if "dev" in argv:
                routes = [r for r in routes if r.get("dev") == argv[argv.index("dev") + 1]]
            return 0, json.dumps(routes)
        if argv[:2] == ["ip", "-j"] and argv[3:5] == ["rule", "show"]:
            family = int(argv[2][1])
            base = [{"priority": 0, "src": "all", "table": "local"}]
            return 0, json.dumps(base + self.rules[family] + [{"priority": 32766, "src": "all", "table": "main"}])
        if argv[:2] == ["systemctl", "is-active"]:
            return 3, "inactive\n"
        if argv[:2] == ["systemctl", "is-enabled"]:
            return 0, "enabled\n"
        return self.mutate(argv)

    # -- writes --------------------------------------------------------------------------------
    def mutate(self, argv):
        live = self.live
        if argv[:2] == ["wg", "set"]:
            self.apply_wg_set(argv[3:])
            return 0, ""
        if argv[:3] == ["ip", "address", "add"]:
            live["addresses"].append(argv[3])
            return 0, ""
        if argv[:3] == ["ip", "address", "del"]:
            live["addresses"].remove(argv[3])
            return 0, ""
        if argv[:4] == ["ip", "link", "set", "dev"]:
            live["mtu"] = int(argv[6])
            return 0, ""
        if argv[0] == "ip" and argv[2] == "route":
            family, action, rest = int(argv[1][1]), argv[3], argv[4:]
            table = rest[rest.index("table") + 1]
            entry = {"type": "throw", "dst": rest[1]} if rest[0] == "throw" else {"dst": rest[0], "dev": rest[2]}
            routes = self.tables[(family, table)]
            if action == "replace" and entry not in routes:
                routes.append(entry)
            elif action == "del" and entry in routes:
                routes.remove(entry)
            return 0, ""
        if argv[0] == "ip" and argv[2] == "rule":
            family, action = int(argv[1][1]), argv[3]
            rule = self.rule_from_argv(argv[4:])
            if action == "add":
                self.rules[family].append(rule)
            elif rule in self.rules[family]:
                self.rules[family].remove(rule)
            return 0, ""
        if argv[:3] == ["ip", "link", "show"]:
            return (0, "wg0") if live else (1, "")
        if argv[:3] == ["ip", "link", "del"]:
            self.live = None
            return 0, ""
        if argv[:2] == ["wg-quick", "down"]:
            self.live = None
            return 0, ""
        if argv[:3] == ["ip", "link", "add"]:
            return 2, ""  # no kernel WireGuard here, as in the lab containers
        if argv[0] in ("sysctl", "systemctl", "wg-quick"):
            return 0, ""
        raise AssertionError("unexpected command %r" % (argv,))

    @staticmethod
    def rule_from_argv(args):
        rule = {}
        i = 0
        while i < len(args):
            word = args[i]
            if word == "not":
                rule["not"] = None
                i += 1
                continue
            value = args[i + 1]
            if word == "from":
                net = ipaddress.ip_network(value)
                rule["src"], rule["srclen"] = str(net.network_address), net.prefixlen
            elif word == "fwmark":
                rule["fwmark"] = hex(int(value))
            elif word == "table":
                rule["table"] = value
            elif word == "suppress_prefixlength":
                rule["suppress_prefixlen"] = int(value)
            elif word == "priority":
                rule["priority"] = int(value)
            i += 2
        rule.setdefault("src", "all")
        return rule

    def apply_wg_set(self, args):
        live = self.live
        i = 0
        current = None
        while i < len(args):
            word = args[i]
            if word == "peer":
                current = live["peers"].setdefault(args[i + 1], {"allowed": []})
                i += 2
                continue
            if word == "remove":
                key = [k for k, v in live["peers"].items() if v is current][0]
                del live["peers"][key]
                i += 1
                continue
            value = args[i + 1]
            if current is None:
                if word == "private-key":
                    content = open(value).read().strip()
                    live["private"] = content
                    live["public"] = self.after_wg_set_public_key or base64.b64encode(
                        public_key(base64.b64decode(content))).decode()
                elif word == "listen-port":
                    live["port"] = int(value)
                elif word == "fwmark":
                    live["fwmark"] = 0 if value == "off" else int(value)
            else:
                if word == "allowed-ips":
                    current["allowed"] = [str(ipaddress.ip_network(v)) for v in value.split(",") if v]
                elif word == "endpoint":
                    current["endpoint"] = value
                elif word == "persistent-keepalive":
                    current["keepalive"] = None if value == "off" else int(value)
                elif word == "preshared-key":
                    current["psk"] = None if value == "/dev/null" else open(value).read().strip()
            i += 2


def live_interface(**overrides):
    live = {
        "private": PRIVATE_B64, "public": PUBLIC_B64, "port": 51820, "fwmark": 0, "mtu": 1420, "kind": "tun",
        "addresses": ["10.66.3.1/24", "fd66:3::1/64"],
        "peers": collections.OrderedDict([
            (PEER_A, {"allowed": ["10.66.3.2/32", "fd66:3::2/128"], "endpoint": "172.30.3.11:40000"}),
            (PEER_B, {"allowed": ["10.66.3.3/32", "10.70.0.0/16"], "endpoint": "[fd42:7467:3::11]:51820",
                      "keepalive": 25}),
        ]),
    }
    live.update(overrides)
    return live


@pytest.fixture
def host(tmp_path):
    (tmp_path / "etc").mkdir()
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "wg0.key").write_text(PRIVATE_B64 + "\n")
    (keys / "other.key").write_text(OTHER_PRIVATE_B64 + "\n")
    (keys / "a.psk").write_text(PSK_B64 + "\n")
    proc = tmp_path / "proc" / "net" / "ipv4" / "conf" / "all"
    proc.mkdir(parents=True)
    (proc / "src_valid_mark").write_text("1\n")
    return itf.Host(config_dir=str(tmp_path / "etc"), systemd_dir=str(tmp_path / "systemd"),
                    proc_sys=str(tmp_path / "proc"), systemd=False)


def run_params(host, **overrides):
    keys = os.path.join(os.path.dirname(host.config_dir), "keys")
    p = params(private_key_path=os.path.join(keys, "wg0.key"), enabled=False, **overrides)
    for entry in p["peers"]:
        if entry.get("preshared_key_path") == "A_PSK":
            entry["preshared_key_path"] = os.path.join(keys, "a.psk")
    return p


def mutating(calls):
    reads = (["ip", "-d"], ["ip", "-j"], ["wg", "show"], ["systemctl", "is-active"], ["systemctl", "is-enabled"])
    return [c for c in calls if not any(c[:len(r)] == r for r in reads)]


def converge(host, runner, **overrides):
    """Write the file as a previous run would have, so the next run is judged on the live state."""
    result = itf.run_interface(run_params(host, **overrides), runner, host=host)
    return result


# ---------------------------------------------------------------------------------------------
# plans (live vs desired)
# ---------------------------------------------------------------------------------------------

def plan_for(runner, p, resolver=None, file_before=None):
    desired = itf.build_desired(p, resolver)
    desired.public_key = PUBLIC_B64
    live = itf.read_live(runner, "wg0", {desired.tunnel_table} if desired.tunnel_table else set())
    text = itf.render_desired(desired)
    return itf.make_plan(desired, live, file_before if file_before is not None else text, text,
                         {desired.tunnel_table} - {None}), live


def test_live_state_is_read_from_dump_and_ip_json():
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    live = itf.read_live(runner, "wg0", set())
    assert live.exists and live.kind == "userspace" and live.mtu == 1420
    assert live.public_key == PUBLIC_B64 and live.listen_port == 51820 and live.fwmark is None
    assert live.address_strings() == ["10.66.3.1/24", "fd66:3::1/64"]  # link-local ignored
    assert live.peers[PEER_B].allowed_ips == ["10.66.3.3/32", "10.70.0.0/16"]
    assert live.routes == collections.Counter({itf.Route(4, "main", "10.70.0.0/16", "unicast"): 1})
    assert itf.Rule(4, 32766, None, "main", None, False, None) in live.rules


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
    desired = itf.build_desired(p)
    itf._read_psks(desired, check_mode=False)
    desired.public_key = PUBLIC_B64
    live = itf.read_live(runner, "wg0", set())
    plan = itf.make_plan(desired, live, "x", "x", set())
    assert plan.wg_args == [["peer", PEER_A, "preshared-key", psk_path]]
    assert PSK_B64 not in json.dumps(plan.tracker.get_before_after())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64
    live = itf.read_live(runner, "wg0", set())
    assert not itf.make_plan(desired, live, "x", "x", set()).wg_args
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
    assert [" ".join(itf.rule_argv(r)) for r in plan.rule_add] == [
        "ip -4 rule add from 172.18.0.0/16 table 1066 priority 10002"]
    assert [" ".join(itf.rule_argv(r, "del")) for r in plan.rule_del] == [
        "ip -4 rule del from 172.19.0.0/16 table 1066 priority 10002"]
    # the main-table route of table=auto goes, table 1066 gets every allowed IP (collapsed)
    assert [(r.table, r.dst) for r in plan.route_del] == [("main", "10.70.0.0/16")]
    assert ("1066", "10.66.3.2/31") in [(r.table, r.dst) for r in plan.route_add]


def test_sysctl_written_only_when_it_differs():
    runner = FakeRunner(live_interface(addresses=["10.66.3.2/32"], port=None,
                                       peers=collections.OrderedDict([(PEER_A, {"allowed": ["0.0.0.0/0"]})])))
    p = params(addresses=["10.66.3.2/32"], listen_port=None, peers=[peer(PEER_A, ["0.0.0.0/0"])])
    desired = itf.build_desired(p)
    desired.public_key = PUBLIC_B64
    live = itf.read_live(runner, "wg0", {"51820"})
    assert itf.make_plan(desired, live, "x", "x", {"51820"}, sysctl_values={itf.SRC_VALID_MARK: "1"}).sysctls == []
    assert itf.make_plan(desired, live, "x", "x", {"51820"}, sysctl_values={itf.SRC_VALID_MARK: "0"}).sysctls == [
        (itf.SRC_VALID_MARK, "1")]


def test_implementation_mismatch_is_the_one_restart():
    runner = FakeRunner(live_interface(kind="wireguard"))
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    plan = plan_for(runner, params(implementation="userspace"))[0]
    assert plan.restart_reasons == ["implementation is kernel, wanted userspace"]
    plan = plan_for(runner, params(implementation="auto"))[0]
    assert not plan.changed


# ---------------------------------------------------------------------------------------------
# whole runs
# ---------------------------------------------------------------------------------------------

def test_check_mode_on_a_fresh_host_without_tools_or_key(host):
    runner = FakeRunner(None, binaries=())
    p = run_params(host)
    p["private_key_path"] = "/nonexistent/wg0.key"
    result = itf.run_interface(p, runner, host=host, check_mode=True)
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
        itf.run_interface(p, FakeRunner(None), host=host)


def test_key_file_with_garbage_names_the_option(host, tmp_path):
    bad = tmp_path / "keys" / "bad.key"
    bad.write_text("not a key\n")
    p = run_params(host)
    p["private_key_path"] = str(bad)
    with pytest.raises(TunnelgateError, match="private_key_path: .* does not hold a WireGuard private key"):
        itf.run_interface(p, FakeRunner(None), host=host)


def test_own_public_key_as_peer_is_refused(host):
    p = run_params(host, peers=[peer(PUBLIC_B64, ["10.66.3.9/32"], description="me")])
    with pytest.raises(TunnelgateError, match="own public key"):
        itf.run_interface(p, FakeRunner(None), host=host)


def test_fresh_host_brings_up_with_wg_quick_and_writes_0600(host):
    runner = FakeRunner(None)

    def wg_quick_up(argv):
        runner.live = live_interface()
        runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
        return 0, ""

    original = runner.mutate
    runner.mutate = lambda argv: wg_quick_up(argv) if argv[:2] == ["wg-quick", "up"] else original(argv)
    result = itf.run_interface(run_params(host), runner, host=host)
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
    first = itf.run_interface(run_params(host), runner, host=host)
    assert first["changes"] == ["write configuration file"]
    runner.calls = []
    second = itf.run_interface(run_params(host), runner, host=host)
    assert not second["changed"] and second["changes"] == []
    assert mutating(runner.calls) == []


def test_live_peer_add_is_applied_without_restart_and_converges(host):
    runner = FakeRunner(live_interface())
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    itf.run_interface(run_params(host), runner, host=host)
    runner.calls = []
    p = run_params(host)
    p["peers"].append(peer(PEER_C, ["10.66.3.4/32", "fd66:3::4/128", "10.90.0.0/16"], description="c",
                           preshared_key_path="A_PSK"))
    p = run_params(host, peers=p["peers"])
    result = itf.run_interface(p, runner, host=host)
    assert result["changed"] and result["restarted"] is False
    assert result["peers_added"] == [{"public_key": PEER_C, "description": "c"}]
    assert not any(c[0] in ("wg-quick", "systemctl") for c in runner.calls)
    wg_sets = [c for c in runner.calls if c[:2] == ["wg", "set"]]
    assert len(wg_sets) == 1 and wg_sets[0][3:5] == ["peer", PEER_C]
    assert ["ip", "-4", "route", "replace", "10.90.0.0/16", "dev", "wg0", "table", "main"] in runner.calls
    assert all(PSK_B64 not in " ".join(c) and PRIVATE_B64 not in " ".join(c) for c in runner.calls)
    assert runner.live["peers"][PEER_C]["psk"] == PSK_B64
    runner.calls = []
    again = itf.run_interface(p, runner, host=host)
    assert not again["changed"], again["changes"]


def test_guard_failure_restores_previous_state_and_fails(host):
    runner = FakeRunner(live_interface(public=OTHER_PUBLIC_B64, private=OTHER_PRIVATE_B64))
    runner.tables[(4, "main")].append({"dst": "10.70.0.0/16", "dev": "wg0", "scope": "link"})
    previous = "# previous file\n[Interface]\nListenPort = 51820\n"
    with open(host.config_path("wg0"), "w") as handle:
        handle.write(previous)
    runner.after_wg_set_public_key = "x" * 43 + "="  # the kernel ends up with something else
    with pytest.raises(TunnelgateError) as err:
        itf.run_interface(run_params(host), runner, host=host)
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
        itf.run_interface(p, runner, host=host)
    assert not os.path.exists(host.config_path("wg0"))


def test_absent_stops_removes_file_and_our_rules_only(host):
    runner = FakeRunner(live_interface())
    text = itf.render_desired(itf.build_desired(run_params(host, table="1066", routing={
        "sources": ["172.18.0.0/16"], "exclude": [], "priority": 10000})))
    with open(host.config_path("wg0"), "w") as handle:
        handle.write(text)
    runner.rules[4] += [{"priority": 10002, "src": "172.18.0.0", "srclen": 16, "table": "1066"},
                        {"priority": 100, "src": "10.0.0.0", "srclen": 8, "table": "200"}]
    result = itf.run_interface({"name": "wg0", "state": "absent"}, runner, host=host, check_mode=True)
    assert result["changed"] and os.path.exists(host.config_path("wg0"))
    assert mutating(runner.calls) == []
    itf.run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
    assert ["wg-quick", "down", "wg0"] in runner.calls
    assert ["ip", "-4", "rule", "del", "from", "172.18.0.0/16", "table", "1066", "priority", "10002"] in runner.calls
    assert not any(c[:3] == ["ip", "-4", "rule"] and "200" in c for c in runner.calls)
    assert not os.path.exists(host.config_path("wg0"))


def test_absent_when_nothing_is_there_is_not_a_change(host):
    runner = FakeRunner(None)
    result = itf.run_interface({"name": "wg0", "state": "absent"}, runner, host=host)
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
    result = itf.run_interface(p, runner, host=host)
    assert started == [["systemctl", "start", "wg-quick@wg0.service"]]
    assert ["systemctl", "daemon-reload"] in runner.calls
    dropin = open(host.dropin_path("wg0")).read()
    assert "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go" in dropin
    assert "write systemd drop-in" in result["changes"]


def test_info_never_returns_secrets():
    runner = FakeRunner(live_interface())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64

    original = runner.answer

    def answer(argv):
        if argv == ["wg", "show", "all", "dump"]:
            rc, out = original(["wg", "show", "wg0", "dump"])
            return rc, "".join("wg0\t" + line + "\n" for line in out.splitlines())
        return original(argv)

    runner.answer = answer
    interfaces, warnings = itf.wireguard_info(runner, now=100)
    assert warnings == []
    wg0 = interfaces["wg0"]
    assert wg0["public_key"] == PUBLIC_B64 and wg0["listen_port"] == 51820 and wg0["mtu"] == 1420
    assert wg0["addresses"] == ["10.66.3.1/24", "fd66:3::1/64"]
    assert wg0["peers"][0]["preshared_key"] is True and wg0["peers"][0]["latest_handshake"] is None
    assert wg0["peers"][1]["endpoint"] == "[fd42:7467:3::11]:51820"
    dumped = json.dumps(interfaces)
    assert PRIVATE_B64 not in dumped and PSK_B64 not in dumped


def test_info_without_wireguard_tools_warns():
    interfaces, warnings = itf.wireguard_info(FakeRunner(None, binaries=()))
    assert interfaces == {} and "not installed" in warnings[0]

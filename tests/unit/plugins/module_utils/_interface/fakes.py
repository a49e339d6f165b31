# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared test data and a fake host behind the CommandRunner seam for the interface package's tests."""

from __future__ import annotations

import base64
import collections
import ipaddress
import json
import os
import shlex

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface
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
        self.unit_status = "inactive"  # what systemctl is-active says

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
            flags = ["POINTOPOINT", "NOARP"] + (["UP", "LOWER_UP"] if live.get("up", True) else [])
            return 0, json.dumps([{"ifname": "wg0", "mtu": live["mtu"], "flags": flags,
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
            return (0 if self.unit_status == "active" else 3), self.unit_status + "\n"
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
            if rest[0] in ("throw", "unreachable"):
                entry = {"type": rest[0], "dst": rest[1]}
            else:
                entry = {"dst": rest[0], "dev": rest[2]}
                if action == "replace" and live and not live.get("up", True):
                    return 2, "Error: Device for nexthop is not up."
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
                mark, _sep, mask = value.partition("/")
                rule["fwmark"] = hex(int(mark, 0))
                if mask and int(mask, 0) != 0xFFFFFFFF:  # iproute2 prints a mask only when it is not all ones
                    rule["fwmask"] = hex(int(mask, 0))
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


def wg_quick_up(runner, path, **overrides):
    """What ``wg-quick up`` does with one of our files: the interface from [Interface]/[Peer], then the
    PostUp hooks that are ``ip``/``wg`` commands (the sysctl hook is left out: no /proc here)."""
    conf = parse_config(open(path).read())
    address = conf.interface_value("Address")
    port = conf.interface_value("ListenPort")
    runner.live = live_interface(
        private=None, public=None, port=int(port) if port else None, fwmark=int(conf.interface_value("FwMark") or 0),
        addresses=[a.strip() for a in address.split(",")] if address else [],
        peers=collections.OrderedDict(
            (dict(p["items"])["PublicKey"], {
                "allowed": [str(ipaddress.ip_network(a.strip())) for a in dict(p["items"]).get("AllowedIPs", "").split(",")
                            if a.strip()],
                "endpoint": dict(p["items"]).get("Endpoint"),
                "keepalive": int(dict(p["items"])["PersistentKeepalive"]) if "PersistentKeepalive" in dict(p["items"]) else None,
            }) for p in conf.peers),
        **overrides)
    for hook in conf.interface_values("PostUp"):
        argv = shlex.split(hook.replace("%i", "wg0"))
        if argv[0] in ("ip", "wg"):
            runner.run(argv)


def live_interface(**overrides):
    live = {
        "private": PRIVATE_B64, "public": PUBLIC_B64, "port": 51820, "fwmark": 0, "mtu": 1420, "kind": "tun", "up": True,
        "addresses": ["10.66.3.1/24", "fd66:3::1/64"],
        "peers": collections.OrderedDict([
            (PEER_A, {"allowed": ["10.66.3.2/32", "fd66:3::2/128"], "endpoint": "172.30.3.11:40000"}),
            (PEER_B, {"allowed": ["10.66.3.3/32", "10.70.0.0/16"], "endpoint": "[fd42:7467:3::11]:51820",
                      "keepalive": 25}),
        ]),
    }
    live.update(overrides)
    return live


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
    result = run_interface(run_params(host, **overrides), runner, host=host)
    return result

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rule sets by purpose (open ports, forwarding + NAT, MSS clamping, inbound connection
marks): input validation and the rules, as a rule set of the rules engine (``_rules``).

Private to the collection (leading underscore): not a public API.

Each named set (``server``, ``lockout``...) owns its chains: iptables ``TG-<NAME>-*`` in the
filter, nat and mangle tables, each hooked by one jump at the top of a built-in chain; nftables
its own table ``inet tunnelgate_<name>``. So several roles can each manage a set without
touching each other's (or anyone else's) rules.
"""

from __future__ import annotations

import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.engine import RulesEngine
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import (
    BACKENDS,
    HOOKS,
    Chain,
    RuleSet,
    address,
    interface,
    mark_value,
    mark_verdict,
    network,
    port,
)

RULES_DIR = "/etc/tunnelgate/firewall"
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,11}")  # fullmatch
PROTOCOLS = {"tcp": ("tcp",), "udp": ("udp",), "both": ("tcp", "udp")}
# Connection marks: one bit, outside kube-proxy's 0x4000/0x8000, Cilium's 0x0F00 and the bits of
# WireGuard's (wg-quick's) 0xca6c fwmark, and below the upper half that Calico takes by default.
DEFAULT_MARK = 0x1000
KNOWN_MARKS = (
    (0xC000, "kube-proxy (0x4000 masquerade, 0x8000 drop)"),
    (0x0F00, "Cilium (0x0F00)"),
    (0xCA6C, "WireGuard's default fwmark 0xca6c"),
)

# Purpose -> (hook of model.HOOKS, iptables chain suffix, nftables chain name), in evaluation order.
# (The server role's templated rules of earlier versions used TG-SERVER-INPUT/-FORWARD/-NAT: other names,
# so the engine removes those as chains the set no longer wants, in the same transaction.)
PURPOSES = (
    ("filter_input", "input", "IN", "filter_input"),
    ("filter_forward", "forward", "FWD", "filter_forward"),
    ("nat_prerouting", "prerouting-nat", "DNAT", "nat_prerouting"),
    ("nat_postrouting", "postrouting-nat", "SNAT", "nat_postrouting"),
    ("mangle_forward", "forward-mangle", "MSS", "mangle_forward"),
    ("mangle_prerouting", "prerouting-mangle", "MARK-PRE", "mangle_prerouting"),
    ("mangle_input", "input-mangle", "MARK-IN", "mangle_input"),
    ("route_output", "output-route", "MARK-OUT", "route_output"),
)


def _list(params, key):
    value = params.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TunnelgateError(key, "must be a list")
    return value


def _dict_item(option, value):
    if not isinstance(value, dict):
        raise TunnelgateError(option, "must be a dictionary, got %r" % (value,))
    return value


def _known_keys(option, item, allowed):
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise TunnelgateError(option, "unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(allowed))))


class FirewallSpec:
    """The validated desired state of one named rule set. Raises TunnelgateError naming the option."""

    def __init__(self, params):
        self.name = params.get("name")
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise TunnelgateError(
                "name", "%r is not a rule set name (1-12 of a-z 0-9 _, starting with a letter, e.g. server)" % (self.name,))
        self.state = params.get("state") or "present"
        self.backend = params.get("backend") or "iptables"
        if self.backend not in BACKENDS:
            raise TunnelgateError("backend", "must be one of %s" % ", ".join(BACKENDS))
        self.persist = bool(params.get("persist", True))
        self.warnings = []
        self.input = [self._input(i, _dict_item("input[%d]" % i, v)) for i, v in enumerate(_list(params, "input"))]
        self.forward = [self._forward(i, _dict_item("forward[%d]" % i, v)) for i, v in enumerate(_list(params, "forward"))]
        self.mss_clamp = [interface("mss_clamp", v) for v in _list(params, "mss_clamp")]
        self.connmark = self._connmark(params.get("inbound_connmark"))
        self.dns_redirect = [self._dns_redirect(i, _dict_item("dns_redirect[%d]" % i, v))
                             for i, v in enumerate(_list(params, "dns_redirect"))]

    @staticmethod
    def _input(index, item):
        where = "input[%d]" % index
        _known_keys(where, item, ("port", "proto", "interfaces", "sources"))
        if item.get("port") is None:
            raise TunnelgateError(where + ".port", "is required")
        proto = item.get("proto") or "tcp"
        if proto not in PROTOCOLS:
            raise TunnelgateError(where + ".proto", "%r must be one of tcp, udp, both" % (proto,))
        return {
            "port": port(where + ".port", item["port"]),
            "protos": PROTOCOLS[proto],
            "interfaces": [interface(where + ".interfaces", v, allow_lo=True) for v in item.get("interfaces") or []],
            "sources": [network(where + ".sources", v) for v in item.get("sources") or []],
        }

    @staticmethod
    def _forward(index, item):
        where = "forward[%d]" % index
        _known_keys(where, item, ("in_interface", "out_interface", "sources", "masquerade", "snat"))
        for key in ("in_interface", "out_interface"):
            if not item.get(key):
                raise TunnelgateError("%s.%s" % (where, key), "is required (the tunnel and the uplink interface)")
        entry = {
            "in": interface(where + ".in_interface", item["in_interface"]),
            "out": interface(where + ".out_interface", item["out_interface"]),
            "sources": [network(where + ".sources", v) for v in item.get("sources") or []],
            "masquerade": bool(item.get("masquerade", False)),
            "snat": [address(where + ".snat", v) for v in item.get("snat") or []],
        }
        if entry["in"] == entry["out"]:
            raise TunnelgateError(where + ".out_interface", "is the same as in_interface (%s)" % entry["in"])
        if entry["masquerade"] and entry["snat"]:
            raise TunnelgateError(where + ".snat", "masquerade and snat exclude each other; choose one")
        if (entry["masquerade"] or entry["snat"]) and not entry["sources"]:
            raise TunnelgateError(where + ".sources", "name the tunnel subnets whose traffic is translated (NAT)")
        for family in (4, 6):
            addresses = [a for a in entry["snat"] if a.version == family]
            if len(addresses) > 1:
                raise TunnelgateError(where + ".snat", "give at most one IPv%d address" % family)
            if entry["snat"] and not addresses and any(n.version == family for n in entry["sources"]):
                raise TunnelgateError(where + ".snat", "no IPv%d address for the IPv%d sources" % (family, family))
        return entry

    @staticmethod
    def _dns_redirect(index, item):
        where = "dns_redirect[%d]" % index
        _known_keys(where, item, ("sources", "to"))
        sources = [network(where + ".sources", v) for v in item.get("sources") or []]
        if not sources:
            raise TunnelgateError(where + ".sources", "name the source networks (CIDR) whose DNS is redirected")
        targets = [address(where + ".to", v) for v in item.get("to") or []]
        if not targets:
            raise TunnelgateError(where + ".to", "name the resolver(s) the DNS is sent to (one per family)")
        for family in (4, 6):
            if len([a for a in targets if a.version == family]) > 1:
                raise TunnelgateError(where + ".to", "give at most one IPv%d address" % family)
        return {"sources": sources, "to": targets}

    def _connmark(self, value):
        if value is None or value is False:
            return None
        item = _dict_item("inbound_connmark", value)
        _known_keys("inbound_connmark", item, ("enabled", "tunnel_interfaces", "mark", "mask"))
        if not item.get("enabled", True):
            return None
        tunnels = [interface("inbound_connmark.tunnel_interfaces", v) for v in item.get("tunnel_interfaces") or []]
        if not tunnels:
            raise TunnelgateError(
                "inbound_connmark.tunnel_interfaces",
                "name the tunnel interface(s): connections that arrive on them are not marked")
        raw_mark, raw_mask = item.get("mark"), item.get("mask")
        mark = mark_value("inbound_connmark.mark", DEFAULT_MARK if raw_mark is None else raw_mark, allow_zero=False)
        mask = mark_value("inbound_connmark.mask", mark if raw_mask is None else raw_mask, allow_zero=False)
        if mark & ~mask:
            raise TunnelgateError("inbound_connmark.mark", "0x%x has bits outside the mask 0x%x" % (mark, mask))
        for bits, owner in KNOWN_MARKS:
            if mask & bits:
                self.warnings.append("inbound_connmark.mask: 0x%x shares bits with %s; make sure nothing else on this "
                                     "host uses them" % (mask, owner))
        return {"tunnels": tunnels, "mark": mark, "mask": mask}

    # ----------------------------------------------------------------------- the rules, by purpose

    def rules(self):
        """{purpose: [rule dicts]} for the purposes that have rules."""
        purposes = {}
        for entry in self.input:
            rules = purposes.setdefault("filter_input", [])
            for proto in entry["protos"]:
                for iface in entry["interfaces"] or [None]:
                    for source in entry["sources"] or [None]:
                        rule = {"proto": proto, "dport": entry["port"]}
                        if iface:
                            rule["iif"] = iface
                        if source is not None:
                            rule.update(family=source.version, saddr=str(source))
                        rule["verdict"] = "accept"
                        rules.append(rule)
        for entry in self.forward:
            rules = purposes.setdefault("filter_forward", [])
            for source in entry["sources"] or [None]:
                out = {"iif": entry["in"], "oif": entry["out"], "verdict": "accept"}
                back = {"iif": entry["out"], "oif": entry["in"], "ctstate": "established,related", "verdict": "accept"}
                if source is not None:
                    out.update(family=source.version, saddr=str(source))
                    back.update(family=source.version, daddr=str(source))
                rules += [out, back]
            if entry["masquerade"] or entry["snat"]:
                nat = purposes.setdefault("nat_postrouting", [])
                for source in entry["sources"]:
                    snat = [a for a in entry["snat"] if a.version == source.version]
                    verdict = "snat %s" % snat[0] if snat else "masquerade"
                    nat.append({"family": source.version, "saddr": str(source), "oif": entry["out"], "verdict": verdict})
        for entry in self.dns_redirect:
            # Plain DNS (port 53, UDP and TCP) from the sources, to whatever resolver, goes to the given one
            # instead (before routing: the new destination is routed and filtered as such). A source family
            # without a resolver of its own family is left alone (a kill switch decides about it).
            for source in entry["sources"]:
                for target in (a for a in entry["to"] if a.version == source.version):
                    for proto in ("udp", "tcp"):
                        purposes.setdefault("nat_prerouting", []).append(
                            {"family": source.version, "saddr": str(source), "proto": proto, "dport": 53,
                             "verdict": "dnat %s" % target})
        for iface in self.mss_clamp:
            purposes.setdefault("mangle_forward", []).append(
                {"oif": iface, "proto": "tcp", "tcpflags": "syn/rst,syn", "verdict": "clampmss"})
        if self.connmark:
            mark, mask = self.connmark["mark"], self.connmark["mask"]
            returns = [{"iif": "lo", "verdict": "return"}]
            returns += [{"iif": iface, "verdict": "return"} for iface in self.connmark["tunnels"]]
            # The PACKET mark, before the input route lookup, on packets for this host in the original
            # direction. (1) With net.ipv4.tcp_fwmark_accept=1 a socket accepted from a marked SYN carries
            # the mark (SO_MARK), so the socket's FIRST route lookup (the SYN-ACK's) and every later one
            # already use it: the restore in mangle OUTPUT comes after that lookup, too late when the lookup
            # fails (the kill switch's routing lock prohibits it while the tunnel is down). (2) With
            # src_valid_mark=1 (a full tunnel sets it) strict reverse-path filtering (rp_filter=1) checks
            # the source with the mark, i.e. by the main table, not by the tunnel's default route.
            purposes["mangle_prerouting"] = returns + [
                {"daddrtype": "local", "ctdir": "original", "verdict": mark_verdict("mark", mark, mask)}]
            # By direction, not ``ctstate new``: a connection opened before these rules (the controller's
            # SSH master connection, a long-lived stream) is marked by its next packet from the peer too.
            purposes["mangle_input"] = returns + [{"ctdir": "original", "verdict": mark_verdict("ctmark", mark, mask)}]
            purposes["route_output"] = [{"ctmark": mark, "ctmarkmask": mask, "verdict": mark_verdict("mark", mark, mask)}]
        return purposes


class FirewallRules(RuleSet):
    """One named firewall set as a rule set of the rules engine."""

    tables = ("filter", "nat", "mangle")
    managed_by = "tunnelgate.wireguard.firewall"
    docs = "rules-engine.md"
    prune_dir = True

    def __init__(self, spec):
        self.spec = spec
        self.prefix = "TG-%s-" % spec.name.upper()
        self.nft_table = "tunnelgate_%s" % spec.name
        self.stem = spec.name
        self.unit = "tunnelgate-firewall-%s.service" % spec.name
        self.description = "tunnelgate firewall rule set %s (%s)" % (spec.name, spec.backend)
        self._rules = spec.rules() if spec.state == "present" else {}

    def chains(self, backend):
        chains = []
        for purpose, hook, ipt_suffix, nft_name in PURPOSES:
            if purpose not in self._rules:
                continue
            table, ipt_chain, kind, nft_hook, priority = HOOKS[hook]
            if backend == "iptables":
                chains.append(Chain(self.prefix + ipt_suffix, self._rules[purpose], table=table, hook=ipt_chain))
            else:
                chains.append(Chain(nft_name, self._rules[purpose], hook=nft_hook, kind=kind, priority=priority))
        return chains

    def owns(self, backend, name):
        if backend == "iptables":
            return self.prefix_owns(name)
        return True  # the whole table is ours

    def prefix_owns(self, name):
        return name.startswith(self.prefix)


def run_module(module, runner, rules_dir=RULES_DIR, unit_dir=None):
    """Entry point for the thin module: returns the result dict (raises TunnelgateError)."""
    spec = FirewallSpec(module.params)
    for warning in spec.warnings:
        module.warn(warning)
    kwargs = {"unit_dir": unit_dir} if unit_dir else {}
    ruleset = FirewallRules(spec)
    engine = RulesEngine(ruleset, spec.backend, spec.state == "present", runner, rules_dir,
                         persist=spec.persist, module=module, **kwargs)
    result = engine.run(module)
    result.update(name=spec.name, state=spec.state, table=ruleset.nft_table if spec.backend == "nftables" else None)
    if spec.connmark and spec.state == "present":
        result["connmark"] = {"mark": spec.connmark["mark"], "mask": spec.connmark["mask"],
                              "fwmark": "0x%x/0x%x" % (spec.connmark["mark"], spec.connmark["mask"])}
    else:
        result["connmark"] = None
    return result

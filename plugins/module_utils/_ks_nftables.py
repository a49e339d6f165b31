# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch, nftables backend: our own ``inet tunnelgate`` table.

Private to the collection (leading underscore): not a public API.

One table of family ``inet`` covers IPv4 and IPv6 in the same rules. Each mode owns its chains
(host: ``host_output`` + ``host_dns``; forward: ``forward`` + ``forward_egress`` + ``forward_dns``),
so the two modes can coexist. Our base chains sit on the output/forward hooks next to everyone
else's: an ``accept`` in our table only ends OUR evaluation (other tables still decide), a ``drop``
or ``reject`` is final for the packet. Nothing outside our table is touched.
"""

from __future__ import annotations

import ipaddress
import json
import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import (
    NFT_HOOKS,
    NFT_TABLE,
    build_chains,
    chain_order,
    rules_equal,
)

_ICMPV6_TYPES = {
    "destination-unreachable": 1,
    "packet-too-big": 2,
    "time-exceeded": 3,
    "parameter-problem": 4,
    "echo-request": 128,
    "echo-reply": 129,
    "nd-router-solicit": 133,
    "nd-router-advert": 134,
    "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136,
    "nd-redirect": 137,
}
_L4 = {"ipv6-icmp": "icmpv6", "icmpv6": "icmpv6", 58: "icmpv6", 6: "tcp", 17: "udp"}


def base_spec(mode):
    return {"type": "filter", "hook": NFT_HOOKS[mode], "prio": 0, "policy": "accept"}


# --------------------------------------------------------------------------- parsing


def parse_ruleset(text, table=NFT_TABLE):
    """``nft -j list table inet tunnelgate`` (or ``list ruleset``) into chains and rule models."""
    chains, rules = {}, {}
    if not (text or "").strip():
        return {"chains": chains, "rules": rules}
    for item in json.loads(text).get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            if chain.get("family") != "inet" or chain.get("table") != table:
                continue
            spec = {k: chain[k] for k in ("type", "hook", "prio", "policy") if k in chain}
            chains[chain["name"]] = spec
            rules.setdefault(chain["name"], [])
        elif "rule" in item:
            rule = item["rule"]
            if rule.get("family") != "inet" or rule.get("table") != table:
                continue
            rules.setdefault(rule["chain"], []).append(parse_rule(rule.get("expr", [])))
    return {"chains": chains, "rules": rules}


def _network(right):
    if isinstance(right, dict) and "prefix" in right:
        return str(ipaddress.ip_network("%s/%s" % (right["prefix"]["addr"], right["prefix"]["len"]), strict=False))
    if isinstance(right, str):
        return str(ipaddress.ip_network(right, strict=False))
    raise ValueError("not an address: %r" % (right,))


def _flags(right):
    if isinstance(right, dict) and "set" in right:
        right = right["set"]
    if isinstance(right, str):
        right = [right]
    return ",".join(sorted(str(v) for v in right))


def _set(rule, key, value):
    if key in rule and rule[key] != value:
        raise ValueError("conflicting %s" % key)
    rule[key] = value


def _match(rule, match):
    if match.get("op") not in ("==", "in"):
        raise ValueError("operator")
    left, right = match["left"], match["right"]
    if "meta" in left:
        key = left["meta"]["key"]
        if key in ("oifname", "iifname"):
            name = right[:-1] + "+" if right.endswith("*") and not right.endswith("\\*") else right
            _set(rule, "oif" if key == "oifname" else "iif", name)
        elif key == "nfproto":
            _set(rule, "family", {"ipv4": 4, "ipv6": 6}[right])
        elif key == "l4proto":
            _set(rule, "proto", _L4.get(right, right))
        elif key == "mark":
            _set(rule, "mark", int(right))
        else:
            raise ValueError("meta %s" % key)
    elif "payload" in left:
        proto, field = left["payload"]["protocol"], left["payload"]["field"]
        if proto in ("ip", "ip6") and field in ("saddr", "daddr"):
            _set(rule, "family", 4 if proto == "ip" else 6)
            _set(rule, field, _network(right))
        elif proto == "ip6" and field == "hoplimit":
            _set(rule, "family", 6)
            _set(rule, "hoplimit", int(right))
        elif proto in ("tcp", "udp") and field in ("sport", "dport"):
            _set(rule, "proto", proto)
            _set(rule, field, int(right))
        elif proto == "icmpv6" and field == "type":
            _set(rule, "family", 6)
            _set(rule, "proto", "icmpv6")
            _set(rule, "icmpv6type", right if isinstance(right, int) else _ICMPV6_TYPES[right])
        else:
            raise ValueError("payload %s %s" % (proto, field))
    elif "ct" in left:
        key = left["ct"]["key"]
        if key == "state":
            _set(rule, "ctstate", _flags(right))
        elif key == "direction":
            _set(rule, "ctdir", right)
        else:
            raise ValueError("ct %s" % key)
    else:
        raise ValueError("match")


def parse_rule(exprs):
    """One rule's JSON statements into the model dict of ``_killswitch``."""
    rule = {}
    try:
        for stmt in exprs:
            if "match" in stmt:
                _match(rule, stmt["match"])
            elif "counter" in stmt:
                continue
            elif set(stmt) & {"accept", "drop", "return"}:
                _set(rule, "verdict", next(iter(set(stmt) & {"accept", "drop", "return"})))
            elif "jump" in stmt or "goto" in stmt:
                kind = "jump" if "jump" in stmt else "goto"
                _set(rule, "verdict", "%s %s" % (kind, stmt[kind]["target"]))
            elif "reject" in stmt:
                spec = stmt["reject"] or {}
                plain = spec.get("type") == "icmpx" and spec.get("expr") == "admin-prohibited"
                _set(rule, "verdict", "reject" if plain else "reject " + json.dumps(spec, sort_keys=True))
            else:
                raise ValueError("statement")
        if "verdict" not in rule:
            raise ValueError("no verdict")
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"unknown": json.dumps(exprs, sort_keys=True)}
    return rule


# --------------------------------------------------------------------------- rendering


def render_rule(rule):
    """Model dict to an nft rule statement."""
    if "unknown" in rule:
        return "# unparsed: %s" % rule["unknown"]
    parts = []
    family = rule.get("family")
    implied = any(k in rule for k in ("saddr", "daddr", "hoplimit", "icmpv6type"))
    if family and not implied:
        parts.append("meta nfproto ipv%d" % family)
    for key, word in (("iif", "iifname"), ("oif", "oifname")):
        if key in rule:
            name = rule[key]
            parts.append('%s "%s"' % (word, name[:-1] + "*" if name.endswith("+") else name))
    for key in ("saddr", "daddr"):
        if key in rule:
            net = ipaddress.ip_network(rule[key])
            value = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
            parts.append("%s %s %s" % ("ip" if net.version == 4 else "ip6", key, value))
    proto = rule.get("proto")
    if proto in ("tcp", "udp") and ("sport" in rule or "dport" in rule):
        for key in ("sport", "dport"):
            if key in rule:
                parts.append("%s %s %d" % (proto, key, rule[key]))
    elif proto == "icmpv6" and "icmpv6type" in rule:
        parts.append("icmpv6 type %d" % rule["icmpv6type"])
    elif proto:
        parts.append("meta l4proto %s" % ("ipv6-icmp" if proto == "icmpv6" else proto))
    if "hoplimit" in rule:
        parts.append("ip6 hoplimit %d" % rule["hoplimit"])
    if "mark" in rule:
        parts.append("meta mark 0x%08x" % rule["mark"])
    if "ctdir" in rule:
        parts.append("ct direction %s" % rule["ctdir"])
    if "ctstate" in rule:
        parts.append("ct state %s" % rule["ctstate"])
    verdict = rule["verdict"]
    parts.append("reject with icmpx type admin-prohibited" if verdict == "reject" else verdict)
    return " ".join(parts)


def _chain_decl(name, spec):
    if not spec:
        return "add chain inet %s %s" % (NFT_TABLE, name)
    return "add chain inet %s %s { type %s hook %s priority %d; policy %s; }" % (
        NFT_TABLE, name, spec["type"], spec["hook"], spec["prio"], spec["policy"])


def render_file(mode, chains):
    """The ``nft -f`` file: idempotent (add/flush/add), atomic, loaded at boot AND on apply."""
    top = chains[0][0]
    lines = [
        "#!/usr/sbin/nft -f",
        "# Managed by tunnelgate.wireguard.killswitch (mode %s): loaded at boot and on every apply." % mode,
        "add table inet %s" % NFT_TABLE,
    ]
    lines += [_chain_decl(name, base_spec(mode) if name == top else None) for name, _rules in chains]
    lines += ["flush chain inet %s %s" % (NFT_TABLE, name) for name, _rules in chains]
    for name, rules in chains:
        lines += ["add rule inet %s %s %s" % (NFT_TABLE, name, render_rule(r)) for r in rules]
    return "\n".join(lines) + "\n"


def _describe(name, spec, rules):
    head = "chain %s" % name
    if spec:
        head += " { type %s hook %s priority %s; policy %s; }" % (
            spec.get("type"), spec.get("hook"), spec.get("prio"), spec.get("policy"))
    return [head] + ["    " + render_rule(r) for r in rules]


class NftablesBackend:
    name = "nftables"

    def __init__(self, runner, mode, rules_dir):
        self.runner = runner
        self.mode = mode
        self.rules_dir = rules_dir
        self.names = chain_order(mode, "nftables")
        self.nft = None
        self.changed = False
        self.before = []
        self.after = []
        self.file_text = None
        self.apply_text = None
        self.warnings = []

    def available(self):
        return bool(self.runner.bin_path("nft", required=False))

    def require(self):
        self.nft = self.runner.bin_path("nft", required=False)
        if not self.nft:
            raise TunnelgateError("backend", "nftables: the nft command is not installed (package nftables)")

    def read_live(self, strict=True):
        nft = self.nft or self.runner.bin_path("nft", required=False)
        rc, out, err = self.runner.run([nft, "-j", "list", "table", "inet", NFT_TABLE], check=False)
        if rc != 0:
            if "No such file or directory" in err or "does not exist" in err:
                return parse_ruleset("")
            if not strict:
                return None
            raise TunnelgateError("backend", "nftables: cannot list table inet %s (%s)" % (NFT_TABLE, (err or out).strip()))
        return parse_ruleset(out)

    def plan(self, spec):
        """``spec`` None plans removal (used to clean up after a backend switch)."""
        live = self.read_live(strict=spec is not None)
        if live is None:
            return self
        existing = [n for n in self.names if n in live["chains"]]
        for name in existing:
            self.before += _describe(name, live["chains"][name], live["rules"].get(name, []))
        if spec is None or spec.state == "absent":
            self.changed = bool(existing)
            if existing:
                others = [c for c in live["chains"] if c not in self.names]
                if not others:
                    lines = ["delete table inet %s" % NFT_TABLE]
                else:
                    lines = ["flush chain inet %s %s" % (NFT_TABLE, n) for n in existing]
                    lines += ["delete chain inet %s %s" % (NFT_TABLE, n) for n in existing]
                self.apply_text = "\n".join(lines) + "\n"
            return self
        chains = build_chains(spec, "nftables")
        top = chains[0][0]
        ok = True
        wrong_kind = []
        for name, rules in chains:
            want = base_spec(self.mode) if name == top else {}
            self.after += _describe(name, want, rules)
            if name not in live["chains"]:
                ok = False
                continue
            if live["chains"][name] != want:
                ok = False
                wrong_kind.append(name)
            if not rules_equal(live["rules"].get(name, []), rules):
                ok = False
        self.changed = not ok
        self.file_text = render_file(self.mode, chains)
        prefix = ""
        if wrong_kind:
            # A chain of ours with another hook/priority cannot be redefined in place: recreate it.
            prefix = "".join("flush chain inet %s %s\n" % (NFT_TABLE, n) for n in existing)
            prefix += "".join("delete chain inet %s %s\n" % (NFT_TABLE, n) for n in wrong_kind)
        self.apply_text = prefix + self.file_text
        return self

    def apply(self):
        if self.changed:
            self.runner.run([self.nft or self.runner.bin_path("nft", required=True), "-f", "-"], data=self.apply_text)

    def _path(self):
        return os.path.join(self.rules_dir, "%s.nft" % self.mode)

    def all_files(self):
        return [self._path()]

    def persist_files(self):
        return {self._path(): self.file_text} if self.file_text is not None else {}

    def boot_commands(self):
        return ["%s -f %s" % (self.nft, self._path())]

    def hooks(self):
        return {"inet": NFT_HOOKS[self.mode]}

    def desired_lines(self):
        return {"inet": self.after}

    def diff_text(self):
        header = "# table inet %s (nftables): the %s-mode chains\n" % (NFT_TABLE, self.mode)
        return (header + "".join(line + "\n" for line in self.before),
                header + "".join(line + "\n" for line in self.after))

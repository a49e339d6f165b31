# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine, nftables backend: chains in our own ``inet`` table.

Private to the collection (leading underscore): not a public API.

One table of family ``inet`` covers IPv4 and IPv6 in the same rules. A rule set owns some chains
of its table (the kill switch's modes share ``inet tunnelgate``; a firewall set has a table of its
own). Our base chains sit on the hooks next to everyone else's: an ``accept`` in our table only
ends OUR evaluation (other tables still decide), a ``drop`` or ``reject`` is final for the packet.
Nothing outside our chains is touched; every change is one ``nft -f`` transaction.
"""

from __future__ import annotations

import ipaddress
import json
import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import (
    FULL_MASK,
    format_mark,
    parse_mark,
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


# --------------------------------------------------------------------------- parsing


def parse_ruleset(text, table="tunnelgate"):
    """``nft -j list table inet NAME`` (or ``list ruleset``) into chains and rule models."""
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
    if isinstance(right, dict) and "|" in right:
        right = right["|"]
    if isinstance(right, str):
        right = [right]
    return ",".join(sorted(str(v) for v in right))


def _set(rule, key, value):
    if key in rule and rule[key] != value:
        raise ValueError("conflicting %s" % key)
    rule[key] = value


def _selector(expr):
    """``{"meta": {"key": "mark"}}`` -> ("meta", "mark"); ``{"ct": ...}`` likewise; else None."""
    for kind in ("meta", "ct"):
        if isinstance(expr, dict) and kind in expr and isinstance(expr[kind], dict):
            return kind, expr[kind].get("key")
    return None


def _match_masked(rule, left, right):
    """``X & MASK == VALUE`` for marks and TCP flags."""
    operand, mask = left["&"]
    if _selector(operand) in (("meta", "mark"), ("ct", "mark")):
        key = "mark" if _selector(operand)[0] == "meta" else "ctmark"
        _set(rule, key, int(right))
        if int(mask) != FULL_MASK:
            _set(rule, key + "mask", int(mask))
    elif isinstance(operand, dict) and operand.get("payload") == {"protocol": "tcp", "field": "flags"}:
        _set(rule, "proto", "tcp")
        _set(rule, "tcpflags", "%s/%s" % (_flags(right), _flags(mask)))
    else:
        raise ValueError("masked match")


def _match(rule, match):
    if match.get("op") not in ("==", "in"):
        raise ValueError("operator")
    left, right = match["left"], match["right"]
    if isinstance(left, dict) and "&" in left:
        _match_masked(rule, left, right)
    elif "meta" in left:
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
    elif "fib" in left:
        if left["fib"] != {"result": "type", "flags": ["daddr"]}:
            raise ValueError("fib")
        _set(rule, "daddrtype", right)
    elif "ct" in left:
        key = left["ct"]["key"]
        if key == "state":
            _set(rule, "ctstate", _flags(right))
        elif key == "direction":
            _set(rule, "ctdir", right)
        elif key == "mark":
            _set(rule, "ctmark", int(right))
        else:
            raise ValueError("ct %s" % key)
    else:
        raise ValueError("match")


def _mark_value(selector, value):
    """A ``mark set`` value expression into (value, mask): ``(x & K) | V``, ``x | V``, ``x & K``, ``V``."""
    if isinstance(value, int):
        return value, FULL_MASK
    keep, add = FULL_MASK, 0
    if "|" in value:
        inner, add = value["|"]
        add = int(add)
        if isinstance(inner, dict) and "&" in inner:
            operand, keep = inner["&"]
            keep = int(keep)
        else:
            operand = inner
    elif "&" in value:
        operand, keep = value["&"]
        keep = int(keep)
    else:
        raise ValueError("mark value")
    if _selector(operand) != selector:
        raise ValueError("mark from another register")
    return add, ((~keep & FULL_MASK) | add)


def _mangle(rule, mangle):
    key, value = mangle["key"], mangle["value"]
    selector = _selector(key)
    if selector in (("meta", "mark"), ("ct", "mark")):
        mark, mask = _mark_value(selector, value)
        _set(rule, "verdict", "%s set %s" % ("mark" if selector[0] == "meta" else "ctmark", format_mark(mark, mask)))
    elif key == {"tcp option": {"name": "maxseg", "field": "size"}} and value == {"rt": {"key": "mtu"}}:
        _set(rule, "verdict", "clampmss")
    else:
        raise ValueError("mangle")


def parse_rule(exprs):
    """One rule's JSON statements into the model dict of ``model``."""
    rule = {}
    try:
        for stmt in exprs:
            if "match" in stmt:
                _match(rule, stmt["match"])
            elif "counter" in stmt:
                continue
            elif set(stmt) & {"accept", "drop", "return", "masquerade"}:
                if stmt.get("masquerade"):
                    raise ValueError("masquerade options")
                _set(rule, "verdict", next(iter(set(stmt) & {"accept", "drop", "return", "masquerade"})))
            elif "jump" in stmt or "goto" in stmt:
                kind = "jump" if "jump" in stmt else "goto"
                _set(rule, "verdict", "%s %s" % (kind, stmt[kind]["target"]))
            elif "reject" in stmt:
                spec = stmt["reject"] or {}
                plain = spec.get("type") == "icmpx" and spec.get("expr") == "admin-prohibited"
                _set(rule, "verdict", "reject" if plain else "reject " + json.dumps(spec, sort_keys=True))
            elif "snat" in stmt or "dnat" in stmt:
                kind = "snat" if "snat" in stmt else "dnat"
                spec = stmt[kind]
                if set(spec) - {"family", "addr"}:
                    raise ValueError("nat options")
                address = ipaddress.ip_address(spec["addr"])
                _set(rule, "family", address.version)
                _set(rule, "verdict", "%s %s" % (kind, address))
            elif "mangle" in stmt:
                _mangle(rule, stmt["mangle"])
            else:
                raise ValueError("statement")
        if "verdict" not in rule:
            raise ValueError("no verdict")
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"unknown": json.dumps(exprs, sort_keys=True)}
    return rule


# --------------------------------------------------------------------------- rendering


def _mark_match(word, value, mask):
    if mask is None or mask == FULL_MASK:
        return "%s 0x%08x" % (word, value)
    return "%s and 0x%08x == 0x%08x" % (word, mask, value)


def render_verdict(verdict):
    if verdict == "reject":
        return "reject with icmpx type admin-prohibited"
    if verdict == "clampmss":
        return "tcp option maxseg size set rt mtu"
    kind, _sep, rest = verdict.partition(" ")
    if kind in ("mark", "ctmark"):
        value, mask = parse_mark(rest.split(" ", 1)[1])
        word = "meta mark" if kind == "mark" else "ct mark"
        return "%s set %s and 0x%08x or 0x%08x" % (word, word, ~mask & FULL_MASK, value)
    if kind in ("snat", "dnat"):
        return "%s %s to %s" % (kind, "ip" if ipaddress.ip_address(rest).version == 4 else "ip6", rest)
    return verdict


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
    if proto in ("tcp", "udp") and ("sport" in rule or "dport" in rule or "tcpflags" in rule):
        for key in ("sport", "dport"):
            if key in rule:
                parts.append("%s %s %d" % (proto, key, rule[key]))
        if "tcpflags" in rule:
            want, looked = rule["tcpflags"].split("/")
            parts.append("tcp flags & (%s) == %s" % (" | ".join(looked.split(",")), " | ".join(want.split(","))))
    elif proto == "icmpv6" and "icmpv6type" in rule:
        parts.append("icmpv6 type %d" % rule["icmpv6type"])
    elif proto:
        parts.append("meta l4proto %s" % ("ipv6-icmp" if proto == "icmpv6" else proto))
    if "hoplimit" in rule:
        parts.append("ip6 hoplimit %d" % rule["hoplimit"])
    if "daddrtype" in rule:
        parts.append("fib daddr type %s" % rule["daddrtype"])
    if "mark" in rule:
        parts.append(_mark_match("meta mark", rule["mark"], rule.get("markmask")))
    if "ctmark" in rule:
        parts.append(_mark_match("ct mark", rule["ctmark"], rule.get("ctmarkmask")))
    if "ctdir" in rule:
        parts.append("ct direction %s" % rule["ctdir"])
    if "ctstate" in rule:
        parts.append("ct state %s" % rule["ctstate"])
    parts.append(render_verdict(rule["verdict"]))
    return " ".join(parts)


def _chain_decl(table, name, spec):
    if not spec:
        return "add chain inet %s %s" % (table, name)
    return "add chain inet %s %s { type %s hook %s priority %d; policy %s; }" % (
        table, name, spec["type"], spec["hook"], spec["prio"], spec["policy"])


def render_file(ruleset, chains):
    """The ``nft -f`` file: idempotent (add/flush/add), atomic, loaded at boot AND on apply."""
    table = ruleset.nft_table
    lines = [
        "#!/usr/sbin/nft -f",
        "# Managed by %s (%s): loaded at boot and on every apply." % (ruleset.managed_by, ruleset.description),
        "add table inet %s" % table,
    ]
    lines += [_chain_decl(table, c.name, c.base_spec()) for c in chains]
    lines += ["flush chain inet %s %s" % (table, c.name) for c in chains]
    for chain in chains:
        lines += ["add rule inet %s %s %s" % (table, chain.name, render_rule(r)) for r in chain.rules]
    return "\n".join(lines) + "\n"


def _describe(name, spec, rules):
    head = "chain %s" % name
    if spec:
        head += " { type %s hook %s priority %s; policy %s; }" % (
            spec.get("type"), spec.get("hook"), spec.get("prio"), spec.get("policy"))
    return [head] + ["    " + render_rule(r) for r in rules]


class NftablesBackend:
    name = "nftables"

    def __init__(self, runner, ruleset, rules_dir):
        self.runner = runner
        self.ruleset = ruleset
        self.table = ruleset.nft_table
        self.rules_dir = rules_dir
        self.nft = None
        self.changed = False
        self.before = []
        self.after = []
        self.chains = []
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
        rc, out, err = self.runner.run([nft, "-j", "list", "table", "inet", self.table], check=False)
        if rc != 0:
            if "No such file or directory" in err or "does not exist" in err:
                return parse_ruleset("", self.table)
            if not strict:
                return None
            raise TunnelgateError("backend", "nftables: cannot list table inet %s (%s)" % (self.table, (err or out).strip()))
        return parse_ruleset(out, self.table)

    def plan(self, present):
        """``present`` False plans removal (state absent, or clean-up after a backend switch)."""
        live = self.read_live(strict=present)
        if live is None:
            return self
        chains = self.ruleset.chains("nftables") if present else []
        wanted = [c.name for c in chains]
        mine = [n for n in live["chains"] if self.ruleset.owns("nftables", n)]
        existing = [n for n in wanted if n in mine] + [n for n in mine if n not in wanted]
        for name in existing:
            self.before += _describe(name, live["chains"][name], live["rules"].get(name, []))
        if not present:
            self.changed = bool(existing)
            if existing:
                others = [c for c in live["chains"] if c not in existing]
                if not others:
                    lines = ["delete table inet %s" % self.table]
                else:
                    lines = ["flush chain inet %s %s" % (self.table, n) for n in existing]
                    lines += ["delete chain inet %s %s" % (self.table, n) for n in existing]
                self.apply_text = "\n".join(lines) + "\n"
            return self
        self.chains = chains
        ok = True
        wrong_kind = []
        for chain in chains:
            want = chain.base_spec()
            self.after += _describe(chain.name, want, chain.rules)
            if chain.name not in live["chains"]:
                ok = False
                continue
            if live["chains"][chain.name] != want:
                ok = False
                wrong_kind.append(chain.name)
            if not rules_equal(live["rules"].get(chain.name, []), chain.rules):
                ok = False
        stale = [n for n in existing if n not in wanted]
        self.changed = not ok or bool(stale)
        self.file_text = render_file(self.ruleset, chains)
        prefix = ""
        if wrong_kind or stale:
            # A chain of ours with another hook/priority cannot be redefined in place, and a chain the
            # set no longer wants goes: flush ours (nothing jumps into them then), delete, reload.
            prefix = "".join("flush chain inet %s %s\n" % (self.table, n) for n in existing)
            prefix += "".join("delete chain inet %s %s\n" % (self.table, n) for n in wrong_kind + stale)
        self.apply_text = prefix + self.file_text
        return self

    def apply(self):
        if self.changed:
            self.runner.run([self.nft or self.runner.bin_path("nft", required=True), "-f", "-"], data=self.apply_text)

    def _path(self):
        return os.path.join(self.rules_dir, "%s.nft" % self.ruleset.stem)

    def all_files(self):
        return [self._path()]

    def persist_files(self):
        return {self._path(): self.file_text} if self.file_text is not None else {}

    def boot_commands(self):
        return ["%s -f %s" % (self.nft, self._path())]

    def hooks(self):
        hooks = [c.hook for c in self.chains if c.hook]
        return {"inet": hooks[0] if len(hooks) == 1 else hooks}

    def desired_lines(self):
        return {"inet": self.after}

    def diff_text(self):
        header = "# table inet %s (nftables): %s\n" % (self.table, self.ruleset.description)
        return (header + "".join(line + "\n" for line in self.before),
                header + "".join(line + "\n" for line in self.after))

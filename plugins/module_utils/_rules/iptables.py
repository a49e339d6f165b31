# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine, iptables backend (iptables-nft and iptables-legacy alike; filter, nat, mangle).

Private to the collection (leading underscore): not a public API.

Only the rule set's own chains are written, plus ONE jump rule at the top of each hooked chain
(INPUT, OUTPUT, FORWARD, POSTROUTING, DOCKER-USER...). Everything goes through
``iptables-restore --noflush``: declaring one of our chains flushes only that chain, so other
tools' chains and rules are never touched, and each table's change (chain contents, jumps, chains
the set no longer wants) lands in one atomic transaction.
"""

from __future__ import annotations

import ipaddress
import os
import shlex

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import (
    FULL_MASK,
    for_family,
    format_mark,
    parse_mark,
    rules_equal,
)

TOOLS = {
    4: ("iptables", "iptables-save", "iptables-restore"),
    6: ("ip6tables", "ip6tables-save", "ip6tables-restore"),
}
BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING")
REJECT_WITH = {4: "icmp-admin-prohibited", 6: "icmp6-adm-prohibited"}
_CT_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
_TCP_FLAG_ORDER = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")
_PROTO_ALIASES = {"6": "tcp", "17": "udp", "58": "icmpv6", "ipv6-icmp": "icmpv6", "icmp6": "icmpv6"}
_ICMPV6_NAMES = {
    "router-solicitation": 133,
    "router-advertisement": 134,
    "neighbour-solicitation": 135,
    "neighbor-solicitation": 135,
    "neighbour-advertisement": 136,
    "neighbor-advertisement": 136,
}
# Matches whose option names we parse; the module name itself carries no meaning of its own.
_KNOWN_MATCHES = ("tcp", "udp", "icmp6", "conntrack", "mark", "connmark", "hl", "comment", "addrtype")
_SIMPLE_TARGETS = {"RETURN": "return", "ACCEPT": "accept", "DROP": "drop", "MASQUERADE": "masquerade",
                   "TCPMSS": None, "REJECT": "reject", "MARK": None, "CONNMARK": None, "SNAT": None,
                   "DNAT": None}


# --------------------------------------------------------------------------- parsing


def parse_save(text, table="filter"):
    """Parse ``iptables-save`` (or ``iptables -S``) output of one table.

    Returns ``{"chains": {name: policy or "-"}, "rules": {chain: [tokens after "-A CHAIN"]}}``.
    """
    chains, rules = {}, {}
    current = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = line[1:]
            continue
        if line == "COMMIT":
            current = None
            continue
        if current not in (None, table):
            continue
        if line.startswith(":"):
            fields = line[1:].split()
            chains[fields[0]] = fields[1] if len(fields) > 1 else "-"
            rules.setdefault(fields[0], [])
        elif line.startswith("-P "):
            fields = line.split()
            chains[fields[1]] = fields[2]
            rules.setdefault(fields[1], [])
        elif line.startswith("-N "):
            chains[line.split()[1]] = "-"
            rules.setdefault(line.split()[1], [])
        elif line.startswith("-A "):
            tokens = shlex.split(line)
            chains.setdefault(tokens[1], "-")
            rules.setdefault(tokens[1], []).append(tokens[2:])
    return {"chains": chains, "rules": rules}


def jump_target(tokens):
    """The chain a rule jumps or goes to (``-j X``/``-g X``), else None."""
    for flag in ("-j", "--jump", "-g", "--goto"):
        if flag in tokens:
            idx = tokens.index(flag)
            if idx + 1 < len(tokens):
                return tokens[idx + 1]
    return None


def _net(value):
    return str(ipaddress.ip_network(value, strict=False))


def _flag_set(text):
    return ",".join(sorted(f.lower() for f in text.split(",")))


def parse_rule(tokens, family):
    """One rule (tokens after ``-A CHAIN``) into the model dict of ``model``."""
    rule = {}
    unknown = False
    ctstate = ctdir = None
    match = target = None
    i = 0
    try:
        while i < len(tokens):
            tok = tokens[i]
            arg = tokens[i + 1] if i + 1 < len(tokens) else None
            step = 2
            if tok == "!":
                unknown = True
                step = 1
            elif tok in ("-s", "--source"):
                rule["saddr"] = _net(arg)
            elif tok in ("-d", "--destination"):
                rule["daddr"] = _net(arg)
            elif tok in ("-i", "--in-interface"):
                rule["iif"] = arg
            elif tok in ("-o", "--out-interface"):
                rule["oif"] = arg
            elif tok in ("-p", "--protocol"):
                rule["proto"] = _PROTO_ALIASES.get(arg.lower(), arg.lower())
            elif tok in ("-m", "--match"):
                match = arg
                if arg not in _KNOWN_MATCHES:
                    unknown = True
            elif tok in ("--sport", "--source-port"):
                rule["sport"] = int(arg)
            elif tok in ("--dport", "--destination-port"):
                rule["dport"] = int(arg)
            elif tok == "--tcp-flags":
                rule["tcpflags"] = "%s/%s" % (_flag_set(tokens[i + 2]), _flag_set(arg))
                step = 3
            elif tok == "--icmpv6-type":
                kind = arg.split("/")[0]
                rule["icmpv6type"] = int(kind) if kind.isdigit() else _ICMPV6_NAMES[kind]
                if "/" in arg:
                    unknown = True
            elif tok == "--hl-eq":
                rule["hoplimit"] = int(arg)
            elif tok == "--dst-type" and match == "addrtype":
                rule["daddrtype"] = arg.lower()
            elif tok == "--mark" and target is None:
                value, mask = parse_mark(arg)
                key = "ctmark" if match == "connmark" else "mark"
                rule[key] = value
                if mask != FULL_MASK:
                    rule[key + "mask"] = mask
            elif tok in ("--ctstate", "--state"):
                ctstate = ",".join(sorted(s.lower() for s in arg.split(",")))
            elif tok == "--ctdir":
                ctdir = arg.lower()
            elif tok == "--comment":
                pass  # a comment changes nothing about what the rule does
            elif tok in ("-j", "--jump", "-g", "--goto"):
                goto = tok in ("-g", "--goto")
                target = arg
                if arg in _SIMPLE_TARGETS and not goto:
                    if _SIMPLE_TARGETS[arg]:
                        rule["verdict"] = _SIMPLE_TARGETS[arg]
                else:
                    rule["verdict"] = ("goto " if goto else "jump ") + arg
            elif tok == "--reject-with" and target == "REJECT":
                if arg not in (REJECT_WITH[family], "admin-prohib", "adm-prohibited"):
                    rule["verdict"] = "reject " + arg
            elif tok == "--set-xmark" and target in ("MARK", "CONNMARK"):
                value, mask = parse_mark(arg)
                rule["verdict"] = "%s set %s" % ("mark" if target == "MARK" else "ctmark", format_mark(value, mask))
            elif tok == "--to-source" and target == "SNAT":
                rule["verdict"] = "snat " + str(ipaddress.ip_address(arg))
            elif tok == "--to-destination" and target == "DNAT":
                rule["verdict"] = "dnat " + str(ipaddress.ip_address(arg.strip("[]")))
            elif tok == "--clamp-mss-to-pmtu" and target == "TCPMSS":
                rule["verdict"] = "clampmss"
                step = 1
            else:
                unknown = True
                step = 1
            i += step
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        unknown = True
    if ctstate is not None:
        rule["ctstate"] = ctstate
    if ctdir is not None:
        rule["ctdir"] = ctdir
    if unknown or "verdict" not in rule:
        rule["unknown"] = join_tokens(tokens)
    return rule


# --------------------------------------------------------------------------- rendering


def join_tokens(tokens):
    return " ".join('"%s"' % t.replace('"', '\\"') if (not t or any(c.isspace() for c in t) or '"' in t) else t for t in tokens)


def _mark_arg(value, mask):
    return hex(value) if mask is None or mask == FULL_MASK else format_mark(value, mask)


def render_rule(rule, family):
    """Model dict to iptables tokens, in the order ``iptables-save`` prints them."""
    if "unknown" in rule:
        return shlex.split(rule["unknown"])
    tokens = []
    for key, flag in (("saddr", "-s"), ("daddr", "-d"), ("iif", "-i"), ("oif", "-o")):
        if key in rule:
            tokens += [flag, rule[key]]
    proto = rule.get("proto")
    if proto:
        tokens += ["-p", "ipv6-icmp" if proto == "icmpv6" else proto]
    if proto in ("tcp", "udp") and ("sport" in rule or "dport" in rule or "tcpflags" in rule):
        tokens += ["-m", proto]
        if "sport" in rule:
            tokens += ["--sport", str(rule["sport"])]
        if "dport" in rule:
            tokens += ["--dport", str(rule["dport"])]
        if "tcpflags" in rule:
            want, looked = rule["tcpflags"].split("/")
            tokens += ["--tcp-flags", _tcp_flags(looked), _tcp_flags(want)]
    if "icmpv6type" in rule:
        tokens += ["-m", "icmp6", "--icmpv6-type", str(rule["icmpv6type"])]
    if "hoplimit" in rule:
        tokens += ["-m", "hl", "--hl-eq", str(rule["hoplimit"])]
    if "daddrtype" in rule:
        tokens += ["-m", "addrtype", "--dst-type", rule["daddrtype"].upper()]
    if "mark" in rule:
        tokens += ["-m", "mark", "--mark", _mark_arg(rule["mark"], rule.get("markmask"))]
    if "ctmark" in rule:
        tokens += ["-m", "connmark", "--mark", _mark_arg(rule["ctmark"], rule.get("ctmarkmask"))]
    if "ctstate" in rule or "ctdir" in rule:
        tokens += ["-m", "conntrack"]
        if "ctstate" in rule:
            states = {s.upper() for s in rule["ctstate"].split(",")}
            tokens += ["--ctstate", ",".join(s for s in _CT_ORDER if s in states)]
        if "ctdir" in rule:
            tokens += ["--ctdir", rule["ctdir"].upper()]
    return tokens + render_verdict(rule["verdict"], family)


def _tcp_flags(text):
    """In the order iptables prints them."""
    flags = {f.upper() for f in text.split(",")}
    return ",".join(f for f in _TCP_FLAG_ORDER if f in flags)


def render_verdict(verdict, family):
    if verdict == "reject":
        return ["-j", "REJECT", "--reject-with", REJECT_WITH[family]]
    if verdict in ("return", "accept", "drop", "masquerade"):
        return ["-j", verdict.upper()]
    if verdict == "clampmss":
        return ["-j", "TCPMSS", "--clamp-mss-to-pmtu"]
    kind, rest = verdict.split(" ", 1)
    if kind in ("mark", "ctmark"):
        value, mask = parse_mark(rest.split(" ", 1)[1])
        return ["-j", "MARK" if kind == "mark" else "CONNMARK", "--set-xmark", format_mark(value, mask)]
    if kind == "snat":
        return ["-j", "SNAT", "--to-source", rest]
    if kind == "dnat":
        return ["-j", "DNAT", "--to-destination", rest]
    if kind == "reject":
        return ["-j", "REJECT", "--reject-with", rest]
    return ["-g" if kind == "goto" else "-j", rest]


def render_chain_file(chains, family, table="filter"):
    """restore text of our chains only: declaring a chain flushes just that chain (--noflush)."""
    lines = ["*%s" % table]
    lines += [":%s - [0:0]" % name for name, _rules in chains]
    for name, rules in chains:
        lines += ["-A %s %s" % (name, join_tokens(render_rule(r, family))) for r in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plan per family and table


def is_tunnelgate_chain(name):
    """Chains of any tunnelgate rule set (kill switch ``TUNNELGATE-*``, firewall sets ``TG-*``)."""
    return bool(name) and name.startswith(("TUNNELGATE-", "TG-"))


def _hooked_on_top(refs, live_rules, hook, top):
    """Exactly one plain jump from ``hook`` to ``top``, with nothing but other tunnelgate jumps above it.

    Several rule sets may hook the same chain (a server's FORWARD and a forward-mode kill switch):
    each keeps its jump above every foreign rule, and none pushes the others down on every run.
    """
    mine = [(idx, tokens) for chain, idx, tokens in refs if chain == hook and jump_target(tokens) == top]
    if len(mine) != 1 or mine[0][1] != ["-j", top]:
        return False
    above = live_rules.get(hook, [])[:mine[0][0]]
    return all(is_tunnelgate_chain(jump_target(tokens)) for tokens in above)


class TablePlan:
    """What must change in one family's table; the restore text that does it.

    ``owns(name)`` says which chains are the rule set's (so chains it no longer wants are removed,
    and nobody else's are ever touched); ``desired`` is ``[(chain, [rules])]`` or None for absent;
    ``hooks`` is ``[(hook chain, our chain)]``: one jump each, at the top.
    """

    def __init__(self, owns, desired, hooks, live, family, table="filter"):
        self.family = family
        self.table = table
        self.hooks = list(hooks or [])
        self.desired = desired
        live_chains, live_rules = live["chains"], live["rules"]
        wanted = [name for name, _rules in desired or []]
        mine = [n for n in live_chains if owns(n) and n not in BUILTIN_CHAINS]
        self.existing = [n for n in wanted if n in mine] + [n for n in mine if n not in wanted]
        ours = set(self.existing) | set(wanted)
        self.stale = [n for n in self.existing if n not in wanted]
        # Foreign rules that jump into our chains: only ours (the hook jumps, stale ones) do that.
        self.refs = []
        for chain, rules in live_rules.items():
            if chain in ours:
                continue
            for idx, tokens in enumerate(rules):
                if jump_target(tokens) in ours:
                    self.refs.append((chain, idx, tokens))
        self.before = []
        for name in self.existing:
            self.before.append("-N %s" % name)
            self.before += ["-A %s %s" % (name, join_tokens(t)) for t in live_rules.get(name, [])]
        order = [hook for hook, _top in self.hooks]
        shown = sorted(self.refs, key=lambda ref: (order.index(ref[0]) if ref[0] in order else len(order), ref[0], ref[1]))
        self.before += ["-I %s %d %s" % (c, i + 1, join_tokens(t)) for c, i, t in shown]

        self.after = []
        self.file_text = None
        lines = ["*%s" % table]
        if desired is None:
            self.changed = bool(self.existing or self.refs)
            lines += [":%s - [0:0]" % n for n in self.existing]
            lines += ["-D %s %s" % (c, join_tokens(t)) for c, _i, t in self.refs]
            lines += ["-X %s" % n for n in self.existing]
            lines.append("COMMIT")
            self.restore_text = "\n".join(lines) + "\n" if self.changed else None
            return
        for name, rules in desired:
            self.after.append("-N %s" % name)
            self.after += ["-A %s %s" % (name, join_tokens(render_rule(r, family))) for r in rules]
        self.after += ["-I %s 1 -j %s" % (hook, top) for hook, top in self.hooks]
        live_models = {n: [parse_rule(t, family) for t in live_rules.get(n, [])] for n in self.existing}
        chains_ok = all(n in live_models and rules_equal(live_models[n], rules) for n, rules in desired)
        hooks_ok = len(self.refs) == len(self.hooks) and all(
            _hooked_on_top(self.refs, live_rules, hook, top) for hook, top in self.hooks)
        self.changed = not (chains_ok and hooks_ok and not self.stale)
        self.file_text = render_chain_file(desired, family, table)
        for hook, _top in self.hooks:
            if hook not in live_chains and hook not in BUILTIN_CHAINS:
                # DOCKER-USER before Docker ever ran: create it; dockerd keeps an existing DOCKER-USER.
                lines.append(":%s - [0:0]" % hook)
        body = self.file_text.splitlines()[1:-1]  # the file, without *table/COMMIT
        lines += body
        lines += [":%s - [0:0]" % n for n in self.stale]
        lines += ["-D %s %s" % (c, join_tokens(t)) for c, _i, t in self.refs]
        lines += ["-I %s 1 -j %s" % (hook, top) for hook, top in self.hooks]
        lines += ["-X %s" % n for n in self.stale]
        lines.append("COMMIT")
        self.restore_text = "\n".join(lines) + "\n" if self.changed else None


class IptablesBackend:
    name = "iptables"

    def __init__(self, runner, ruleset, rules_dir):
        self.runner = runner
        self.ruleset = ruleset
        self.rules_dir = rules_dir
        self.plans = {}  # {family: {table: TablePlan}}
        self.bins = {}
        self.warnings = []

    def available(self):
        return bool(self.runner.bin_path("iptables-save", required=False))

    def require(self):
        for family, tools in TOOLS.items():
            for tool in tools:
                path = self.runner.bin_path(tool, required=False)
                if not path:
                    raise TunnelgateError(
                        "backend",
                        "iptables: %s is not installed; both iptables and ip6tables are required (IPv%d must be "
                        "enforced, never skipped)" % (tool, family),
                    )
                self.bins[tool] = path

    def _save(self, family, table, strict):
        tool = TOOLS[family][1]
        path = self.bins.get(tool) or self.runner.bin_path(tool, required=False)
        if not path:
            return None
        rc, out, err = self.runner.run([path, "-t", table], check=False)
        if rc != 0:
            if not strict:
                return None
            raise TunnelgateError(
                "backend",
                "iptables: %s cannot read the %s table (%s); IPv%d cannot be enforced with this backend"
                % (tool, table, (err or out).strip(), family),
            )
        return out

    def plan(self, present):
        """``present`` False plans removal (state absent, or clean-up after a backend switch)."""
        docker = bool(self.runner.bin_path("dockerd", required=False)) if present else False
        chains = self.ruleset.chains("iptables") if present else []
        tables = list(self.ruleset.tables)
        tables += [c.table for c in chains if c.table not in tables]
        for family in (4, 6):
            for table in tables:
                mine = [c for c in chains if c.table == table]
                text = self._save(family, table, strict=bool(mine))
                if text is None:
                    continue
                live = parse_save(text, table)
                if not present:
                    self.plans.setdefault(family, {})[table] = TablePlan(self._owns, None, None, live, family, table)
                    continue
                hooks = []
                for chain in mine:
                    if chain.hook:
                        hook = self.ruleset.iptables_hook(chain, family, live["chains"], docker)
                        hooks.append((hook, chain.name))
                        if hook not in BUILTIN_CHAINS and not any(
                                jump_target(t) == hook for t in live["rules"].get("FORWARD", [])):
                            self.warnings.append(
                                "forward_chain: nothing in the IPv%d FORWARD chain jumps to %s yet, so the rules in it "
                                "take effect when Docker starts and hooks it (Docker keeps our rules in it)" % (family, hook))
                desired = [(c.name, for_family(c.rules, family)) for c in mine]
                self.plans.setdefault(family, {})[table] = TablePlan(self._owns, desired, hooks, live, family, table)
        return self

    def _owns(self, name):
        return self.ruleset.owns("iptables", name)

    def _family_plans(self, family):
        return [p for _t, p in sorted(self.plans.get(family, {}).items(), key=lambda kv: _table_order(kv[0]))]

    @property
    def changed(self):
        return any(p.changed for f in self.plans for p in self._family_plans(f))

    def apply(self):
        for family in (4, 6):
            text = "".join(p.restore_text for p in self._family_plans(family) if p.changed)
            if not text:
                continue
            restore = self.bins.get(TOOLS[family][2]) or self.runner.bin_path(TOOLS[family][2], required=True)
            self.runner.run([restore, "-w", "--noflush"], data=text)

    def _path(self, family):
        return os.path.join(self.rules_dir, "%s.v%d.rules" % (self.ruleset.stem, family))

    def all_files(self):
        return [self._path(4), self._path(6)]

    def persist_files(self):
        files = {}
        for family in (4, 6):
            texts = [p.file_text for p in self._family_plans(family) if p.file_text is not None]
            if texts:
                files[self._path(family)] = "".join(texts)
        return files

    def boot_commands(self):
        """ExecStart lines: load our chains, then the single jump per hook (creating DOCKER-USER if needed)."""
        commands = []
        for family in (4, 6):
            commands.append("%s -w --noflush %s" % (self.bins[TOOLS[family][2]], self._path(family)))
        for family in (4, 6):
            ipt = self.bins[TOOLS[family][0]]
            for plan in self._family_plans(family):
                table = "" if plan.table == "filter" else " -t %s" % plan.table
                for hook, top in plan.hooks:
                    script = "%s -w%s -C %s -j %s 2>/dev/null || %s -w%s -I %s 1 -j %s" % (
                        ipt, table, hook, top, ipt, table, hook, top)
                    if hook not in BUILTIN_CHAINS:
                        script = "%s -w%s -N %s 2>/dev/null; %s" % (ipt, table, hook, script)
                    commands.append("/bin/sh -c '%s'" % script)
        return commands

    def hooks(self):
        """Where our chains are hooked, per family (``{"ipv4": "OUTPUT"}``; a list when several)."""
        result = {}
        for family in (4, 6):
            hooks = [hook if plan.table == "filter" else "%s %s" % (plan.table, hook)
                     for plan in self._family_plans(family) for hook, _top in plan.hooks]
            if hooks:
                result["ipv%d" % family] = hooks[0] if len(hooks) == 1 else hooks
        return result

    def desired_lines(self):
        result = {}
        for family in (4, 6):
            lines = []
            for plan in self._family_plans(family):
                if plan.desired is None:
                    continue
                if plan.table != "filter":
                    lines.append("*%s" % plan.table)
                lines += plan.after
            if family in self.plans:
                result["ipv%d" % family] = lines
        return result

    def diff_text(self):
        before = after = ""
        for family in (4, 6):
            for plan in self._family_plans(family):
                if plan.desired is None and not plan.before:
                    continue
                header = "# IPv%d %s table (iptables): our chains and the jumps into them\n" % (family, plan.table)
                before += header + "".join(line + "\n" for line in plan.before)
                after += header + "".join(line + "\n" for line in plan.after)
        return before, after


def _table_order(table):
    order = ("filter", "nat", "mangle", "raw")
    return order.index(table) if table in order else len(order)

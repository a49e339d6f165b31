# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch, iptables backend (iptables-nft and iptables-legacy alike).

Private to the collection (leading underscore): not a public API.

Only our own ``TUNNELGATE-*`` chains are written, plus ONE jump rule at the top of the hooked
chain (OUTPUT, FORWARD or DOCKER-USER). Everything goes through ``iptables-restore --noflush``:
declaring one of our chains flushes only that chain, so other tools' chains and rules are never
touched, and the whole change (chain contents + jump) lands in one atomic transaction.
"""

from __future__ import annotations

import ipaddress
import os
import shlex

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import (
    build_chains,
    chain_order,
    for_family,
    rules_equal,
)

TOOLS = {
    4: ("iptables", "iptables-save", "iptables-restore"),
    6: ("ip6tables", "ip6tables-save", "ip6tables-restore"),
}
BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING")
REJECT_WITH = {4: "icmp-admin-prohibited", 6: "icmp6-adm-prohibited"}
_CT_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
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
_KNOWN_MATCHES = ("tcp", "udp", "icmp6", "conntrack", "mark", "hl", "comment")


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


def parse_rule(tokens, family):
    """One rule (tokens after ``-A CHAIN``) into the model dict of ``_killswitch``."""
    rule = {}
    unknown = False
    ctstate = ctdir = None
    i = 0
    try:
        while i < len(tokens):
            tok = tokens[i]
            arg = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok == "!":
                unknown = True
                i += 1
                continue
            if tok in ("-s", "--source"):
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
                if arg not in _KNOWN_MATCHES:
                    unknown = True
            elif tok in ("--sport", "--source-port"):
                rule["sport"] = int(arg)
            elif tok in ("--dport", "--destination-port"):
                rule["dport"] = int(arg)
            elif tok == "--icmpv6-type":
                kind = arg.split("/")[0]
                rule["icmpv6type"] = int(kind) if kind.isdigit() else _ICMPV6_NAMES[kind]
                if "/" in arg:
                    unknown = True
            elif tok == "--hl-eq":
                rule["hoplimit"] = int(arg)
            elif tok == "--mark":
                value, _sep, mask = arg.partition("/")
                rule["mark"] = int(value, 0)
                if mask and int(mask, 0) != 0xFFFFFFFF:
                    unknown = True
            elif tok in ("--ctstate", "--state"):
                ctstate = ",".join(sorted(s.lower() for s in arg.split(",")))
            elif tok == "--ctdir":
                ctdir = arg.lower()
            elif tok == "--comment":
                pass  # a comment changes nothing about what the rule does
            elif tok in ("-j", "--jump", "-g", "--goto"):
                goto = tok in ("-g", "--goto")
                simple = {"RETURN": "return", "ACCEPT": "accept", "DROP": "drop"}
                if arg in simple and not goto:
                    rule["verdict"] = simple[arg]
                elif arg == "REJECT" and not goto:
                    rule["verdict"] = "reject"
                else:
                    rule["verdict"] = ("goto " if goto else "jump ") + arg
            elif tok == "--reject-with":
                if arg not in (REJECT_WITH[family], "admin-prohib", "adm-prohibited"):
                    rule["verdict"] = "reject " + arg
            else:
                unknown = True
                i += 1
                continue
            i += 2
    except (ValueError, KeyError, TypeError, AttributeError):
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
    if proto in ("tcp", "udp") and ("sport" in rule or "dport" in rule):
        tokens += ["-m", proto]
        if "sport" in rule:
            tokens += ["--sport", str(rule["sport"])]
        if "dport" in rule:
            tokens += ["--dport", str(rule["dport"])]
    if "icmpv6type" in rule:
        tokens += ["-m", "icmp6", "--icmpv6-type", str(rule["icmpv6type"])]
    if "hoplimit" in rule:
        tokens += ["-m", "hl", "--hl-eq", str(rule["hoplimit"])]
    if "mark" in rule:
        tokens += ["-m", "mark", "--mark", hex(rule["mark"])]
    if "ctstate" in rule or "ctdir" in rule:
        tokens += ["-m", "conntrack"]
        if "ctstate" in rule:
            states = {s.upper() for s in rule["ctstate"].split(",")}
            tokens += ["--ctstate", ",".join(s for s in _CT_ORDER if s in states)]
        if "ctdir" in rule:
            tokens += ["--ctdir", rule["ctdir"].upper()]
    verdict = rule["verdict"]
    if verdict == "reject":
        tokens += ["-j", "REJECT", "--reject-with", REJECT_WITH[family]]
    elif verdict in ("return", "accept", "drop"):
        tokens += ["-j", verdict.upper()]
    else:
        kind, target = verdict.split(" ", 1)
        tokens += ["-g" if kind == "goto" else "-j", target]
    return tokens


def render_chain_file(chains, family):
    """restore text of our chains only: declaring a chain flushes just that chain (--noflush)."""
    lines = ["*filter"]
    lines += [":%s - [0:0]" % name for name, _rules in chains]
    for name, rules in chains:
        lines += ["-A %s %s" % (name, join_tokens(render_rule(r, family))) for r in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plan per family


class FamilyPlan:
    """What must change in one family's filter table; the restore text that does it."""

    def __init__(self, names, desired, hook, live, family):
        self.family = family
        self.hook = hook
        self.names = names
        self.desired = desired  # [(chain, [rules])] or None for absent
        top = names[0]
        live_chains, live_rules = live["chains"], live["rules"]
        ours = set(names)
        self.existing = [n for n in names if n in live_chains]
        # Foreign rules that jump into our chains: only ours (the hook jump, stale ones) do that.
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
        self.before += ["-I %s %d %s" % (c, i + 1, join_tokens(t)) for c, i, t in self.refs]

        self.after = []
        self.file_text = None
        lines = ["*filter"]
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
        self.after.append("-I %s 1 -j %s" % (hook, top))
        live_models = {n: [parse_rule(t, family) for t in live_rules.get(n, [])] for n in self.existing}
        chains_ok = all(n in live_models and rules_equal(live_models[n], rules) for n, rules in desired)
        hook_ok = len(self.refs) == 1 and self.refs[0][:2] == (hook, 0) and self.refs[0][2] == ["-j", top]
        self.changed = not (chains_ok and hook_ok)
        self.file_text = render_chain_file(desired, family)
        if hook not in live_chains and hook not in BUILTIN_CHAINS:
            # DOCKER-USER before Docker ever ran: create it; dockerd keeps an existing DOCKER-USER.
            lines.append(":%s - [0:0]" % hook)
        body = self.file_text.splitlines()[1:-1]  # the file, without *filter/COMMIT
        lines += body
        lines += ["-D %s %s" % (c, join_tokens(t)) for c, _i, t in self.refs]
        lines.append("-I %s 1 -j %s" % (hook, top))
        lines.append("COMMIT")
        self.restore_text = "\n".join(lines) + "\n" if self.changed else None


def choose_hook(spec, family, live_chains, docker_installed):
    """Where the jump goes: OUTPUT (host); DOCKER-USER or FORWARD (forward)."""
    if spec.mode == "host":
        return "OUTPUT"
    if spec.forward_chain != "auto":
        return spec.forward_chain
    if "DOCKER-USER" in live_chains:
        return "DOCKER-USER"
    if family == 4 and docker_installed:
        return "DOCKER-USER"
    return "FORWARD"


class IptablesBackend:
    name = "iptables"

    def __init__(self, runner, mode, rules_dir):
        self.runner = runner
        self.mode = mode
        self.rules_dir = rules_dir
        self.names = chain_order(mode, "iptables")
        self.plans = {}
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

    def _save(self, family, strict):
        tool = TOOLS[family][1]
        path = self.bins.get(tool) or self.runner.bin_path(tool, required=False)
        if not path:
            return None
        rc, out, err = self.runner.run([path, "-t", "filter"], check=False)
        if rc != 0:
            if not strict:
                return None
            raise TunnelgateError(
                "backend",
                "iptables: %s cannot read the filter table (%s); IPv%d cannot be enforced with this backend"
                % (tool, (err or out).strip(), family),
            )
        return out

    def plan(self, spec):
        """``spec`` None plans removal (used to clean up after a backend switch)."""
        docker = bool(self.runner.bin_path("dockerd", required=False))
        for family in (4, 6):
            text = self._save(family, strict=spec is not None)
            if text is None:
                continue
            live = parse_save(text)
            if spec is None or spec.state == "absent":
                self.plans[family] = FamilyPlan(self.names, None, None, live, family)
                continue
            chains = [(name, for_family(rules, family)) for name, rules in build_chains(spec, "iptables")]
            hook = choose_hook(spec, family, live["chains"], docker)
            if hook not in BUILTIN_CHAINS and not any(jump_target(t) == hook for t in live["rules"].get("FORWARD", [])):
                self.warnings.append(
                    "forward_chain: nothing in the IPv%d FORWARD chain jumps to %s yet, so the forward kill switch "
                    "takes effect when Docker starts and hooks it (Docker keeps our rules in it)" % (family, hook))
            self.plans[family] = FamilyPlan(self.names, chains, hook, live, family)
        return self

    @property
    def changed(self):
        return any(p.changed for p in self.plans.values())

    def apply(self):
        for family in (4, 6):
            plan = self.plans.get(family)
            if plan is None or not plan.changed:
                continue
            restore = self.bins.get(TOOLS[family][2]) or self.runner.bin_path(TOOLS[family][2], required=True)
            self.runner.run([restore, "-w", "--noflush"], data=plan.restore_text)

    def _path(self, family):
        return os.path.join(self.rules_dir, "%s.v%d.rules" % (self.mode, family))

    def all_files(self):
        return [self._path(4), self._path(6)]

    def persist_files(self):
        return {self._path(f): p.file_text for f, p in self.plans.items() if p.file_text is not None}

    def boot_commands(self):
        """ExecStart lines: load our chains, then the single jump (creating DOCKER-USER if needed)."""
        commands = []
        for family in (4, 6):
            commands.append("%s -w --noflush %s" % (self.bins[TOOLS[family][2]], self._path(family)))
        top = self.names[0]
        for family in (4, 6):
            ipt = self.bins[TOOLS[family][0]]
            hook = self.plans[family].hook
            script = "%s -w -C %s -j %s 2>/dev/null || %s -w -I %s 1 -j %s" % (ipt, hook, top, ipt, hook, top)
            if hook not in BUILTIN_CHAINS:
                script = "%s -w -N %s 2>/dev/null; %s" % (ipt, hook, script)
            commands.append("/bin/sh -c '%s'" % script)
        return commands

    def hooks(self):
        return {"ipv%d" % f: p.hook for f, p in self.plans.items()}

    def desired_lines(self):
        return {"ipv%d" % f: p.after for f, p in self.plans.items()}

    def diff_text(self):
        before = after = ""
        for family in (4, 6):
            plan = self.plans.get(family)
            if plan is None:
                continue
            header = "# IPv%d filter table (iptables): our chains and the jump into them\n" % family
            before += header + "".join(line + "\n" for line in plan.before)
            after += header + "".join(line + "\n" for line in plan.after)
        return before, after

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch, routing lock: policy rules that keep traffic off the uplink whatever the firewall says.

Private to the collection (leading underscore): not a public API.

Firewall rules can be flushed by any other tool (``iptables -F``, ``nft flush ruleset``,
``systemctl restart nftables``, firewalld/ufw reloads). Policy routing rules cannot: no firewall
tool touches them. Host mode therefore adds, per family, just before the main table's rule (32766)::

    32764: lookup main suppress_prefixlength 0   # on-link and specific routes as usual
    32764: fwmark <tunnel mark> lookup main      # the tunnel's own encrypted UDP
    32764: fwmark <mark>/<mask> lookup main      # bypass_fwmark: replies of inbound connections
    32764: to <endpoint> lookup main             # the same, by endpoint address
    32764: to <allow_lan network> lookup main    # the LAN exceptions
    32764: ipproto udp dport 67 lookup main      # DHCP (547 for DHCPv6) when allowed
    32765: prohibit                              # everything else: EACCES / ICMP prohibited

The tunnel's own rules (the interface module's 10000/10001, or wg-quick's, which the kernel places
BEFORE the existing rules when it picks a priority itself) come first, so while the tunnel is up
traffic goes into it; when the tunnel's route is gone (interface down, deleted, daemon killed) the
lookup falls through to here instead of the main table's default route. Forwarded traffic
(containers, VMs) takes the same lookup, so it is covered too.

The exceptions all point at the main table, so their order does not matter: the lock is a SET of
exceptions plus one prohibit, compared and changed as such. The kernel refuses a duplicate rule
(EEXIST), so a change deletes what is no longer wanted before it adds what is missing (never more
open than before, for a moment more closed), and the prohibit is never touched while the lock stays.
Rules at 32764/32765 of another shape (e.g. wg-quick's ``not fwmark X lookup 51820``) are not ours
and are never touched.

Forward mode (a Docker network, a pod CIDR) has a lock of its own, scoped to its ``sources``, at
32762/32763: after the interface module's ``from SUBNET lookup TABLE`` rules (default 10000..10002,
at most 32002) and before host mode's lock (both modes may run on one host)::

    32762: from <subnet> to <exclude> lookup main          # cluster / Docker / LAN networks stay local
    32762: from <subnet> fwmark <mark>/<mask> lookup main   # bypass_fwmark: replies of inbound connections
    32762: from <subnet> iif lo lookup main                 # the host's own sockets (host mode's business)
    32763: from <subnet> prohibit                           # everything else from the source
    32762: iif <bridge> to <exclude> lookup main            # an interface source: the same with iif,
    32762: iif <bridge> fwmark <mark>/<mask> lookup main    #   both families
    32763: iif <bridge> prohibit

An ``iif`` rule needs no interface (the kernel keeps it ``[detached]`` until the bridge exists), so
the lock holds while a Docker network or a CNI bridge is recreated. Interface patterns (``cali+``)
cannot be matched by a policy rule: the firewall alone covers them (a firewall mark would be flushed
with the firewall, which is what the lock must survive).
"""

from __future__ import annotations

import ipaddress
import json

EXCEPTION_PRIORITY = 32764
LOCK_PRIORITY = 32765  # the prohibit
FORWARD_EXCEPTION_PRIORITY = 32762
FORWARD_LOCK_PRIORITY = 32763
PROHIBIT = {"action": "prohibit"}
DHCP_SERVER_PORTS = {4: 67, 6: 547}


class LockKind:
    """Where a mode's lock lives: its two priorities, and whether its rules name a source."""

    def __init__(self, mode, exception_priority, lock_priority, sourced):
        self.mode = mode
        self.exception_priority = exception_priority
        self.lock_priority = lock_priority
        self.sourced = sourced


HOST = LockKind("host", EXCEPTION_PRIORITY, LOCK_PRIORITY, sourced=False)
FORWARD = LockKind("forward", FORWARD_EXCEPTION_PRIORITY, FORWARD_LOCK_PRIORITY, sourced=True)
LOCKS = {"host": HOST, "forward": FORWARD}


def is_prohibit(rule):
    return rule.get("action") == "prohibit"


# --------------------------------------------------------------------------- desired


def lock_rules(spec, dhcp=False):
    """Rule dicts per family, exceptions then the prohibit: ``{4: [...], 6: [...]}``.

    ``dhcp``: DHCP client requests may use the main table (``allow_dhcp``)."""
    rules = {}
    for family in (4, 6):
        wanted = [{"table": "main", "suppress": 0}]
        if spec.fwmark:
            wanted.append({"table": "main", "fwmark": spec.fwmark})
        if spec.bypass_fwmark:
            wanted.append(_bypass_rule({}, spec.bypass_fwmark))
        for address, _port in spec.endpoints:
            if address.version == family:
                wanted.append({"table": "main", "dst": "%s/%d" % (address, address.max_prefixlen)})
        for net in spec.allow_lan:
            if net.version == family:
                wanted.append({"table": "main", "dst": str(net)})
        if dhcp:
            wanted.append({"table": "main", "ipproto": "udp", "dport": DHCP_SERVER_PORTS[family]})
        wanted.append(dict(PROHIBIT))
        rules[family] = wanted
    return rules


def _bypass_rule(selector, bypass):
    """``fwmark MARK/MASK lookup main``; a full mask is not printed by ``ip`` (nor kept here)."""
    mark, mask = bypass
    rule = dict(selector, table="main", fwmark=mark)
    if mask != 0xFFFFFFFF:
        rule["fwmask"] = mask
    return rule


def forward_lock_rules(spec):
    """Forward mode: per source and family, the exceptions then the prohibit: ``{4: [...], 6: [...]}``.

    A subnet source only in its own family, an interface source in both; interface patterns
    (``br-+``) are left out (see ``pattern_sources``)."""
    rules = {4: [], 6: []}
    for kind, value in spec.sources:
        if kind == "net":
            selectors = [(value.version, {"src": str(value)})]
        elif value.endswith("+"):
            continue
        else:
            selectors = [(4, {"iif": value}), (6, {"iif": value})]
        for family, selector in selectors:
            for net in spec.exclude:
                if net.version == family:
                    rules[family].append(dict(selector, table="main", dst=str(net)))
            if spec.bypass_fwmark:
                rules[family].append(_bypass_rule(selector, spec.bypass_fwmark))
            if "src" in selector:
                rules[family].append(dict(selector, table="main", iif="lo"))
            rules[family].append(dict(selector, **PROHIBIT))
    return rules


def pattern_sources(spec):
    """Interface sources given as patterns, which no policy rule can match."""
    return [value for kind, value in spec.sources if kind == "iface" and value.endswith("+")]


def render(rule, kind=HOST):
    """A rule dict as ``ip rule`` arguments (after ``ip -4 rule add``)."""
    words = ["priority", str(kind.lock_priority if is_prohibit(rule) else kind.exception_priority)]
    if "src" in rule:
        words += ["from", rule["src"]]
    if "iif" in rule:
        words += ["iif", rule["iif"]]
    if is_prohibit(rule):
        return " ".join(words + ["prohibit"])
    if "dst" in rule:
        words += ["to", rule["dst"]]
    if "fwmark" in rule:
        words += ["fwmark", "0x%x" % rule["fwmark"] + ("/0x%x" % rule["fwmask"] if "fwmask" in rule else "")]
    if "ipproto" in rule:
        words += ["ipproto", rule["ipproto"], "dport", str(rule["dport"])]
    words += ["lookup", rule["table"]]
    if "suppress" in rule:
        words += ["suppress_prefixlength", str(rule["suppress"])]
    return " ".join(words)


# --------------------------------------------------------------------------- live


def parse_rules(text, family, kind=HOST):
    """``ip -j -4 rule show`` (or ``-6``) output: our lock rules, in kernel order."""
    ours = []
    for entry in json.loads(text or "[]"):
        rule = parse_entry(entry, family, kind)
        if rule is not None:
            ours.append(rule)
    return ours


def _net(address, length, family):
    bits = 32 if family == 4 else 128
    try:
        return str(ipaddress.ip_network("%s/%s" % (address, bits if length is None else length), strict=False))
    except ValueError:
        return None


def parse_entry(entry, family, kind=HOST):
    """One ``ip -j rule`` entry into our rule dict, or None when it is not of a shape we create."""
    if "not" in entry or entry.get("priority") not in (kind.exception_priority, kind.lock_priority):
        return None
    keys = set(entry) - {"priority", "src", "srclen", "protocol", "iif_detached"}
    selector = {}
    if entry.get("src", "all") != "all":
        selector["src"] = _net(entry["src"], entry.get("srclen"), family)
        if selector["src"] is None:
            return None
    if "iif" in entry:
        selector["iif"] = str(entry["iif"])
        keys.discard("iif")
    if kind.sourced:
        # exactly one source selector; ``iif lo`` only as the exception for the host's own sockets
        if len(selector) == 2 and selector["iif"] != "lo":
            return None
        if not selector or (selector.get("iif") == "lo" and "src" not in selector):
            return None
    elif selector:
        return None
    if entry.get("priority") == kind.lock_priority:
        if entry.get("action") == "prohibit" and keys == {"action"} and selector.get("iif") != "lo":
            return dict(selector, **PROHIBIT)
        return None
    if entry.get("table") != "main":
        return None
    keys.discard("table")
    rule = dict(selector, table="main")
    if kind.sourced and selector.get("iif") == "lo":
        return rule if not keys else None
    if not kind.sourced and keys == {"suppress_prefixlen"}:
        return dict(rule, suppress=int(entry["suppress_prefixlen"]))
    if keys in ({"fwmark"}, {"fwmark", "fwmask"}):
        rule["fwmark"] = int(str(entry["fwmark"]), 0)
        mask = int(str(entry.get("fwmask", "0xffffffff")), 0)
        if mask != 0xFFFFFFFF:
            rule["fwmask"] = mask
        return rule
    if keys in ({"dst"}, {"dst", "dstlen"}):
        rule["dst"] = _net(entry["dst"], entry.get("dstlen"), family)
        return rule if rule["dst"] is not None else None
    if not kind.sourced and keys == {"ipproto", "dport"} and str(entry["ipproto"]) in ("udp", "17"):
        return dict(rule, ipproto="udp", dport=int(entry["dport"]))
    return None


# --------------------------------------------------------------------------- plan and apply


def _key(rule):
    return tuple(sorted(rule.items()))


class RoutingLock:
    """Plan (live vs desired) and apply of one mode's lock rules, per family; ``desired`` None removes."""

    def __init__(self, runner, kind=HOST):
        self.runner = runner
        self.kind = kind
        self.ip = None
        self.live = {}
        self.desired = {}
        self.families = []

    def render(self, rule):
        return render(rule, self.kind)

    def plan(self, desired):
        self.ip = self.runner.bin_path("ip", required=desired is not None)
        if not self.ip:
            return self
        for family in (4, 6):
            rc, out, _err = self.runner.run([self.ip, "-j", "-%d" % family, "rule", "show"], check=False)
            if rc != 0:
                continue  # the family is not available in this kernel: nothing can leave by it
            self.families.append(family)
            self.live[family] = parse_rules(out, family, self.kind)
            self.desired[family] = (desired or {}).get(family, [])
        return self

    def _diff(self, family):
        """(remove, add) in the order that is never more open than before: exceptions that go, then
        new prohibits, then prohibits that go, then new exceptions."""
        live = {_key(r): r for r in self.live[family]}
        want = {_key(r): r for r in self.desired[family]}
        remove = [r for k, r in live.items() if k not in want]
        add = [r for k, r in want.items() if k not in live]
        remove.sort(key=is_prohibit)
        add.sort(key=lambda r: not is_prohibit(r))
        return remove, add

    @property
    def changed(self):
        return any(self._diff(f) != ([], []) for f in self.families)

    def batch(self, family):
        """``ip -batch`` text; None if nothing changes."""
        remove, add = self._diff(family)
        if not remove and not add:
            return None
        steps = ([("del", r) for r in remove if not is_prohibit(r)] + [("add", r) for r in add if is_prohibit(r)]
                 + [("del", r) for r in remove if is_prohibit(r)] + [("add", r) for r in add if not is_prohibit(r)])
        return "".join("rule %s %s\n" % (verb, self.render(r)) for verb, r in steps)

    def apply(self):
        for family in self.families:
            text = self.batch(family)
            if text is not None:
                self.runner.run([self.ip, "-%d" % family, "-batch", "-"], data=text)

    def _prohibit_check(self, family, rule):
        """A shell test that the prohibit ``rule`` is in place (``ip rule show`` filters by selector)."""
        if not self.kind.sourced:
            return '%s -%d rule show priority %d | grep -q "from all prohibit"' % (self.ip, family, self.kind.lock_priority)
        words = [w for k in ("src", "iif") if k in rule for w in ("from" if k == "src" else "iif", rule[k])]
        return "%s -%d rule show priority %d %s | grep -q prohibit" % (self.ip, family, self.kind.lock_priority, " ".join(words))

    def boot_commands(self):
        """ExecStart lines that need nothing but ``ip`` (no rules file, no firewall tool).

        Exceptions that already exist are fine (EEXIST ignored); every prohibit must be there in the end,
        or the unit fails. No ``$``, ``%`` or ``\\`` (systemd would expand them)."""
        commands = []
        for family in (4, 6):
            rules = self.desired.get(family) or []
            if not rules:
                continue
            ip = "%s -%d rule" % (self.ip, family)
            steps = ["%s add %s 2>/dev/null" % (ip, self.render(r)) for r in rules if not is_prohibit(r)]
            prohibits = [r for r in rules if is_prohibit(r)]
            if self.kind.sourced:
                steps += ["%s add %s 2>/dev/null" % (ip, self.render(r)) for r in prohibits]
                script = "; ".join(steps) + "; " + " && ".join(self._prohibit_check(family, r) for r in prohibits)
            else:
                steps.append("%s add %s 2>/dev/null || %s" % (ip, self.render(prohibits[0]), self._prohibit_check(family, None)))
                script = "; ".join(steps)
            if family == 6:
                script = "[ -e /proc/net/if_inet6 ] || exit 0; " + script
            commands.append("/bin/sh -c '%s'" % script)
        return commands

    def watch_checks(self):
        return [self._prohibit_check(family, rule) for family in self.families
                for rule in self.desired.get(family) or [] if is_prohibit(rule)]

    def diff_lines(self, which):
        """Sorted (exceptions by text, the prohibits last): order carries no meaning in the lock."""
        rules = self.live if which == "before" else self.desired
        lines = []
        for family in self.families:
            ordered = sorted(rules[family], key=lambda r: (is_prohibit(r), self.render(r)))
            lines += ["ip -%d rule %s" % (family, self.render(r)) for r in ordered]
        return lines

    def result(self):
        return {"ipv%d" % f: [self.render(r) for r in self.desired[f]] for f in self.families if self.desired[f]}

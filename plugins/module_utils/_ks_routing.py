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
"""

from __future__ import annotations

import ipaddress
import json

EXCEPTION_PRIORITY = 32764
LOCK_PRIORITY = 32765  # the prohibit
PROHIBIT = {"action": "prohibit"}
DHCP_SERVER_PORTS = {4: 67, 6: 547}


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
            mark, mask = spec.bypass_fwmark
            wanted.append({"table": "main", "fwmark": mark, "fwmask": mask})
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


def render(rule):
    """A rule dict as ``ip rule`` arguments (after ``ip -4 rule add``)."""
    if rule == PROHIBIT:
        return "priority %d prohibit" % LOCK_PRIORITY
    words = ["priority", str(EXCEPTION_PRIORITY)]
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


def parse_rules(text, family):
    """``ip -j -4 rule show`` (or ``-6``) output: our lock rules, in kernel order."""
    ours = []
    for entry in json.loads(text or "[]"):
        rule = parse_entry(entry, family)
        if rule is not None:
            ours.append(rule)
    return ours


def parse_entry(entry, family):
    """One ``ip -j rule`` entry into our rule dict, or None when it is not of a shape we create."""
    keys = set(entry) - {"priority", "src", "protocol"}
    if entry.get("src", "all") != "all" or "not" in entry:
        return None
    if entry.get("priority") == LOCK_PRIORITY and entry.get("action") == "prohibit" and keys == {"action"}:
        return dict(PROHIBIT)
    if entry.get("priority") != EXCEPTION_PRIORITY or entry.get("table") != "main":
        return None
    if keys == {"table", "suppress_prefixlen"}:
        return {"table": "main", "suppress": int(entry["suppress_prefixlen"])}
    if keys == {"table", "fwmark"}:
        return {"table": "main", "fwmark": int(str(entry["fwmark"]), 0)}
    if keys == {"table", "fwmark", "fwmask"}:
        mask = int(str(entry["fwmask"]), 0)
        rule = {"table": "main", "fwmark": int(str(entry["fwmark"]), 0)}
        if mask != 0xFFFFFFFF:
            rule["fwmask"] = mask
        return rule
    if keys in ({"table", "dst"}, {"table", "dst", "dstlen"}):
        bits = 32 if family == 4 else 128
        try:
            net = ipaddress.ip_network("%s/%s" % (entry["dst"], entry.get("dstlen", bits)), strict=False)
        except ValueError:
            return None
        return {"table": "main", "dst": str(net)}
    if keys == {"table", "ipproto", "dport"} and str(entry["ipproto"]) in ("udp", "17"):
        return {"table": "main", "ipproto": "udp", "dport": int(entry["dport"])}
    return None


# --------------------------------------------------------------------------- plan and apply


def _key(rule):
    return tuple(sorted(rule.items()))


class RoutingLock:
    """Plan (live vs desired) and apply of the lock's rules, per family; ``desired`` None removes."""

    def __init__(self, runner):
        self.runner = runner
        self.ip = None
        self.live = {}
        self.desired = {}
        self.families = []

    def plan(self, desired):
        self.ip = self.runner.bin_path("ip", required=desired is not None)
        if not self.ip:
            return self
        for family in (4, 6):
            rc, out, _err = self.runner.run([self.ip, "-j", "-%d" % family, "rule", "show"], check=False)
            if rc != 0:
                continue  # the family is not available in this kernel: nothing can leave by it
            self.families.append(family)
            self.live[family] = parse_rules(out, family)
            self.desired[family] = (desired or {}).get(family, [])
        return self

    def _diff(self, family):
        live = {_key(r): r for r in self.live[family]}
        want = {_key(r): r for r in self.desired[family]}
        remove = [r for k, r in live.items() if k not in want]
        add = [r for k, r in want.items() if k not in live]
        # the prohibit goes last when the lock is removed, first when it is (re)installed
        remove.sort(key=lambda r: r == PROHIBIT)
        add.sort(key=lambda r: r != PROHIBIT)
        return remove, add

    @property
    def changed(self):
        return any(self._diff(f) != ([], []) for f in self.families)

    def batch(self, family):
        """``ip -batch`` text: delete what is no longer wanted, then add what is missing; None if nothing."""
        remove, add = self._diff(family)
        if not remove and not add:
            return None
        lines = ["rule del %s" % render(r) for r in remove] + ["rule add %s" % render(r) for r in add]
        return "\n".join(lines) + "\n"

    def apply(self):
        for family in self.families:
            text = self.batch(family)
            if text is not None:
                self.runner.run([self.ip, "-%d" % family, "-batch", "-"], data=text)

    def boot_commands(self):
        """ExecStart lines that need nothing but ``ip`` (no rules file, no firewall tool).

        Exceptions that already exist are fine (EEXIST ignored); the prohibit must be there in the end,
        or the unit fails."""
        commands = []
        for family in (4, 6):
            rules = self.desired.get(family) or []
            if not rules:
                continue
            ip = "%s -%d rule" % (self.ip, family)
            steps = ["%s add %s 2>/dev/null" % (ip, render(r)) for r in rules if r != PROHIBIT]
            steps.append('%s add %s 2>/dev/null || %s show priority %d | grep -q "from all prohibit"' % (
                ip, render(PROHIBIT), ip, LOCK_PRIORITY))
            script = "; ".join(steps)
            if family == 6:
                script = "[ -e /proc/net/if_inet6 ] || exit 0; " + script
            commands.append("/bin/sh -c '%s'" % script)
        return commands

    def watch_checks(self):
        return ['%s -%d rule show priority %d | grep -q "from all prohibit"' % (self.ip, family, LOCK_PRIORITY)
                for family in self.families if self.desired.get(family)]

    def diff_lines(self, which):
        """Sorted (exceptions by text, the prohibit last): order carries no meaning in the lock."""
        rules = self.live if which == "before" else self.desired
        lines = []
        for family in self.families:
            ordered = sorted(rules[family], key=lambda r: (r == PROHIBIT, render(r)))
            lines += ["ip -%d rule %s" % (family, render(r)) for r in ordered]
        return lines

    def result(self):
        return {"ipv%d" % f: [render(r) for r in self.desired[f]] for f in self.families if self.desired[f]}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules engine's model: rules, chains and rule sets (pure; no host access).

Private to the collection (leading underscore): not a public API.

A rule is a plain dict of match keys plus a ``verdict``. The backends (``iptables``, ``nftables``)
render it to their syntax and parse their live output back into the same dicts, so "is the live
state what we want" is a comparison of dicts, independent of how a tool formats its output.

Match keys (all optional):
``family`` (4 or 6), ``iif``/``oif`` (interface, iptables style ``wg+`` wildcard), ``saddr``/``daddr``
(canonical network ``10.0.0.0/8``, ``192.0.2.1/32``), ``proto`` (``tcp``, ``udp``, ``icmpv6``),
``sport``/``dport`` (int), ``icmpv6type`` (int), ``hoplimit`` (int), ``mark`` and ``markmask``
(packet mark; no ``markmask`` means all 32 bits), ``ctmark`` and ``ctmarkmask`` (connection mark),
``ctstate`` (sorted, comma separated, lower case), ``ctdir`` (``reply``/``original``), ``tcpflags``
(``syn/rst,syn``: the flags that must be set / the flags looked at), ``daddrtype`` (``local``: the
destination is an address of this host; iptables ``addrtype``, nftables ``fib daddr type``).

Verdicts: ``accept``, ``return``, ``drop``, ``reject``, ``jump NAME``, ``goto NAME``, ``masquerade``,
``snat ADDRESS``, ``dnat ADDRESS``, ``mark set VALUE/MASK``, ``ctmark set VALUE/MASK`` (only the MASK bits change:
``new = (old & ~MASK) | VALUE``), ``clampmss`` (TCP MSS clamped to the route's MTU).
A live rule the parsers do not understand carries ``unknown`` (its text) and never equals ours.

A chain is hooked into the kernel's path by exactly one thing: with iptables one jump rule at the
top of a built-in chain (or of ``DOCKER-USER``), with nftables a base chain of our own table.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError

BACKENDS = ("iptables", "nftables")
FAMILIES = (4, 6)
FULL_MASK = 0xFFFFFFFF

# nftables priorities by name (``nft`` prints the names; ``nft -j`` the numbers).
PRIORITY = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
# Where each hook lives in iptables (table, built-in chain) and what an nftables base chain needs.
HOOKS = {
    # purpose: (iptables table, iptables chain, nft type, nft hook, nft priority)
    "input": ("filter", "INPUT", "filter", "input", PRIORITY["filter"]),
    "forward": ("filter", "FORWARD", "filter", "forward", PRIORITY["filter"]),
    "output": ("filter", "OUTPUT", "filter", "output", PRIORITY["filter"]),
    "postrouting-nat": ("nat", "POSTROUTING", "nat", "postrouting", PRIORITY["srcnat"]),
    "prerouting-nat": ("nat", "PREROUTING", "nat", "prerouting", PRIORITY["dstnat"]),
    "prerouting-mangle": ("mangle", "PREROUTING", "filter", "prerouting", PRIORITY["mangle"]),
    "input-mangle": ("mangle", "INPUT", "filter", "input", PRIORITY["mangle"]),
    "forward-mangle": ("mangle", "FORWARD", "filter", "forward", PRIORITY["mangle"]),
    "output-route": ("mangle", "OUTPUT", "route", "output", PRIORITY["mangle"]),
    "postrouting-mangle": ("mangle", "POSTROUTING", "filter", "postrouting", PRIORITY["mangle"]),
}

_IFNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{0,14}")  # fullmatch: "$" would let a trailing newline in


class Chain:
    """One chain of a rule set, for one backend.

    ``table`` is the iptables table (nftables: always our own ``inet`` table). ``hook`` makes it a
    hooked chain: for iptables the chain that holds our one jump (``OUTPUT``, ``DOCKER-USER``...),
    for nftables the hook of a base chain, with ``kind`` (filter/nat/route) and ``priority``.
    """

    def __init__(self, name, rules, table="filter", hook=None, kind="filter", priority=0):
        self.name = name
        self.rules = list(rules)
        self.table = table
        self.hook = hook
        self.kind = kind
        self.priority = priority

    def base_spec(self):
        """nftables base chain attributes, as ``nft -j`` reports them ({} for a regular chain)."""
        if not self.hook:
            return {}
        return {"type": self.kind, "hook": self.hook, "prio": self.priority, "policy": "accept"}

    def pair(self):
        return (self.name, self.rules)

    def __repr__(self):
        return "Chain(%r, table=%r, hook=%r, %d rules)" % (self.name, self.table, self.hook, len(self.rules))


class RuleSet:
    """A named set of chains one owner manages as a whole (the kill switch of a mode, a firewall set).

    Subclasses (or instances) provide the chains per backend and say which chains are theirs, so
    the engine can remove what the set no longer wants and never touches anyone else's.
    ``stem`` names the persisted files, ``unit`` the boot unit, ``tables`` the iptables tables read.
    """

    nft_table = "tunnelgate"
    tables = ("filter",)
    stem = "rules"
    unit = "tunnelgate-rules.service"
    description = "tunnelgate rules"
    managed_by = "tunnelgate.wireguard"
    docs = "rules-engine.md"
    prune_dir = False  # remove the rules directory once it is empty (a directory of our own)
    boot_first = ()  # ExecStart lines the boot unit runs before loading the rules (they need no rules file)

    def chains(self, backend):  # pragma: no cover - interface
        raise NotImplementedError

    def owns(self, backend, name):  # pragma: no cover - interface
        raise NotImplementedError

    def iptables_hook(self, chain, family, live_chains, docker_installed):
        """The chain holding the jump for ``chain`` in one family (the kill switch chooses DOCKER-USER)."""
        return chain.hook

    def chain_names(self, backend):
        return [c.name for c in self.chains(backend)]


def rule_key(rule):
    """Hashable, order-independent identity of a rule dict."""
    return tuple(sorted(rule.items()))


def rules_equal(left, right):
    return [rule_key(r) for r in left] == [rule_key(r) for r in right]


def for_family(rules, family):
    """The rules of one family (iptables has a table per family): drop the other family's, strip the tag."""
    selected = []
    for rule in rules:
        if rule.get("family") not in (None, family):
            continue
        selected.append({k: v for k, v in rule.items() if k != "family"})
    return selected


def format_mark(value, mask):
    return "0x%x/0x%x" % (value, mask)


def parse_mark(text):
    """``0x1000/0x1000`` (or a bare value: all 32 bits) into (value, mask)."""
    value, _sep, mask = str(text).partition("/")
    return int(value, 0), (int(mask, 0) if mask else FULL_MASK)


def mark_verdict(kind, value, mask):
    """``mark set V/M`` or ``ctmark set V/M``."""
    return "%s set %s" % (kind, format_mark(value, mask))


# --------------------------------------------------------------------------- shared input checks


def interface(option, value, allow_lo=False, item=None):
    """An interface name (iptables ``+`` prefix wildcard allowed), safe for argv and rule files."""
    name = str(value)
    stem = name[:-1] if name.endswith("+") else name
    if not stem or not _IFNAME_RE.fullmatch(stem) or stem in (".", ".."):
        raise TunnelgateError(
            option,
            "%r is not an interface name (1-15 of A-Z a-z 0-9 _ . = -, optionally ending in + as a prefix wildcard)" % name,
            item=item,
        )
    if stem == "lo" and not allow_lo:
        raise TunnelgateError(option, "the loopback interface is always allowed; name the tunnel interface", item=item)
    return name


def _no_zone_id(option, value, item):
    # ipaddress accepts an IPv6 zone id with ANY text after "%" (spaces, newlines): it would reach the
    # rule files verbatim (a new iptables-restore line). A zone id has no place in a firewall rule.
    if "%" in str(value):
        raise TunnelgateError(option, "%r: a zone id (%%...) has no place in a firewall rule" % (value,), item=item)


def network(option, value, item=None):
    _no_zone_id(option, value, item)
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise TunnelgateError(option, "%r is not a network in CIDR notation (%s)" % (value, exc), item=item)


def address(option, value, item=None):
    _no_zone_id(option, value, item)
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise TunnelgateError(option, "%r is not an IP address (names cannot be used in firewall rules)" % (value,), item=item)


def mark_value(option, value, allow_zero=True, item=None):
    """A 32-bit mark given as an int or a string (``51820``, ``0xca6c``)."""
    if isinstance(value, bool) or value is None:
        raise TunnelgateError(option, "%r is not a mark (an integer such as 4096 or 0x1000)" % (value,), item=item)
    try:
        mark = value if isinstance(value, int) else int(str(value).strip(), 0)
    except ValueError:
        raise TunnelgateError(option, "%r is not a mark (an integer such as 4096 or 0x1000)" % (value,), item=item)
    if not 0 <= mark <= FULL_MASK:
        raise TunnelgateError(option, "%r is out of range (0 to 0xffffffff)" % (value,), item=item)
    if mark == 0 and not allow_zero:
        raise TunnelgateError(option, "must not be 0", item=item)
    return mark


def port(option, value, item=None):
    """A TCP/UDP port: an int 1-65535 (ASCII digits only when given as text)."""
    if isinstance(value, bool):
        raise TunnelgateError(option, "%r is not a port (1-65535)" % (value,), item=item)
    text = str(value).strip()
    if not isinstance(value, int) and not re.fullmatch(r"[0-9]{1,5}", text):
        raise TunnelgateError(option, "%r is not a port (1-65535)" % (value,), item=item)
    number = int(text)
    if not 0 < number < 65536:
        raise TunnelgateError(option, "%r is not a port (1-65535)" % (value,), item=item)
    return number

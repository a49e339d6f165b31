# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch: input validation and the fail-closed firewall policy, as a rule set of the rules engine.

Private to the collection (leading underscore): not a public API.

The policy is built once, backend-neutral, as an ordered list of rules per chain (the rule dicts of
``_rules.model``); the rules engine (``_rules``) renders it, compares it with the live rules,
applies it atomically and persists it. Each mode (host, forward) is a rule set of its own (own
chains, files and boot unit), so the two modes coexist. ``_ks_switch`` puts the kill switch
together: this rule set, the routing lock (``_ks_routing``), the watcher (``_ks_watch``) and the
DHCP detection (``_ks_dhcp``).
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.model import (
    Chain,
    RuleSet,
    address as _address,
    interface as _interface,
    mark_value as _mark_value,
    network as _network,
)

MODES = ("host", "forward")
BACKENDS = ("iptables", "nftables")
RULES_DIR = "/etc/tunnelgate/killswitch"
FAMILIES = (4, 6)
DNS_PORTS = (53, 853)
NDP_TYPES = (133, 135, 136)  # router solicitation, neighbour solicitation, neighbour advertisement

# Chain names per backend and mode, by role. ``top`` is the chain hooked into the kernel path
# (iptables: by one jump rule; nftables: a base chain of the ``inet tunnelgate`` table).
CHAINS = {
    "iptables": {
        "host": {"top": "TUNNELGATE-OUT", "dns": "TUNNELGATE-OUT-DNS"},
        "forward": {"top": "TUNNELGATE-FWD", "egress": "TUNNELGATE-FWD-EGRESS", "dns": "TUNNELGATE-FWD-DNS"},
    },
    "nftables": {
        "host": {"top": "host_output", "dns": "host_dns"},
        "forward": {"top": "forward", "egress": "forward_egress", "dns": "forward_dns"},
    },
}
NFT_TABLE = "tunnelgate"
NFT_HOOKS = {"host": "output", "forward": "forward"}


def chain_order(mode, backend):
    """Our chains of one mode, hooked chain first."""
    names = CHAINS[backend][mode]
    return [names[role] for role in ("top", "egress", "dns") if role in names]


# --------------------------------------------------------------------------- validation


def _endpoint(value):
    text = str(value).strip()
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", text) or re.match(r"^([0-9.]+):(\d+)$", text)
    if not match:
        raise TunnelgateError(
            "endpoints", "%r must be ADDRESS:PORT or [IPV6]:PORT with a literal address (the tunnel's server)" % text
        )
    address = _address("endpoints", match.group(1))
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise TunnelgateError("endpoints", "%r: port must be 1-65535" % text)
    return address, port


def _fwmark(value):
    if value is None or value == "" or str(value).lower() in ("off", "none"):
        return 0
    if isinstance(value, bool):
        raise TunnelgateError("fwmark", "%r is not a mark (an integer such as 51820 or 0xca6c)" % (value,))
    try:
        mark = value if isinstance(value, int) else int(str(value).strip(), 0)
    except ValueError:
        raise TunnelgateError("fwmark", "%r is not a mark (an integer such as 51820 or 0xca6c)" % (value,))
    if not 0 <= mark <= 0xFFFFFFFF:
        raise TunnelgateError("fwmark", "%r is out of range (0 to 0xffffffff)" % (value,))
    return mark


def _covers_everything(networks):
    for family in FAMILIES:
        nets = [n for n in networks if n.version == family]
        if any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(nets)):
            return True
    return False


def _tristate(option, value):
    """``auto`` or a boolean (as Ansible spells booleans)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return "auto"
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("yes", "on", "1", "true", "y", "t"):
        return True
    if text in ("no", "off", "0", "false", "n", "f", ""):
        return False
    raise TunnelgateError(option, "%r must be auto, true or false" % (value,))


def _bypass(value):
    """``{mark, mask}`` (mask defaults to the mark) into (mark, mask), or None."""
    if not value:
        return None
    if not isinstance(value, dict) or set(value) - {"mark", "mask"} or "mark" not in value:
        raise TunnelgateError("bypass_fwmark", "must be a dict with mark (and optionally mask)")
    mark = _mark_value("bypass_fwmark.mark", value["mark"], allow_zero=False)
    mask = _mark_value("bypass_fwmark.mask", value.get("mask") if value.get("mask") is not None else mark, allow_zero=False)
    if mark & ~mask:
        raise TunnelgateError("bypass_fwmark", "mark 0x%x has bits outside mask 0x%x" % (mark, mask))
    return mark, mask


class KillswitchSpec:
    """The validated desired state. Built from module parameters; raises TunnelgateError."""

    def __init__(self, params):
        self.state = params.get("state") or "present"
        self.mode = params.get("mode") or "host"
        self.backend = params.get("backend") or "iptables"
        self.ipv6 = params.get("ipv6") or "block"
        self.reject = bool(params.get("reject", True))
        self.persist = bool(params.get("persist", True))
        self.forward_chain = params.get("forward_chain") or "auto"
        self.allow_dhcp = _tristate("allow_dhcp", params.get("allow_dhcp", "auto"))
        # Interfaces DHCP is allowed out of: None = any interface; filled in by detection for auto.
        self.dhcp_interfaces = None if self.allow_dhcp is True else []
        self.routing_lock = params.get("routing_lock")  # default (None): true with state=present
        self.watch = bool(params.get("watch", True))
        self.bypass_fwmark = _bypass(params.get("bypass_fwmark"))
        self.allow_inbound_replies = bool(params.get("allow_inbound_replies", True))
        self.warnings = []
        if self.mode not in MODES:
            raise TunnelgateError("mode", "must be one of %s" % ", ".join(MODES))
        if self.backend not in BACKENDS:
            raise TunnelgateError("backend", "must be one of %s" % ", ".join(BACKENDS))
        if self.ipv6 not in ("block", "tunnel"):
            raise TunnelgateError("ipv6", "must be block or tunnel")
        if self.forward_chain not in ("auto", "DOCKER-USER", "FORWARD"):
            raise TunnelgateError("forward_chain", "must be auto, DOCKER-USER or FORWARD")

        self.interfaces = [_interface("interfaces", i) for i in params.get("interfaces") or []]
        self.fwmark = _fwmark(params.get("fwmark"))
        self.endpoints = [_endpoint(e) for e in params.get("endpoints") or []]
        self.allow_lan = [_network("allow_lan", n) for n in params.get("allow_lan") or []]
        self.exclude = [_network("exclude", n) for n in params.get("exclude") or []]
        self.sources = [self._source(s) for s in params.get("sources") or []]
        self.dns_servers = [_address("dns_servers", a) for a in params.get("dns_servers") or []]
        if self.state == "present":
            self._check_present()

    @staticmethod
    def _source(value):
        text = str(value)
        if "/" in text or ":" in text or re.match(r"^[0-9.]+$", text):
            return ("net", _network("sources", text))
        return ("iface", _interface("sources", text))

    def _check_present(self):
        if not self.interfaces:
            raise TunnelgateError("interfaces", "name at least one tunnel interface (state=present)")
        if self.mode == "host":
            if self.routing_lock is None:
                self.routing_lock = True
            if self.sources:
                raise TunnelgateError("sources", "only applies to mode=forward")
            if self.exclude:
                raise TunnelgateError("exclude", "only applies to mode=forward (host mode uses allow_lan)")
            if not self.fwmark and not self.endpoints:
                raise TunnelgateError(
                    "fwmark",
                    "host mode needs the tunnel's fwmark and/or its endpoints, or the tunnel's own encrypted "
                    "UDP is blocked too and the tunnel never comes up",
                )
        else:
            if self.allow_lan:
                raise TunnelgateError("allow_lan", "only applies to mode=host (forward mode uses exclude)")
            if self.allow_dhcp is True:
                raise TunnelgateError("allow_dhcp", "only applies to mode=host")
            if not self.sources:
                raise TunnelgateError("sources", "name the subnets and/or input interfaces to confine (mode=forward)")
            if self.routing_lock is None:
                self.routing_lock = True
            patterns = [value for kind, value in self.sources if kind == "iface" and value.endswith("+")]
            if self.routing_lock and patterns:
                self.warnings.append(
                    "sources: %s is an interface pattern, which no policy rule can match: the routing lock leaves it "
                    "out and only the firewall confines it; add the subnets behind it to sources" % ", ".join(patterns)
                )
            nets = [s for kind, s in self.sources if kind == "net"]
            has_iface = any(kind == "iface" for kind, _value in self.sources)
            if not has_iface and not any(n.version == 6 for n in nets):
                self.warnings.append(
                    "sources: only IPv4 subnets are listed, so IPv6 forwarded from these hosts is not matched; "
                    "name the bridge/interface (covers both families) or add the IPv6 subnet"
                )
        exceptions = self.allow_lan if self.mode == "host" else self.exclude
        option = "allow_lan" if self.mode == "host" else "exclude"
        for net in exceptions:
            if net.prefixlen == 0:
                raise TunnelgateError(option, "%s covers every address; the kill switch would be open" % net)
        if _covers_everything(exceptions):
            raise TunnelgateError(option, "together these networks cover every address; the kill switch would be open")
        for server in self.dns_servers:
            if server.is_loopback or server.is_unspecified or server.is_multicast:
                raise TunnelgateError(
                    "dns_servers",
                    "%s is not a resolver reached through the tunnel (loopback is always allowed; list the "
                    "tunnel resolvers the local resolver forwards to)" % server,
                )
            if server.version == 6 and self.ipv6 == "block":
                raise TunnelgateError(
                    "dns_servers", "%s is IPv6 but ipv6=block, so it cannot be reached through the tunnel" % server
                )
            for net in exceptions:
                if server.version == net.version and server in net:
                    raise TunnelgateError(
                        "dns_servers",
                        "%s lies in %s %s, i.e. outside the tunnel; DNS must go to resolvers reached through "
                        "the tunnel" % (server, option, net),
                    )


# --------------------------------------------------------------------------- desired rules


def _host(address):
    return "%s/%d" % (address, address.max_prefixlen)


def build_chains(spec, backend):
    """The desired policy: list of (chain name, [rule dicts]) in order, hooked chain first.

    ``allow`` ends our evaluation without a decision of ours: iptables RETURNs to the hooked chain
    (the rest of OUTPUT/FORWARD/DOCKER-USER still applies), nftables accepts in our own table
    (other tables' base chains still run). ``deny`` is final in both.
    """
    names = CHAINS[backend][spec.mode]
    allow = "return" if backend == "iptables" else "accept"
    deny = "reject" if spec.reject else "drop"
    tunnel_families = (4, 6) if spec.ipv6 == "tunnel" else (4,)

    dns = []
    for server in spec.dns_servers:
        for iface in spec.interfaces:
            dns.append({"family": server.version, "daddr": _host(server), "oif": iface, "verdict": "return"})
    dns.append({"verdict": deny})
    dns_jumps = [
        {"proto": proto, "dport": port, "verdict": "jump " + names["dns"]}
        for proto in ("udp", "tcp")
        for port in DNS_PORTS
    ]
    replies = [{"ctstate": "established,related", "ctdir": "reply", "verdict": allow}] if spec.allow_inbound_replies else []

    egress = []
    if spec.mode == "host":
        egress.append({"oif": "lo", "verdict": allow})
        egress.extend(replies)
        if spec.fwmark:
            egress.append({"proto": "udp", "mark": spec.fwmark, "verdict": allow})
        for address, port in spec.endpoints:
            egress.append({"family": address.version, "daddr": _host(address), "proto": "udp", "dport": port, "verdict": allow})
        for oif in ([None] if spec.dhcp_interfaces is None else spec.dhcp_interfaces):
            out = {"oif": oif} if oif else {}
            egress.append(dict(out, family=4, proto="udp", sport=68, dport=67, verdict=allow))
            egress.append(dict(out, family=6, proto="udp", sport=546, dport=547, verdict=allow))
        for icmp_type in NDP_TYPES:
            egress.append({"family": 6, "proto": "icmpv6", "icmpv6type": icmp_type, "hoplimit": 255, "verdict": allow})
        # DNS before the LAN exception: a LAN resolver (the home router) forwards to the ISP.
        egress.extend(dns_jumps)
        for net in spec.allow_lan:
            egress.append({"family": net.version, "daddr": str(net), "verdict": allow})
    else:
        egress.extend(replies)
        # Excluded destinations stay local (cluster DNS, service CIDR...), so they come before DNS.
        for net in spec.exclude:
            egress.append({"family": net.version, "daddr": str(net), "verdict": allow})
        egress.extend(dns_jumps)
    for iface in spec.interfaces:
        if len(tunnel_families) == 2:
            egress.append({"oif": iface, "verdict": allow})
        else:
            egress.append({"family": 4, "oif": iface, "verdict": allow})
    egress.append({"verdict": deny})

    if spec.mode == "host":
        return [(names["top"], egress), (names["dns"], dns)]
    top = []
    for kind, value in spec.sources:
        if kind == "net":
            top.append({"family": value.version, "saddr": str(value), "verdict": "goto " + names["egress"]})
        else:
            top.append({"iif": value, "verdict": "goto " + names["egress"]})
    return [(names["top"], top), (names["egress"], egress), (names["dns"], dns)]


# --------------------------------------------------------------------------- the rule set


class KillswitchRules(RuleSet):
    """The kill switch of one mode as a rule set of the rules engine."""

    nft_table = NFT_TABLE
    tables = ("filter",)
    managed_by = "tunnelgate.wireguard.killswitch"
    docs = "killswitch.md"

    def __init__(self, spec, boot_first=()):
        self.spec = spec
        self.boot_first = list(boot_first)  # the routing lock's ExecStart lines (needs no rules file)
        self.stem = spec.mode
        self.unit = "tunnelgate-killswitch-%s.service" % spec.mode
        self.description = "tunnelgate kill switch (%s mode, %s): fail-closed egress before the network" % (
            spec.mode, spec.backend)

    def chains(self, backend):
        chains = []
        for index, (name, rules) in enumerate(build_chains(self.spec, backend)):
            if index:
                chains.append(Chain(name, rules))
            elif backend == "iptables":
                chains.append(Chain(name, rules, hook="OUTPUT" if self.spec.mode == "host" else "FORWARD"))
            else:
                chains.append(Chain(name, rules, hook=NFT_HOOKS[self.spec.mode], kind="filter", priority=0))
        return chains

    def owns(self, backend, name):
        return name in chain_order(self.spec.mode, backend)

    def iptables_hook(self, chain, family, live_chains, docker_installed):
        return choose_hook(self.spec, family, live_chains, docker_installed)


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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``interface`` module's model: constants, and the shapes desired and live state share.

``State`` is an interface (desired or live) in one comparable shape, ``PeerState`` one of its peers,
``Route``/``Rule`` the routes and policy rules it owns; ``route_argv``/``rule_argv`` turn those into
the ``ip`` commands used both live (apply) and in the rendered wg-quick hooks (render).
"""

from __future__ import annotations

import collections
import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import short_key

CONFIG_DIR = "/etc/wireguard"
SYSTEMD_DIR = "/etc/systemd/system"
DROPIN_NAME = "tunnelgate.conf"
DEFAULT_FULL_TUNNEL_TABLE = 51820
DEFAULT_RULE_PRIORITY = 10000
NAME_RE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}\Z")  # \Z: "$" would accept a trailing newline
# Paths go into wg-quick hooks (bash) and the systemd drop-in's ExecReload (systemd, then bash):
# only characters that mean nothing to either, so no quoting can go wrong.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+:,=-]*\Z")
RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
KERNEL_ONLY_SENTINEL = "tunnelgate-kernel-only"  # never on PATH: stops wg-quick's userspace fallback
WG_SET_PEERS_PER_CALL = 250
SRC_VALID_MARK = "net.ipv4.conf.all.src_valid_mark"


Route = collections.namedtuple("Route", "family table dst kind")
# ``fwmask``: None = the whole mark (iproute2 prints no mask then); otherwise the mask of ``fwmark MARK/MASK``
Rule = collections.namedtuple("Rule", "family priority src table fwmark invert suppress fwmask", defaults=(None,))
FULL_MASK = 0xFFFFFFFF


class PeerState:
    """One peer, desired or live. Secrets (psk value) stay in memory, never in results."""

    __slots__ = ("public_key", "allowed_ips", "networks", "endpoint", "endpoint_candidates", "keepalive",
                 "psk_path", "psk_value", "psk_known", "description", "label")

    def __init__(self, public_key, allowed_ips=(), endpoint=None, endpoint_candidates=None, keepalive=None,
                 psk_path=None, psk_value=None, psk_known=True, description=None, label=None, networks=None):
        self.public_key = public_key
        # CIDR strings: desired ones canonical and sorted, live ones as ``wg show dump`` prints them
        self.allowed_ips = list(allowed_ips)
        self.networks = networks  # desired only: the ip_network objects (routes are derived from them)
        self.endpoint = endpoint
        self.endpoint_candidates = endpoint_candidates
        self.keepalive = keepalive
        self.psk_path = psk_path
        self.psk_value = psk_value
        self.psk_known = psk_known
        self.description = description
        self.label = label or description or short_key(public_key)

    def view(self):
        """What diffs show: never the preshared key, only whether there is one."""
        view = {"allowed_ips": list(self.allowed_ips), "persistent_keepalive": self.keepalive,
                "preshared_key": bool(self.psk_path or self.psk_value)}
        if self.endpoint is not None:
            view["endpoint"] = self.endpoint
        if self.description:
            view["description"] = self.description
        return view


class State:
    """An interface, desired or live, in one comparable shape."""

    def __init__(self, name):
        self.name = name
        self.exists = False
        self.kind = None                 # live: kernel|userspace; desired: auto|kernel|userspace
        self.public_key = None           # desired: derived from the key file (None = unknown)
        self.private_key_path = None     # desired only
        self.private_key_value = None    # snapshot only (restore); never in results
        self.listen_port = None          # desired None = "any"
        self.fwmark = None               # None = off
        self.mtu = None                  # desired None = "wg-quick default"
        self.addresses = []              # list of ip_interface
        self.peers = collections.OrderedDict()
        self.routes = collections.Counter()
        self.rules = collections.Counter()
        self.sysctls = {}
        self.dns = []
        self.dns_hooks = []              # desired only: wg-quick lines of _dns (re-apply DNS at every start)
        self.tunnel_table = None
        self.table_option = "auto"
        self.file_text = None
        self.dropin_text = None
        self.rule_priority = DEFAULT_RULE_PRIORITY
        self.unit_active = None
        self.up = None                   # live: the link is administratively up (None = unknown)
        self.unit_enabled = None

    def address_strings(self):
        return sorted((str(a) for a in self.addresses), key=lambda s: (":" in s, s))


def _family(net):
    return 4 if net.version == 4 else 6


# ---------------------------------------------------------------------------------------------
# commands for routes and rules (shared by the live apply and the rendered hooks)
# ---------------------------------------------------------------------------------------------

def route_argv(route, dev, action="replace"):
    argv = ["ip", "-%d" % route.family, "route", action]
    if route.kind in ("throw", "unreachable"):  # no device: these work even where the interface cannot route
        argv += [route.kind, route.dst]
    else:
        argv += [route.dst, "dev", dev]
    return argv + ["table", route.table]


def rule_argv(rule, action="add"):
    argv = ["ip", "-%d" % rule.family, "rule", action]
    if rule.invert:
        argv.append("not")
    if rule.src:
        argv += ["from", rule.src]
    if rule.fwmark is not None and rule.fwmask is not None:
        argv += ["fwmark", "%#x/%#x" % (rule.fwmark, rule.fwmask)]
    elif rule.fwmark is not None:
        argv += ["fwmark", str(rule.fwmark)]
    argv += ["table", rule.table]
    if rule.suppress is not None:
        argv += ["suppress_prefixlength", str(rule.suppress)]
    return argv + ["priority", str(rule.priority)]


def _sorted_routes(routes):
    return sorted(routes, key=lambda r: (r.family, r.table, r.kind, r.dst))


def _sorted_rules(rules):
    return sorted(rules, key=lambda r: (r.family, r.priority, r.src or "", r.table))

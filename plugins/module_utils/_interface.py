# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``interface`` module's logic: desired state, live state, the plan between them, apply.

Decide, then act: ``build_desired`` validates the options into a ``State``; ``read_live`` reads
the running interface into the same shape; ``make_plan`` compares both and returns a ``Plan``
(what the diff shows); only ``Applier`` runs commands, and never in check mode.

Design choices (documented in the module's notes):

* The wg-quick file always says ``Table = off``; routes, policy rules and the one sysctl a full
  tunnel needs are rendered as PostUp/PostDown hooks. wg-quick's own full-tunnel code writes
  ``net.ipv4.conf.all.src_valid_mark=1`` unconditionally, and that write fails where
  ``/proc/sys`` is read-only (containers) even when the value is already 1. Our hook writes it
  only when it differs, and the routes/rules are the same ones wg-quick would create.
* The private key (and any preshared key) is loaded by ``wg set ... private-key PATH`` hooks, so
  neither the file nor Ansible ever holds key material.
* Live changes use ``wg set`` (peers, key, port, fwmark) and ``ip`` (addresses, MTU, routes,
  rules): the tunnel is never restarted for them.

Runs on the managed host: standard library only (``ipaddress``). Private to the collection.
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import tempfile

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    CommandError,
    DifferenceTracker,
    TunnelgateError,
    read_text,
    write_file_atomic,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import (
    META_PREFIX,
    canonical_networks,
    key_problem,
    parse_cidr,
    parse_config,
    parse_dump,
    parse_endpoint,
    render_config,
    short_key,
    split_live_endpoint,
)

try:
    from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import public_key as _x25519_public_key
except ImportError:  # pragma: no cover - the keypair engineer's module is part of the collection
    _x25519_public_key = None

CONFIG_DIR = "/etc/wireguard"
SYSTEMD_DIR = "/etc/systemd/system"
DROPIN_NAME = "tunnelgate.conf"
DEFAULT_FULL_TUNNEL_TABLE = 51820
DEFAULT_RULE_PRIORITY = 10000
NAME_RE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")
RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
KERNEL_ONLY_SENTINEL = "tunnelgate-kernel-only"  # never on PATH: stops wg-quick's userspace fallback
WG_SET_PEERS_PER_CALL = 250
SRC_VALID_MARK = "net.ipv4.conf.all.src_valid_mark"


Route = collections.namedtuple("Route", "family table dst kind")
Rule = collections.namedtuple("Rule", "family priority src table fwmark invert suppress")


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
        self.tunnel_table = None
        self.table_option = "auto"
        self.file_text = None
        self.dropin_text = None
        self.rule_priority = DEFAULT_RULE_PRIORITY
        self.unit_active = None
        self.unit_enabled = None

    def address_strings(self):
        return sorted((str(a) for a in self.addresses), key=lambda s: (":" in s, s))


def _family(net):
    return 4 if net.version == 4 else 6


# ---------------------------------------------------------------------------------------------
# desired state from the module options
# ---------------------------------------------------------------------------------------------

def _parse_network(text, option, item=None):
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise TunnelgateError(option, "%r is not a valid IPv4/IPv6 network (CIDR)" % (text,), item) from None


def _check_path(path, option, item=None):
    if not path or not os.path.isabs(path):
        raise TunnelgateError(option, "must be an absolute path, got %r" % (path,), item)
    if any(ch in path for ch in "#%'\"\\$`") or any(ch.isspace() for ch in path):
        raise TunnelgateError(option, "must not contain white space, quotes or any of # % $ ` \\ (wg-quick and "
                              "systemd cannot quote them)", item)
    return path


def _table_option(value):
    text = str(value).strip().lower() if value is not None else "auto"
    if text in ("auto", "off"):
        return text
    if not text.isdigit() or not 1 <= int(text) <= 0xFFFFFFFF:
        raise TunnelgateError("table", "must be auto, off or a routing table number (1-4294967295), got %r" % (value,))
    if int(text) in RESERVED_TABLES:
        raise TunnelgateError("table", "table %s is the kernel's %r table; pick a table of the tunnel's own" % (
            text, RESERVED_TABLES[int(text)]))
    return int(text)


def read_private_public_key(path, reader=read_text):
    """Public key (base64) of the private key file at ``path``; the key stays in this function."""
    if _x25519_public_key is None:  # pragma: no cover
        raise TunnelgateError("private_key_path", "the collection's X25519 module is missing")
    text = reader(path)
    if text is None:
        return None
    value = text.strip()
    problem = key_problem(value)
    if problem:
        raise TunnelgateError("private_key_path", "%s does not hold a WireGuard private key: the content %s" % (path, problem))
    return base64.b64encode(_x25519_public_key(base64.b64decode(value))).decode("ascii")


def build_desired(params, resolver=None):
    """Validate the module options into a desired ``State``. Raises TunnelgateError.

    ``resolver(host, port)`` returns the set of (ip_address, port) a host name resolves to (used
    to compare a configured host name endpoint with the live, resolved one).
    """
    name = params["name"]
    if not name or not NAME_RE.match(name):
        raise TunnelgateError("name", "%r is not a valid interface name (1-15 of A-Z a-z 0-9 _ = + . -)" % (name,))
    desired = State(name)
    desired.exists = True
    desired.kind = params.get("implementation") or "auto"

    if params.get("private_key_path") is None:
        raise TunnelgateError("private_key_path", "is required when state=present")
    desired.private_key_path = _check_path(params["private_key_path"], "private_key_path")

    port = params.get("listen_port")
    if port is not None and not 1 <= port <= 65535:
        raise TunnelgateError("listen_port", "must be in 1-65535, got %s" % port)
    desired.listen_port = port

    mtu = params.get("mtu")
    addresses = []
    for text in params.get("addresses") or []:
        try:
            addr = ipaddress.ip_interface(str(text).strip())
        except ValueError:
            raise TunnelgateError("addresses", "%r is not an address with prefix length (e.g. 10.66.3.1/24)" % (text,)) from None
        if addr in addresses:
            raise TunnelgateError("addresses", "%s is listed twice" % addr)
        addresses.append(addr)
    if mtu is not None:
        minimum = 1280 if any(a.version == 6 for a in addresses) else 576
        if not minimum <= mtu <= 65535:
            raise TunnelgateError("mtu", "must be in %d-65535 (%s), got %s" % (
                minimum, "IPv6 needs 1280" if minimum == 1280 else "IPv4", mtu))
    desired.addresses = addresses
    desired.mtu = mtu

    fwmark = params.get("fwmark")
    if fwmark is not None and not 0 <= fwmark <= 0xFFFFFFFF:
        raise TunnelgateError("fwmark", "must be in 0-4294967295, got %s" % fwmark)
    desired.fwmark = fwmark or None

    for entry in params.get("dns") or []:
        text = str(entry).strip()
        try:
            ipaddress.ip_address(text)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+$", text):
                raise TunnelgateError("dns", "%r is neither an IP address nor a search domain" % (entry,)) from None
        desired.dns.append(text)

    desired.peers = _build_peers(params.get("peers") or [], resolver)
    table = _table_option(params.get("table"))
    _build_routing(desired, table, params.get("routing") or {})
    return desired


def _build_peers(peer_params, resolver):
    peers = collections.OrderedDict()
    owners = {}
    for index, spec in enumerate(peer_params):
        option = "peers[%d]" % index
        key = spec.get("public_key")
        label = spec.get("description") or (short_key(key) if key else "#%d" % index)
        problem = key_problem(key)
        if problem:
            raise TunnelgateError(option + ".public_key", "the public key %s" % problem, label)
        if key in peers:
            raise TunnelgateError(option + ".public_key", "the same public key is listed for %s too" % peers[key].label, label)
        description = spec.get("description")
        if description is not None and any(ch in description for ch in "\n\r"):
            raise TunnelgateError(option + ".description", "must be one line", label)
        psk_path = spec.get("preshared_key_path")
        if psk_path is not None:
            _check_path(psk_path, option + ".preshared_key_path", label)
        endpoint = spec.get("endpoint")
        candidates = None
        if endpoint is not None:
            try:
                host, port = parse_endpoint(str(endpoint).strip())
            except ValueError as exc:
                raise TunnelgateError(option + ".endpoint", "%r %s" % (endpoint, exc), label) from None
            if isinstance(host, str):
                candidates = resolver(host, port) if resolver else set()
            else:
                candidates = {(host, port)}
            endpoint = str(endpoint).strip()
        keepalive = spec.get("persistent_keepalive")
        if keepalive is not None and not 0 <= keepalive <= 65535:
            raise TunnelgateError(option + ".persistent_keepalive", "must be in 0-65535 seconds, got %s" % keepalive, label)
        nets = {}
        for text in spec.get("allowed_ips") or []:
            try:
                version, value, plen, canonical = parse_cidr(text)
            except ValueError as exc:
                raise TunnelgateError(option + ".allowed_ips", "%r is not a valid IPv4/IPv6 network (CIDR): %s"
                                      % (text, exc), label) from None
            if canonical in nets:
                continue
            if canonical in owners:
                raise TunnelgateError(option + ".allowed_ips", "%s is also allowed for peer %s; an address range "
                                      "can belong to one peer only" % (canonical, owners[canonical]), label)
            owners[canonical] = label
            nets[canonical] = (version, value, plen)
        order = sorted(nets, key=nets.get)
        peers[key] = PeerState(key, order, endpoint, candidates, keepalive or None, psk_path=psk_path,
                               description=description, label=label, networks=[nets[c] for c in order])
    return peers


def _collapse(family, nets):
    """Collapse (version, int, plen) tuples of one family into the fewest networks."""
    if not nets:
        return []
    cls = ipaddress.IPv4Network if family == 4 else ipaddress.IPv6Network
    return ipaddress.collapse_addresses(cls((value, plen)) for _version, value, plen in nets)


def _build_routing(desired, table, routing):
    """Derive routes, rules and sysctls from ``table`` and ``routing`` (what wg-quick would do)."""
    priority = routing.get("priority")
    priority = DEFAULT_RULE_PRIORITY if priority is None else priority
    if not 1 <= priority <= 32000:
        raise TunnelgateError("routing.priority", "must be in 1-32000 (the main table's rule is 32766), got %s" % priority)
    desired.rule_priority = priority
    sources = [_parse_network(s, "routing.sources") for s in routing.get("sources") or []]
    excludes = [_parse_network(s, "routing.exclude") for s in routing.get("exclude") or []]
    desired.table_option = table
    all_nets = [net for peer in desired.peers.values() for net in peer.networks]  # (version, int, plen)
    if table == "off":
        if sources or excludes:
            raise TunnelgateError("routing", "needs a routing table: set table to auto or a number, not off")
        desired.table_option = "off"
        return
    if table == "auto":
        defaults = {version for version, _value, plen in all_nets if plen == 0}
        tunnel_table = desired.fwmark or DEFAULT_FULL_TUNNEL_TABLE
        if defaults or sources or excludes:
            desired.tunnel_table = str(tunnel_table)
        if defaults:
            if desired.fwmark is None:
                desired.fwmark = tunnel_table
        # wg-quick adds no route for what a route of the interface already covers (its own prefixes)
        connected = [(a.version, int(a.network.network_address), a.network.prefixlen) for a in desired.addresses]
        for family in (4, 6):
            bits = 32 if family == 4 else 128
            nets = [n for n in all_nets if n[0] == family and n[2] > 0
                    and not any(c[0] == family and n[2] >= c[2] and n[1] >> (bits - c[2]) == c[1] >> (bits - c[2])
                                for c in connected)]
            for net in _collapse(family, nets):
                desired.routes[Route(family, "main", str(net), "unicast")] += 1
            if family in defaults:
                desired.routes[Route(family, str(tunnel_table), "0.0.0.0/0" if family == 4 else "::/0", "unicast")] += 1
                desired.rules[Rule(family, priority, None, "main", None, False, 0)] += 1
                desired.rules[Rule(family, priority + 1, None, str(tunnel_table), tunnel_table, True, None)] += 1
        if 4 in defaults:
            desired.sysctls[SRC_VALID_MARK] = "1"
    else:
        desired.tunnel_table = str(table)
        for family in (4, 6):
            for net in _collapse(family, [n for n in all_nets if n[0] == family]):
                desired.routes[Route(family, str(table), str(net), "unicast")] += 1
    for net in excludes:
        desired.routes[Route(_family(net), desired.tunnel_table, str(net), "throw")] += 1
    for net in sources:
        desired.rules[Rule(_family(net), priority + 2, str(net), desired.tunnel_table, None, False, None)] += 1


# ---------------------------------------------------------------------------------------------
# commands for routes and rules (shared by the live apply and the rendered hooks)
# ---------------------------------------------------------------------------------------------

def route_argv(route, dev, action="replace"):
    argv = ["ip", "-%d" % route.family, "route", action]
    if route.kind == "throw":
        argv += ["throw", route.dst]
    else:
        argv += [route.dst, "dev", dev]
    return argv + ["table", route.table]


def rule_argv(rule, action="add"):
    argv = ["ip", "-%d" % rule.family, "rule", action]
    if rule.invert:
        argv.append("not")
    if rule.src:
        argv += ["from", rule.src]
    if rule.fwmark is not None:
        argv += ["fwmark", str(rule.fwmark)]
    argv += ["table", rule.table]
    if rule.suppress is not None:
        argv += ["suppress_prefixlength", str(rule.suppress)]
    return argv + ["priority", str(rule.priority)]


def _sorted_routes(routes):
    return sorted(routes, key=lambda r: (r.family, r.table, r.kind, r.dst))


def _sorted_rules(rules):
    return sorted(rules, key=lambda r: (r.family, r.priority, r.src or "", r.table))


# ---------------------------------------------------------------------------------------------
# the wg-quick file
# ---------------------------------------------------------------------------------------------

MANAGED_HEADER = (
    "Ansible managed: tunnelgate.wireguard.interface. Local changes are overwritten.",
    "No key material here: PostUp loads the keys from their files (wg set %i private-key PATH).",
)


def render_desired(desired, header=MANAGED_HEADER):
    """The wg-quick file for ``desired``: no key material, ``Table = off``, hooks for the rest."""
    iface = []
    if desired.addresses:
        iface.append(("Address", ", ".join(str(a) for a in desired.addresses)))
    if desired.listen_port is not None:
        iface.append(("ListenPort", str(desired.listen_port)))
    if desired.fwmark is not None:
        iface.append(("FwMark", str(desired.fwmark)))
    if desired.mtu is not None:
        iface.append(("MTU", str(desired.mtu)))
    if desired.dns:
        iface.append(("DNS", ", ".join(desired.dns)))
    iface.append(("Table", "off"))
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PreUp", " ".join(rule_argv(rule, "del")) + " 2>/dev/null || true"))
    iface.append(("PostUp", "wg set %%i private-key %s" % shlex.quote(desired.private_key_path)))
    for peer in desired.peers.values():
        if peer.psk_path:
            iface.append(("PostUp", "wg set %%i peer %s preshared-key %s" % (peer.public_key, shlex.quote(peer.psk_path))))
    for key, value in sorted(desired.sysctls.items()):
        path = "/proc/sys/" + key.replace(".", "/")
        iface.append(("PostUp", "grep -qx %s %s || sysctl -q -w %s=%s" % (value, path, key, value)))
    for route in _sorted_routes(desired.routes.elements()):
        iface.append(("PostUp", " ".join(route_argv(route, "%i"))))
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PostUp", " ".join(rule_argv(rule, "add"))))
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PostDown", " ".join(rule_argv(rule, "del")) + " || true"))
    for route in _sorted_routes(desired.routes.elements()):
        if route.kind == "throw":
            iface.append(("PostDown", " ".join(route_argv(route, "%i", "del")) + " || true"))
    peers = []
    for peer in desired.peers.values():
        items = [("PublicKey", peer.public_key)]
        if peer.allowed_ips:
            items.append(("AllowedIPs", ", ".join(peer.allowed_ips)))
        if peer.endpoint:
            items.append(("Endpoint", peer.endpoint))
        if peer.keepalive:
            items.append(("PersistentKeepalive", str(peer.keepalive)))
        peers.append({"description": peer.description, "items": items})
    meta = {"table": desired.tunnel_table or "none", "implementation": desired.kind}
    return render_config(list(header), meta, iface, peers)


def previous_tables(config_text):
    """The tunnel routing table a previous run's file set up (from its meta comment)."""
    for line in (config_text or "").splitlines():
        if line.startswith(META_PREFIX):
            meta = dict(token.split("=", 1) for token in line[len(META_PREFIX):].split() if "=" in token)
            table = meta.get("table")
            return {table} if table and table.isdigit() else set()
        if line.startswith("["):
            break
    return set()


def render_dropin(desired, kind):
    """systemd drop-in for wg-quick@NAME: the implementation, and a reload that keeps the key.

    The stock ``ExecReload`` runs ``wg syncconf`` on the stripped file, which has no PrivateKey
    and therefore WIPES the live private key (checked with wireguard-tools 1.0.20210914). Ours
    feeds the key from the key file through a pipe (bash builtins only: the key is in no argv).
    """
    lines = ["# Ansible managed: tunnelgate.wireguard.interface", "[Service]"]
    if kind == "userspace":
        lines.append("Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go")
    elif kind == "kernel":
        lines.append("Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=%s" % KERNEL_ONLY_SENTINEL)
    key = desired.private_key_path.replace("'", "")
    lines += [
        "ExecReload=",
        "ExecReload=/bin/bash -ec 'exec wg syncconf %%i <(printf \"[Interface]\\\\nPrivateKey = %%%%s\\\\n\" "
        "\"$$(< %s)\"; wg-quick strip %%i)'" % key,
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# the live state
# ---------------------------------------------------------------------------------------------

def _json(runner, argv):
    rc, out, _err = runner.run(argv, check=False)
    if rc != 0 or not out.strip():
        return []
    return json.loads(out)


def _normalize_dst(dst, family):
    if dst in (None, "default"):
        return "0.0.0.0/0" if family == 4 else "::/0"
    return str(ipaddress.ip_network(dst, strict=False))


def read_routes(runner, name, tables):
    routes = collections.Counter()
    for family in (4, 6):
        for entry in _json(runner, ["ip", "-j", "-%d" % family, "route", "show", "table", "main", "dev", name]):
            if entry.get("protocol") == "kernel" or entry.get("type", "unicast") != "unicast":
                continue
            routes[Route(family, "main", _normalize_dst(entry.get("dst"), family), "unicast")] += 1
        for table in sorted(tables):
            for entry in _json(runner, ["ip", "-j", "-%d" % family, "route", "show", "table", table]):
                kind = entry.get("type", "unicast")
                if kind == "throw" or (kind == "unicast" and entry.get("dev") == name):
                    routes[Route(family, table, _normalize_dst(entry.get("dst"), family), kind)] += 1
    return routes


def read_rules(runner):
    rules = collections.Counter()
    for family in (4, 6):
        for entry in _json(runner, ["ip", "-j", "-%d" % family, "rule", "show"]):
            table = str(entry.get("table", ""))
            if table in ("local",) or "priority" not in entry:
                continue
            src = entry.get("src")
            src = None if src in (None, "all") else str(ipaddress.ip_network("%s/%s" % (
                src, entry.get("srclen", 32 if family == 4 else 128)), strict=False))
            fwmark = entry.get("fwmark")
            known = {"priority", "src", "srclen", "table", "not", "fwmark", "suppress_prefixlen", "protocol"}
            if set(entry) - known:  # a selector we do not create (iif, dst, ...): never ours to match
                src = "%s+%s" % (src, ",".join(sorted(set(entry) - known)))
            rules[Rule(family, int(entry["priority"]), src, table, int(fwmark, 0) if fwmark else None,
                       "not" in entry, entry.get("suppress_prefixlen"))] += 1
    return rules


def read_live(runner, name, tables):
    """Read the running interface ``name`` into a ``State`` (``exists`` False when absent)."""
    live = State(name)
    if not runner.bin_path("ip", required=False):
        return live
    links = _json(runner, ["ip", "-d", "-j", "link", "show", "dev", name])
    live.rules = read_rules(runner)
    live.routes = read_routes(runner, name, tables)
    if not links:
        return live
    link = links[0]
    live.exists = True
    live.mtu = link.get("mtu")
    info_kind = (link.get("linkinfo") or {}).get("info_kind")
    live.kind = "kernel" if info_kind == "wireguard" else "userspace" if info_kind == "tun" else info_kind
    if not runner.bin_path("wg", required=False):
        raise TunnelgateError("name", "interface %s exists but the wg tool (wireguard-tools) is not installed" % name)
    rc, out, err = runner.run(["wg", "show", name, "dump"], check=False)
    if rc != 0:
        raise TunnelgateError("name", "%s exists but is not a WireGuard interface (%s)" % (name, err.strip()))
    dump = parse_dump(out, name=name, keep_secrets=True).get(name)
    if dump is None:
        raise TunnelgateError("name", "wg show %s dump returned nothing" % name)
    live.public_key = dump["public_key"]
    live.private_key_value = dump.get("private_key")
    live.listen_port = dump["listen_port"]
    live.fwmark = dump["fwmark"]
    for key, peer in dump["peers"].items():
        endpoint = peer["endpoint"]
        live.peers[key] = PeerState(key, peer["allowed_ips"], endpoint, None, peer["persistent_keepalive"],
                                    psk_value=peer.get("preshared_key_value"))
    for entry in _json(runner, ["ip", "-j", "addr", "show", "dev", name]):
        for info in entry.get("addr_info", []):
            if info.get("scope") == "global":
                live.addresses.append(ipaddress.ip_interface("%s/%s" % (info["local"], info["prefixlen"])))
    return live


def snapshot_as_desired(live, file_text):
    """A live snapshot turned into a desired state (for restoring it after a failed apply)."""
    desired = State(live.name)
    desired.exists = live.exists
    desired.kind = "auto"
    desired.public_key = live.public_key
    desired.private_key_value = live.private_key_value
    desired.listen_port = live.listen_port
    desired.fwmark = live.fwmark
    desired.mtu = live.mtu
    desired.addresses = list(live.addresses)
    for key, peer in live.peers.items():
        endpoint = peer.endpoint
        candidates = {split_live_endpoint(endpoint)} if endpoint else None
        desired.peers[key] = PeerState(key, peer.allowed_ips, endpoint, candidates, peer.keepalive,
                                       psk_value=peer.psk_value)
    desired.routes = collections.Counter(live.routes)
    desired.rules = collections.Counter(live.rules)
    desired.file_text = file_text
    return desired


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------

class Plan:
    def __init__(self, name):
        self.name = name
        self.file_change = False
        self.dropin_change = False
        self.create = False
        self.restart_reasons = []
        self.wg_args = []
        self.secret_files = {}      # placeholder -> secret value (restore only); written 0600
        self.peers_added = []
        self.peers_removed = []
        self.peers_updated = []
        self.private_key_change = False
        self.addr_add = []
        self.addr_del = []
        self.mtu = None
        self.route_add = []
        self.route_del = []
        self.rule_add = []
        self.rule_del = []
        self.sysctls = []
        self.unit_enable = None
        self.destroy = False
        self.removing = False
        self.tracker = DifferenceTracker()

    @property
    def live_change(self):
        return bool(self.wg_args or self.addr_add or self.addr_del or self.mtu is not None or self.route_add
                    or self.route_del or self.rule_add or self.rule_del or self.sysctls)

    @property
    def changed(self):
        return bool(self.file_change or self.dropin_change or self.create or self.restart_reasons
                    or self.live_change or self.unit_enable is not None or self.destroy)

    def changes(self):
        """A short human list of what changes (for the result's ``changes``)."""
        out = []
        if self.create:
            out.append("create interface %s" % self.name)
        if self.destroy:
            out.append("remove interface %s" % self.name)
        out += ["restart: %s" % r for r in self.restart_reasons]
        verb = "remove" if self.destroy or self.removing else "write"
        if self.file_change:
            out.append("%s configuration file" % verb)
        if self.dropin_change:
            out.append("%s systemd drop-in" % verb)
        if self.private_key_change:
            out.append("load private key from key file")
        out += ["add peer %s" % _peer_label(p) for p in self.peers_added]
        out += ["remove peer %s" % _peer_label(p) for p in self.peers_removed]
        out += ["update peer %s (%s)" % (_peer_label(p), ", ".join(p["changes"])) for p in self.peers_updated]
        out += ["add address %s" % a for a in self.addr_add] + ["remove address %s" % a for a in self.addr_del]
        if self.mtu is not None:
            out.append("set MTU %s" % self.mtu)
        out += ["set sysctl %s=%s" % kv for kv in self.sysctls]
        out += ["add route %s" % " ".join(route_argv(r, self.name)[4:]) for r in self.route_add]
        out += ["remove route %s" % " ".join(route_argv(r, self.name)[4:]) for r in self.route_del]
        out += ["add rule %s" % " ".join(rule_argv(r)[4:]) for r in self.rule_add]
        out += ["remove rule %s" % " ".join(rule_argv(r)[4:]) for r in self.rule_del]
        if self.unit_enable is not None:
            out.append("%s wg-quick@%s at boot" % ("enable" if self.unit_enable else "disable", self.name))
        return out


def _peer_label(entry):
    if entry.get("description"):
        return "%s (%s)" % (entry["description"], entry["public_key"])
    return entry["public_key"]


def _peer_entry(peer, fields=None):
    entry = {"public_key": peer.public_key}
    if peer.description:
        entry["description"] = peer.description
    if fields is not None:
        entry["changes"] = fields
    return entry


def _endpoint_matches(desired_peer, live_peer):
    if desired_peer.endpoint is None:
        return True  # not configured: the peer roams, whatever it is now is fine
    live = split_live_endpoint(live_peer.endpoint)
    return live is not None and live in (desired_peer.endpoint_candidates or set())


def _same_networks(wanted, live):
    """Same set of networks? Fast on the usual equal text; normalizes only when the text differs."""
    if len(wanted) == len(live) and set(wanted) == set(live):
        return True
    return canonical_networks(wanted) == canonical_networks(live)


def _secret_arg(plan, path, value, what):
    if path:
        return path
    if value is None:
        return "/dev/null"
    placeholder = "@secret%d:%s" % (len(plan.secret_files), what)
    plan.secret_files[placeholder] = value
    return placeholder


def plan_live(plan, desired, live):
    """Fill ``plan`` with the live changes that turn ``live`` into ``desired`` (both exist)."""
    tracker = plan.tracker
    wg = []
    key_changes = desired.public_key is None or desired.public_key != live.public_key
    tracker.add("public_key", live.public_key, desired.public_key if desired.public_key else "(from %s)" % desired.private_key_path)
    if key_changes:
        plan.private_key_change = True
        wg += ["private-key", _secret_arg(plan, desired.private_key_path, desired.private_key_value, "private")]
    if desired.listen_port is not None:
        tracker.add("listen_port", live.listen_port, desired.listen_port)
        if desired.listen_port != live.listen_port:
            wg += ["listen-port", str(desired.listen_port)]
    tracker.add("fwmark", live.fwmark, desired.fwmark)
    if desired.fwmark != live.fwmark:
        wg += ["fwmark", str(desired.fwmark or "off")]
    peer_args = []
    unchanged = 0
    for key, peer in live.peers.items():
        if key not in desired.peers:
            plan.peers_removed.append(_peer_entry(peer))
            peer_args.append(["peer", key, "remove"])
            tracker.add("peer %s" % key, peer.view(), None)
    for key, peer in desired.peers.items():
        current = live.peers.get(key)
        psk_arg = None
        if peer.psk_path or peer.psk_value:
            psk_arg = _secret_arg(plan, peer.psk_path, peer.psk_value, "psk")
        if current is None:
            args = ["peer", key]
            if psk_arg:
                args += ["preshared-key", psk_arg]
            if peer.endpoint:
                args += ["endpoint", peer.endpoint]
            if peer.keepalive:
                args += ["persistent-keepalive", str(peer.keepalive)]
            args += ["allowed-ips", ",".join(peer.allowed_ips)]
            peer_args.append(args)
            plan.peers_added.append(_peer_entry(peer))
            tracker.add("peer %s" % key, None, peer.view())
            continue
        fields, args = [], ["peer", key]
        if not _same_networks(peer.allowed_ips, current.allowed_ips):
            fields.append("allowed_ips")
            args += ["allowed-ips", ",".join(peer.allowed_ips)]
        if not _endpoint_matches(peer, current):
            fields.append("endpoint")
            args += ["endpoint", peer.endpoint]
        if (peer.keepalive or None) != (current.keepalive or None):
            fields.append("persistent_keepalive")
            args += ["persistent-keepalive", str(peer.keepalive or "off")]
        wanted_psk = peer.psk_value if peer.psk_known else object()
        if wanted_psk != current.psk_value:
            fields.append("preshared_key")
            args += ["preshared-key", psk_arg or "/dev/null"]
        if not fields:
            unchanged += 1
            continue
        plan.peers_updated.append(_peer_entry(peer, fields))
        peer_args.append(args)
        live_view = current.view()
        if peer.endpoint is None:
            live_view.pop("endpoint", None)
        elif "endpoint" not in fields:
            live_view["endpoint"] = peer.endpoint
        if "preshared_key" not in fields:
            live_view["preshared_key"] = peer.view()["preshared_key"]
        else:
            live_view["preshared_key"] = "(differs)" if current.psk_value else False
        if peer.description:
            live_view["description"] = peer.description
        tracker.add("peer %s" % key, live_view, peer.view())
    # Unchanged peers are only counted: a diff of thousands of identical peers helps nobody.
    tracker.add("peers unchanged", unchanged, unchanged)
    if wg or peer_args:
        plan.wg_args = [wg + sum(peer_args[:WG_SET_PEERS_PER_CALL], [])]
        rest = peer_args[WG_SET_PEERS_PER_CALL:]
        while rest:
            plan.wg_args.append(sum(rest[:WG_SET_PEERS_PER_CALL], []))
            rest = rest[WG_SET_PEERS_PER_CALL:]

    want = set(desired.address_strings())
    have = set(live.address_strings())
    tracker.add("addresses", live.address_strings(), desired.address_strings())
    plan.addr_del = sorted(have - want)
    plan.addr_add = [a for a in desired.address_strings() if a not in have]
    if desired.mtu is not None:
        tracker.add("mtu", live.mtu, desired.mtu)
        if desired.mtu != live.mtu:
            plan.mtu = desired.mtu


def plan_routing(plan, desired, live, owned_tables):
    """Routes and rules: add what is missing, remove what is ours and no longer wanted."""
    live_routes = collections.Counter({r: n for r, n in live.routes.items()
                                       if r.table == "main" or r.table in owned_tables})
    want_routes = desired.routes
    plan.route_add = _sorted_routes((want_routes - live_routes).elements())
    plan.route_del = _sorted_routes((live_routes - want_routes).elements())
    live_rules = collections.Counter({r: n for r, n in live.rules.items()
                                      if r.table in owned_tables or r in desired.rules})
    plan.rule_add = _sorted_rules((desired.rules - live_rules).elements())
    plan.rule_del = _sorted_rules((live_rules - desired.rules).elements())
    plan.tracker.add("routes", [" ".join(route_argv(r, plan.name)[4:]) for r in _sorted_routes(live_routes.elements())],
                     [" ".join(route_argv(r, plan.name)[4:]) for r in _sorted_routes(want_routes.elements())])
    plan.tracker.add("rules", [" ".join(rule_argv(r)[4:]) for r in _sorted_rules(live_rules.elements())],
                     [" ".join(rule_argv(r)[4:]) for r in _sorted_rules(desired.rules.elements())])


def make_plan(desired, live, file_before, file_after, owned_tables, dropin_before=None, dropin_after=None,
              sysctl_values=None):
    """Everything that must change to reach ``desired`` (state=present) from ``live``."""
    plan = Plan(desired.name)
    plan.file_change = file_before != file_after
    plan.dropin_change = dropin_before != dropin_after
    owned = set(owned_tables) | ({desired.tunnel_table} if desired.tunnel_table else set())
    if not live.exists:
        # wg-quick brings everything up from the file; the plan against an empty interface only
        # names what that will be (peers added, addresses...) for the result and the diff.
        plan_live(plan, desired, State(desired.name))
        plan.wg_args, plan.secret_files, plan.private_key_change = [], {}, False
        plan.addr_add, plan.mtu = [], None
        plan.create = True
        plan.tracker.add("state", "absent", "present")
        return plan
    if desired.kind in ("kernel", "userspace") and live.kind != desired.kind:
        plan.restart_reasons.append("implementation is %s, wanted %s" % (live.kind, desired.kind))
    if file_before is not None and file_after is not None and desired.dns:
        try:
            old_dns = parse_config(file_before).interface_value("DNS")
        except ValueError:
            old_dns = None
        if old_dns != ", ".join(desired.dns):
            plan.restart_reasons.append("DNS servers changed (wg-quick sets them through resolvconf at start)")
    plan_live(plan, desired, live)
    plan_routing(plan, desired, live, owned)
    for key, value in sorted(desired.sysctls.items()):
        current = (sysctl_values or {}).get(key)
        if current != value:
            plan.sysctls.append((key, value))
    return plan


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------

class Host:
    """File-system facts and helpers the applier needs (replaced in unit tests)."""

    def __init__(self, config_dir=CONFIG_DIR, systemd_dir=SYSTEMD_DIR, proc_sys="/proc/sys", systemd=None):
        self.config_dir = config_dir
        self.systemd_dir = systemd_dir
        self.proc_sys = proc_sys
        self.systemd = os.path.isdir("/run/systemd/system") if systemd is None else systemd

    def config_path(self, name):
        return os.path.join(self.config_dir, "%s.conf" % name)

    def dropin_path(self, name):
        return os.path.join(self.systemd_dir, "wg-quick@%s.service.d" % name, DROPIN_NAME)

    def sysctl(self, key):
        value = read_text(os.path.join(self.proc_sys, *key.split(".")))
        return None if value is None else value.strip()

    def write(self, path, content, mode, module=None):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700 if directory == self.config_dir else 0o755)
        write_file_atomic(path, content, mode, module)

    def remove(self, path):
        if os.path.exists(path):
            os.unlink(path)
            parent = os.path.dirname(path)
            if parent.endswith(".service.d") and not os.listdir(parent):
                os.rmdir(parent)


class Applier:
    """Runs a plan's commands. The only code that changes the host."""

    def __init__(self, runner, host, module=None):
        self.runner = runner
        self.host = host
        self.module = module

    def wg_quick_env(self, kind):
        if kind == "userspace":
            return {"WG_QUICK_USERSPACE_IMPLEMENTATION": "wireguard-go"}
        if kind == "kernel":
            return {"WG_QUICK_USERSPACE_IMPLEMENTATION": KERNEL_ONLY_SENTINEL}
        return None

    def unit(self, name):
        return "wg-quick@%s.service" % name

    def unit_state(self, name):
        if not self.host.systemd:
            return None, None
        _rc, active, _e = self.runner.run(["systemctl", "is-active", self.unit(name)], check=False)
        _rc, enabled, _e = self.runner.run(["systemctl", "is-enabled", self.unit(name)], check=False)
        return active.strip() == "active", enabled.strip() == "enabled"

    def start(self, name, kind, use_unit):
        if use_unit:
            self.runner.run(["systemctl", "reset-failed", self.unit(name)], check=False)
            self.runner.run(["systemctl", "start", self.unit(name)])
        else:
            self.runner.run(["wg-quick", "up", name], environ=self.wg_quick_env(kind))

    def stop(self, name, unit_active, config_exists, owned_tables):
        if unit_active:
            self.runner.run(["systemctl", "stop", self.unit(name)], check=False)
        if self.runner.run(["ip", "link", "show", "dev", name], check=False)[0] == 0:
            if config_exists:
                self.runner.run(["wg-quick", "down", name], check=False)
            if self.runner.run(["ip", "link", "show", "dev", name], check=False)[0] == 0:
                self.runner.run(["ip", "link", "del", "dev", name])
        # Leftover rules/throw routes of the tunnel's table (wg-quick down runs our PostDown, but
        # a crash or a foreign teardown may have skipped it).
        for rule in _sorted_rules(read_rules(self.runner).elements()):
            if rule.table in owned_tables:
                self.runner.run(rule_argv(rule, "del"), check=False)
        for route in _sorted_routes(read_routes(self.runner, name, owned_tables).elements()):
            self.runner.run(route_argv(route, name, "del"), check=False)

    def apply_live(self, plan):
        for key, value in plan.sysctls:
            self.runner.run(["sysctl", "-q", "-w", "%s=%s" % (key, value)])
        if plan.wg_args:
            self._wg_set(plan)
        for addr in plan.addr_del:
            self.runner.run(["ip", "address", "del", addr, "dev", plan.name])
        for addr in plan.addr_add:
            self.runner.run(["ip", "address", "add", addr, "dev", plan.name])
        if plan.mtu is not None:
            self.runner.run(["ip", "link", "set", "dev", plan.name, "mtu", str(plan.mtu)])
        for route in plan.route_add:
            self.runner.run(route_argv(route, plan.name, "replace"))
        for route in plan.route_del:
            self.runner.run(route_argv(route, plan.name, "del"), check=False)
        for rule in plan.rule_add:
            self.runner.run(rule_argv(rule, "add"))
        for rule in plan.rule_del:
            self.runner.run(rule_argv(rule, "del"), check=False)

    def _wg_set(self, plan):
        tmpdir = None
        try:
            paths = {}
            if plan.secret_files:
                tmpdir = tempfile.mkdtemp(prefix=".tunnelgate-", dir=self.host.config_dir)
                os.chmod(tmpdir, 0o700)
                for index, (placeholder, value) in enumerate(plan.secret_files.items()):
                    path = os.path.join(tmpdir, "k%d" % index)
                    write_file_atomic(path, value + "\n", 0o600)
                    paths[placeholder] = path
            for args in plan.wg_args:
                self.runner.run(["wg", "set", plan.name] + [paths.get(a, a) for a in args])
        finally:
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)


def default_resolver(host, port):
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        return set()
    return {(ipaddress.ip_address(info[4][0].split("%")[0]), port) for info in infos}


def _read_psks(desired, check_mode):
    """Load each desired peer's preshared key (in memory only) to compare it with the live one."""
    for index, peer in enumerate(desired.peers.values()):
        if not peer.psk_path:
            continue
        text = read_text(peer.psk_path)
        if text is None:
            if check_mode:
                peer.psk_known = False
                continue
            raise TunnelgateError("peers[%d].preshared_key_path" % index, "%s does not exist (create it with "
                                  "tunnelgate.wireguard.keypair type=preshared)" % peer.psk_path, peer.label)
        value = text.strip()
        problem = key_problem(value)
        if problem:
            raise TunnelgateError("peers[%d].preshared_key_path" % index, "%s does not hold a preshared key: the "
                                  "content %s" % (peer.psk_path, problem), peer.label)
        peer.psk_value = value


def _result_base(name, plan, config_path):
    return {
        "changed": plan.changed,
        "name": name,
        "config_path": config_path,
        "restarted": False,
        "peers_added": plan.peers_added,
        "peers_removed": plan.peers_removed,
        "peers_updated": plan.peers_updated,
        "changes": plan.changes(),
    }


def run_interface(params, runner, host=None, check_mode=False, module=None, resolver=default_resolver,
                  key_reader=read_text, diff=True):
    """The module body: returns the result dict. Raises TunnelgateError / CommandError."""
    host = host or Host()
    name = params["name"]
    config_path = host.config_path(name)
    dropin_path = host.dropin_path(name)
    file_before = read_text(config_path)
    dropin_before = read_text(dropin_path) if host.systemd else None
    owned = previous_tables(file_before)
    applier = Applier(runner, host, module)

    if params.get("state") == "absent":
        return _run_absent(params, runner, host, applier, check_mode, file_before, dropin_before, owned, diff)

    desired = build_desired(params, resolver)
    desired.public_key = read_private_public_key(desired.private_key_path, key_reader)
    if desired.public_key is None and not check_mode:
        raise TunnelgateError("private_key_path", "%s does not exist (create it with tunnelgate.wireguard.keypair)"
                              % desired.private_key_path)
    if desired.public_key in desired.peers:
        raise TunnelgateError("peers", "the interface's own public key %s is listed as a peer" % short_key(desired.public_key),
                              desired.peers[desired.public_key].label)
    _read_psks(desired, check_mode)
    if desired.dns and not check_mode and not runner.bin_path("resolvconf", required=False):
        raise TunnelgateError("dns", "wg-quick sets DNS servers with resolvconf, which is not installed "
                              "(install openresolv or systemd-resolved, or leave dns empty)")
    tables = owned | ({desired.tunnel_table} if desired.tunnel_table else set())
    file_after = render_desired(desired)
    dropin_after = render_dropin(desired, desired.kind) if host.systemd else None

    live = read_live(runner, name, tables)
    sysctl_values = {key: host.sysctl(key) for key in desired.sysctls}
    plan = make_plan(desired, live, file_before, file_after, tables, dropin_before, dropin_after, sysctl_values)
    use_unit = host.systemd and params.get("enabled", True)
    active, enabled = applier.unit_state(name) if host.systemd else (None, None)
    if host.systemd and bool(enabled) != bool(params.get("enabled", True)):
        plan.unit_enable = bool(params.get("enabled", True))

    result = _result_base(name, plan, config_path)
    if diff:
        result["diff"] = _diff(config_path, file_before, file_after, plan)
    if params.get("enabled", True) and not host.systemd:
        result.setdefault("warnings", []).append(
            "enabled: systemd is not running on this host, so nothing brings %s up at boot; "
            "run 'wg-quick up %s' from your init system" % (name, name))
    if check_mode or not plan.changed:
        result["public_key"] = live.public_key if live.exists else desired.public_key
        return result

    snapshot = snapshot_as_desired(live, file_before)
    snapshot.dropin_text = dropin_before
    try:
        kind = desired.kind
        if plan.create or plan.restart_reasons:
            if desired.kind == "auto" and plan.create:
                kind = _detect_implementation(runner, name)
            if plan.create and use_unit and active:
                # RemainAfterExit unit still "active" although the link is gone: stop it first.
                runner.run(["systemctl", "stop", applier.unit(name)], check=False)
            if plan.restart_reasons:
                applier.stop(name, active, file_before is not None, tables)
                result["restarted"] = True
            _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan)
            applier.start(name, kind, use_unit)
            # Reconcile against what wg-quick brought up (normally nothing is left to do).
            live_now = read_live(runner, name, tables)
            follow = make_plan(desired, live_now, file_after, file_after, tables,
                               sysctl_values={k: host.sysctl(k) for k in desired.sysctls})
            applier.apply_live(follow)
        else:
            _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan)
            applier.apply_live(plan)
        if plan.unit_enable is not None:
            runner.run(["systemctl", "enable" if plan.unit_enable else "disable", applier.unit(name)])
        _guard(runner, name, desired.public_key)
    except (CommandError, TunnelgateError) as exc:
        problems = _restore(runner, host, applier, module, snapshot, desired, name, tables, use_unit)
        message = "%s; the previous state was restored" % exc if not problems else \
            "%s; restoring the previous state also failed: %s" % (exc, "; ".join(problems))
        if isinstance(exc, TunnelgateError):
            raise TunnelgateError(exc.option, message.split(": ", 1)[-1], exc.item) from None
        raise TunnelgateError("name", "applying the change to %s failed: %s" % (name, message)) from None
    final = read_live(runner, name, tables)
    result["public_key"] = final.public_key
    result["implementation"] = final.kind
    return result


def _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan):
    if plan.file_change:
        host.write(config_path, file_after, 0o600, module)
    if plan.dropin_change and dropin_after is not None:
        host.write(dropin_path, dropin_after, 0o644, module)
        runner.run(["systemctl", "daemon-reload"])


def _detect_implementation(runner, name):
    """auto: kernel when the kernel can create a wireguard link, else wireguard-go."""
    probe = "tgprobe%d" % (os.getpid() % 100000)
    rc, _out, _err = runner.run(["ip", "link", "add", "dev", probe, "type", "wireguard"], check=False)
    if rc == 0:
        runner.run(["ip", "link", "del", "dev", probe], check=False)
        return "kernel"
    if not runner.bin_path("wireguard-go", required=False):
        raise TunnelgateError("implementation", "the kernel cannot create a WireGuard interface and wireguard-go "
                              "is not installed (install wireguard-go or the wireguard kernel module)")
    return "userspace"


def _guard(runner, name, expected):
    rc, out, _err = runner.run(["wg", "show", name, "dump"], check=False)
    live_key = None
    if rc == 0:
        live_key = parse_dump(out, name=name).get(name, {}).get("public_key")
    if live_key != expected:
        raise TunnelgateError("private_key_path", "after the change the live public key of %s is %s, but the key file's "
                              "public key is %s" % (name, live_key, expected))


def _restore(runner, host, applier, module, snapshot, desired, name, tables, use_unit):
    """Best effort: put back the previous files and live state. Returns a list of problems."""
    problems = []
    config_path = host.config_path(name)
    try:
        if snapshot.file_text is None:
            host.remove(config_path)
        else:
            host.write(config_path, snapshot.file_text, 0o600, module)
        if host.systemd:
            if snapshot.dropin_text is None:
                host.remove(host.dropin_path(name))
            else:
                host.write(host.dropin_path(name), snapshot.dropin_text, 0o644, module)
    except OSError as exc:
        problems.append("files: %s" % exc)
    try:
        if not snapshot.exists:
            applier.stop(name, False, False, tables)
            return problems
        live_now = read_live(runner, name, tables)
        if not live_now.exists:
            applier.start(name, "auto", False)
            live_now = read_live(runner, name, tables)
        back = make_plan(snapshot, live_now, None, None, tables)
        applier.apply_live(back)
    except (CommandError, TunnelgateError) as exc:
        problems.append(str(exc))
    return problems


def _run_absent(params, runner, host, applier, check_mode, file_before, dropin_before, owned, diff=True):
    name = params["name"]
    if not NAME_RE.match(name or ""):
        raise TunnelgateError("name", "%r is not a valid interface name" % (name,))
    config_path = host.config_path(name)
    live = read_live(runner, name, owned) if runner.bin_path("ip", required=False) else State(name)
    plan = Plan(name)
    leftovers = [r for r in live.rules if r.table in owned]
    plan.destroy = live.exists or bool(leftovers) or bool(live.routes)
    plan.removing = True
    plan.file_change = file_before is not None
    plan.dropin_change = dropin_before is not None
    active, enabled = applier.unit_state(name) if host.systemd else (None, None)
    if enabled:
        plan.unit_enable = False
    plan.peers_removed = [_peer_entry(p) for p in live.peers.values()]
    plan.tracker.add("state", "present" if live.exists else "absent", "absent")
    result = _result_base(name, plan, config_path)
    if diff:
        result["diff"] = _diff(config_path, file_before, None, plan)
    if check_mode or not plan.changed:
        return result
    applier.stop(name, active, file_before is not None, owned)
    if plan.unit_enable is False:
        runner.run(["systemctl", "disable", applier.unit(name)], check=False)
    host.remove(config_path)
    if host.systemd and dropin_before is not None:
        host.remove(host.dropin_path(name))
        runner.run(["systemctl", "daemon-reload"], check=False)
    return result


def _diff(config_path, before, after, plan):
    live_before, live_after = plan.tracker.get_before_after()
    return [
        {"before_header": config_path, "after_header": config_path,
         "before": before or "", "after": after or ""},
        {"before_header": "%s (live)" % plan.name, "after_header": "%s (live)" % plan.name,
         "before": _yamlish(live_before), "after": _yamlish(live_after)},
    ]


def _yamlish(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


# ---------------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------------

def wireguard_info(runner, name=None, now=None):
    """Facts about WireGuard interfaces and peers. Never private or preshared keys."""
    if not runner.bin_path("wg", required=False):
        return {}, ["the wg tool (wireguard-tools) is not installed: no WireGuard facts"]
    argv = ["wg", "show", name or "all", "dump"]
    rc, out, err = runner.run(argv, check=False)
    if rc != 0:
        if name:
            raise TunnelgateError("name", "%s is not a WireGuard interface (%s)" % (name, err.strip()))
        raise CommandError(argv, rc, out, err)
    dump = parse_dump(out, name=name)
    interfaces = {}
    for ifname, data in dump.items():
        peers = []
        for peer in data["peers"].values():
            handshake = peer["latest_handshake"] or None
            peers.append({
                "public_key": peer["public_key"],
                "endpoint": peer["endpoint"],
                "allowed_ips": list(peer["allowed_ips"]),
                "latest_handshake": handshake,
                "latest_handshake_age": (int(now - handshake) if handshake and now is not None else None),
                "transfer_rx": peer["transfer_rx"],
                "transfer_tx": peer["transfer_tx"],
                "persistent_keepalive": peer["persistent_keepalive"],
                "preshared_key": peer["preshared_key"],
            })
        entry = {"public_key": data["public_key"], "listen_port": data["listen_port"], "fwmark": data["fwmark"],
                 "peers": peers, "addresses": [], "mtu": None}
        for link in _json(runner, ["ip", "-j", "addr", "show", "dev", ifname]):
            entry["mtu"] = link.get("mtu")
            entry["addresses"] = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
                                  if a.get("scope") == "global"]
        interfaces[ifname] = entry
    return interfaces, []

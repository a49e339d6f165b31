# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired state: the ``interface`` module's options validated into a ``State``.

``build_desired`` checks every option (errors name the option and the peer) and derives the
routes, policy rules and sysctls wg-quick would set up for ``table``/``routing``.
``read_private_public_key`` and ``read_psks`` load key files in memory only (never into results).
"""

from __future__ import annotations

import base64
import collections
import ipaddress
import os
import re
import socket

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError, read_text
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import (
    DEFAULT_FULL_TUNNEL_TABLE,
    DEFAULT_RULE_PRIORITY,
    FULL_MASK,
    NAME_RE,
    SAFE_PATH_RE,
    RESERVED_TABLES,
    SRC_VALID_MARK,
    PeerState,
    Route,
    Rule,
    State,
    _family,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import key_problem, parse_cidr, parse_endpoint, short_key

try:
    from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import public_key as _x25519_public_key
except ImportError:  # pragma: no cover - the keypair engineer's module is part of the collection
    _x25519_public_key = None


def _parse_network(text, option, item=None):
    if "%" in str(text):
        raise TunnelgateError(option, "%r: a zone id (%%...) has no place in a network" % (text,), item)
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise TunnelgateError(option, "%r is not a valid IPv4/IPv6 network (CIDR)" % (text,), item) from None


def _check_path(path, option, item=None):
    if not path or not os.path.isabs(path):
        raise TunnelgateError(option, "must be an absolute path, got %r" % (path,), item)
    if not SAFE_PATH_RE.match(path):
        bad = sorted(set(ch for ch in path if not SAFE_PATH_RE.match("/" + ch)))
        raise TunnelgateError(option, "must not contain white space, quotes or characters that mean something to a "
                              "shell or systemd (found %s in %r): only letters, digits and . _ - / @ + : , = (the path "
                              "is written into wg-quick hooks and a systemd unit's shell command)"
                              % (" ".join(repr(ch) for ch in bad), path), item)
    return path


def _table_option(value):
    text = str(value).strip().lower() if value is not None else "auto"
    if text in ("auto", "off"):
        return text
    if not re.match(r"^[0-9]{1,10}\Z", text) or not 1 <= int(text) <= 0xFFFFFFFF:
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
            if "%" in str(text):
                raise ValueError("zone id")
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
            if "%" in text:
                raise ValueError("zone id")
            ipaddress.ip_address(text)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+\Z", text):
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
        description = spec.get("description")
        label = description or (short_key(key) if key else "#%d" % index)
        problem = key_problem(key)
        if problem:
            raise TunnelgateError(option + ".public_key", "the public key %s" % problem, label)
        if key in peers:
            raise TunnelgateError(option + ".public_key", "the same public key is listed for %s too" % peers[key].label, label)
        if description is not None and not description.isprintable():
            raise TunnelgateError(option + ".description", "must be one line of printable text (no control characters "
                                  "or line separators: it is written into the configuration file)", label)
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
        if sources or excludes or routing.get("bypass_fwmark"):
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
    bypass = bypass_rules(routing.get("bypass_fwmark"), priority)
    # only where the tunnel's rules take traffic away from the main table (full tunnel, sources)
    families = {rule.family for rule in desired.rules}
    for rule in bypass:
        if rule.family in families:
            desired.rules[rule] += 1


def bypass_rules(bypass, priority):
    """``fwmark MARK/MASK lookup main`` (both families) at ``priority - 1``, before the tunnel's rules.

    Packets carrying the mark are routed by the main table: with the connection marks that
    tunnelgate.wireguard.firewall sets on inbound connections, replies to connections that came in on
    the uplink (SSH, Ansible) leave by the uplink instead of the tunnel. Validated here (pure).
    """
    if not bypass:
        return []
    mark, mask = bypass.get("mark"), bypass.get("mask")
    mask = FULL_MASK if mask is None else mask
    if not 1 <= mask <= FULL_MASK:
        raise TunnelgateError("routing.bypass_fwmark.mask", "must be in 1-0xffffffff, got %s" % mask)
    if mark is None or not 1 <= mark <= FULL_MASK or mark & ~mask:
        raise TunnelgateError("routing.bypass_fwmark.mark", "must be a non-zero mark within the mask %#x, got %s"
                              % (mask, mark))
    if priority < 2:
        raise TunnelgateError("routing.priority", "must be at least 2 with bypass_fwmark (its rule uses priority-1)")
    return [Rule(family, priority - 1, None, "main", mark, False, None, None if mask == FULL_MASK else mask)
            for family in (4, 6)]


def without_ipv6(desired):
    """Adapt ``desired`` to a host where the interface cannot have IPv6 (``disable_ipv6=1``).

    IPv6 addresses and IPv6 routes through the device are left out (``ip`` refuses them: "IPv6 is
    disabled on nexthop device", and wg-quick up fails on the address). The IPv6 routes of the
    tunnel's own table become ``unreachable`` and its policy rules stay, so IPv6 that should use the
    tunnel is dropped instead of leaking through the uplink. IPv6 routes of the main table (a split
    tunnel) are left out. Returns what was left out or blocked, for the warning and the result.
    """
    skipped = ["address %s" % a for a in desired.addresses if a.version == 6]
    desired.addresses = [a for a in desired.addresses if a.version == 4]
    routes = collections.Counter()
    for route, count in desired.routes.items():
        if route.family == 6 and route.kind == "unicast":
            if route.table == "main":
                skipped.append("route %s (not sent through the tunnel)" % route.dst)
                continue
            skipped.append("route %s table %s (blocked: unreachable)" % (route.dst, route.table))
            route = route._replace(kind="unreachable")
        routes[route] += count
    desired.routes = routes
    return skipped


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

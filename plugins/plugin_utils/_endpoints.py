# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Endpoints given as DNS names: pin them to an address at apply time.

wg-quick resolves a peer's endpoint name when the tunnel starts. With the kill switch closed, DNS only goes
through the tunnel, which is not up yet at that moment: after a reboot or a tunnel restart the host could not
resolve the name and stayed offline. So the role resolves the name itself on every run, ON THE HOST (through
the tunnel when it is up, so the query never leaks), and pins the chosen address in both the peer's endpoint
(the wg-quick file then needs no DNS to start) and the kill switch's endpoint exception. What was pinned is
remembered on the host; when the name cannot be resolved (the tunnel is down: no DNS at all), the last pinned
address is kept, so a rerun still brings the tunnel back.

Pure functions over plain data; private to the collection (leading underscore).
"""

from __future__ import annotations

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import (
    InventoryError,
    format_endpoint,
    parse_endpoint,
)

try:
    import netaddr
except ImportError:  # pragma: no cover - reported by the filters that need it
    netaddr = None

FAMILIES = ("auto", "ipv4", "ipv6")


def _ip(text):
    """An IP address from a resolver's answer, or None (zone ids, junk)."""
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        return netaddr.IPAddress(text.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


def parse_resolved(answer):
    """Addresses from ``getent ahosts NAME`` output (or a list of addresses), in the resolver's order.

    ``getent ahosts`` prints one line per address and socket type (``ADDR STREAM name``, ``ADDR DGRAM``,
    ``ADDR RAW``): duplicates are dropped, the first occurrence keeps its place. Answers no tunnel can use
    (unspecified, loopback, multicast, link-local - a blocking resolver's ``0.0.0.0`` among them) are left out.
    """
    if answer in (None, ""):
        return []
    if isinstance(answer, str):
        tokens = [line.split()[0] for line in answer.splitlines() if line.split()]
    else:
        tokens = [str(item) for item in answer]
    found = []
    for token in tokens:
        ip = _ip(token)
        if ip is None or ip in found:
            continue
        if int(ip) == 0 or ip.is_loopback() or ip.is_multicast() or ip.is_link_local():
            continue
        found.append(ip)
    return found


def _previous(previous, name, port):
    """The address the last run pinned for the same ``name:port`` (a dict the role kept on the host)."""
    if not isinstance(previous, dict) or previous.get("endpoint") != format_endpoint(name, port):
        return None
    pinned = previous.get("pinned")
    if not isinstance(pinned, str):
        return None
    try:
        address, pinned_port = parse_endpoint(pinned, "pinned")
    except InventoryError:
        return None
    ip = _ip(address)
    return ip if ip is not None and pinned_port == port else None


def pin_endpoint(endpoint, resolved=None, previous=None, family="auto", routable=None, host=None,
                 variable="endpoint"):
    """Choose the address to pin for ``endpoint`` (``name:port``, ``addr:port`` or ``[v6]:port``).

    resolved   what the host's resolver answered (``getent ahosts`` output or a list), in its order of
               preference; empty or None when the name could not be resolved
    previous   what the last run pinned: ``{"endpoint": "name:port", "pinned": "addr:port"}`` (or None)
    family     ``auto`` (the resolver's order), ``ipv4`` or ``ipv6`` (only that family)
    routable   the IP versions the host has a default route for (``[4, 6]``); with ``auto``, answers of other
               families are used only when nothing else is left. None: no preference
    host       the inventory host (named in errors); ``variable`` the variable holding the endpoint

    The address pinned last time is kept while the name still resolves to it (round-robin answers do not
    flap the tunnel); otherwise the first usable answer wins. Returns a dict: ``endpoint`` (``addr:port``,
    for wg-quick and the kill switch), ``address``, ``port``, ``name`` (None for a literal address),
    ``addresses`` (every usable answer, sorted), ``source`` (``literal``, ``resolved`` or ``previous``).
    """
    if netaddr is None:
        raise InventoryError("netaddr", "the Python library netaddr is required on the controller (pip install netaddr)")
    if family not in FAMILIES:
        raise InventoryError("host_vpn_endpoint_family", "%r is not one of %s" % (family, ", ".join(FAMILIES)), host)
    name, port = parse_endpoint(endpoint, variable, host)
    literal = _ip(name)
    if literal is not None:
        if family != "auto" and literal.version != (4 if family == "ipv4" else 6):
            raise InventoryError("host_vpn_endpoint_family", "is %s but the endpoint %s is an IPv%d address"
                                 % (family, endpoint, literal.version), host)
        return {"endpoint": format_endpoint(literal, port), "address": str(literal), "port": port, "name": None,
                "addresses": [str(literal)], "source": "literal"}

    answers = parse_resolved(resolved)
    if family != "auto":
        answers = [ip for ip in answers if ip.version == (4 if family == "ipv4" else 6)]
    elif routable:
        preferred = [ip for ip in answers if ip.version in routable]
        answers = preferred or answers
    last = _previous(previous, name, port)
    if answers:
        chosen = last if last in answers else answers[0]
        source = "resolved"
    elif last is not None and (family == "auto" or last.version == (4 if family == "ipv4" else 6)):
        chosen = last
        source = "previous"
    else:
        wanted = "" if family == "auto" else " (%s)" % family
        raise InventoryError(variable, "the host cannot resolve %s%s and no earlier run pinned an address for it; "
                             "check the host's DNS, or give the endpoint as an address" % (name, wanted), host)
    return {"endpoint": format_endpoint(chosen, port), "address": str(chosen), "port": port, "name": name,
            "addresses": sorted(str(ip) for ip in answers) if answers else [str(chosen)], "source": source}

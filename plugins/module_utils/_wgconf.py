# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard text formats: wg-quick configuration files and ``wg show ... dump`` output.

Pure functions, no host access: render and parse wg-quick configs, parse the machine-readable
dump, validate keys and endpoints. Runs on the managed host, so only the standard library
(``ipaddress``, not netaddr) is used. Private to the collection: not a public API.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import socket

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import REDACTED, redact_keys

KEY_B64_LEN = 44
META_PREFIX = "# tunnelgate:"
DESCRIPTION_PREFIX = "# description:"
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
# What an endpoint may hold at all: it is written into the configuration file as is.
_ENDPOINT_CHARS = re.compile(r"^[A-Za-z0-9.:%\[\]_-]+\Z")
_ZONE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,15}\Z")
_PORT = re.compile(r"^[0-9]{1,5}\Z")


# ---------------------------------------------------------------------------------------------
# keys and endpoints
# ---------------------------------------------------------------------------------------------

def key_problem(value):
    """Return why ``value`` is not a WireGuard key (canonical base64 of 32 bytes), or None."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) != KEY_B64_LEN:
        return "must be 44 characters of base64 (32 bytes), found %d characters" % len(value)
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return "is not valid base64"
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != value:
        return "is not the canonical base64 of 32 bytes"
    return None


def is_key(value):
    return key_problem(value) is None


def short_key(value):
    """A short, non-secret label for a PUBLIC key in messages (first 8 characters)."""
    return "%s..." % value[:8] if isinstance(value, str) and len(value) > 8 else str(value)


def parse_endpoint(value):
    """Split ``host:port`` / ``[v6]:port`` / ``name:port`` into (host, port).

    ``host`` is an ``ipaddress`` address for literals, a lower-case string for hostnames.
    Raises ValueError with a message saying what is wrong.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("must be host:port")
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1:close + 2] != ":":
            raise ValueError("an IPv6 endpoint must look like [2001:db8::1]:51820")
        host_text, port_text = value[1:close], value[close + 2:]
        address_text, percent, zone = host_text.partition("%")
        if percent and not _ZONE_ID.match(zone):
            raise ValueError("the zone id %r is not an interface name" % zone)
        try:
            host = ipaddress.IPv6Address(address_text)
        except ValueError:
            raise ValueError("%r is not an IPv6 address" % host_text) from None
    else:
        if value.count(":") != 1:
            raise ValueError("must be host:port (put IPv6 addresses in brackets: [2001:db8::1]:51820)")
        host_text, port_text = value.split(":")
        try:
            host = ipaddress.IPv4Address(host_text)
        except ValueError:
            host = host_text.lower().rstrip(".")
            labels = host.split(".")
            if not host or not all(_HOSTNAME_LABEL.match(label) for label in labels) or labels[-1].isdigit():
                raise ValueError("%r is neither an IP address nor a valid host name" % host_text) from None
    if not _PORT.match(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError("port %r is not in 1-65535" % port_text)
    if not _ENDPOINT_CHARS.match(value):
        raise ValueError("may only hold letters, digits and . - _ : [ ] %% (host:port, [IPv6]:port), found %s" % (
            " ".join(sorted(set(repr(ch) for ch in value if not _ENDPOINT_CHARS.match(ch))))))
    return host, int(port_text)


def parse_cidr(text):
    """Fast CIDR parser for large peer lists: (version, network int, prefix length, canonical text).

    Host bits are masked (as wg does). The canonical text comes from ``inet_ntop``, the function
    ``wg`` itself prints addresses with, so it compares equal to ``wg show dump`` output. A missing
    prefix length means a host (/32 or /128). Raises ValueError.
    """
    addr, slash, plen_text = str(text).strip().partition("/")
    version, family, size = (6, socket.AF_INET6, 16) if ":" in addr else (4, socket.AF_INET, 4)
    bits = size * 8
    try:
        packed = socket.inet_pton(family, addr)
    except (OSError, ValueError):
        raise ValueError("%r is not a valid IPv%d address" % (addr, version)) from None
    if version == 4 and any(len(part) > 1 and part.startswith("0") for part in addr.split(".")):
        raise ValueError("%r has leading zeros (ambiguous: octal or decimal?)" % addr)
    if not slash:
        plen = bits
    elif re.match(r"^[0-9]{1,3}\Z", plen_text) and int(plen_text) <= bits:
        plen = int(plen_text)
    else:
        raise ValueError("prefix length %r is not in 0-%d" % (plen_text, bits))
    value = int.from_bytes(packed, "big") & (((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1))
    return version, value, plen, "%s/%d" % (socket.inet_ntop(family, value.to_bytes(size, "big")), plen)


def format_endpoint(host, port):
    if isinstance(host, ipaddress.IPv6Address):
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


# ---------------------------------------------------------------------------------------------
# wg-quick configuration files
# ---------------------------------------------------------------------------------------------

def render_config(header, meta, interface, peers):
    """Render a wg-quick configuration file.

    ``header``: comment lines without the leading ``#`` (the ansible_managed text).
    ``meta``: dict written as one ``# tunnelgate: key=value ...`` comment (wg-quick ignores it;
    the module reads it back to know what the previous run set up).
    ``interface``: list of (key, value) pairs for [Interface], in order.
    ``peers``: list of dicts with ``description`` (optional) and ``items`` (list of (key, value)).
    """
    lines = []
    for text in header:
        lines.append(("# %s" % text).rstrip())
    if meta:
        lines.append("%s %s" % (META_PREFIX, " ".join("%s=%s" % (k, meta[k]) for k in sorted(meta))))
    lines.append("[Interface]")
    lines.extend("%s = %s" % (key, value) for key, value in interface)
    for peer in peers:
        lines.append("")
        lines.append("[Peer]")
        if peer.get("description"):
            lines.append("%s %s" % (DESCRIPTION_PREFIX, peer["description"]))
        lines.extend("%s = %s" % (key, value) for key, value in peer["items"])
    return "\n".join(lines) + "\n"


SECRET_CONFIG_KEYS = ("privatekey", "presharedkey")


def redact_config(text):
    """A wg-quick file (ours or hand-made) made safe to show in a diff: no key material left.

    Every ``PrivateKey``/``PresharedKey`` value (any case, any spacing, whatever it holds) becomes
    ``(redacted)``; any other key-shaped token (in a hook, a comment) too, unless it is a
    ``PublicKey`` value of the same file. Everything else is kept, so the diff still says what changes.
    """
    if not text:
        return text
    public = set()
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.strip().lower() == "publickey":
            public.add(value.split("#", 1)[0].strip())
    lines = []
    for raw in text.splitlines(True):
        key, sep, value = raw.partition("=")
        if sep and key.strip().lower() in SECRET_CONFIG_KEYS:
            spacing = value[:len(value) - len(value.lstrip(" \t"))]
            raw = "%s=%s%s%s" % (key, spacing, REDACTED, "\n" if raw.endswith("\n") else "")
        else:
            raw = redact_keys(raw, keep=public)
        lines.append(raw)
    return "".join(lines)


class ConfigFile:
    """A parsed wg-quick file: ``interface`` and each peer are lists of (key, value) pairs."""

    def __init__(self):
        self.meta = {}
        self.interface = []
        self.peers = []  # dicts: {"description": str|None, "items": [(key, value)]}

    def interface_values(self, key):
        return [value for k, value in self.interface if k.lower() == key.lower()]

    def interface_value(self, key, default=None):
        values = self.interface_values(key)
        return values[-1] if values else default


def parse_config(text):
    """Parse a wg-quick file as wg-quick does (keys case-insensitive, ``#`` starts a comment).

    Also reads this module's own ``# tunnelgate:`` meta comment and ``# description:`` comments.
    Raises ValueError on lines wg-quick would reject.
    """
    conf = ConfigFile()
    section = None
    current = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(META_PREFIX):
            for token in line[len(META_PREFIX):].split():
                if "=" in token:
                    key, value = token.split("=", 1)
                    conf.meta[key] = value
            continue
        if line.startswith(DESCRIPTION_PREFIX) and section == "peer":
            current["description"] = line[len(DESCRIPTION_PREFIX):].strip()
            continue
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        lowered = line.lower()
        if lowered == "[interface]":
            section = "interface"
            continue
        if lowered == "[peer]":
            section = "peer"
            current = {"description": None, "items": []}
            conf.peers.append(current)
            continue
        if "=" not in line or section is None:
            raise ValueError("line %d: expected [Interface], [Peer] or Key = Value" % number)
        key, value = line.split("=", 1)
        pair = (key.strip(), value.strip())
        if section == "interface":
            conf.interface.append(pair)
        else:
            current["items"].append(pair)
    return conf


# ---------------------------------------------------------------------------------------------
# `wg show <name|all> dump`
# ---------------------------------------------------------------------------------------------

def _none(value):
    return None if value in ("(none)", "off", "") else value


def _parse_allowed_ips(text):
    """The dump's allowed IPs as strings, as wg prints them (already masked, CIDR notation).

    Kept as text for speed (a server may have thousands); ``canonical_networks`` normalizes.
    """
    if _none(text) is None:
        return []
    return [item for item in text.split(",") if item]


def canonical_networks(items):
    """Normalized, sorted CIDR strings (IPv4 first) of networks given as text or objects."""
    nets = [item if not isinstance(item, str) else ipaddress.ip_network(item, strict=False) for item in items]
    return [str(n) for n in sorted(set(nets), key=lambda n: (n.version, int(n.network_address), n.prefixlen))]


def parse_dump(text, name=None, keep_secrets=False):
    """Parse ``wg show all dump`` (``name`` None) or ``wg show NAME dump`` output.

    Returns {ifname: {"public_key", "listen_port", "fwmark", "peers": {pubkey: {...}}}}.
    Private and preshared keys are dropped unless ``keep_secrets`` (the interface module needs
    them in memory to compare and restore; they never go into a module result). Peers always
    carry ``preshared_key`` (bool: one is set).
    """
    interfaces = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            _parse_dump_line(interfaces, line, name, keep_secrets)
        except (ValueError, IndexError, KeyError):
            # Never quote the line or a field: the dump holds private and preshared keys.
            raise ValueError("line %d of the wg dump is not in the format this module knows" % number) from None
    return interfaces


def _parse_dump_line(interfaces, line, name, keep_secrets):
    """One line of ``wg show ... dump`` into ``interfaces`` (see ``parse_dump``)."""
    fields = line.split("\t")
    if name is None:
        ifname, fields = fields[0], fields[1:]
    else:
        ifname = name
    if ifname not in interfaces:
        if len(fields) != 4:
            raise ValueError("unexpected wg dump interface line with %d fields" % len(fields))
        private, public, port, fwmark = fields
        entry = {
            "public_key": _none(public),
            "listen_port": int(port) if _none(port) else None,
            "fwmark": int(fwmark, 0) if _none(fwmark) else None,
            "peers": {},
        }
        if keep_secrets:
            entry["private_key"] = _none(private)
        interfaces[ifname] = entry
        return
    if len(fields) != 8:
        raise ValueError("unexpected wg dump peer line with %d fields" % len(fields))
    public, psk, endpoint, allowed, handshake, rx, tx, keepalive = fields
    peer = {
        "public_key": public,
        "preshared_key": _none(psk) is not None,
        "endpoint": _none(endpoint),
        "allowed_ips": _parse_allowed_ips(allowed),
        "latest_handshake": int(handshake),
        "transfer_rx": int(rx),
        "transfer_tx": int(tx),
        "persistent_keepalive": int(keepalive) if _none(keepalive) else None,
    }
    if keep_secrets:
        peer["preshared_key_value"] = _none(psk)
    interfaces[ifname]["peers"][public] = peer


def split_live_endpoint(text):
    """``1.2.3.4:51820`` / ``[fd00::1]:51820`` from a dump -> (ip_address, port), or None."""
    if not text:
        return None
    host, dummy_sep, port = text.rpartition(":")
    host = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(host), int(port)
    except ValueError:
        return None

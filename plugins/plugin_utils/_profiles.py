# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side logic behind the collection's filters: profiles, addresses, peer plans.

Pure functions over plain data (dicts, lists, strings), so unit tests call them without
Ansible or a host. The filter plugins in ``plugins/filter/`` are thin wrappers that turn
:class:`InventoryError` into ``AnsibleFilterError``.

Private to the collection (leading underscore): not a public API.

Vocabulary
----------
profile
    one entry of ``tunnelgate_profiles``. Two kinds: ``server`` (a self-hosted exit, a host of
    the ``vpn_servers`` group, named by ``server``) and ``provider`` (a third-party endpoint,
    named by ``endpoint`` + ``public_key``).
state
    what a server remembers between runs (a JSON file on the server): its own public key and,
    per client host, the tunnel addresses it was given and its public key. Hosts that are not in
    the current play keep their entry, so ``--limit`` or an unreachable host never removes a peer,
    and an address once given is never given to another host.
"""

from __future__ import annotations

import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import is_key

try:
    import netaddr
except ImportError:  # pragma: no cover - reported by the filters that need it
    netaddr = None

CLIENT_GROUPS = ("vpn_hosts", "docker_gateways", "k8s_nodes")
# The lifecycle variable of the role each client group runs (DESIGN.md: <role>_state: present|absent).
ROLE_STATE = {"vpn_hosts": "host_vpn_state", "docker_gateways": "docker_gateway_state",
              "k8s_nodes": "k8s_node_egress_state"}
DEFAULT_PORT = 51820
DEFAULT_KEEPALIVE = 25
FULL_TUNNEL = ["0.0.0.0/0", "::/0"]
STATE_VERSION = 1

_COMMON_FIELDS = {"dns", "allowed_ips", "killswitch", "allow_lan", "persistent_keepalive", "mtu", "description"}
SERVER_FIELDS = _COMMON_FIELDS | {"server", "network", "port", "server_address"}
PROVIDER_FIELDS = _COMMON_FIELDS | {"endpoint", "public_key", "network"}

# \Z, not $ (which also matches before a trailing newline); [0-9], not \d (which takes any Unicode digit).
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?\Z")
_DIGITS_RE = re.compile(r"[0-9]+\Z")


class InventoryError(Exception):
    """A problem in the inventory the user must fix.

    ``str(err)`` starts with the variable to change and names the host it was found for:
    ``tunnelgate_profiles.eu-exit.network (host client1): ...``.
    """

    def __init__(self, variable, message, host=None):
        self.variable = variable
        self.host = host
        where = variable if host is None else "%s (host %s)" % (variable, host)
        super().__init__("%s: %s" % (where, message))


def _need_netaddr():
    if netaddr is None:
        raise InventoryError("netaddr", "the Python library netaddr is required on the controller (pip install netaddr)")


# ---------------------------------------------------------------------------------------------
# Small validators
# ---------------------------------------------------------------------------------------------

def is_wireguard_key(value):
    """True when ``value`` is a WireGuard key: canonical base64 of 32 bytes (44 characters).

    The same rule the modules apply on the target (module_utils ``_wgconf.is_key``).
    """
    return is_key(value)


def check_key(value, variable, host=None):
    if not is_wireguard_key(value):
        raise InventoryError(variable, "%r is not a WireGuard public key (32 bytes, base64, 44 characters "
                             "ending in '=', as printed by 'wg pubkey')" % (value,), host)
    return value


def _as_list(value, variable, host):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise InventoryError(variable, "expected a string or a list, got %s" % type(value).__name__, host)


def parse_cidr(value, variable, host=None, strict=False):
    """Parse an IPv4/IPv6 CIDR (a bare address counts as /32 or /128).

    ``strict``: the value must be a network address (no host bits set).
    """
    _need_netaddr()
    if not isinstance(value, str) or not value.strip():
        raise InventoryError(variable, "%r is not a CIDR (for example 10.66.0.0/24)" % (value,), host)
    try:
        net = netaddr.IPNetwork(value.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InventoryError(variable, "%r is not a valid IPv4/IPv6 CIDR" % (value,), host) from None
    if strict and net.ip != net.network:
        raise InventoryError(variable, "%r has host bits set; did you mean %s?" % (value, net.cidr), host)
    return net


def parse_ip(value, variable, host=None):
    _need_netaddr()
    try:
        if not isinstance(value, str) or "/" in value:
            raise ValueError(value)
        return netaddr.IPAddress(value.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InventoryError(variable, "%r is not an IPv4/IPv6 address" % (value,), host) from None


def parse_endpoint(value, variable, host=None):
    """``host:port``, ``[v6]:port`` or ``a.b.c.d:port`` -> (host, port)."""
    if not isinstance(value, str):
        raise InventoryError(variable, "%r is not an endpoint (host:port)" % (value,), host)
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:([0-9]+)\Z", value) or re.match(r"^([^:\[\]]+):([0-9]+)\Z", value)
    if not match:
        raise InventoryError(variable, "%r is not an endpoint: use host:port, or [IPv6]:port" % (value,), host)
    name, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise InventoryError(variable, "port %d is outside 1-65535" % port, host)
    if ":" in name:
        parse_ip(name, variable, host)
    elif not _HOSTNAME_RE.match(name):
        raise InventoryError(variable, "%r is not a valid host name or address" % name, host)
    return name, port


def format_endpoint(address, port):
    """Join an address and a port; IPv6 literals get brackets."""
    address = str(address)
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, int(port))


def _port(value, variable, host):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _DIGITS_RE.match(str(value)):
        raise InventoryError(variable, "%r is not a port number" % (value,), host)
    port = int(value)
    if not 1 <= port <= 65535:
        raise InventoryError(variable, "port %d is outside 1-65535" % port, host)
    return port


def _bool(value, variable, host):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "on", "1", "no", "false", "off", "0"):
        return value.lower() in ("yes", "true", "on", "1")
    raise InventoryError(variable, "%r is not a boolean" % (value,), host)


def _int_range(value, variable, host, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _DIGITS_RE.match(str(value)):
        raise InventoryError(variable, "%r is not a whole number" % (value,), host)
    number = int(value)
    if not low <= number <= high:
        raise InventoryError(variable, "%d is outside %d-%d" % (number, low, high), host)
    return number


# A role's own inputs: what ends up in file names, unit names and systemd/wg-quick lines on the host.
INTERFACE_RE = re.compile(r"^[A-Za-z0-9_=+.-]{1,15}\Z")  # what wg-quick and the kernel accept
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9_.+@%,:=/-]*\Z")  # no blanks, quotes, ';', '$', '`', '\\', newline


def check_interface_name(value, variable, host=None):
    if not isinstance(value, str) or not INTERFACE_RE.match(value) or value in (".", ".."):
        raise InventoryError(variable, "%r is not an interface name (1-15 characters of letters, digits and "
                             "'_=+.-')" % (value,), host)
    return value


def check_path(value, variable, host=None):
    """An absolute path that is safe to write into a systemd unit or a wg-quick line."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise InventoryError(variable, "%r is not an absolute path" % (value,), host)
    if not SAFE_PATH_RE.match(value):
        bad = sorted(set(ch for ch in value if not SAFE_PATH_RE.match("/" + ch)))
        raise InventoryError(variable, "%r contains characters a path of ours may not hold (%s); use letters, "
                             "digits and '_.+@%%,:=/-'" % (value, ", ".join(repr(ch) for ch in bad)), host)
    if any(part in (".", "..") for part in value.split("/")) or value.endswith("/") or "//" in value:
        raise InventoryError(variable, "%r is not a plain path (no '.', '..', '//' or trailing '/')" % (value,),
                             host)
    return value


INPUT_KINDS = {
    "interface": check_interface_name,
    "path": check_path,
    "fwmark": lambda value, variable, host: _int_range(value, variable, host, 1, 0xFFFFFFFF),
    "seconds": lambda value, variable, host: _int_range(value, variable, host, 1, 86400),
    "state": lambda value, variable, host: _choice(value, variable, host, ("present", "absent")),
}


def _choice(value, variable, host, choices):
    if not isinstance(value, str) or value not in choices:
        raise InventoryError(variable, "%r is not one of %s" % (value, ", ".join(choices)), host)
    return value


def check_inputs(values, host=None):
    """Check a role's own variables: ``{variable: [kind, value]}`` -> ``{variable: value}``.

    ``kind`` is one of ``interface``, ``path``, ``fwmark``, ``seconds``, ``state``. The first problem
    raises an :class:`InventoryError` naming the variable and the host.
    """
    if not isinstance(values, dict):
        raise InventoryError("check_inputs", "expects a dictionary {variable: [kind, value]}", host)
    result = {}
    for variable in sorted(values):
        entry = values[variable]
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or entry[0] not in INPUT_KINDS:
            raise InventoryError("check_inputs", "%s: expected [kind, value] with kind one of %s"
                                 % (variable, ", ".join(sorted(INPUT_KINDS))), host)
        result[variable] = INPUT_KINDS[entry[0]](entry[1], variable, host)
    return result


def cidr_overlaps(left, right):
    """Pairs ``[a, b]`` (a from ``left``, b from ``right``) whose address ranges overlap."""
    _need_netaddr()
    found = []
    for a in _as_list(left, "left", None):
        net_a = parse_cidr(a, "cidr_overlaps")
        for b in _as_list(right, "right", None):
            net_b = parse_cidr(b, "cidr_overlaps")
            if net_a.version == net_b.version and net_a.first <= net_b.last and net_b.first <= net_a.last:
                found.append([str(a), str(b)])
    return found


def host_networks(facts, exclude=()):
    """The networks a host is attached to, from its gathered facts (``ansible_facts``).

    Loopback, link-local and the interfaces named in ``exclude`` (the tunnel itself) are left out.
    Returns CIDR strings such as ``172.30.5.0/24``.
    """
    _need_netaddr()
    facts = facts or {}
    nets = []
    for ifname in facts.get("interfaces", []) or []:
        if ifname in exclude or ifname == "lo":
            continue
        info = facts.get(ifname.replace("-", "_")) or facts.get(ifname) or {}
        entries = []
        if isinstance(info.get("ipv4"), dict):
            entries.append(info["ipv4"])
        entries.extend(e for e in info.get("ipv4_secondaries", []) or [] if isinstance(e, dict))
        for entry in entries:
            if entry.get("address") and entry.get("netmask"):
                net = netaddr.IPNetwork("%s/%s" % (entry["address"], entry["netmask"]))
                nets.append(str(net.cidr))
        for entry in info.get("ipv6", []) or []:
            if not isinstance(entry, dict) or not entry.get("address"):
                continue
            if entry.get("scope") in ("link", "host"):
                continue
            net = netaddr.IPNetwork("%s/%s" % (entry["address"].split("%")[0], entry.get("prefix", 128)))
            if net.ip.is_link_local() or net.ip.is_loopback():
                continue
            nets.append(str(net.cidr))
    return sorted(set(nets), key=lambda c: (netaddr.IPNetwork(c).version, netaddr.IPNetwork(c)))


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------

def _networks(value, variable, host):
    nets = []
    for item in _as_list(value, variable, host):
        net = parse_cidr(item, variable, host, strict=True)
        limit = 30 if net.version == 4 else 126
        if net.prefixlen > limit:
            raise InventoryError(variable, "%s is too small for a tunnel network (at most /%d)" % (item, limit), host)
        nets.append(net)
    for version in (4, 6):
        if len([n for n in nets if n.version == version]) > 1:
            raise InventoryError(variable, "at most one IPv%d network per profile" % version, host)
    return sorted(nets, key=lambda n: n.version)


def normalize_profile(name, raw, host=None, servers=None):
    """Check one profile and return it with every default filled in.

    ``servers``: the inventory's ``vpn_servers`` hosts; a self-hosted profile must name one of them.
    """
    base = "tunnelgate_profiles.%s" % name
    if not isinstance(raw, dict):
        raise InventoryError(base, "a profile is a dictionary (server/network/... or endpoint/public_key/...)", host)
    kind = "provider" if "endpoint" in raw else "server"
    if "endpoint" in raw and "server" in raw:
        raise InventoryError(base, "set either server (a self-hosted exit) or endpoint + public_key (a provider), "
                             "not both", host)
    if "endpoint" not in raw and "server" not in raw:
        raise InventoryError(base, "set server (a host of group vpn_servers) or endpoint + public_key (a provider)",
                             host)
    allowed = SERVER_FIELDS if kind == "server" else PROVIDER_FIELDS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InventoryError("%s.%s" % (base, unknown[0]), "unknown field for a %s profile; known fields: %s"
                             % (kind, ", ".join(sorted(allowed))), host)

    profile = {"name": name, "kind": kind, "server": None, "endpoint": None, "public_key": None,
               "network": [], "server_address": [], "port": None}
    if kind == "server":
        server = raw["server"]
        if not isinstance(server, str) or not server:
            raise InventoryError(base + ".server", "name the exit server's inventory host", host)
        if servers is not None and server not in servers:
            raise InventoryError(base + ".server", "%r is not a host of group vpn_servers (known: %s)"
                                 % (server, ", ".join(sorted(servers)) or "none"), host)
        profile["server"] = server
        if raw.get("network") in (None, "", []):
            raise InventoryError(base + ".network", "a self-hosted profile needs its tunnel network "
                                 "(for example 10.66.0.0/24)", host)
        nets = _networks(raw["network"], base + ".network", host)
        profile["network"] = [str(n) for n in nets]
        profile["port"] = _port(raw.get("port", DEFAULT_PORT), base + ".port", host)
        if raw.get("server_address") not in (None, "", []):
            addrs = []
            for item in _as_list(raw["server_address"], base + ".server_address", host):
                ip = parse_ip(item.split("/")[0] if isinstance(item, str) else item, base + ".server_address", host)
                net = next((n for n in nets if n.version == ip.version), None)
                if net is None or ip not in net or ip in (net.network, net.broadcast):
                    raise InventoryError(base + ".server_address", "%s is not a host address of the profile's "
                                         "network %s" % (item, ", ".join(profile["network"])), host)
                addrs.append("%s/%d" % (ip, net.prefixlen))
            missing = [n for n in nets if not any(parse_cidr(a, "x").version == n.version for a in addrs)]
            for net in missing:
                addrs.append("%s/%d" % (netaddr.IPAddress(net.first + 1, net.version), net.prefixlen))
            profile["server_address"] = sorted(addrs, key=lambda a: parse_cidr(a, "x").version)
        else:
            profile["server_address"] = ["%s/%d" % (netaddr.IPAddress(n.first + 1, n.version), n.prefixlen)
                                         for n in nets]
    else:
        parse_endpoint(raw["endpoint"], base + ".endpoint", host)
        profile["endpoint"] = raw["endpoint"]
        if "public_key" not in raw:
            raise InventoryError(base + ".public_key", "a provider profile needs the provider's public key "
                                 "(PublicKey of [Peer] in its wg0.conf)", host)
        profile["public_key"] = check_key(raw["public_key"], base + ".public_key", host)
        if raw.get("network") not in (None, "", []):
            profile["network"] = [str(n) for n in _networks(raw["network"], base + ".network", host)]

    dns_default = [a.split("/")[0] for a in profile["server_address"]] if kind == "server" else []
    dns = raw.get("dns", dns_default)
    profile["dns"] = [str(parse_ip(d, base + ".dns", host)) for d in _as_list(dns, base + ".dns", host)]

    allowed_ips = raw.get("allowed_ips", FULL_TUNNEL)
    allowed_list = _as_list(allowed_ips, base + ".allowed_ips", host)
    if not allowed_list:
        raise InventoryError(base + ".allowed_ips", "an empty list routes nothing through the tunnel; "
                             "leave it out for a full tunnel", host)
    profile["allowed_ips"] = [str(parse_cidr(c, base + ".allowed_ips", host, strict=True)) for c in allowed_list]
    profile["full_tunnel"] = any(parse_cidr(c, "x").prefixlen == 0 for c in profile["allowed_ips"])

    profile["killswitch"] = _bool(raw.get("killswitch", True), base + ".killswitch", host)
    lan = [parse_cidr(c, base + ".allow_lan", host) for c in _as_list(raw.get("allow_lan"), base + ".allow_lan", host)]
    profile["allow_lan"] = [str(n.cidr) for n in lan]
    for net in lan:
        if net.prefixlen == 0:
            raise InventoryError(base + ".allow_lan", "%s would let everything bypass the kill switch" % net, host)
    clash = cidr_overlaps(profile["network"], profile["allow_lan"])
    if clash:
        raise InventoryError(base + ".allow_lan", "%s overlaps the tunnel network %s" % (clash[0][1], clash[0][0]),
                             host)
    profile["persistent_keepalive"] = _int_range(raw.get("persistent_keepalive", DEFAULT_KEEPALIVE),
                                                 base + ".persistent_keepalive", host, 0, 65535)
    profile["mtu"] = None if raw.get("mtu") in (None, "") else _int_range(raw["mtu"], base + ".mtu", host, 1280, 9000)
    profile["description"] = raw.get("description", "")
    check_dns_routed(profile, host)
    return profile


def check_dns_routed(profile, host=None):
    """Every DNS server of a profile must be reachable through the tunnel (its ``allowed_ips``).

    The host sends DNS to these servers over the tunnel only: a server the routes do not cover
    (a split tunnel whose default DNS is the exit's tunnel address) leaves the host without DNS.
    A server of a family the profile does not route at all is left out by the roles (that family
    is blocked), so it is accepted as long as at least one server remains.
    """
    variable = "tunnelgate_profiles.%s.dns" % profile["name"]
    nets = [parse_cidr(c, variable, host) for c in profile["allowed_ips"]]
    families = {n.version for n in nets}
    usable = []
    for server in profile["dns"]:
        ip = parse_ip(server, variable, host)
        if ip.version not in families:
            continue
        if not any(ip in net for net in nets):
            raise InventoryError(variable, "the DNS server %s is not reachable through the tunnel: the profile's "
                                 "allowed_ips (%s) do not cover it; add %s/%d to allowed_ips, or set dns to "
                                 "resolvers the tunnel routes reach (dns: [] keeps the host's own resolver)"
                                 % (server, ", ".join(profile["allowed_ips"]), server, 32 if ip.version == 4 else 128),
                                 host)
        usable.append(server)
    if profile["dns"] and not usable:
        routed = ", ".join(profile["allowed_ips"])
        raise InventoryError(variable, "none of the DNS servers (%s) is of an address family the profile's "
                             "allowed_ips (%s) route through the tunnel" % (", ".join(profile["dns"]), routed), host)


def validate_profiles(profiles, host=None, servers=None):
    """Check every profile of ``tunnelgate_profiles``; return them normalised (defaults filled)."""
    if profiles is None or profiles == {}:
        raise InventoryError("tunnelgate_profiles", "no profiles defined; see examples/group_vars/all.yml", host)
    if not isinstance(profiles, dict):
        raise InventoryError("tunnelgate_profiles", "must be a dictionary of named profiles", host)
    result = {}
    for name in sorted(profiles):
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z", name):
            raise InventoryError("tunnelgate_profiles", "%r is not a valid profile name (letters, digits, '-', "
                                 "'_', '.')" % (name,), host)
        result[name] = normalize_profile(name, profiles[name], host, servers)
    # Profiles served by one server share its interface: network and port must agree.
    by_server = {}
    for profile in result.values():
        if profile["kind"] == "server":
            by_server.setdefault(profile["server"], []).append(profile)
    for server, group in by_server.items():
        first = group[0]
        for other in group[1:]:
            for field in ("network", "port", "server_address"):
                if other[field] != first[field]:
                    raise InventoryError("tunnelgate_profiles.%s.%s" % (other["name"], field),
                                         "profiles %s and %s both use server %s and must agree on %s (%s vs %s)"
                                         % (first["name"], other["name"], server, field, first[field],
                                            other[field]), host)
    return result


def profile_for_host(profiles, host, choice=None, servers=None):
    """The normalised profile a host uses (``tunnelgate_profile``), with checks naming the host.

    With a single profile defined, a host without ``tunnelgate_profile`` uses it.
    """
    return choose_profile(validate_profiles(profiles, host, servers), host, choice)


def choose_profile(checked, host, choice=None):
    """``profile_for_host`` over profiles already validated (one validation for a whole fleet)."""
    if choice in (None, ""):
        if len(checked) == 1:
            return dict(next(iter(checked.values())))
        raise InventoryError("tunnelgate_profile", "not set; choose one of the profiles: %s"
                             % ", ".join(sorted(checked)), host)
    if not isinstance(choice, str) or choice not in checked:
        raise InventoryError("tunnelgate_profile", "%r is not a profile of tunnelgate_profiles (known: %s)"
                             % (choice, ", ".join(sorted(checked))), host)
    return dict(checked[choice])


# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------

def _explicit_addresses(value, variable, host, networks):
    """``tunnelgate_address`` -> {version: 'addr/32'}; each must lie in the profile's networks."""
    result = {}
    for item in _as_list(value, variable, host):
        net = parse_cidr(item, variable, host)
        ip = net.ip
        if networks:
            inside = next((n for n in networks if n.version == ip.version), None)
            if inside is None:
                raise InventoryError(variable, "%s is IPv%d but the profile's tunnel network has no IPv%d part (%s)"
                                     % (item, ip.version, ip.version, ", ".join(str(n) for n in networks)), host)
            if ip not in inside or ip in (inside.network, inside.broadcast):
                raise InventoryError(variable, "%s is not a host address of the tunnel network %s"
                                     % (item, inside), host)
        if ip.version in result:
            raise InventoryError(variable, "give at most one IPv%d address" % ip.version, host)
        result[ip.version] = "%s/%d" % (ip, 32 if ip.version == 4 else 128)
    return result


def allocate_addresses(network, hosts, server_address=None, state=None, explicit=None):
    """Stable tunnel addresses for ``hosts``.

    network         the profile's tunnel network(s) (one IPv4 and/or one IPv6 CIDR)
    hosts           the hosts that need an address, in a stable order (sorted by the caller)
    server_address  the server's own tunnel address(es), never handed out
    state           {host: [addresses]} given earlier (kept as they are: nobody is renumbered)
    explicit        {host: tunnelgate_address} explicit choices (win for their host)

    Returns {host: ["10.66.0.2/32", "fd66::2/128"]}. New hosts get the lowest free address;
    the IPv6 address of a new host reuses the IPv4 host number when that is free, so the two
    are easy to match. Raises InventoryError on duplicates and on a full network.
    """
    _need_netaddr()
    nets = _networks(network, "network", None)
    state = state or {}
    explicit = {h: v for h, v in (explicit or {}).items() if v not in (None, "", [])}
    taken = {}  # _key(ip) -> owner
    cursor = {}  # network -> where the search for a free address resumes (nothing is freed meanwhile)

    def claim(ip, owner, variable):
        key = _key(ip)
        if key in taken and taken[key] != owner:
            other = taken[key]
            if other == "(server)":
                raise InventoryError(variable, "%s is the server's own tunnel address" % ip, owner)
            raise InventoryError(variable, "%s is already the tunnel address of host %s; choose another "
                                 "(addresses are never taken from another host)" % (ip, other), owner)
        taken[key] = owner

    for item in _as_list(server_address, "server_address", None):
        claim(parse_cidr(item, "server_address").ip, "(server)", "server_address")
    for net in nets:
        taken.setdefault(_key(net.network), "(network)")
        if net.version == 4:
            taken.setdefault(_key(net.broadcast), "(broadcast)")

    result = {h: {} for h in hosts}
    # 1. explicit addresses win for their own host.
    for host in hosts:
        if host in explicit:
            for version, addr in _explicit_addresses(explicit[host], "tunnelgate_address", host, nets).items():
                claim(parse_cidr(addr, "x").ip, host, "tunnelgate_address")
                result[host][version] = addr
    # 2. addresses remembered from earlier runs stay with their host (also for hosts not asked for
    #    now: they are reserved so that nobody else gets them).
    for host in sorted(state):
        for addr in _as_list(state[host], "state", host):
            net = parse_cidr(addr, "state", host)
            inside = next((n for n in nets if n.version == net.version), None)
            if inside is None or net.ip not in inside:
                continue  # the network changed: the old address is void
            if host in result and net.version in result[host]:
                continue  # an explicit address replaced it
            if _key(net.ip) in taken and taken[_key(net.ip)] != host:
                if host not in result:
                    continue
                raise InventoryError("tunnelgate_address", "%s is remembered by the server as host %s's address "
                                     "and also given to host %s" % (net.ip, host, taken[_key(net.ip)]),
                                     taken[_key(net.ip)])
            taken[_key(net.ip)] = host
            if host in result:
                result[host][net.version] = "%s/%d" % (net.ip, 32 if net.version == 4 else 128)
    # 3. the rest: lowest free address.
    for host in hosts:
        for net in nets:
            if net.version in result[host]:
                continue
            ip = None
            v4 = result[host].get(4)
            if net.version == 6 and v4:
                offset = int(parse_cidr(v4, "x").ip) - int(next(n for n in nets if n.version == 4).network)
                candidate = netaddr.IPAddress(net.first + offset, 6)
                if candidate in net and _key(candidate) not in taken:
                    ip = candidate
            if ip is None:
                ip = _first_free(net, taken, cursor)
            if ip is None:
                raise InventoryError("tunnelgate_profiles", "tunnel network %s is full: no address left for "
                                     "this host" % net, host)
            claim(ip, host, "tunnelgate_address")
            result[host][net.version] = "%s/%d" % (ip, 32 if net.version == 4 else 128)
    return {h: [result[h][v] for v in sorted(result[h])] for h in hosts}


def _key(ip):
    return (ip.version, int(ip))


def _first_free(net, taken, cursor):
    """Lowest free address of ``net``; ``cursor`` remembers where the last search ended, so
    allocating N new hosts is O(N + size of the used range), not O(N^2)."""
    last = net.last - 1 if net.version == 4 else net.last
    value = max(net.first + 1, cursor.get(net, 0))
    while value <= last:
        if (net.version, value) not in taken:
            cursor[net] = value + 1
            return netaddr.IPAddress(value, net.version)
        value += 1
    return None


# ---------------------------------------------------------------------------------------------
# The server's plan: every peer, from the whole inventory plus the server's state
# ---------------------------------------------------------------------------------------------

def _group_hosts(groups, names):
    seen = set()
    for group in names:
        seen.update((groups or {}).get(group, []) or [])
    return sorted(seen)


def _hv(hostvars, host, name, default=None):
    try:
        values = hostvars[host]
    except KeyError:
        return default
    try:
        value = values.get(name, default) if hasattr(values, "get") else values[name]
    except KeyError:
        return default
    return default if value is None else value


def role_state(hostvars, host, variable):
    """``present`` or ``absent`` from a host's ``<role>_state`` (default ``present``)."""
    value = _hv(hostvars, host, variable, "present")
    if not isinstance(value, str) or value not in ("present", "absent"):
        raise InventoryError(variable, "%r is not a state: use present or absent" % (value,), host)
    return value


def leaving_hosts(hostvars, groups, client_groups=CLIENT_GROUPS):
    """Client hosts taken out of the VPN: every client role they have says ``<role>_state: absent``.

    Such a host is not a peer of any server; its remembered address is released.
    """
    leaving = set()
    for host in _group_hosts(groups, client_groups):
        states = [role_state(hostvars, host, ROLE_STATE.get(group, "host_vpn_state"))
                  for group in client_groups if host in ((groups or {}).get(group) or [])]
        if states and all(state == "absent" for state in states):
            leaving.add(host)
    return leaving


def empty_state():
    return {"version": STATE_VERSION, "public_key": None, "peers": {}}


def normalize_state(state, server=None):
    """Accept a state dict read from the server (or nothing) and return a clean copy."""
    if state in (None, "", {}):
        return empty_state()
    if not isinstance(state, dict) or not isinstance(state.get("peers", {}), dict):
        raise InventoryError("server state", "the state file is not a tunnelgate state (expected a dictionary "
                             "with 'peers'); move it away to start afresh", server)
    clean = empty_state()
    clean["public_key"] = state.get("public_key")
    for host, entry in state.get("peers", {}).items():
        if not isinstance(entry, dict):
            continue
        clean["peers"][host] = {
            "addresses": [str(a) for a in _as_list(entry.get("addresses"), "server state", server)],
            "public_key": entry.get("public_key"),
            "profile": entry.get("profile"),
        }
    return clean


def server_plan(hostvars, server, groups, profiles, state=None, public_key=None, prune=True,
                client_groups=CLIENT_GROUPS):
    """Everything the ``server`` role configures for one exit server, in one pure function.

    hostvars       Ansible's ``hostvars`` (or any {host: {var: value}}), read for EVERY inventory host
                   of ``client_groups``, not only the hosts of the play
    server         this server's inventory name
    groups         Ansible's ``groups``
    profiles       ``tunnelgate_profiles``
    state          the server's state read from its state file (may be empty)
    public_key     the server's own public key (from its ``keypair`` call)
    prune          drop state entries of hosts that left the inventory (or no longer use this server)

    A client's public key is its ``tunnelgate_public_key`` (a fact set by the client's keypair step,
    or set in the inventory) and otherwise the key remembered in the state. Hosts with neither are
    ``pending``: they become peers once their key is known (run the client key play first).

    A host whose client roles all say ``<role>_state: absent`` (``host_vpn_state`` for ``vpn_hosts``)
    is no peer: its entry leaves the state and its address is free for the next new host; nobody
    else is renumbered.

    Returns a dict: ``peers`` (for the interface module), ``state`` (to write back), ``addresses``
    ({host: [...]}), ``pending``, ``removed``, ``profile`` (the server's normalised profile) and
    ``addresses_self`` (the server's interface addresses).
    """
    servers = list((groups or {}).get("vpn_servers", []) or [])
    checked = validate_profiles(profiles, server, servers or None)
    mine = [p for p in checked.values() if p["kind"] == "server" and p["server"] == server]
    if not mine:
        raise InventoryError("tunnelgate_profiles", "no profile names this server (set server: %s in a profile)"
                             % server, server)
    main = mine[0]
    old = normalize_state(state, server)
    # The address clients reach this server at (what host_vpn writes as the peer's Endpoint).
    client_endpoint(_hv(hostvars, server, "tunnelgate_endpoint") or _hv(hostvars, server, "ansible_host") or server,
                    main["port"], server, server)

    leaving = leaving_hosts(hostvars, groups, client_groups)
    inventory_clients = [h for h in _group_hosts(groups, client_groups) if h not in leaving]
    members = []
    keys = {}
    explicit = {}
    for host in inventory_clients:
        profile = choose_profile(checked, host, _hv(hostvars, host, "tunnelgate_profile"))
        if profile["kind"] != "server" or profile["server"] != server:
            continue
        members.append((host, profile["name"]))
        key = _hv(hostvars, host, "tunnelgate_public_key")
        if key in (None, ""):
            key = (old["peers"].get(host) or {}).get("public_key")
            variable = "server state"
        else:
            variable = "tunnelgate_public_key"
        if key not in (None, ""):
            keys[host] = check_key(key, variable, host)
        address = _hv(hostvars, host, "tunnelgate_address")
        if address not in (None, "", []):
            explicit[host] = address

    member_names = [h for h, _profile in members]
    is_member = set(member_names)
    seen_keys = {}
    for host in member_names:
        if host in keys:
            if keys[host] in seen_keys:
                raise InventoryError("tunnelgate_public_key", "host %s has the same public key; every host needs "
                                     "its own key" % seen_keys[keys[host]], host)
            seen_keys[keys[host]] = host
    if public_key and public_key in seen_keys:
        raise InventoryError("tunnelgate_public_key", "is the server's own public key", seen_keys[public_key])

    # Explicit addresses are checked for every member, also those whose key is not known yet (site.yml
    # plans before any key exists, so that a duplicate fails the run before a host is touched).
    allocate_addresses(main["network"], sorted(explicit), main["server_address"], {}, explicit)
    active = [h for h in member_names if h in keys]
    pending = [h for h in member_names if h not in keys]
    # Hosts with <role>_state: absent leave whatever prune says; others that left the inventory with prune.
    removed = sorted(h for h in old["peers"] if h not in is_member and (prune or h in leaving))
    is_removed = set(removed)
    kept_state = {h: e["addresses"] for h, e in old["peers"].items() if h not in is_removed}
    addresses = allocate_addresses(main["network"], active, main["server_address"], kept_state, explicit)

    profile_of = dict(members)
    new_peers = {}
    for host, entry in old["peers"].items():
        if host not in is_removed and host not in is_member:
            new_peers[host] = entry  # prune is off: keep what we do not know about
    for host in active:
        new_peers[host] = {"addresses": addresses[host], "public_key": keys[host], "profile": profile_of[host]}
    new_state = {"version": STATE_VERSION, "public_key": public_key or old["public_key"],
                 "network": list(main["network"]), "server_address": list(main["server_address"]),
                 "port": main["port"], "peers": dict(sorted(new_peers.items()))}
    peers = [
        {"public_key": entry["public_key"], "allowed_ips": list(entry["addresses"]), "description": host}
        for host, entry in sorted(new_peers.items())
        if entry.get("public_key")
    ]
    return {
        "profile": main,
        "profiles": [p["name"] for p in mine],
        "addresses_self": list(main["server_address"]),
        "peers": peers,
        "state": new_state,
        "addresses": {h: new_peers[h]["addresses"] for h in new_peers},
        "pending": pending,
        "removed": removed,
    }


def client_plan(profile, host, server_state=None, address=None, endpoint=None, key_created=False):
    """The client side of one tunnel: interface addresses and the single server peer.

    profile       the host's normalised profile (``profile_for_host``)
    server_state  the server's state (self-hosted profiles): the server's key and this host's addresses
    address       ``tunnelgate_address`` (the address a provider assigned; needed before a provider tunnel)
    endpoint      the server's address for clients (``tunnelgate_endpoint`` of the server host)
    key_created   the host's key was made (or replaced) by this run

    A provider learns the host's public key out of band (its web page), and assigns the address there: until
    ``tunnelgate_address`` is set, and in the run that creates the key, the provider cannot know this host, so
    the plan is not ``known`` and says why in ``pending`` (``address`` or ``key``).
    """
    if profile["kind"] == "provider":
        addrs = {}
        pending = None
        if address in (None, "", []):
            pending = "address"
        else:
            nets = [parse_cidr(n, "x") for n in profile["network"]]
            addrs = _explicit_addresses(address, "tunnelgate_address", host, nets)
            if key_created:
                pending = "key"
        return {
            "addresses": [addrs[v] for v in sorted(addrs)],
            "server_public_key": profile["public_key"],
            "endpoint": profile["endpoint"],
            "known": pending is None,
            "pending": pending,
        }
    state = normalize_state(server_state, profile["server"])
    entry = state["peers"].get(host) or {}
    endpoint = client_endpoint(endpoint, profile["port"], host, profile["server"])
    addresses = list(entry.get("addresses") or [])
    if not addresses and address not in (None, "", []):
        nets = [parse_cidr(n, "x") for n in profile["network"]]
        explicit = _explicit_addresses(address, "tunnelgate_address", host, nets)
        addresses = [explicit[v] for v in sorted(explicit)]
    return {
        "addresses": addresses,
        "server_public_key": state.get("public_key"),
        "endpoint": endpoint,
        "known": bool(entry.get("addresses")) and bool(entry.get("public_key")) and bool(state.get("public_key")),
        "registered_key": entry.get("public_key"),
    }


def client_endpoint(endpoint, port, host=None, server=None):
    """``tunnelgate_endpoint`` (a name or address, optionally with ``:port``) -> ``host:port``."""
    if endpoint in (None, ""):
        raise InventoryError("tunnelgate_endpoint", "the server %s has no address for clients; set "
                             "tunnelgate_endpoint (or ansible_host) on it" % server, host)
    endpoint = str(endpoint).strip()
    if endpoint.startswith("[") or endpoint.count(":") == 1:
        text = endpoint
    else:
        text = format_endpoint(endpoint, port)
    parse_endpoint(text, "tunnelgate_endpoint", host)
    return text

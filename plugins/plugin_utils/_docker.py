# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side logic of the ``docker_gateway`` role: the engine check and the validated plan of one
Docker host's tunneled networks. Pure functions over plain data (``docker info``, ``docker network
inspect``, the host's facts), unit-tested without a host.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import re

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._k8s import _cidrs, _overlap, check_table
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import (
    InventoryError,
    _as_list,
    _bool,
    _int_range,
    check_interface_name,
    parse_cidr,
)

VARIABLE = "docker_gateway_networks"
# What Docker accepts as a network name.
NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
BRIDGE_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"
# From this version on, the embedded DNS (127.0.0.11) queries the resolvers it took from the host's
# resolv.conf from the HOST's namespace; only --dns / daemon "dns" servers are still queried from the container.
HOST_NAMESPACE_DNS_FROM = 28
KNOWN_KEYS = ("name", "subnet", "subnet_v6", "profile", "adopt", "bridge")


def docker_major(version):
    """``20.10.24+dfsg1`` -> 20; None when it cannot be read."""
    match = re.match(r"^\s*v?(\d+)\.", str(version or ""))
    return int(match.group(1)) if match else None


def check_engine(info, host=None):
    """Refuse an engine setting the role cannot make fail-closed.

    ``info``: ``{"version": ServerVersion, "iptables": bool|None (from daemon.json/dockerd's command line),
    "firewall_backend": FirewallBackend.Driver or None, "daemon_dns": [...], "running": bool}``.
    Returns ``{"version", "major", "dns": "container"|"daemon"}`` (where the embedded DNS's queries
    leave from); raises InventoryError naming docker_gateway_state.
    """
    info = info or {}
    if not info.get("running", True):
        raise InventoryError("docker_gateway_state", "the Docker engine is not running (docker info failed): "
                             "start docker.service first; the role reads the engine's version and firewall "
                             "settings before changing anything", host)
    if info.get("iptables") is False:
        raise InventoryError(
            "docker_gateway_state",
            "the Docker engine runs with iptables disabled (\"iptables\": false in /etc/docker/daemon.json or "
            "--iptables=false): it then neither masquerades nor isolates its networks and the gateway cannot be "
            "made fail-closed. Re-enable Docker's iptables integration (the default) and restart the engine", host)
    backend = info.get("firewall_backend")
    if backend not in (None, "", "iptables"):
        raise InventoryError(
            "docker_gateway_state",
            "the Docker engine uses the %r firewall backend, which this version of the role does not handle; "
            "use Docker's default iptables backend (firewall-backend: iptables)" % backend, host)
    major = docker_major(info.get("version"))
    if major is None:
        raise InventoryError("docker_gateway_state", "cannot read the Docker engine's version from %r"
                             % (info.get("version"),), host)
    daemon_dns = [d for d in info.get("daemon_dns") or [] if d]
    if major >= HOST_NAMESPACE_DNS_FROM and not daemon_dns:
        raise InventoryError(
            "docker_gateway_state",
            "Docker %s forwards the containers' DNS (127.0.0.11) to the host's resolvers from the HOST's network "
            "namespace, outside the tunnel. Set the daemon's resolvers (\"dns\": [...] in /etc/docker/daemon.json, "
            "for example the host's own upstream resolvers) and restart the engine: those are queried from the "
            "container's namespace, and the role redirects them into the tunnel" % info.get("version"), host)
    return {"version": str(info.get("version")), "major": major, "dns": "daemon" if daemon_dns else "container"}


def live_networks(inspected):
    """``docker network inspect`` output (a list) -> {name: {id, driver, internal, bridge, subnets, mtu}}."""
    found = {}
    for net in inspected or []:
        if not isinstance(net, dict) or not net.get("Name"):
            continue
        options = net.get("Options") or {}
        bridge = options.get(BRIDGE_OPTION)
        if not bridge and net.get("Driver") == "bridge":
            bridge = "br-" + str(net.get("Id", ""))[:12]
        configs = ((net.get("IPAM") or {}).get("Config")) or []
        found[net["Name"]] = {
            "id": net.get("Id"),
            "driver": net.get("Driver"),
            "internal": bool(net.get("Internal")),
            "bridge": bridge,
            "subnets": [c["Subnet"] for c in configs if isinstance(c, dict) and c.get("Subnet")],
            "mtu": options.get(MTU_OPTION),
        }
    return found


def _network_entry(index, item, live, host_profile, host):
    where = "%s[%d]" % (VARIABLE, index)
    if not isinstance(item, dict):
        raise InventoryError(where, "must be a dictionary with name, subnet (and optionally subnet_v6, profile, "
                             "adopt)", host)
    unknown = sorted(set(item) - set(KNOWN_KEYS))
    if unknown:
        raise InventoryError(where, "unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(KNOWN_KEYS)),
                             host)
    name = item.get("name")
    if not isinstance(name, str) or not NETWORK_NAME_RE.match(name):
        raise InventoryError(where + ".name", "%r is not a Docker network name" % (name,), host)
    where = "%s[%s]" % (VARIABLE, name)
    if name in ("bridge", "host", "none"):
        raise InventoryError(where + ".name", "%r is one of Docker's predefined networks; tunnel a user-defined "
                             "network" % name, host)
    adopt = _bool(item.get("adopt", False), where + ".adopt", host)
    profile = item.get("profile")
    if profile not in (None, "") and profile != host_profile:
        raise InventoryError(where + ".profile", "%r differs from the host's profile %r: this version routes all "
                             "tunneled networks of a host through the tunnel of its tunnelgate_profile"
                             % (profile, host_profile), host)
    current = live.get(name)
    subnets = [parse_cidr(s, where + ".subnet", host, strict=True) for s in _as_list(item.get("subnet"), where, host)]
    subnets += [parse_cidr(s, where + ".subnet_v6", host, strict=True)
                for s in _as_list(item.get("subnet_v6"), where, host)]
    for key, version in (("subnet", 4), ("subnet_v6", 6)):
        if item.get(key) and [n.version for n in subnets].count(version) != 1:
            raise InventoryError(where + "." + key, "give one IPv%d network" % version, host)
        if item.get(key) and len(_as_list(item.get(key), where, host)) != 1:
            raise InventoryError(where + "." + key, "give one network", host)
    if current is not None:
        if current.get("driver") != "bridge":
            raise InventoryError(where, "the Docker network %r uses the %s driver; only bridge networks are routed "
                                 "by this host" % (name, current.get("driver")), host)
        if current.get("internal"):
            raise InventoryError(where, "the Docker network %r is internal: Docker drops routed traffic from it, so "
                                 "it cannot egress through the tunnel; use a network that is not internal" % name,
                                 host)
    if adopt:
        if current is None:
            raise InventoryError(where + ".adopt", "no Docker network %r exists on this host to adopt (known: %s)"
                                 % (name, ", ".join(sorted(live)) or "none"), host)
        live_nets = [parse_cidr(s, where, host) for s in current["subnets"]]
        if not live_nets:
            raise InventoryError(where + ".adopt", "the network %r has no subnet in its IPAM configuration" % name,
                                 host)
        for net in subnets:
            if net not in live_nets:
                raise InventoryError(where + ".subnet", "%s is not a subnet of the existing network (it has %s)"
                                     % (net, ", ".join(str(n) for n in live_nets)), host)
        subnets = [n.cidr for n in live_nets]
        bridge = current["bridge"]
        if item.get("bridge") and item["bridge"] != bridge:
            raise InventoryError(where + ".bridge", "the existing network's bridge is %s" % bridge, host)
    else:
        if not any(n.version == 4 for n in subnets):
            raise InventoryError(where + ".subnet", "pin the network's IPv4 subnet (for example 172.31.50.0/24), or "
                                 "set adopt: true to take over an existing network", host)
        bridge = item.get("bridge") or name
        if current is not None:
            have = sorted(str(parse_cidr(s, where, host).cidr) for s in current["subnets"])
            want = sorted(str(n.cidr) for n in subnets)
            if have != want:
                found = ", ".join(have) or "no subnet"
                raise InventoryError(where + ".subnet", "a Docker network %r already exists with %s: set adopt: true "
                                     "to take it over as it is, or remove it first" % (name, found), host)
            bridge = current["bridge"] if not item.get("bridge") else bridge
    if not isinstance(bridge, str) or len(bridge) > 15:
        raise InventoryError(where + (".name" if not item.get("bridge") else ".bridge"),
                             "the bridge name %r is longer than 15 characters (the kernel's limit); set bridge: to a "
                             "shorter name" % (bridge,), host)
    check_interface_name(bridge, where + ".bridge", host)
    return {"name": name, "adopt": adopt, "exists": current is not None, "bridge": bridge,
            "subnets": subnets, "where": where}


def gateway_plan(inputs, host=None):
    """Validate one Docker host's engine and tunneled networks and derive what the role gives the modules.

    ``inputs``: ``engine`` (see check_engine; checked first), ``networks`` (docker_gateway_networks),
    ``inspected`` (``docker network inspect`` of every network of the host), ``profile``
    (the host's profile name), ``tunnel_networks``, ``allow_lan``, ``local_networks`` (the host's own
    networks, from facts, bridges left out), ``exclude``, ``tunnel_interface``, ``table``, ``priority``,
    ``dns`` (the profile's resolvers), ``host_vpn`` (``{"interface"}`` of the host_vpn role when the host is in
    vpn_hosts too: the networks then ride that tunnel instead of one of their own).

    Returns ``{"engine", "networks": [{name, adopt, exists, bridge, subnet, subnet_v6}], "subnets", "bridges",
    "sources", "exclude", "forward", "dns_redirect", "table", "priority", "ipv6_networks", "tunnel_interface",
    "shared"}``.
    """
    engine = check_engine(inputs.get("engine"), host)
    live = live_networks(inputs.get("inspected"))
    items = inputs.get("networks")
    if not isinstance(items, list) or not items:
        raise InventoryError(VARIABLE, "name at least one Docker network to route through the tunnel, e.g. "
                             "[{name: vpn_apps, subnet: 172.31.50.0/24}]", host)
    networks = [_network_entry(i, item, live, inputs.get("profile"), host) for i, item in enumerate(items)]
    names = [n["name"] for n in networks]
    for name in set(names):
        if names.count(name) > 1:
            raise InventoryError(VARIABLE, "the network %r is listed twice" % name, host)
    bridges = [n["bridge"] for n in networks]
    # A host also in vpn_hosts has ONE tunnel, the host_vpn role's (the server keeps one peer per host): the
    # tunneled networks ride it, routed by its table like everything else the host forwards.
    shared = inputs.get("host_vpn") or None
    if shared:
        tunnel_if = check_interface_name(shared.get("interface") or "wg0", "host_vpn_interface", host)
    else:
        tunnel_if = check_interface_name(inputs.get("tunnel_interface") or "wg-docker", "docker_gateway_interface",
                                         host)
    for bridge in bridges:
        if bridges.count(bridge) > 1 or bridge == tunnel_if:
            raise InventoryError(VARIABLE, "the bridge name %r is used twice (or is the tunnel interface)" % bridge,
                                 host)

    tunnel = [parse_cidr(n, "tunnelgate_profiles.network", host) for n in inputs.get("tunnel_networks") or []]
    lan = [parse_cidr(n, "tunnelgate_profiles.allow_lan", host) for n in inputs.get("allow_lan") or []]
    exclude = _cidrs(inputs.get("exclude"), "docker_gateway_exclude", host)
    ours = {str(s.cidr) for n in networks for s in n["subnets"]}
    others = []  # subnets of the host's other Docker networks
    for name, net in sorted(live.items()):
        if name in names:
            continue
        for subnet in net.get("subnets") or []:
            others.append((name, parse_cidr(subnet, "docker network %s" % name, host)))
    local = [parse_cidr(n, "local networks", host) for n in inputs.get("local_networks") or []]
    local = [n for n in local if str(n.cidr) not in ours]

    seen = []
    for entry in networks:
        for subnet in entry["subnets"]:
            key = "%s.%s" % (entry["where"], "subnet" if subnet.version == 4 else "subnet_v6")
            for other_name, other in seen:
                if _overlap(subnet, other):
                    raise InventoryError(key, "%s overlaps the network %s (%s)" % (subnet, other_name, other), host)
            for other in tunnel:
                if _overlap(subnet, other):
                    raise InventoryError(key, "%s overlaps the tunnel network %s" % (subnet, other), host)
            for other in lan:
                if _overlap(subnet, other):
                    raise InventoryError(key, "%s overlaps the profile's allow_lan %s" % (subnet, other), host)
            for other in local:
                if _overlap(subnet, other):
                    raise InventoryError(key, "%s overlaps the host's own network %s" % (subnet, other), host)
            for other_name, other in others:
                if _overlap(subnet, other):
                    raise InventoryError(key, "%s overlaps the Docker network %s (%s)" % (subnet, other_name, other),
                                         host)
            for other in exclude:
                if _overlap(subnet, other):
                    raise InventoryError("docker_gateway_exclude", "%s overlaps the tunneled network %s (%s)"
                                         % (other, entry["name"], subnet), host)
            seen.append((entry["name"], subnet))
    for net in exclude:
        for other in tunnel:
            if _overlap(net, other):
                raise InventoryError("docker_gateway_exclude", "%s overlaps the tunnel network %s" % (net, other), host)

    table = check_table(inputs.get("table"), host, variable="docker_gateway_table")
    priority = _int_range(inputs.get("priority"), "docker_gateway_priority", host, 1, 32000)
    if shared and exclude:
        # host_vpn's table sends everything but the host's connected networks into the tunnel: a destination
        # that is reached through a router could not bypass it (it would go through the exit, not directly).
        raise InventoryError("docker_gateway_exclude", "the host is also in vpn_hosts, so the tunneled networks use "
                             "the host_vpn role's tunnel and routing, which send everything but the host's own "
                             "networks through the exit; leave docker_gateway_exclude empty on this host", host)

    subnets = [s for n in networks for s in n["subnets"]]
    keep = []
    for net in [s for _n, s in seen] + local + [o for _n, o in others] + exclude:
        if str(net.cidr) not in keep:
            keep.append(str(net.cidr))
    dns = []  # the first resolver of each family (one DNAT target per family)
    for version in (4, 6):
        dns += [d for d in (str(x) for x in inputs.get("dns") or []) if (":" in d) == (version == 6)][:1]
    plan_networks = []
    for entry in networks:
        v4 = [str(s.cidr) for s in entry["subnets"] if s.version == 4]
        v6 = [str(s.cidr) for s in entry["subnets"] if s.version == 6]
        plan_networks.append({"name": entry["name"], "adopt": entry["adopt"], "exists": entry["exists"],
                              "bridge": entry["bridge"], "subnet": v4[0] if v4 else None,
                              "subnet_v6": v6[0] if v6 else None})
    cidrs = [str(s.cidr) for s in subnets]
    return {
        "engine": engine,
        "networks": plan_networks,
        "subnets": cidrs,
        "bridges": bridges,
        # the kill switch confines both the bridges (both families, also a recreated bridge) and the subnets
        "sources": cidrs + bridges,
        "exclude": keep,
        "forward": [{"in_interface": entry["bridge"], "out_interface": tunnel_if,
                     "sources": [str(s.cidr) for s in entry["subnets"]], "masquerade": True} for entry in networks],
        "dns_redirect": [{"sources": cidrs, "to": dns}] if dns else [],
        "table": table,
        "priority": priority,
        "ipv6_networks": any(s.version == 6 for s in subnets),
        "tunnel_interface": tunnel_if,
        "shared": bool(shared),
    }


def exposure(inspected, tunneled):
    """What ``verify.yml`` reports per tunneled network: its containers, and those that could leave around it.

    ``inspected``: ``docker network inspect`` of every network of the host (each lists its containers);
    ``tunneled``: the names of the tunneled networks. A container attached to a tunneled network AND to another
    network that is neither tunneled nor internal has a second way out (Docker gives it that network's gateway,
    possibly as its default route): it is listed under ``exposed`` with those networks.

    Returns ``[{"name", "containers": [names], "exposed": [{"container", "via": [networks]}]}]`` in the order of
    ``tunneled``; a tunneled network that does not exist has ``"missing": True``.
    """
    members = {}  # container name -> names of its networks
    networks = {}
    for net in inspected or []:
        if not isinstance(net, dict) or not net.get("Name"):
            continue
        networks[net["Name"]] = net
        for info in (net.get("Containers") or {}).values():
            if isinstance(info, dict) and info.get("Name"):
                members.setdefault(info["Name"], []).append(net["Name"])
    rows = []
    for name in tunneled or []:
        net = networks.get(name)
        if net is None:
            rows.append({"name": name, "containers": [], "exposed": [], "missing": True})
            continue
        containers = sorted(info["Name"] for info in (net.get("Containers") or {}).values()
                            if isinstance(info, dict) and info.get("Name"))
        exposed = []
        for container in containers:
            via = sorted(other for other in members.get(container, [])
                         if other not in tunneled and not (networks[other].get("Internal")
                                                           or networks[other].get("Driver") in ("null", "none")))
            if via:
                exposed.append({"container": container, "via": via})
        rows.append({"name": name, "containers": containers, "exposed": exposed, "missing": False})
    return rows

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side logic of the ``k8s_node_egress`` role: pod CIDR discovery, the Cilium check and
the validated egress plan of one node. Pure functions over plain data, unit-tested without a host.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import json
import re

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import (
    InventoryError,
    _as_list,
    _int_range,
    check_interface_name,
    parse_cidr,
)

# Where a node's pod CIDR is read from when k8s_node_egress_pod_cidr is not given (in this order).
FLANNEL_SUBNET_ENV = "/run/flannel/subnet.env"
CNI_CONF_DIR = "/etc/cni/net.d"

# Marks other software on a Kubernetes node tests (mask bits), and who owns them.
RESERVED_MARK_BITS = (
    (0x4000, "kube-proxy's masquerade mark 0x4000"),
    (0x8000, "kube-proxy's/kubelet's drop mark 0x8000"),
    (0x0F00, "Cilium's 0x0F00 mark range"),
    (0xFFFF0000, "Calico's default mark mask 0xffff0000"),
)
# Routing tables others own: (first, last, owner).
RESERVED_TABLES = (
    (200, 202, "Cilium (tables 200-202: IPsec, WireGuard, VTEP)"),
    (1, 250, "Calico (route tables 1-250)"),
    (2004, 2005, "Cilium (tables 2004 and 2005)"),
    (253, 255, "the kernel (default, main and local tables)"),
)
RESERVED_PORTS = ((51820, "Calico's WireGuard (port 51820)"), (51821, "Calico's WireGuard over IPv6 (port 51821)"))
# The routing lock of the kill switch sits at 32764/32765, the main table at 32766.
MAX_PRIORITY = 32000


# --------------------------------------------------------------------------- discovery


def _flannel(text):
    """FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET of /run/flannel/subnet.env (the node's address inside its subnet)."""
    found = []
    for line in text.splitlines():
        key, _sep, value = line.strip().partition("=")
        if key in ("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET") and value.strip():
            found.append(value.strip().strip('"'))
    return found


def _cni_subnets(text):
    """Subnets of host-local IPAM in a CNI .conf/.conflist (``subnet`` or ``ranges``), skipping templates."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    plugins = data.get("plugins") if isinstance(data, dict) and isinstance(data.get("plugins"), list) else [data]
    found = []
    for plugin in plugins:
        ipam = plugin.get("ipam") if isinstance(plugin, dict) else None
        if not isinstance(ipam, dict) or ipam.get("type") != "host-local":
            continue
        if isinstance(ipam.get("subnet"), str):
            found.append(ipam["subnet"])
        for range_set in ipam.get("ranges") or []:
            for entry in range_set if isinstance(range_set, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("subnet"), str):
                    found.append(entry["subnet"])
    # kubenet/containerd templates write placeholders such as {{.PodCIDR}} or usePodCidr
    return [s for s in found if re.match(r"^[0-9a-fA-F:.]+/[0-9]+$", s)]


def discover_pod_cidrs(files, host=None):
    """The node's pod CIDRs from the CNI's state, read from ``files`` ({path: content}).

    Sources, in order: flannel's ``/run/flannel/subnet.env`` (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET), then the
    host-local IPAM ``subnet``/``ranges`` of ``/etc/cni/net.d/*.conf`` and ``*.conflist`` (bridge CNIs,
    kubenet-style configurations). The first source that names a subnet wins. Returns
    ``{"cidrs": [...], "source": path}``; raises InventoryError when nothing is found (Calico and Cilium
    allocate from their own IPAM: give ``k8s_node_egress_pod_cidr``).
    """
    files = files or {}
    ordered = [FLANNEL_SUBNET_ENV] if FLANNEL_SUBNET_ENV in files else []
    ordered += sorted(p for p in files if p != FLANNEL_SUBNET_ENV)
    for path in ordered:
        text = files[path] or ""
        raw = _flannel(text) if path == FLANNEL_SUBNET_ENV else _cni_subnets(text)
        cidrs = []
        for value in raw:
            net = parse_cidr(value, "k8s_node_egress_pod_cidr", host)
            if str(net.cidr) not in cidrs:
                cidrs.append(str(net.cidr))
        if cidrs:
            return {"cidrs": cidrs, "source": path}
    raise InventoryError(
        "k8s_node_egress_pod_cidr",
        "not given and not found on the node (read %s and the host-local IPAM of %s/*.conf, *.conflist); "
        "CNIs with their own IPAM (Calico, Cilium) need it set, e.g. the node's spec.podCIDR"
        % (FLANNEL_SUBNET_ENV, CNI_CONF_DIR), host)


def cilium_host_routing(links, node_config=None, host=None):
    """Refuse a node where Cilium routes pods with eBPF host routing (it bypasses netfilter and policy routing).

    ``links``: the node's interface names; ``node_config``: the text of Cilium's
    ``/var/run/cilium/state/globals/node_config.h`` (None when unreadable). Cilium's legacy host routing
    (``#define ENABLE_HOST_LEGACY_ROUTING``) goes through the host's stack and is accepted. Returns
    ``"none"`` (no Cilium) or ``"legacy"``; raises InventoryError otherwise.
    """
    if "cilium_host" not in (links or []):
        return "none"
    if node_config and re.search(r"^#define ENABLE_HOST_LEGACY_ROUTING\b", node_config, re.M):
        return "legacy"
    why = ("its node_config.h does not define ENABLE_HOST_LEGACY_ROUTING" if node_config
           else "its state (/var/run/cilium/state/globals/node_config.h) is not readable")
    raise InventoryError(
        "k8s_node_egress_state",
        "Cilium runs on this node (cilium_host) and %s: with eBPF host routing pod traffic bypasses the "
        "node's netfilter and policy routing, so no tunnel or kill switch would apply. Set Cilium's "
        "bpf.hostLegacyRouting=true (and restart the agent) or take the node out of k8s_nodes" % why, host)


# --------------------------------------------------------------------------- the plan


def _cidrs(value, variable, host):
    nets = []
    for item in _as_list(value, variable, host):
        net = parse_cidr(item, variable, host, strict=True)
        if net.prefixlen == 0:
            raise InventoryError(variable, "%s covers every address" % item, host)
        nets.append(net)
    return nets


def _overlap(a, b):
    return a.version == b.version and a.first <= b.last and b.first <= a.last


def _mark(value, variable, host):
    if isinstance(value, str) and value.lower().startswith("0x"):
        try:
            value = int(value, 16)
        except ValueError:
            raise InventoryError(variable, "%r is not a number" % (value,), host) from None
    return _int_range(value, variable, host, 1, 0xFFFFFFFF)


def check_mark(mark, mask, host=None, prefix="k8s_node_egress_mark"):
    """The selection mark and its mask: one or more bits no one else on a node tests."""
    mark = _mark(mark, prefix, host)
    mask = _mark(mask, prefix + "_mask", host)
    if mark & ~mask:
        raise InventoryError(prefix, "0x%x has bits outside %s_mask 0x%x" % (mark, prefix, mask), host)
    for bits, owner in RESERVED_MARK_BITS:
        if mask & bits:
            raise InventoryError(prefix + "_mask", "0x%x shares bits with %s; choose bits in 0x30ff, e.g. 0x2000"
                                 % (mask, owner), host)
    return mark, mask


def check_table(table, host=None, variable="k8s_node_egress_table"):
    table = _int_range(table, variable, host, 1, 0xFFFFFFFE)
    owners = _table_owners(table)
    if owners:
        raise InventoryError(variable, "%d is used by %s; choose another, e.g. 51830" % (table, owners), host)
    return table


def _table_owners(table):
    return " and ".join(owner for first, last, owner in RESERVED_TABLES if first <= table <= last)


def egress_plan(inputs, host=None):
    """Validate one node's settings and derive what the role gives the modules.

    ``inputs`` (a dict): ``pod_cidrs`` (the node's, given or discovered), ``cluster_cidrs``,
    ``service_cidrs``, ``exclude``, ``local_networks`` (the node's own networks, kept local),
    ``tunnel_networks`` and ``allow_lan`` (of the profile), ``pod_interfaces``, ``tunnel_interface``, ``table``, ``mark``,
    ``mark_mask``, ``priority``, ``listen_port`` (or None), ``host_vpn`` (``{"interface", "fwmark",
    "inbound_mark_mask"}`` of the host_vpn role when the node is in vpn_hosts with host_vpn present, else None: the
    pods then ride that tunnel, see :func:`check_shared`), and for that case ``profile`` (its name), ``killswitch``
    (the profile's), ``node_networks`` (the network of the node's default route) and ``key_regenerate``.

    Returns ``{"pod_cidrs", "exclude", "sources", "interfaces", "nat_sources", "forward", "table", "mark", "mask",
    "priority", "ipv6_pods", "tunnel_interface", "shared"}``. Raises InventoryError naming the variable and the host.
    """
    pods = _cidrs(inputs.get("pod_cidrs"), "k8s_node_egress_pod_cidr", host)
    if not pods:
        raise InventoryError("k8s_node_egress_pod_cidr", "no pod CIDR for this node", host)
    cluster = _cidrs(inputs.get("cluster_cidrs"), "k8s_node_egress_cluster_cidrs", host)
    if not cluster:
        raise InventoryError("k8s_node_egress_cluster_cidrs", "name the pod CIDRs of the whole cluster (the pods "
                             "of other nodes must stay local), e.g. [10.244.0.0/16]", host)
    services = _cidrs(inputs.get("service_cidrs"), "k8s_node_egress_service_cidrs", host)
    exclude = _cidrs(inputs.get("exclude"), "k8s_node_egress_exclude", host)
    local = [parse_cidr(n, "local networks", host) for n in inputs.get("local_networks") or []]
    tunnel = [parse_cidr(n, "tunnelgate_profiles.network", host) for n in inputs.get("tunnel_networks") or []]
    lan = [parse_cidr(n, "tunnelgate_profiles.allow_lan", host) for n in inputs.get("allow_lan") or []]

    for pod in pods:
        if not any(pod.version == c.version and pod in c for c in cluster):
            raise InventoryError("k8s_node_egress_pod_cidr", "%s lies outside k8s_node_egress_cluster_cidrs (%s)"
                                 % (pod, ", ".join(str(c) for c in cluster)), host)
    checked = (("k8s_node_egress_pod_cidr", pods), ("k8s_node_egress_cluster_cidrs", cluster),
               ("k8s_node_egress_service_cidrs", services), ("k8s_node_egress_exclude", exclude))
    # A node also in vpn_hosts has ONE tunnel, the host_vpn role's (the server keeps one peer per host).
    shared = inputs.get("host_vpn") or None
    for variable, nets in checked:
        for net in nets:
            for other in tunnel:
                if _overlap(net, other):
                    raise InventoryError(variable, "%s overlaps the tunnel network %s" % (net, other), host)
            # with host_vpn, allow_lan is what its host kill switch lets the node reach: the cluster must be in it
            if variable != "k8s_node_egress_exclude" and not shared:
                for other in lan:
                    if _overlap(net, other):
                        raise InventoryError(variable, "%s overlaps the profile's allow_lan %s" % (net, other), host)
    for net in services:
        for other in cluster:
            if _overlap(net, other):
                raise InventoryError("k8s_node_egress_service_cidrs", "%s overlaps the cluster CIDR %s"
                                     % (net, other), host)
    # The node's own networks stay local; its pod bridges (inside the cluster CIDRs) and the tunnel are left out.
    local = [n for n in local if not any(_overlap(n, o) for o in tunnel + cluster)]

    interfaces = []
    for name in inputs.get("pod_interfaces") or []:
        interfaces.append(check_interface_name(name, "k8s_node_egress_pod_interfaces", host))
    if not interfaces:
        raise InventoryError("k8s_node_egress_pod_interfaces", "name the interfaces pod traffic arrives on (a bridge "
                             "like cni0, veth prefixes like cali+ or lxc+); they carry the forwarding rules", host)
    own_if = check_interface_name(inputs.get("tunnel_interface") or "wg-pods", "k8s_node_egress_interface", host)
    tunnel_if = check_interface_name(shared.get("interface") or "wg0", "host_vpn_interface", host) if shared else own_if
    for name in (own_if, tunnel_if):
        if name in interfaces:
            raise InventoryError("k8s_node_egress_pod_interfaces", "%s is the tunnel interface" % name, host)
    table = check_table(inputs.get("table"), host)
    mark, mask = check_mark(inputs.get("mark"), inputs.get("mark_mask"), host)
    priority = _int_range(inputs.get("priority"), "k8s_node_egress_priority", host, 1, MAX_PRIORITY)
    if inputs.get("listen_port") not in (None, "", 0):
        port = _int_range(inputs.get("listen_port"), "k8s_node_egress_listen_port", host, 1, 65535)
        for reserved, owner in RESERVED_PORTS:
            if port == reserved:
                raise InventoryError("k8s_node_egress_listen_port", "%d is used by %s" % (port, owner), host)
    if shared:
        check_shared(shared, inputs, cluster, exclude, mask, host)

    keep = []
    for net in cluster + services + exclude + local:
        if str(net.cidr) not in keep:
            keep.append(str(net.cidr))
    return {
        "pod_cidrs": [str(p.cidr) for p in pods],
        "exclude": keep,
        "sources": [str(p.cidr) for p in pods] + interfaces,
        "interfaces": interfaces,
        "nat_sources": [str(p.cidr) for p in pods],
        # firewall module: accept from each pod interface out of the tunnel, masquerade the pod CIDRs once
        "forward": [{"in_interface": name, "out_interface": tunnel_if, "sources": [str(p.cidr) for p in pods],
                     "masquerade": index == 0} for index, name in enumerate(interfaces)],
        "table": table,
        "mark": mark,
        "mask": mask,
        "priority": priority,
        "ipv6_pods": any(p.version == 6 for p in pods),
        "tunnel_interface": tunnel_if,
        "shared": bool(shared),
    }


def _covered(net, networks):
    return any(net.version == n.version and net in n for n in networks)


def check_shared(shared, inputs, cluster, exclude, mask, host=None):
    """A node in k8s_nodes AND vpn_hosts (host_vpn present): what cannot work when the pods ride host_vpn's tunnel.

    The server keeps one peer (one key, one tunnel address) per host, so such a node has one tunnel, host_vpn's
    full tunnel (``lookup main suppress_prefixlength 0``, then ``not fwmark <host_vpn_fwmark> lookup <same>``):
    everything the node forwards that has no specific route in the main table goes into it. The pods' own
    selection (pod CIDRs, pod interfaces) and the cluster's exclusions still hold there - other nodes' pod CIDRs
    and connected networks are routes of the main table, Service IPs are translated before routing - but:

    - a ``k8s_node_egress_exclude`` network reached through a router would go through the exit (refused);
    - host_vpn's fwmark is on every encrypted packet of the tunnel and is its routing table: bits kube-proxy,
      kubelet or Cilium test (0x8000 is dropped by KUBE-FIREWALL), or a table Calico or the kernel owns, break it;
    - host_vpn's inbound connection mark is set on the pods' connections to the node: the same bits apply;
    - host_vpn's host kill switch lets the node reach only its ``allow_lan``: without the cluster CIDRs and the
      node's network there, kubelet's probes of its pods and its way to the other nodes are blocked;
    - the key is host_vpn's: rotating it here (``k8s_node_egress_key_regenerate: always``) is refused.
    """
    if exclude:
        raise InventoryError("k8s_node_egress_exclude", "the node is also in vpn_hosts, so its pods use the host_vpn "
                             "role's tunnel and routing, which send everything but the node's connected networks and "
                             "the cluster's routes through the exit: %s could not bypass it; leave "
                             "k8s_node_egress_exclude empty on this node" % ", ".join(str(n) for n in exclude), host)
    if inputs.get("key_regenerate") not in (None, "", "never"):
        raise InventoryError("k8s_node_egress_key_regenerate", "the node is also in vpn_hosts, so its key is the "
                             "host_vpn role's: rotate it with playbooks/rotate_keys.yml (host_vpn_key_regenerate)", host)
    fwmark = _mark(shared.get("fwmark", 51820), "host_vpn_fwmark", host)
    advice = ("choose a value with bits only in 0x00ff that is no table of Calico (1-250) or the kernel (253-255), "
              "e.g. 251 (0xfb)")
    for bits, owner in RESERVED_MARK_BITS:
        if fwmark & bits:
            raise InventoryError("host_vpn_fwmark", "%d (0x%x) shares bits with %s: every encrypted packet of the "
                                 "node's tunnel carries it (kube-proxy's KUBE-FIREWALL drops 0x8000/0x8000), and it "
                                 "is also host_vpn's routing table; %s" % (fwmark, fwmark, owner, advice), host)
    if _table_owners(fwmark):
        raise InventoryError("host_vpn_fwmark", "%d is also host_vpn's routing table, and %s uses it; %s"
                             % (fwmark, _table_owners(fwmark), advice), host)
    if fwmark & mask:
        raise InventoryError("k8s_node_egress_mark_mask", "0x%x shares bits with host_vpn_fwmark 0x%x" % (mask, fwmark),
                             host)
    inbound = _mark(shared.get("inbound_mark_mask", 0x1000), "host_vpn_inbound_mark_mask", host)
    for bits, owner in RESERVED_MARK_BITS:
        if inbound & bits:
            raise InventoryError("host_vpn_inbound_mark_mask", "0x%x shares bits with %s (host_vpn marks the pods' "
                                 "connections to the node with it); choose bits in 0x30ff, e.g. 0x1000"
                                 % (inbound, owner), host)
    if inbound & mask:
        raise InventoryError("k8s_node_egress_mark_mask", "0x%x shares bits with host_vpn's inbound_mark_mask 0x%x"
                             % (mask, inbound), host)
    if inputs.get("killswitch", True):
        lan = [parse_cidr(n, "tunnelgate_profiles.allow_lan", host) for n in inputs.get("allow_lan") or []]
        # the node's network, never the tunnel's (with host_vpn up, the default route is the tunnel's)
        tunnel = [parse_cidr(n, "tunnelgate_profiles.network", host) for n in inputs.get("tunnel_networks") or []]
        nodes = [parse_cidr(n, "node network", host) for n in inputs.get("node_networks") or []]
        nodes = [n for n in nodes if not any(_overlap(n, t) for t in tunnel)]
        missing = [str(n.cidr) for n in cluster + nodes if not _covered(n, lan)]
        if missing:
            raise InventoryError(
                "tunnelgate_profiles.%s.allow_lan" % (inputs.get("profile") or "PROFILE"),
                "the node is also in vpn_hosts with the profile's kill switch on, which lets the node itself reach "
                "only allow_lan besides the tunnel: add %s (the cluster CIDRs: kubelet's probes of its pods, the "
                "node's traffic to other nodes' pods; the node's network: the other nodes, usually the API server)"
                % ", ".join(missing), host)

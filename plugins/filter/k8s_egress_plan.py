# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_egress_plan
short_description: Validate a Kubernetes node's egress settings and derive the routing and kill switch inputs
version_added: 0.2.0
author: tunnelgate maintainers
description:
  - Checks the settings of the C(k8s_node_egress) role for one node on the controller, before the node is touched,
    and returns what the role passes to the modules.
  - "Checks: CIDRs are valid networks; the pod CIDR lies inside the cluster CIDRs; pod, cluster, service and exclude
    CIDRs do not overlap the tunnel network, and pod, cluster and service CIDRs not the profile's C(allow_lan);
    service and cluster CIDRs are disjoint; the routing table is none of Calico's (1-250), Cilium's (200-202, 2004, 2005) or
    the kernel's; the selection mark's mask shares no bit with kube-proxy (0x4000, 0x8000), Cilium (0x0F00) or
    Calico (0xffff0000); the listen port is not Calico's WireGuard port."
  - "A node also in C(vpn_hosts) (C(host_vpn) in the input) has one tunnel, the host_vpn role's (the server keeps one
    peer per host): the pods ride it. Then C(exclude) must be empty (host_vpn's routing sends all but the connected
    networks through the exit), C(key_regenerate) must not be V(always) (the key is host_vpn's), host_vpn's fwmark
    (also its routing table) and inbound mark mask must avoid the bits of kube-proxy, Cilium and Calico and the
    tables of Calico and the kernel, and with the profile's kill switch on C(allow_lan) must cover the cluster CIDRs
    and C(node_networks)."
  - Errors name the variable and the host.
positional: _input, host
options:
  _input:
    description: >-
      A dictionary with C(pod_cidrs), C(cluster_cidrs), C(service_cidrs), C(exclude), C(local_networks),
      C(tunnel_networks), C(allow_lan), C(pod_interfaces), C(tunnel_interface), C(table), C(mark), C(mark_mask), C(priority),
      C(listen_port) and C(host_vpn) (V(none), or C(interface), C(fwmark) and C(inbound_mark_mask) of the host_vpn
      role when the node is in vpn_hosts with host_vpn present); for that case also C(profile), C(killswitch),
      C(node_networks) and C(key_regenerate).
    type: dict
    required: true
  host:
    description: The node (named in errors).
    type: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Plan the node's egress
  ansible.builtin.set_fact:
    plan: >-
      {{ {'pod_cidrs': ['10.244.1.0/24'], 'cluster_cidrs': ['10.244.0.0/16'], 'service_cidrs': ['10.96.0.0/12'],
          'exclude': [], 'local_networks': ['192.168.1.0/24'], 'tunnel_networks': ['10.66.0.0/24'], 'allow_lan': [],
          'pod_interfaces': ['cni0'], 'tunnel_interface': 'wg-pods', 'table': 51830, 'mark': 8192, 'mark_mask': 8192, 'priority': 9900,
          'listen_port': none, 'host_vpn': none} | tunnelgate.wireguard.k8s_egress_plan('node1') }}
"""

RETURN = r"""
_value:
  description: >-
    C(pod_cidrs), C(exclude) (every destination that stays local), C(sources) (pod CIDRs and interfaces),
    C(interfaces), C(nat_sources), C(forward), C(table), C(mark), C(mask), C(priority), C(ipv6_pods),
    C(tunnel_interface) (the tunnel the pods leave by) and C(shared) (true when that is host_vpn's).
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._k8s import egress_plan


class FilterModule:
    def filters(self):
        return {"k8s_egress_plan": as_filter(egress_plan)}

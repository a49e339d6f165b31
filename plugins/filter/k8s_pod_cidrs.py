# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_pod_cidrs
short_description: A Kubernetes node's pod CIDRs, read from its CNI's state
version_added: 0.2.0
author: tunnelgate maintainers
description:
  - Reads the pod CIDRs of one node from the contents of the CNI's files on that node.
  - "Sources, in order: flannel's C(/run/flannel/subnet.env) (C(FLANNEL_SUBNET), C(FLANNEL_IPV6_SUBNET)), then the
    C(host-local) IPAM C(subnet) or C(ranges) of C(/etc/cni/net.d/*.conf) and C(*.conflist). The first source that
    names a subnet wins."
  - Fails naming C(k8s_node_egress_pod_cidr) and the host when nothing is found (Calico and Cilium use their own
    IPAM; set the variable for them).
positional: _input, host
options:
  _input:
    description: "C({path: content}) of the files read on the node."
    type: dict
    required: true
  host:
    description: The node (named in errors).
    type: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Discover the pod CIDR
  ansible.builtin.set_fact:
    pod_cidrs: "{{ {'/run/flannel/subnet.env': 'FLANNEL_SUBNET=10.244.1.1/24'} | tunnelgate.wireguard.k8s_pod_cidrs('node1') }}"
"""

RETURN = r"""
_value:
  description: "C({cidrs: [...], source: PATH}): the networks (host bits cleared) and the file they came from."
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._k8s import discover_pod_cidrs


class FilterModule:
    def filters(self):
        return {"k8s_pod_cidrs": as_filter(discover_pod_cidrs)}

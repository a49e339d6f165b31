# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_cilium_check
short_description: Refuse a Kubernetes node whose Cilium uses eBPF host routing
version_added: 0.2.0
author: tunnelgate maintainers
description:
  - With eBPF host routing, Cilium hands pod traffic to the uplink without the node's netfilter and policy routing,
    so neither a tunnel route nor a kill switch would apply. This filter fails, naming the host, when the node has
    a C(cilium_host) interface and Cilium's C(node_config.h) does not define C(ENABLE_HOST_LEGACY_ROUTING).
positional: _input, node_config, host
options:
  _input:
    description: The node's interface names.
    type: list
    elements: str
    required: true
  node_config:
    description: The text of C(/var/run/cilium/state/globals/node_config.h), or none when it is not readable.
    type: str
  host:
    description: The node (named in errors).
    type: str
"""

EXAMPLES = r"""
- name: Refuse Cilium with eBPF host routing
  ansible.builtin.set_fact:
    cilium: "{{ ansible_facts.interfaces | tunnelgate.wireguard.k8s_cilium_check(none, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: C(none) (no Cilium) or C(legacy) (Cilium with legacy host routing, which the role supports).
  type: str
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._k8s import cilium_host_routing


class FilterModule:
    def filters(self):
        return {"k8s_cilium_check": as_filter(cilium_host_routing)}

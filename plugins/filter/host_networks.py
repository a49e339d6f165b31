# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_networks
short_description: The networks a host is attached to, from its facts
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Reads the gathered interface facts (C(ansible_facts)) and returns the CIDR of every global IPv4/IPv6
    network, leaving out loopback, link-local addresses and the interfaces named in O(exclude).
positional: _input, exclude
options:
  _input:
    description: The host's C(ansible_facts) (with the C(interfaces) subset gathered).
    type: dict
    required: true
  exclude:
    description: Interface names to leave out (the tunnel itself).
    type: list
    elements: str
    default: []
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Networks of this host apart from the tunnel
  ansible.builtin.debug:
    msg: "{{ ansible_facts | tunnelgate.wireguard.host_networks(['wg0']) }}"
"""

RETURN = r"""
_value:
  description: CIDRs such as C(172.30.5.0/24).
  type: list
  elements: str
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import host_networks


class FilterModule:
    def filters(self):
        return {"host_networks": as_filter(host_networks)}

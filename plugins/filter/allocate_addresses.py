# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: allocate_addresses
short_description: Stable tunnel addresses for a list of hosts
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Gives every host an address of the tunnel network (one IPv4 and, when the network has one, one IPv6 address).
  - An explicit address (the host's C(tunnelgate_address)) wins for its host. Addresses given earlier (the
    server's state) stay with their host, also for hosts not in the list, so adding or removing a host never
    renumbers another. Other hosts get the lowest free address, skipping the server's own address; a new
    host's IPv6 address reuses its IPv4 host number when that is free.
  - Fails, naming the host, when an explicit address is outside the network, is the server's address or is
    already another host's.
positional: _input, hosts, server_address, state, explicit
options:
  _input:
    description: The tunnel network(s), one IPv4 and/or one IPv6 CIDR.
    type: raw
    required: true
  hosts:
    description: The hosts that need an address.
    type: list
    elements: str
    required: true
  server_address:
    description: The server's own tunnel address(es), never given to a host.
    type: raw
  state:
    description: Addresses given earlier, as a dictionary host -> list of addresses.
    type: dict
  explicit:
    description: Explicit choices, as a dictionary host -> C(tunnelgate_address).
    type: dict
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Addresses for the clients (10.66.0.1 is the server)
  ansible.builtin.debug:
    msg: "{{ '10.66.0.0/24' | tunnelgate.wireguard.allocate_addresses(['client1', 'client2'], '10.66.0.1/24', {'client2': ['10.66.0.9/32']}) }}"
  # -> {"client1": ["10.66.0.2/32"], "client2": ["10.66.0.9/32"]}
"""

RETURN = r"""
_value:
  description: A dictionary host -> list of addresses (C(/32) and C(/128)).
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import allocate_addresses


class FilterModule:
    def filters(self):
        return {"allocate_addresses": as_filter(allocate_addresses)}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: client_plan
short_description: A client's tunnel addresses, server key and endpoint
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - For a host using a self-hosted profile, reads its addresses and the server's public key from the server's
    state, and builds the endpoint from the server's C(tunnelgate_endpoint) and the profile's port.
  - For a provider profile, checks the host's C(tunnelgate_address) (required) and uses the provider's
    endpoint and key.
  - C(known) is false when the server does not know this host yet (its key was never registered).
positional: _input, host, server_state, address, endpoint
options:
  _input:
    description: The host's normalised profile (from C(profile_for_host)).
    type: dict
    required: true
  host:
    description: The inventory host.
    type: str
    required: true
  server_state:
    description: The server's state (self-hosted profiles).
    type: dict
  address:
    description: The host's C(tunnelgate_address).
    type: raw
  endpoint:
    description: The server's C(tunnelgate_endpoint), a name or address with an optional C(:port).
    type: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: What this client needs
  ansible.builtin.set_fact:
    __host_vpn_plan: >-
      {{ __host_vpn_profile | tunnelgate.wireguard.client_plan(inventory_hostname, __host_vpn_server_state,
         tunnelgate_address | default(none), __host_vpn_endpoint) }}
"""

RETURN = r"""
_value:
  description: The client's plan.
  type: dict
  contains:
    addresses:
      description: The host's tunnel addresses.
      type: list
      elements: str
    server_public_key:
      description: The public key of the server (or provider).
      type: str
    endpoint:
      description: The server's endpoint, C(host:port).
      type: str
    known:
      description: Whether the server has this host as a peer.
      type: bool
    registered_key:
      description: The public key the server has for this host.
      type: str
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import client_plan


class FilterModule:
    def filters(self):
        return {"client_plan": as_filter(client_plan)}

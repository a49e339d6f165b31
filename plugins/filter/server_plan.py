# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: server_plan
short_description: The whole peer list and address state of an exit server
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Computes, for one host of C(vpn_servers), every peer it must have and the state it keeps, from the WHOLE
    inventory (all hosts of C(vpn_hosts), C(docker_gateways) and C(k8s_nodes) whose profile names this server,
    not only the hosts of the play) merged with the state remembered on the server.
  - A client's public key is its C(tunnelgate_public_key) (set by the client's key step, or in the inventory),
    otherwise the key remembered in the state; hosts with neither are C(pending).
  - Addresses come from R(tunnelgate.wireguard.allocate_addresses,ansible_collections.tunnelgate.wireguard.allocate_addresses_filter),
    so they are stable.
  - Hosts that left the inventory (or no longer use this server) are removed when O(prune) is true; hosts that
    are merely outside the play (C(--limit), unreachable) always keep their peer.
positional: _input, server, groups, profiles, state, public_key, prune
options:
  _input:
    description: Ansible's C(hostvars).
    type: raw
    required: true
  server:
    description: This server's inventory name.
    type: str
    required: true
  groups:
    description: Ansible's C(groups).
    type: dict
    required: true
  profiles:
    description: C(tunnelgate_profiles).
    type: dict
    required: true
  state:
    description: The state read from the server's state file (empty on a new server).
    type: dict
  public_key:
    description: The server's own public key.
    type: str
  prune:
    description: Remove remembered peers of hosts that are no longer in the inventory.
    type: bool
    default: true
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Plan every peer of this server
  ansible.builtin.set_fact:
    __server_plan: >-
      {{ hostvars | tunnelgate.wireguard.server_plan(inventory_hostname, groups, tunnelgate_profiles,
         __server_state, __server_keypair.public_key) }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    peers:
      description: The peers for the C(tunnelgate.wireguard.interface) module (public_key, allowed_ips, description).
      type: list
      elements: dict
    state:
      description: The state to write back to the server.
      type: dict
    addresses:
      description: host -> tunnel addresses.
      type: dict
    pending:
      description: Hosts of this server whose public key is not known yet.
      type: list
      elements: str
    removed:
      description: Hosts whose remembered peer is dropped (they left the inventory).
      type: list
      elements: str
    profile:
      description: The server's normalised profile.
      type: dict
    profiles:
      description: The names of all profiles served by this server.
      type: list
      elements: str
    addresses_self:
      description: The server's own interface addresses (CIDR with the network's prefix).
      type: list
      elements: str
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import server_plan


class FilterModule:
    def filters(self):
        return {"server_plan": as_filter(server_plan)}

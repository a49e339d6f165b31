# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: profile_for_host
short_description: The checked profile a host uses
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Resolves a host's C(tunnelgate_profile) against C(tunnelgate_profiles), after checking every profile
    (see R(tunnelgate.wireguard.validate_profiles,ansible_collections.tunnelgate.wireguard.validate_profiles_filter)).
  - With exactly one profile defined, a host without C(tunnelgate_profile) uses it.
  - "Errors name the variable and the host, for example
    C(tunnelgate_profile (host client1): 'eu' is not a profile of tunnelgate_profiles (known: eu-exit))."
positional: _input, host, choice, servers
options:
  _input:
    description: The C(tunnelgate_profiles) dictionary.
    type: dict
    required: true
  host:
    description: The inventory host.
    type: str
    required: true
  choice:
    description: The host's C(tunnelgate_profile).
    type: str
  servers:
    description: The hosts of group C(vpn_servers).
    type: list
    elements: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: The profile of this host
  ansible.builtin.set_fact:
    __host_vpn_profile: >-
      {{ tunnelgate_profiles | tunnelgate.wireguard.profile_for_host(inventory_hostname,
         tunnelgate_profile | default(none), groups['vpn_servers'] | default([])) }}
"""

RETURN = r"""
_value:
  description: The normalised profile (same fields as the values returned by C(validate_profiles)).
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import profile_for_host


class FilterModule:
    def filters(self):
        return {"profile_for_host": as_filter(profile_for_host)}

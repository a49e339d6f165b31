# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: validate_profiles
short_description: Check C(tunnelgate_profiles) and fill in every default
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Checks every profile of C(tunnelgate_profiles) - its kind (self-hosted C(server) or third-party C(endpoint)
    + C(public_key)), CIDRs, ports, keys, DNS addresses, that C(allow_lan) does not overlap the tunnel
    network, that a self-hosted profile names a host of C(vpn_servers), and that profiles sharing a server
    agree on its network and port.
  - Returns the profiles with every default filled in (port 51820, full tunnel, kill switch on, DNS through
    the server's tunnel address, the server's tunnel address = first host of the network).
  - Errors start with the variable to fix (for example C(tunnelgate_profiles.eu-exit.network)) and name the host.
positional: _input, host, servers
options:
  _input:
    description: The C(tunnelgate_profiles) dictionary.
    type: dict
    required: true
  host:
    description: The inventory host the check is made for (named in error messages).
    type: str
  servers:
    description: The hosts of group C(vpn_servers); a self-hosted profile must name one of them.
    type: list
    elements: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Fail early on a broken profile
  ansible.builtin.set_fact:
    __server_profiles: "{{ tunnelgate_profiles | tunnelgate.wireguard.validate_profiles(inventory_hostname, groups['vpn_servers']) }}"
"""

RETURN = r"""
_value:
  description:
    - The profiles, each with C(name), C(kind) (C(server) or C(provider)), C(server), C(endpoint), C(public_key),
      C(network), C(server_address), C(port), C(dns), C(allowed_ips), C(full_tunnel), C(killswitch), C(allow_lan),
      C(persistent_keepalive), C(mtu) and C(description).
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import validate_profiles


class FilterModule:
    def filters(self):
        return {"validate_profiles": as_filter(validate_profiles)}

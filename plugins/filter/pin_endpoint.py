# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pin_endpoint
short_description: The address to pin for a WireGuard endpoint given as a DNS name
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Chooses the address that goes into the peer's endpoint and the kill switch's endpoint exception, so that
    a tunnel whose endpoint is a name starts without DNS (after a reboot or a restart, with the kill switch
    closed, DNS only works through the tunnel that is not up yet).
  - The address pinned by the previous run is kept while the name still resolves to it; otherwise the first
    usable answer of the host's resolver wins. When the name does not resolve at all, the previous address
    is kept; with none, the filter fails naming the variable and the host.
  - A literal address is returned as it is.
positional: _input, resolved, previous, family, routable, host, variable
options:
  _input:
    description: The endpoint, C(name:port), C(address:port) or C([IPv6]:port).
    type: str
    required: true
  resolved:
    description: The host's answer for the name (C(getent ahosts NAME) output, or a list of addresses), in the
      resolver's order of preference. Empty when the name could not be resolved.
    type: raw
  previous:
    description: What the last run pinned, a dict with C(endpoint) (C(name:port)) and C(pinned) (C(address:port)).
    type: dict
  family:
    description: V(auto) (the resolver's order), V(ipv4) or V(ipv6) (only that family).
    type: str
    default: auto
  routable:
    description: IP versions the host has a default route for (for example V([4, 6])); with O(family=auto)
      other families are used only when nothing else is left.
    type: list
    elements: int
  host:
    description: The inventory host, named in errors.
    type: str
  variable:
    description: The variable that holds the endpoint, named in errors.
    type: str
    default: endpoint
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Resolve the endpoint on the host
  ansible.builtin.command:
    argv: [getent, ahosts, vpn.example.net]
  register: answer
  changed_when: false
  failed_when: false

- name: Pin it
  ansible.builtin.set_fact:
    pinned: "{{ 'vpn.example.net:51820' | tunnelgate.wireguard.pin_endpoint(answer.stdout, none, 'auto', [4, 6],
                inventory_hostname, 'tunnelgate_profiles.provider.endpoint') }}"
    # pinned.endpoint == '203.0.113.7:51820'
"""

RETURN = r"""
_value:
  description: The pinned endpoint.
  type: dict
  contains:
    endpoint:
      description: C(address:port) (C([IPv6]:port)) for the peer and the kill switch.
      type: str
    address:
      description: The pinned address.
      type: str
    port:
      description: The UDP port.
      type: int
    name:
      description: The endpoint's name (V(null) for a literal address).
      type: str
    addresses:
      description: Every usable answer, sorted.
      type: list
      elements: str
    source:
      description: V(literal), V(resolved) (answered now) or V(previous) (not resolvable now; kept from the last run).
      type: str
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._endpoints import pin_endpoint
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter


class FilterModule:
    def filters(self):
        return {"pin_endpoint": as_filter(pin_endpoint)}

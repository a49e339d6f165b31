# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: docker_gateway_plan
short_description: Validate a Docker host's engine and tunneled networks and derive the routing and kill switch inputs
version_added: 0.3.0
author: tunnelgate maintainers
description:
  - Checks the settings of the C(docker_gateway) role for one Docker host on the controller, before the host is
    touched, and returns what the role passes to the modules.
  - "Engine checks: Docker's iptables integration is on, its firewall backend is iptables, and from Docker 28 on
    (whose embedded DNS queries the host's resolvers from the host's namespace) the daemon has its own C(dns)."
  - "Network checks: valid names, one pinned IPv4 subnet (and at most one IPv6 subnet) per created network, an
    adopted network exists, no network is internal or uses another driver than bridge, bridge names fit in 15
    characters, and no subnet overlaps another tunneled network, the tunnel network, the profile's C(allow_lan), the
    host's own networks, another Docker network or C(docker_gateway_exclude); a network's C(profile) is the host's.
    A host also in C(vpn_hosts) (C(host_vpn) in the input) uses the host_vpn role's tunnel (one peer per host on the
    server) and must not have C(docker_gateway_exclude)."
  - Errors name the variable and the host.
positional: _input, host
options:
  _input:
    description: >-
      A dictionary with C(engine) (C(version), C(iptables), C(firewall_backend), C(daemon_dns), C(running)),
      C(networks), C(inspected) (C(docker network inspect) of every network), C(profile), C(tunnel_networks),
      C(allow_lan), C(local_networks), C(exclude), C(tunnel_interface), C(table), C(priority), C(dns) and C(host_vpn).
    type: dict
    required: true
  host:
    description: The Docker host (named in errors).
    type: str
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: Plan the Docker host's tunneled networks
  ansible.builtin.set_fact:
    plan: >-
      {{ {'engine': {'version': '20.10.24', 'iptables': true, 'firewall_backend': none, 'daemon_dns': [], 'running': true},
          'networks': [{'name': 'vpn_apps', 'subnet': '172.31.50.0/24'}], 'inspected': [], 'profile': 'eu-exit',
          'tunnel_networks': ['10.66.0.0/24'], 'allow_lan': [], 'local_networks': ['192.168.1.0/24'], 'exclude': [],
          'tunnel_interface': 'wg-docker', 'table': 51840, 'priority': 9800, 'dns': ['10.66.0.1'], 'host_vpn': none}
         | tunnelgate.wireguard.docker_gateway_plan('docker1') }}
"""

RETURN = r"""
_value:
  description: >-
    C(engine) (C(version), C(major), C(dns)), C(networks) (C(name), C(adopt), C(exists), C(bridge), C(subnet),
    C(subnet_v6)), C(subnets), C(bridges), C(sources), C(exclude), C(forward), C(dns_redirect), C(table),
    C(priority), C(ipv6_networks).
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._docker import gateway_plan
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter


class FilterModule:
    def filters(self):
        return {"docker_gateway_plan": as_filter(gateway_plan)}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: docker_gateway_exposure
short_description: List the containers of tunneled Docker networks and those with a second way out
version_added: 0.3.0
author: tunnelgate maintainers
description:
  - Used by C(playbooks/verify.yml) on each host of C(docker_gateways).
  - A container attached to a tunneled network and to another network that is neither tunneled nor internal can
    leave by that other network's gateway (Docker may make it the default route). The kill switch confines what
    comes from the tunneled network, not what the container sends elsewhere. Such containers are reported.
positional: _input, tunneled
options:
  _input:
    description: The output of C(docker network inspect) for every network of the host (each lists its C(Containers)).
    type: list
    elements: dict
    required: true
  tunneled:
    description: The names of the tunneled networks.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Find the containers that could leave around the tunnel
  ansible.builtin.set_fact:
    rows: "{{ inspected_networks | tunnelgate.wireguard.docker_gateway_exposure(['vpn_apps']) }}"
"""

RETURN = r"""
_value:
  description: >-
    One entry per tunneled network: C(name), C(containers) (names), C(exposed) (C(container), C(via): the other
    networks), C(missing) (the network does not exist).
  type: list
  elements: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._docker import exposure


class FilterModule:
    def filters(self):
        return {"docker_gateway_exposure": exposure}

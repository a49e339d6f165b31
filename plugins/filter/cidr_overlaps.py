# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cidr_overlaps
short_description: The pairs of overlapping networks between two lists
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Compares every CIDR of the input with every CIDR of O(right) (same IP version) and returns the overlapping pairs.
  - An empty result means the two lists are disjoint.
positional: _input, right
options:
  _input:
    description: CIDRs (a list, or one CIDR as a string).
    type: raw
    required: true
  right:
    description: CIDRs to compare with.
    type: raw
    required: true
requirements:
  - netaddr (on the controller)
"""

EXAMPLES = r"""
- name: The tunnel network must not overlap the host's own networks
  ansible.builtin.assert:
    that: (['10.66.0.0/24'] | tunnelgate.wireguard.cidr_overlaps(['192.168.1.0/24'])) | length == 0
"""

RETURN = r"""
_value:
  description: A list of pairs C([left, right]) that overlap.
  type: list
  elements: list
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import cidr_overlaps


class FilterModule:
    def filters(self):
        return {"cidr_overlaps": as_filter(cidr_overlaps)}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: check_inputs
short_description: Check a role's own variables (names, paths, marks) on the controller
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - Checks variables that end up in file names, unit names and systemd or wg-quick lines on the host, before
    the host is touched, and returns them unchanged.
  - "Kinds: V(interface) (1-15 characters of letters, digits and C(_=+.-)), V(path) (absolute, only letters,
    digits and C(_.+@%,:=/-): no blanks, quotes, C(;), C($), backquotes, backslashes or newlines, no C(.)/C(..)
    parts), V(fwmark) (1 to 4294967295), V(seconds) (1 to 86400), V(state) (V(present) or V(absent))."
  - "Errors name the variable and the host, for example
    C(host_vpn_key_path (host client1): '/etc/wg;reboot' contains characters a path of ours may not hold (';'))."
positional: _input, host
options:
  _input:
    description: "A dictionary C({variable: [kind, value]})."
    type: dict
    required: true
  host:
    description: The host the values belong to (named in errors).
    type: str
"""

EXAMPLES = r"""
- name: Check the role's inputs
  ansible.builtin.set_fact:
    __host_vpn_inputs: >-
      {{ {'host_vpn_interface': ['interface', host_vpn_interface],
          'host_vpn_key_path': ['path', host_vpn_key_path]}
         | tunnelgate.wireguard.check_inputs(inventory_hostname) }}
"""

RETURN = r"""
_value:
  description: "C({variable: value}), the values checked."
  type: dict
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._filters import as_filter
from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import check_inputs


class FilterModule:
    def filters(self):
        return {"check_inputs": as_filter(check_inputs)}

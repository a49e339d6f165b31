# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: valid_wireguard_key
short_description: Whether a string is a WireGuard key
version_added: 0.1.0
author: tunnelgate maintainers
description:
  - True when the input is 32 bytes in standard base64 (44 characters ending in C(=)), the form C(wg genkey)
    and C(wg pubkey) print. Anything else (wrong length, URL-safe alphabet, whitespace) is false.
options:
  _input:
    description: The key to check.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check a provider's public key
  ansible.builtin.assert:
    that: provider_public_key | tunnelgate.wireguard.valid_wireguard_key
    fail_msg: "provider_public_key (host {{ inventory_hostname }}) is not a WireGuard key"
"""

RETURN = r"""
_value:
  description: Whether the input is a WireGuard key.
  type: bool
"""

from ansible_collections.tunnelgate.wireguard.plugins.plugin_utils._profiles import is_wireguard_key


class FilterModule:
    def filters(self):
        return {"valid_wireguard_key": is_wireguard_key}

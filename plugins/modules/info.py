#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: info
short_description: Facts about WireGuard interfaces and their peers
version_added: 0.1.0
description:
  - Reads C(wg show all dump) (or C(wg show NAME dump)) and C(ip -j addr) and returns, per interface, the public key,
    listen port, fwmark, addresses and MTU, and per peer the endpoint, allowed IPs, latest handshake, transfer
    counters and keepalive.
  - Never returns private or preshared keys (only whether a peer has a preshared key).
  - Returns an empty dict with a warning on a host without wireguard-tools.
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
options:
  name:
    description: Only this interface. Omitted means all WireGuard interfaces.
    type: str
seealso:
  - module: tunnelgate.wireguard.interface
"""

EXAMPLES = r"""
- name: Read the WireGuard state
  tunnelgate.wireguard.info:
    name: wg0
  register: wg

- name: Fail unless the first peer did a handshake in the last three minutes
  ansible.builtin.assert:
    that:
      - wg.interfaces.wg0.peers[0].latest_handshake_age is not none
      - wg.interfaces.wg0.peers[0].latest_handshake_age < 180
"""

RETURN = r"""
interfaces:
  description: WireGuard interfaces by name.
  returned: always
  type: dict
  sample:
    wg0:
      public_key: nx4M8KhN0EtWvkig62upeCat0XoOBfFRIZph9XkGtgM=
      listen_port: 51820
      fwmark: null
      mtu: 1420
      addresses: [10.66.3.1/24]
      peers:
        - public_key: H5J/955Ub5W0d99c0MPfUYxBUNQvoQSewt+1H8FsXz8=
          endpoint: 172.30.3.11:45066
          allowed_ips: [10.66.3.2/32]
          latest_handshake: 1764500000
          latest_handshake_age: 12
          transfer_rx: 1234
          transfer_tx: 5678
          persistent_keepalive: 25
          preshared_key: false
  contains:
    public_key:
      description: The interface's public key (V(null) when no private key is loaded).
      type: str
    listen_port:
      description: UDP listen port.
      type: int
    fwmark:
      description: Firewall mark (V(null) when off).
      type: int
    mtu:
      description: Interface MTU.
      type: int
    addresses:
      description: Global addresses with prefix length.
      type: list
      elements: str
    peers:
      description:
        - The peers. C(latest_handshake) is a UNIX time (V(null) = never), C(latest_handshake_age) its age in
          seconds, C(transfer_rx)/C(transfer_tx) bytes, C(preshared_key) whether one is set.
      type: list
      elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    CommandError,
    CommandRunner,
    TunnelgateError,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.info import wireguard_info


def main():
    module = AnsibleModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    try:
        interfaces, warnings = wireguard_info(CommandRunner(module), module.params["name"], now=time.time())
    except TunnelgateError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    except CommandError as exc:
        module.fail_json(msg=str(exc), rc=exc.rc, stderr=exc.stderr)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, interfaces=interfaces)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: metrics
short_description: Export WireGuard and kill switch metrics for Prometheus (node exporter textfile collector)
version_added: 0.3.0
description:
  - Installs a small program (C(/usr/local/lib/tunnelgate/metrics.py), Python standard library only) and
    C(tunnelgate-metrics.timer), which writes C(tunnelgate.prom) into O(directory) every O(interval) seconds,
    atomically (a temporary file and a rename), for the node exporter's textfile collector
    (Debian's C(prometheus-node-exporter) reads C(/var/lib/prometheus/node-exporter)).
  - Per peer the latest handshake (Unix time), bytes received and sent, and the endpoint; per interface the peers
    configured and those with a handshake in the last 180 seconds (an exit's view of its clients); per kill switch
    mode whether it is installed and whether the live rules match what was saved; the host's egress modes.
  - Never a key. Peers are named by the fingerprint of their public key (the first 16 hex characters of SHA-256
    over the raw key, as M(tunnelgate.wireguard.keypair) prints it).
  - Each role on a host registers one fragment (O(name)); the program and the timer are shared and go away with the
    last fragment.
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
options:
  name:
    description: The fragment, usually the role (V(host_vpn), V(server), V(docker_gateway), V(k8s_node_egress)).
    type: str
    required: true
  state:
    description: V(absent) removes the fragment; with no fragment left, also the program, the units and the metrics file.
    type: str
    choices: [present, absent]
    default: present
  egress_mode:
    description: A label telling how this role sends traffic through WireGuard (C(tunnelgate_egress_mode{role,mode})).
    type: str
    default: ""
  interfaces:
    description: The WireGuard interfaces the role manages. One that is missing is reported as down (C(tunnelgate_interface_up 0)).
    type: list
    elements: str
    default: []
  killswitch:
    description: The kill switch modes (of M(tunnelgate.wireguard.killswitch)) the role installs.
    type: list
    elements: str
    choices: [host, forward]
    default: []
  directory:
    description: The textfile collector directory. Shared by every fragment on the host; the last call sets it.
    type: path
    default: /var/lib/prometheus/node-exporter
  interval:
    description: Seconds between two refreshes (5-3600).
    type: int
    default: 30
notes:
  - Needs systemd. An example alert rule file is C(examples/prometheus/tunnelgate-alerts.yml) in the collection.
seealso:
  - module: tunnelgate.wireguard.info
"""

EXAMPLES = r"""
- name: Metrics of the host VPN
  tunnelgate.wireguard.metrics:
    name: host_vpn
    egress_mode: host
    interfaces: [wg0]
    killswitch: [host]

- name: No more metrics from this role
  tunnelgate.wireguard.metrics:
    name: host_vpn
    state: absent
"""

RETURN = r"""
fragment:
  description: The fragment file of O(name).
  returned: always
  type: str
  sample: /etc/tunnelgate/metrics.d/host_vpn.json
metrics_file:
  description: The file the timer writes.
  returned: always
  type: str
  sample: /var/lib/prometheus/node-exporter/tunnelgate.prom
timer:
  description: The timer unit, or null when it was removed.
  returned: always
  type: str
  sample: tunnelgate-metrics.timer
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, CommandRunner, TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._metrics_setup import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            egress_mode=dict(type="str", default=""),
            interfaces=dict(type="list", elements="str", default=[]),
            killswitch=dict(type="list", elements="str", choices=["host", "forward"], default=[]),
            directory=dict(type="path", default="/var/lib/prometheus/node-exporter"),
            interval=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    try:
        result = run_module(module, CommandRunner(module))
    except (TunnelgateError, CommandError) as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: firewall
short_description: A named set of firewall rules by purpose (open ports, forwarding with NAT, MSS clamping, inbound connection marks)
version_added: 0.2.0
description:
  - Manages the WHOLE desired state of one named rule set (O(name), for example V(server)) in one call.
    Each set owns its own chains, so several roles can each manage a set without touching each other's
    rules, the kill switch's, or anyone else's (Docker, kube-proxy, a CNI, the distribution's firewall).
  - Options say what the rules are for, not rule text. O(input) opens ports, O(forward) lets traffic
    pass between a tunnel and an uplink (with masquerading or SNAT), O(mss_clamp) clamps the TCP MSS of
    forwarded connections to the path MTU, and O(inbound_connmark) marks connections that arrive from
    outside so that replies to them can be routed by the uplink.
  - With O(backend=iptables) the set's chains are C(TG-<NAME>-*) in the filter, nat and mangle tables of
    IPv4 and IPv6, each hooked by ONE jump rule at the top of a built-in chain (above everything but other
    tunnelgate jumps). With O(backend=nftables) the set is the table C(inet tunnelgate_<name>) with one base
    chain per purpose.
  - Every change is applied atomically (C(iptables-restore --noflush) per table, C(nft -f)). Idempotence is
    decided by comparing the LIVE rules with the desired ones, so a rerun restores rules another tool
    flushed, and otherwise changes nothing. Chains the set no longer needs are removed in the same transaction.
  - With O(persist=true) the rules are saved under C(/etc/tunnelgate/firewall/) and loaded at boot by
    C(tunnelgate-firewall-<name>.service), ordered before C(network-pre.target).
  - Switching O(backend) loads the set on the new backend first, then removes it from the old one.
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
options:
  name:
    description:
      - The rule set's name, 1-12 characters of V(a-z), V(0-9) and V(_), starting with a letter. It names the
        chains (C(TG-SERVER-IN)), the nftables table (C(tunnelgate_server)), the files and the unit.
    type: str
    required: true
  state:
    description:
      - V(present) makes the set exactly what the options say (a purpose left empty has no chain);
        V(absent) removes its chains or table, its jumps, its files and its boot unit.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description:
      - V(iptables) uses C(iptables)/C(ip6tables) as the system provides them (iptables-nft or
        iptables-legacy); both must work. V(nftables) uses the C(nft) command.
    type: str
    choices: [iptables, nftables]
    default: iptables
  input:
    description:
      - Ports to open for traffic addressed to this host (accepted in the set's input chain).
      - With nftables an accept ends only our table's evaluation; another table's drop still applies.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description: The port, 1-65535.
        type: int
        required: true
      proto:
        description: The protocol.
        type: str
        choices: [tcp, udp, both]
        default: tcp
      interfaces:
        description: Only on these input interfaces (default any).
        type: list
        elements: str
      sources:
        description: Only from these networks (CIDR; default any).
        type: list
        elements: str
  forward:
    description:
      - Forwarding between an input interface (a tunnel) and an output interface (an uplink), and the
        replies back; optionally with NAT on the output interface.
    type: list
    elements: dict
    default: []
    suboptions:
      in_interface:
        description: Where the traffic comes from, for example V(wg0).
        type: str
        required: true
      out_interface:
        description: Where it leaves, for example V(eth0).
        type: str
        required: true
      sources:
        description: The source networks (CIDR) allowed; required with O(forward[].masquerade) or O(forward[].snat).
        type: list
        elements: str
      masquerade:
        description: Masquerade O(forward[].sources) on O(forward[].out_interface) (IPv4 and IPv6).
        type: bool
        default: false
      snat:
        description: Source NAT to these addresses instead (at most one per family).
        type: list
        elements: str
  mss_clamp:
    description:
      - Interfaces whose forwarded outgoing TCP SYNs get their MSS clamped to the path MTU (C(TCPMSS
        --clamp-mss-to-pmtu), nftables C(tcp option maxseg size set rt mtu)), typically the tunnel.
    type: list
    elements: str
    default: []
  dns_redirect:
    description:
      - Plain DNS (port 53, UDP and TCP) from O(dns_redirect[].sources) to ANY address is sent to the resolver of
        its family in O(dns_redirect[].to) instead (destination NAT before routing, in nat C(PREROUTING), nftables
        C(type nat hook prerouting priority dstnat)). The redirected query is then routed and filtered with its
        new destination, for example through a tunnel whose kill switch lets DNS reach only that resolver.
      - Meant for gateways whose clients cannot be configured (the containers of a Docker network, whose
        embedded DNS forwards to the host's resolvers from the container's namespace).
      - A source family without a resolver of that family in O(dns_redirect[].to) is not redirected.
    type: list
    elements: dict
    default: []
    suboptions:
      sources:
        description: Source networks (CIDR).
        type: list
        elements: str
        required: true
      to:
        description: The resolvers, at most one IPv4 and one IPv6 address.
        type: list
        elements: str
        required: true
  inbound_connmark:
    description:
      - The "inbound connection marks" preset. Every connection whose packets arrive in the original direction
        (opened by the peer) for this host on an interface other than C(lo) and
        O(inbound_connmark.tunnel_interfaces) gets the connection mark O(inbound_connmark.mark)/O(inbound_connmark.mask)
        (mangle C(INPUT)), and the packets this host sends on such a connection get that packet mark (mangle
        C(OUTPUT), nftables C(type route hook output), so the kernel routes them again with the mark).
      - Matching by direction rather than by state C(NEW) also marks connections opened before the rules (the
        controller's SSH connection during the first run) as soon as the peer sends its next packet. Connections
        this host opens itself are never marked (their incoming packets are replies).
      - A routing rule such as C(ip rule add fwmark 0x1000/0x1000 lookup main) then sends replies to inbound
        connections (SSH, Ansible) out through the uplink even with a full tunnel.
      - Only the mask bits are ever changed. The default V(0x1000) stays clear of kube-proxy's V(0x4000) and
        V(0x8000), Cilium's V(0x0F00) range, the bits of WireGuard's V(0xca6c) and Calico's upper 16 bits.
    type: dict
    suboptions:
      enabled:
        description: V(false) leaves the preset out (the same as not giving O(inbound_connmark)).
        type: bool
        default: true
      tunnel_interfaces:
        description: The tunnel interfaces; connections arriving on them are not marked.
        type: list
        elements: str
        required: true
      mark:
        description: The mark, an integer or a string like V(0x1000).
        type: raw
        default: "0x1000"
      mask:
        description: The mask (default the mark itself); the mark must lie inside it.
        type: raw
  persist:
    description:
      - Save the rules under C(/etc/tunnelgate/firewall/) and enable C(tunnelgate-firewall-<name>.service),
        which loads them at boot before C(network-pre.target). V(false) removes the unit and the files.
    type: bool
    default: true
notes:
  - See C(docs/rules-engine.md) in the collection for the design shared with the kill switch.
seealso:
  - module: tunnelgate.wireguard.killswitch
  - name: Rules engine design
    description: Chains, tables, hooks, atomic apply and boot persistence.
    link: https://github.com/tunnelgate/wireguard/blob/main/docs/rules-engine.md
"""

EXAMPLES = r"""
- name: An exit server's rules (WireGuard port, DNS from the tunnel, forwarding with NAT, MSS clamping)
  tunnelgate.wireguard.firewall:
    name: server
    backend: nftables
    input:
      - {port: 51820, proto: udp}
      - {port: 53, proto: both, interfaces: [wg0]}
    forward:
      - in_interface: wg0
        out_interface: eth0
        sources: [10.66.0.0/24, fd66::/64]
        masquerade: true
    mss_clamp: [wg0]

- name: Replies to inbound connections (SSH from the controller) leave by the uplink, not the tunnel
  tunnelgate.wireguard.firewall:
    name: lockout
    inbound_connmark:
      tunnel_interfaces: [wg0]
  register: lockout_marks

- name: Remove a rule set
  tunnelgate.wireguard.firewall:
    name: server
    state: absent
"""

RETURN = r"""
name:
  description: The rule set's name.
  returned: always
  type: str
  sample: server
backend:
  description: The backend used.
  returned: always
  type: str
  sample: iptables
state:
  description: The requested state.
  returned: always
  type: str
  sample: present
chains:
  description: The set's chains on this backend, in evaluation order (empty when absent).
  returned: always
  type: list
  elements: str
  sample: [TG-SERVER-IN, TG-SERVER-FWD, TG-SERVER-SNAT]
hooks:
  description: Where the chains are hooked, per family (iptables) or for the inet table (nftables).
  returned: always
  type: dict
  sample: {ipv4: [INPUT, FORWARD, nat POSTROUTING], ipv6: [INPUT, FORWARD, nat POSTROUTING]}
rules:
  description: The desired rules per family (iptables) or for the inet table (nftables).
  returned: always
  type: dict
  sample: {ipv4: ["-N TG-SERVER-IN", "-A TG-SERVER-IN -p udp -m udp --dport 51820 -j ACCEPT"]}
table:
  description: The nftables table of the set (V(null) with iptables).
  returned: always
  type: str
  sample: tunnelgate_server
unit:
  description: The systemd unit that loads the rules at boot, or V(null) when not persisted.
  returned: always
  type: str
  sample: tunnelgate-firewall-server.service
connmark:
  description:
    - The inbound connection mark in use (O(inbound_connmark)), or V(null). C(fwmark) is the form
      C(ip rule ... fwmark) takes.
  returned: always
  type: dict
  sample: {mark: 4096, mask: 4096, fwmark: 0x1000/0x1000}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, CommandRunner, TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._firewall import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            backend=dict(type="str", choices=["iptables", "nftables"], default="iptables"),
            input=dict(type="list", elements="dict", default=[], options=dict(
                port=dict(type="int", required=True),
                proto=dict(type="str", choices=["tcp", "udp", "both"], default="tcp"),
                interfaces=dict(type="list", elements="str"),
                sources=dict(type="list", elements="str"),
            )),
            dns_redirect=dict(type="list", elements="dict", default=[], options=dict(
                sources=dict(type="list", elements="str", required=True),
                to=dict(type="list", elements="str", required=True),
            )),
            forward=dict(type="list", elements="dict", default=[], options=dict(
                in_interface=dict(type="str", required=True),
                out_interface=dict(type="str", required=True),
                sources=dict(type="list", elements="str"),
                masquerade=dict(type="bool", default=False),
                snat=dict(type="list", elements="str"),
            )),
            mss_clamp=dict(type="list", elements="str", default=[]),
            inbound_connmark=dict(type="dict", options=dict(
                enabled=dict(type="bool", default=True),
                tunnel_interfaces=dict(type="list", elements="str", required=True),
                mark=dict(type="raw", default="0x1000"),
                mask=dict(type="raw"),
            )),
            persist=dict(type="bool", default=True),
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

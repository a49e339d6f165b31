#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: killswitch
short_description: Fail-closed egress rules so traffic leaves only through the WireGuard tunnel
version_added: 0.1.0
description:
  - Installs a kill switch for IPv4 and IPv6 together, in the collection's own chains
    (iptables C(TUNNELGATE-*)) or its own table (nftables C(inet tunnelgate)), plus, for iptables,
    one jump rule at the top of the hooked chain. Rules of other tools (Docker, kube-proxy, a
    CNI, the distribution's firewall) are never flushed, reordered or rewritten.
  - O(mode=host) confines the host's own traffic (the OUTPUT path). Only loopback, the tunnel
    interfaces, the tunnel's own encrypted UDP (by O(fwmark) and/or O(endpoints)), IPv6 neighbour
    discovery, replies to inbound connections (so SSH and Ansible are never cut off) and the
    O(allow_lan) exceptions may leave. Its O(routing_lock) also keeps what the host forwards off
    the uplink, and holds when another tool flushes the firewall.
  - O(mode=forward) confines forwarded traffic from O(sources) (a Docker bridge, a pod CIDR); it may
    leave only through the tunnel interfaces, except to O(exclude) destinations. With iptables the
    jump goes into C(DOCKER-USER) when Docker is present, otherwise into C(FORWARD). Its
    O(routing_lock) keeps the sources off the main table's default route whatever the firewall says.
  - DNS enforcement in both modes. For the traffic the mode covers, port 53 and 853 (UDP and TCP)
    may only go to O(dns_servers), and only through the tunnel.
  - Every change is applied atomically (C(iptables-restore --noflush), C(ip6tables-restore
    --noflush), C(nft -f)). Idempotence is decided by comparing the LIVE rules of our own
    chains or table with the desired ones, so a rerun after another tool flushed them restores
    them (and reports a change), and otherwise changes nothing.
  - With O(persist=true) the rules are written to C(/etc/tunnelgate/killswitch/) and loaded at boot
    by C(tunnelgate-killswitch-MODE.service), ordered before C(network-pre.target) without default
    dependencies, so the switch is closed before any interface or tunnel is configured.
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
options:
  state:
    description:
      - V(present) installs the kill switch of O(mode); V(absent) removes that mode's chains or
        chains of our table, the jump rule, the rules files and the boot unit.
    type: str
    choices: [present, absent]
    default: present
  mode:
    description:
      - V(host) covers traffic the host itself sends.
      - V(forward) covers traffic the host forwards from O(sources).
      - Both modes can be used on the same host (two tasks); each manages only its own chains.
    type: str
    choices: [host, forward]
    default: host
  backend:
    description:
      - V(iptables) uses C(iptables)/C(ip6tables) as the system provides them (iptables-nft or
        iptables-legacy). Both C(iptables) and C(ip6tables) must work, or the module fails.
      - V(nftables) uses the C(nft) command and an C(inet) table.
      - Switching the backend loads the new backend's rules first and only then removes this mode's
        rules from the other backend, so there is never a moment without a switch.
    type: str
    choices: [iptables, nftables]
    default: iptables
  interfaces:
    description:
      - The tunnel interfaces covered traffic may leave through, for example V(wg0). A trailing
        V(+) matches every interface starting with the name (V(wg+)).
      - Required with O(state=present).
    type: list
    elements: str
  fwmark:
    description:
      - The tunnel's fwmark (C(wg set IF fwmark)), as an integer or a hex string like V(0xca6c).
        The tunnel's own encrypted UDP carries it and is allowed out (O(mode=host)).
      - O(mode=host) needs O(fwmark) and/or O(endpoints), otherwise the tunnel itself is blocked.
    type: raw
  endpoints:
    description:
      - The tunnel's server endpoints as V(ADDRESS:PORT) or V([IPV6]:PORT), literal addresses only.
        UDP to them is allowed out (O(mode=host)).
    type: list
    elements: str
    default: []
  allow_lan:
    description:
      - Destination networks (CIDR) the host may reach outside the tunnel (O(mode=host)), for
        example the local LAN. A network or a set of networks covering everything is refused.
      - DNS to these networks is still blocked (a LAN resolver forwards to the ISP).
    type: list
    elements: str
    default: []
  allow_dhcp:
    description:
      - Allow DHCP and DHCPv6 client requests (UDP 68 to 67, 546 to 547) outside the tunnel
        (O(mode=host)). Without it a closed switch rejects a lease renewal, which a DHCP client sends
        as ordinary unicast UDP.
      - V(auto) allows them only out of the interfaces that get their address by DHCP, found on the
        host at each run (see RV(dhcp_interfaces)); evidence is a dynamic IPv4 address with a lease
        lifetime, a systemd-networkd, NetworkManager, dhclient or dhcpcd lease, or C(inet dhcp) in
        ifupdown's C(/etc/network/interfaces). No such interface, no rule.
      - V(true) allows them out of any interface; V(false) out of none.
      - V(auto) is the default since 0.2.0 (it was V(false)); in O(mode=forward) V(auto) does nothing
        and V(true) is refused.
    type: raw
    default: auto
  allow_inbound_replies:
    description:
      - Allow packets in the reply direction of connections that were opened from OUTSIDE (the
        conntrack reply direction, established or related), so inbound SSH, Ansible and published
        container ports keep working. Connections opened from inside never match this rule.
    type: bool
    default: true
  sources:
    description:
      - O(mode=forward) only, and required there. Source subnets (CIDR) and/or input interfaces (a
        Docker bridge like V(br-0123456789ab), V(docker0), V(cni0)) whose forwarded traffic is
        confined. An interface covers IPv4 and IPv6; a subnet only its own family.
    type: list
    elements: str
    default: []
  exclude:
    description:
      - O(mode=forward) only. Destination networks (CIDR) that stay local (cluster pod and service
        CIDRs, the node network, the Docker networks). DNS to them is allowed (cluster DNS).
        A network or a set of networks covering everything is refused.
    type: list
    elements: str
    default: []
  dns_servers:
    description:
      - The resolvers reached through the tunnel. DNS (port 53 and 853, UDP and TCP) of covered
        traffic may only go to these addresses, through O(interfaces). Empty means no DNS at all
        outside loopback (host mode) or O(exclude) (forward mode).
      - An address inside O(allow_lan) or O(exclude), a loopback address, or an IPv6 address with
        O(ipv6=block) is refused, because it would not be reached through the tunnel.
    type: list
    elements: str
    default: []
  ipv6:
    description:
      - V(block) blocks all covered IPv6 egress, including through the tunnel (for a tunnel without
        IPv6). V(tunnel) lets IPv6 leave through the tunnel like IPv4.
    type: str
    choices: [block, tunnel]
    default: block
  reject:
    description:
      - V(true) rejects blocked packets (administratively prohibited) so applications fail fast.
        V(false) drops them silently.
    type: bool
    default: true
  forward_chain:
    description:
      - O(mode=forward) with O(backend=iptables) only. Where the jump rule goes.
      - V(auto) uses C(DOCKER-USER) when the chain exists, or for IPv4 when C(dockerd) is installed
        (the chain is then created; Docker keeps an existing C(DOCKER-USER)), and C(FORWARD) otherwise.
    type: str
    choices: [auto, DOCKER-USER, FORWARD]
    default: auto
  routing_lock:
    description:
      - Policy routing rules that keep covered traffic off the uplink when the tunnel's route is gone.
        Default V(true) with O(state=present), in both modes. No firewall tool touches policy rules,
        so the lock holds when another tool flushes or reloads the firewall (C(iptables -F),
        C(nft flush ruleset), C(systemctl restart nftables), firewalld or ufw reloads) and when the boot
        unit cannot load the rules (the lock is set up by the unit itself, first).
      - O(mode=host), priorities 32764 and 32765 (just before the main table's 32766). The main table
        is consulted without its default routes; the tunnel's own UDP (O(fwmark), O(endpoints)),
        O(allow_lan), O(bypass_fwmark) and DHCP (when allowed) may use the main table; everything else
        is C(prohibit)ed. This covers traffic the host FORWARDS too (containers, VMs), which the
        host-mode firewall chain does not see.
      - O(mode=forward), priorities 32762 and 32763, per source and family (an interface source in
        both families, a subnet in its own). Traffic C(from SUBNET) or C(iif BRIDGE) to an O(exclude)
        network, or with O(bypass_fwmark), looks up the main table; everything else from the source is
        C(prohibit)ed. Packets the host itself sends from an address in a subnet source (C(iif lo))
        are left to the main table (host mode's business). An C(iif) rule needs no interface, so it
        holds while the bridge is recreated. Interface patterns (V(cali+)) cannot be matched by a
        policy rule; they are left out with a warning (add the subnets behind them to O(sources)).
      - The tunnel's own policy rules must come before the lock; the interface module uses 10000 to 10002 by
        default (at most 32002); C(ip rule add) without a priority, as wg-quick does, places a new rule
        before the existing ones. The two modes' locks never touch each other's rules, nor rules of
        other shapes at their priorities.
      - Replies to connections from off-link clients are routed like everything else, so while the
        tunnel is down they are prohibited too unless O(bypass_fwmark) (or a rule before the lock)
        sends them to the main table.
      - V(false) removes the lock of O(mode) (the firewall rules alone then stand between the host
        and a leak).
    type: bool
  bypass_fwmark:
    description:
      - With O(routing_lock). Packets carrying this mark (under the mask) may use the main table at
        the routing lock, like the interface module's C(routing.bypass_fwmark) rule.
      - O(mode=host) - give it the inbound connection mark restored on replies
        (C(host_vpn_inbound_mark)), so that replies to an administrator on another network leave by
        the uplink even while the tunnel (and with it the interface's own bypass rule) is down.
      - O(mode=forward) - the mark that replies of connections that came IN to the sources carry
        (published Docker ports reached from the LAN, whose replies are forwarded from the source
        subnet), restored before routing (mangle C(PREROUTING)), so they leave the way they came.
    type: dict
    suboptions:
      mark:
        description: The mark, an integer or a hex string like V(0x1000).
        type: raw
        required: true
      mask:
        description: The bits of the mark that are compared (default the mark itself).
        type: raw
  watch:
    description:
      - With O(persist=true), run C(tunnelgate-killswitch-MODE-watch.service), a small C(sh) loop that
        checks every 0.5 s that our hook, the last rule of each of our chains and the routing lock are
        in place, and otherwise restarts the boot unit, which reloads the saved rules. It restores the
        switch after another tool flushed or reloaded the firewall, typically within a second (see
        C(docs/killswitch.md) for the measured window). The routing lock needs no watcher; sockets
        bound to the uplink device and DNS enforcement do.
      - V(false) (or O(persist=false)) removes the watcher.
    type: bool
    default: true
  persist:
    description:
      - Save the rules under C(/etc/tunnelgate/killswitch/) and enable a systemd unit that loads
        them at boot before C(network-pre.target). V(false) removes the unit and files of this mode.
    type: bool
    default: true
notes:
  - The rules file is exactly what apply loads; for iptables the apply transaction adds the jump
    rule fix-up to it, and the boot unit inserts the jump after loading the file.
  - With C(DOCKER-USER) and O(persist=true), the boot unit creates C(DOCKER-USER) (Docker does not
    exist yet at that point) with our jump in it; dockerd keeps the existing chain when it starts
    and hooks it into C(FORWARD) before starting containers.
  - See C(docs/killswitch.md) in the collection for the design and why it fails closed in each state.
seealso:
  - name: Kill switch design
    description: Chains, boot ordering and failure analysis.
    link: https://github.com/tunnelgate/wireguard/blob/main/docs/killswitch.md
"""

EXAMPLES = r"""
- name: Host kill switch, full tunnel on wg0 (fwmark policy routing), DNS through the tunnel
  tunnelgate.wireguard.killswitch:
    mode: host
    interfaces: [wg0]
    fwmark: 0xca6c
    endpoints: ["203.0.113.7:51820"]
    allow_lan: [192.168.1.0/24]
    dns_servers: [10.66.0.1]
    ipv6: tunnel

- name: Containers on a Docker network leave only through wg0; replies to published ports keep the uplink
  tunnelgate.wireguard.killswitch:
    mode: forward
    interfaces: [wg0]
    sources: [br-vpn, 172.20.0.0/16]
    exclude: [172.20.0.0/16]
    dns_servers: [10.66.0.1]
    bypass_fwmark: {mark: 0x2000, mask: 0x2000}

- name: Pod egress through the tunnel, cluster CIDRs stay local, nftables backend
  tunnelgate.wireguard.killswitch:
    mode: forward
    backend: nftables
    interfaces: [wg0]
    sources: [10.244.0.0/16]
    exclude: [10.244.0.0/16, 10.96.0.0/12, 192.168.10.0/24]
    dns_servers: [10.66.0.1]

- name: Remove the host kill switch
  tunnelgate.wireguard.killswitch:
    mode: host
    state: absent
"""

RETURN = r"""
backend:
  description: The backend used.
  returned: always
  type: str
  sample: iptables
mode:
  description: The mode managed by this task.
  returned: always
  type: str
  sample: host
state:
  description: The requested state.
  returned: always
  type: str
  sample: present
chains:
  description: Our chains of this mode, the hooked one first (empty when absent).
  returned: always
  type: list
  elements: str
  sample: [TUNNELGATE-OUT, TUNNELGATE-OUT-DNS]
hooks:
  description:
    - Where our rules are hooked, per family. For iptables the chain holding the jump
      (C(OUTPUT), C(FORWARD) or C(DOCKER-USER)), for nftables the hook of the base chain.
  returned: always
  type: dict
  sample: {ipv4: OUTPUT, ipv6: OUTPUT}
rules:
  description: The desired rules per family (iptables) or for the inet table (nftables).
  returned: always
  type: dict
  sample: {ipv4: ["-N TUNNELGATE-OUT", "-A TUNNELGATE-OUT -o lo -j RETURN"]}
unit:
  description: The systemd unit that loads the rules at boot, or V(null) when not persisted.
  returned: always
  type: str
  sample: tunnelgate-killswitch-host.service
watcher:
  description: The systemd unit that restores the rules after another tool removed them, or V(null).
  returned: always
  type: str
  sample: tunnelgate-killswitch-host-watch.service
routing_lock:
  description: The routing lock's policy rules of O(mode) per family (with O(routing_lock)), else empty.
  returned: always
  type: dict
  sample: {ipv4: ["priority 32764 lookup main suppress_prefixlength 0", "priority 32765 prohibit"]}
dhcp_interfaces:
  description:
    - The interfaces DHCP client requests may leave by, with the evidence found (O(allow_dhcp=auto)).
    - With O(allow_dhcp=true) the single key C(*) (any interface); empty otherwise.
  returned: always
  type: dict
  sample: {eth0: ["systemd-networkd lease"]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, CommandRunner, TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_switch import run_module


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            mode=dict(type="str", choices=["host", "forward"], default="host"),
            backend=dict(type="str", choices=["iptables", "nftables"], default="iptables"),
            interfaces=dict(type="list", elements="str"),
            fwmark=dict(type="raw"),
            endpoints=dict(type="list", elements="str", default=[]),
            allow_lan=dict(type="list", elements="str", default=[]),
            allow_dhcp=dict(type="raw", default="auto"),
            allow_inbound_replies=dict(type="bool", default=True),
            sources=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            dns_servers=dict(type="list", elements="str", default=[]),
            ipv6=dict(type="str", choices=["block", "tunnel"], default="block"),
            reject=dict(type="bool", default=True),
            forward_chain=dict(type="str", choices=["auto", "DOCKER-USER", "FORWARD"], default="auto"),
            persist=dict(type="bool", default=True),
            routing_lock=dict(type="bool"),
            bypass_fwmark=dict(type="dict", no_log=False, options=dict(mark=dict(type="raw", required=True), mask=dict(type="raw"))),
            watch=dict(type="bool", default=True),
        ),
        required_if=[("state", "present", ("interfaces",))],
        supports_check_mode=True,
    )
    try:
        result = run_module(module, CommandRunner(module))
    except (TunnelgateError, CommandError) as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

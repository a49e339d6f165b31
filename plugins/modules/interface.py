#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: interface
short_description: Declarative WireGuard interface and peers, applied live without dropping the tunnel
version_added: 0.1.0
description:
  - Manages a WireGuard interface, its peers, addresses, MTU, routes and policy-routing rules, and writes
    C(/etc/wireguard/NAME.conf) (mode 0600) so that C(wg-quick) and C(wg-quick@NAME.service) bring the same
    interface up at boot.
  - Idempotent against the B(live) state (C(wg show NAME dump), C(ip -j addr/link/route/rule)), not only the file.
    Peer, key, port and fwmark changes are applied with C(wg set); address, MTU, route and rule changes with C(ip).
    None of them restarts the tunnel, nor do DNS changes. A restart happens only when the implementation (kernel or
    userspace) changes, and the result then says C(restarted=true).
  - The configuration file holds no key material. The private key is loaded from O(private_key_path) by a
    C(PostUp = wg set %i private-key PATH) hook, preshared keys likewise, so no secret ever passes through Ansible.
  - After every change the live public key is compared with the public key of O(private_key_path); when they
    differ, or any command fails, the module restores the previous file and live state and fails.
author:
  - tunnelgate maintainers (@tunnelgate)
extends_documentation_fragment:
  - tunnelgate.wireguard.common
notes:
  - The rendered file always says C(Table = off). The routes and policy rules wg-quick would create for O(table)
    are rendered as C(PostUp)/C(PostDown) hooks instead, because wg-quick's own full-tunnel code writes the
    sysctl C(net.ipv4.conf.all.src_valid_mark=1) unconditionally, which fails where C(/proc/sys) is read-only
    (containers) even when the value already is 1. The hooks write a sysctl only when its value differs.
  - The module owns the routes through the interface in the main table (other than the kernel's own), the routes
    and throw routes of the tunnel's routing table, every policy rule that looks up that table, and the
    O(routing.bypass_fwmark) rules it created (recorded in the file's C(# tunnelgate:) comment).
  - The systemd drop-in C(wg-quick@NAME.service.d/tunnelgate.conf) sets the implementation and replaces the
    stock C(ExecReload) (which runs C(wg syncconf) on a file without PrivateKey and so wipes the live key) with one
    that feeds the key from the key file.
  - Where IPv6 is disabled for new interfaces (C(net.ipv6.conf.default.disable_ipv6=1), as in Docker containers and on
    hardened hosts), C(ip) refuses IPv6 addresses and routes on the interface ("IPv6 is disabled on nexthop device"). The
    module then brings the tunnel up IPv4 only, with a warning and RV(ipv6_disabled=true). IPv6 addresses and IPv6
    routes through the interface are left out, and the IPv6 routes of the tunnel's own table become C(unreachable)
    (its policy rules stay), so IPv6 that would use a full tunnel is dropped instead of leaving through the uplink.
    IPv6 routes of the main table (a split tunnel) are left out; block IPv6 egress with the kill switch.
  - A rerun repairs an interface whatever state it is in. When the link is down, when C(wg-quick@NAME) is stuck
    starting or stopping (for example resolving an endpoint name), or when the unit has failed, the interface is
    taken down and brought up again from the new file (RV(restarted=true), the reason in RV(changes)).
  - With O(implementation=userspace) wg-quick still prefers the kernel module when the kernel has one (wg-quick
    tries C(ip link add type wireguard) first); the setting guarantees the userspace fallback is used and is
    wireguard-go.
  - Check mode works on a fresh host without wireguard-tools or key files; it then reports the interface as to be
    created.
options:
  name:
    description: Interface name (also the configuration file's and the systemd unit's name).
    type: str
    required: true
  state:
    description:
      - V(present) brings the interface up with the desired configuration.
      - V(absent) stops it, removes its rules, its configuration file and its drop-in, disables the unit and gives
        back the DNS configuration O(dns) replaced.
    type: str
    choices: [present, absent]
    default: present
  addresses:
    description: Addresses of the interface with prefix length, IPv4 and/or IPv6 (V(10.66.3.1/24), V(fd66:3::1/64)).
    type: list
    elements: str
    default: []
  listen_port:
    description: UDP port to listen on (1-65535). Omitted means a random port (typical for clients).
    type: int
  private_key_path:
    description:
      - Path of the private key file on the managed host (as written by M(tunnelgate.wireguard.keypair)).
      - Required when O(state=present). Its content never leaves the host.
    type: path
  mtu:
    description: Interface MTU. Omitted means the wg-quick default (derived from the route to the endpoints, usually 1420).
    type: int
  fwmark:
    description: Firewall mark for the tunnel's own packets. With O(table=auto) and a default route among the allowed IPs it
      defaults to the tunnel table number (51820), as wg-quick does.
    type: int
  table:
    description:
      - V(auto) routes each peer's allowed IPs through the interface in the main table; a default route
        (V(0.0.0.0/0) or V(::/0)) goes to table O(fwmark) (default 51820) with the rules C(not fwmark M lookup M)
        and C(lookup main suppress_prefixlength 0), like wg-quick.
      - A number puts the routes of all allowed IPs into that table (no rules unless O(routing) asks for them).
      - V(off) adds no routes.
    type: str
    default: auto
  dns:
    description:
      - DNS servers (IPv4/IPv6 addresses) and search domains the host uses while the interface is up.
      - With systemd-resolved (see O(dns_method)) the servers go on the interface's link with the routing domain
        C(~.) and C(default-route yes), so every name is looked up through the tunnel.
      - Otherwise C(/etc/resolv.conf) gets managed content (at most 3 servers); the file it replaces is kept in
        C(/var/lib/tunnelgate/resolv.conf.NAME.orig) and given back when the tunnel goes down or O(state=absent).
        Where a DHCP client (dhclient, dhcpcd) or NetworkManager is installed, a guard keeps it from rewriting the
        file on a lease renewal while the tunnel's resolvers are in place.
      - PostUp/PostDown lines in the wg-quick file re-apply the same DNS whenever the tunnel comes up (boot, restart).
        Changing the servers is applied live, without a restart.
      - An empty list gives back whatever an earlier run of this module set up.
    type: list
    elements: str
    default: []
  dns_method:
    description:
      - How O(dns) is applied. V(resolved) uses systemd-resolved (C(resolvectl)), V(resolv_conf) writes
        C(/etc/resolv.conf) in place (never renamed, so a container's bind mount keeps working).
      - V(auto) uses V(resolved) when systemd-resolved runs and C(/etc/resolv.conf) points at its stub, otherwise
        V(resolv_conf).
    type: str
    choices: [auto, resolved, resolv_conf]
    default: auto
  peers:
    description: The complete list of peers. Peers live on the interface but not listed here are removed.
    type: list
    elements: dict
    default: []
    suboptions:
      public_key:
        description: The peer's public key (base64, 44 characters).
        type: str
        required: true
      preshared_key_path:
        description: Path of a preshared key file on the managed host, loaded with C(wg set ... preshared-key PATH).
        type: path
      endpoint:
        description: V(host:port), V([2001:db8::1]:51820) or V(name.example:51820). Omitted for roaming peers.
        type: str
      allowed_ips:
        description: Networks routed to and accepted from this peer. A network may belong to one peer only.
        type: list
        elements: str
        default: []
      persistent_keepalive:
        description: Keepalive interval in seconds (0 or omitted = off).
        type: int
      description:
        description: Free text shown as a comment in the file and used to name the peer in messages.
        type: str
  routing:
    description:
      - Policy routing that comes and goes with the interface, for gateways (Docker networks, pod CIDRs).
      - Needs a routing table, so O(table) must not be V(off). With O(table=auto) the table is O(fwmark) or 51820.
    type: dict
    suboptions:
      sources:
        description: Source networks whose traffic is routed by the tunnel's table (C(from SOURCE lookup TABLE)).
        type: list
        elements: str
        default: []
      exclude:
        description: Destinations that never go through the tunnel (throw routes in the tunnel's table, so the
          lookup continues in the main table).
        type: list
        elements: str
        default: []
      priority:
        description: Rule priority base. The full-tunnel rules use V(priority) and V(priority+1), the source rules
          V(priority+2), the O(routing.bypass_fwmark) rule V(priority-1).
        type: int
        default: 10000
      bypass_fwmark:
        description:
          - Packets whose firewall mark matches O(routing.bypass_fwmark.mark)/O(routing.bypass_fwmark.mask) are
            routed by the main table, before the tunnel's rules (C(ip rule add fwmark MARK/MASK lookup main priority
            PRIORITY-1), IPv4 and IPv6, for each family whose traffic the tunnel's rules take over). The rule comes and
            goes with the interface (C(PostUp)/C(PostDown)) and is applied live.
          - Meant for the connection marks of M(tunnelgate.wireguard.firewall)'s inbound connection marks preset (the
            C(host_vpn) role sets both). Replies to connections that came in on the uplink (SSH and Ansible from
            another network, any service reached from outside the host's subnets) then leave by the uplink, while
            everything the host starts itself still goes through the tunnel.
          - The mark must not be one other software tests under the same mask (kube-proxy V(0x4000)/V(0x8000), Cilium
            V(0x0F00), WireGuard's own O(fwmark)).
        type: dict
        suboptions:
          mark:
            description: The mark (non-zero, within O(routing.bypass_fwmark.mask)).
            type: int
            required: true
          mask:
            description: The bits of the packet mark compared (default all 32).
            type: int
            default: 4294967295
  enabled:
    description: Bring the interface up at boot (C(systemctl enable wg-quick@NAME) when systemd runs the host).
    type: bool
    default: true
  implementation:
    description:
      - V(kernel) requires the kernel module, V(userspace) uses wireguard-go when the kernel cannot create the
        interface, V(auto) detects which one works.
    type: str
    choices: [auto, kernel, userspace]
    default: auto
seealso:
  - module: tunnelgate.wireguard.keypair
  - module: tunnelgate.wireguard.info
"""

EXAMPLES = r"""
- name: A server with two peers
  tunnelgate.wireguard.interface:
    name: wg0
    addresses: [10.66.3.1/24, fd66:3::1/64]
    listen_port: 51820
    private_key_path: /etc/wireguard/keys/wg0.key
    peers:
      - description: client-a
        public_key: "{{ client_a_public_key }}"
        allowed_ips: [10.66.3.2/32, fd66:3::2/128]
      - description: client-b
        public_key: "{{ client_b_public_key }}"
        preshared_key_path: /etc/wireguard/keys/client-b.psk
        allowed_ips: [10.66.3.3/32]

- name: A client that sends everything through the tunnel
  tunnelgate.wireguard.interface:
    name: wg0
    addresses: [10.66.3.2/32, fd66:3::2/128]
    private_key_path: /etc/wireguard/keys/wg0.key
    peers:
      - description: exit
        public_key: "{{ server_public_key }}"
        endpoint: vpn.example.org:51820
        allowed_ips: ["0.0.0.0/0", "::/0"]
        persistent_keepalive: 25

- name: A gateway for a Docker network (only that subnet goes through the tunnel)
  tunnelgate.wireguard.interface:
    name: wg-docker
    addresses: [10.66.6.2/32]
    private_key_path: /etc/wireguard/keys/wg-docker.key
    table: "1066"
    routing:
      sources: [172.18.0.0/16]
      exclude: [192.168.0.0/16]
    peers:
      - public_key: "{{ server_public_key }}"
        endpoint: 203.0.113.1:51820
        allowed_ips: [0.0.0.0/0]

- name: A client whose DNS goes through the tunnel (systemd-resolved or /etc/resolv.conf, detected)
  tunnelgate.wireguard.interface:
    name: wg0
    addresses: [10.66.3.2/32]
    private_key_path: /etc/wireguard/keys/wg0.key
    dns: [10.66.3.1]
    peers:
      - public_key: "{{ server_public_key }}"
        endpoint: 203.0.113.1:51820
        allowed_ips: [0.0.0.0/0]

- name: Remove the interface (and give the previous DNS back)
  tunnelgate.wireguard.interface:
    name: wg0
    state: absent
"""

RETURN = r"""
name:
  description: The interface name.
  returned: always
  type: str
  sample: wg0
config_path:
  description: Path of the wg-quick configuration file.
  returned: always
  type: str
  sample: /etc/wireguard/wg0.conf
public_key:
  description: The interface's public key (live, or derived from the key file in check mode).
  returned: when state=present
  type: str
  sample: nx4M8KhN0EtWvkig62upeCat0XoOBfFRIZph9XkGtgM=
implementation:
  description: What runs the interface after the change (V(kernel) or V(userspace)).
  returned: when something changed and state=present
  type: str
  sample: userspace
ipv6_disabled:
  description:
    - Whether IPv6 is disabled for the interface on this host (C(net.ipv6.conf.default.disable_ipv6=1), or
      C(net.ipv6.conf.NAME.disable_ipv6=1)), as in Docker containers and on hardened hosts.
    - The interface then runs IPv4 only; see RV(ipv6_skipped) and the notes. A role uses it to block IPv6 egress.
  returned: when state=present
  type: bool
  sample: false
ipv6_skipped:
  description: What was left out because IPv6 is disabled (IPv6 addresses, IPv6 routes through the interface).
  returned: when state=present and IPv6 is disabled and something IPv6 was asked for
  type: list
  elements: str
  sample: ["address fd66:3::2/128", "route ::/0 table 51820 (blocked: unreachable)"]
restarted:
  description: Whether the interface had to be taken down and up again (it never is for peer, address, MTU, route or rule changes).
  returned: always
  type: bool
  sample: false
peers_added:
  description: Peers added (public key and description).
  returned: always
  type: list
  elements: dict
  sample: [{"public_key": "H5J/955Ub5W0d99c0MPfUYxBUNQvoQSewt+1H8FsXz8=", "description": "client-a"}]
peers_removed:
  description: Peers removed (public key and description).
  returned: always
  type: list
  elements: dict
  sample: []
peers_updated:
  description: Peers changed, with the names of the changed fields.
  returned: always
  type: list
  elements: dict
  sample: [{"public_key": "H5J/955Ub5W0d99c0MPfUYxBUNQvoQSewt+1H8FsXz8=", "changes": ["allowed_ips"]}]
changes:
  description: Human-readable list of every change made (or to be made in check mode).
  returned: always
  type: list
  elements: str
  sample: ["add address 10.66.3.1/24", "add route 10.70.0.0/16 dev wg0 table main"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import (
    CommandError,
    CommandRunner,
    TunnelgateError,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        addresses=dict(type="list", elements="str", default=[]),
        listen_port=dict(type="int"),
        private_key_path=dict(type="path", no_log=False),
        mtu=dict(type="int"),
        fwmark=dict(type="int"),
        table=dict(type="str", default="auto"),
        dns=dict(type="list", elements="str", default=[]),
        dns_method=dict(type="str", default="auto", choices=["auto", "resolved", "resolv_conf"]),
        peers=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                public_key=dict(type="str", required=True, no_log=False),
                preshared_key_path=dict(type="path", no_log=False),
                endpoint=dict(type="str"),
                allowed_ips=dict(type="list", elements="str", default=[]),
                persistent_keepalive=dict(type="int"),
                description=dict(type="str"),
            ),
        ),
        routing=dict(
            type="dict",
            options=dict(
                sources=dict(type="list", elements="str", default=[]),
                exclude=dict(type="list", elements="str", default=[]),
                priority=dict(type="int", default=10000),
                bypass_fwmark=dict(
                    type="dict",
                    no_log=False,  # "pass" in the name: a firewall mark, not a secret
                    options=dict(
                        mark=dict(type="int", required=True),
                        mask=dict(type="int", default=4294967295),
                    ),
                ),
            ),
        ),
        enabled=dict(type="bool", default=True),
        implementation=dict(type="str", default="auto", choices=["auto", "kernel", "userspace"]),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["private_key_path"])],
        supports_check_mode=True,
    )
    try:
        result = run_interface(module.params, CommandRunner(module), check_mode=module.check_mode, module=module,
                               diff=module._diff)
    except TunnelgateError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    except CommandError as exc:
        module.fail_json(msg=str(exc), rc=exc.rc, stderr=exc.stderr)
    warnings = result.pop("warnings", [])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

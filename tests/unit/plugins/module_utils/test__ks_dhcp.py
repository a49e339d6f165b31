# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""allow_dhcp=auto: which interfaces get their address by DHCP (files under a fake root)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _ks_dhcp as dhcp

LINKS = json.dumps([{"ifindex": 1, "ifname": "lo"}, {"ifindex": 2, "ifname": "eth0"}, {"ifindex": 3, "ifname": "wlan0"}])
# iproute2 6.1: an address from a DHCP client (dynamic, finite lifetime) and a static one
ADDRS = json.dumps([
    {"ifindex": 2, "ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "10.0.0.5", "prefixlen": 24, "dynamic": True, "valid_life_time": 3412,
         "preferred_life_time": 3412}]},
    {"ifindex": 3, "ifname": "wlan0", "addr_info": [
        {"family": "inet", "local": "192.168.1.5", "prefixlen": 24, "valid_life_time": 4294967295}]},
])


class Runner:
    def __init__(self, addrs="[]"):
        self.addrs = addrs

    def bin_path(self, name, required=True):
        return "/usr/sbin/" + name

    def run(self, argv, check=True, data=None):
        return (0, LINKS, "") if argv[2] == "link" else (0, self.addrs, "")


def put(root, path, text=""):
    full = os.path.join(str(root), path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)


def test_nothing_found(tmp_path):
    assert dhcp.detect(Runner(), str(tmp_path)) == {}


def test_kernel_dynamic_address(tmp_path):
    assert dhcp.detect(Runner(ADDRS), str(tmp_path)) == {"eth0": ["kernel: dynamic IPv4 address with a lease lifetime"]}


@pytest.mark.parametrize("path,text,found", [
    ("run/systemd/netif/leases/3", "ADDRESS=192.168.1.5\n", {"wlan0": ["systemd-networkd lease"]}),
    ("run/systemd/netif/leases/9", "", {}),  # an interface that no longer exists
    ("run/NetworkManager/devices/2", "[device]\nmanaged=true\n[dhcp4]\nip_address=10.0.0.5\n", {"eth0": ["NetworkManager DHCP"]}),
    ("run/NetworkManager/devices/2", "[device]\nmanaged=true\n", {}),
    ("var/lib/NetworkManager/internal-0f7b6b0c-3c1e-4d6b-9a4e-1d2c3b4a5f60-wlan0.lease", "",
     {"wlan0": ["NetworkManager lease file"]}),
    ("var/lib/dhcp/dhclient.eth0.leases", "", {"eth0": ["dhclient lease file"]}),
    ("var/lib/dhcp/dhclient6.wlan0.leases", "", {"wlan0": ["dhclient lease file"]}),
    ("var/lib/dhcp/dhclient.leases", 'lease {\n  interface "wlan0";\n  fixed-address 192.168.1.5;\n}\n',
     {"wlan0": ["dhclient lease file"]}),
    ("var/lib/dhcpcd/eth0.lease", "", {"eth0": ["dhcpcd lease file"]}),
    ("var/lib/dhcpcd/wlan0-HomeNet.lease6", "", {"wlan0": ["dhcpcd lease file"]}),
    ("etc/network/interfaces", "auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n",
     {"eth0": ["ifupdown inet dhcp"]}),
    ("etc/network/interfaces.d/wlan0", "iface wlan0 inet6 dhcp\n", {"wlan0": ["ifupdown inet dhcp"]}),
    ("etc/network/interfaces", "iface eth0 inet static\n  address 10.0.0.5/24\n# iface wlan0 inet dhcp\n", {}),
])
def test_each_source(tmp_path, path, text, found):
    put(tmp_path, path, text)
    assert dhcp.detect(Runner(), str(tmp_path)) == found


def test_evidence_is_merged_and_sorted(tmp_path):
    put(tmp_path, "run/systemd/netif/leases/2")
    put(tmp_path, "etc/network/interfaces", "iface wlan0 inet dhcp\n")
    assert dhcp.detect(Runner(ADDRS), str(tmp_path)) == {
        "eth0": ["kernel: dynamic IPv4 address with a lease lifetime", "systemd-networkd lease"],
        "wlan0": ["ifupdown inet dhcp"],
    }

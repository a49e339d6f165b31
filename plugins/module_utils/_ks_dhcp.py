# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch: which interfaces get their address by DHCP (for ``allow_dhcp: auto``).

Private to the collection (leading underscore): not a public API.

A closed host-mode switch rejects a DHCP client's unicast renewal (a normal UDP socket, so it passes
OUTPUT). ``allow_dhcp: auto`` lets DHCP/DHCPv6 client requests out of the interfaces found here,
and only those. Evidence, each read without running a DHCP client:

* the kernel: an IPv4 address flagged ``dynamic`` with a finite lifetime (what DHCP clients set);
* systemd-networkd: ``/run/systemd/netif/leases/<ifindex>``;
* NetworkManager: ``/run/NetworkManager/devices/<ifindex>`` with a ``[dhcp4]``/``[dhcp6]`` section,
  or a ``*-<ifname>.lease`` file under ``/var/lib/NetworkManager``;
* ISC dhclient: ``/var/lib/dhcp/dhclient[6].<ifname>.leases`` or ``interface "<ifname>";`` in
  ``/var/lib/dhcp/dhclient[6].leases``;
* dhcpcd: ``<ifname>.lease``/``.lease6`` (optionally ``-<ssid>``) under its state directories;
* ifupdown: ``iface <ifname> inet dhcp`` / ``inet6 dhcp`` in ``/etc/network/interfaces(.d)``.

Only interfaces that exist now count (a stale lease file of a removed interface does not). The
parsers are pure; ``detect`` reads the files under ``root`` (tests pass a temporary directory).
"""

from __future__ import annotations

import glob
import json
import os
import re

_IFUPDOWN_RE = re.compile(r"^\s*iface\s+(\S+)\s+inet6?\s+dhcp\b", re.M)
_DHCLIENT_IFACE_RE = re.compile(r'^\s*interface\s+"([^"]+)"\s*;', re.M)
_DHCLIENT_FILE_RE = re.compile(r"^dhclient6?[.-](.+)\.leases?$")
_DHCPCD_FILE_RE = re.compile(r"^(?:dhcpcd-)?([^/]+?)(?:-[^/]*)?\.lease6?$")
_NM_LEASE_RE = re.compile(r"^(?:dhclient6?|internal6?)-[0-9a-fA-F-]{36}-(.+)\.lease$")

DHCPCD_DIRS = ("var/lib/dhcpcd", "var/lib/dhcpcd5", "var/db/dhcpcd", "var/db")


def links_from_ip(text):
    """``ip -j link show`` into ``{ifindex: ifname}``."""
    return {int(link["ifindex"]): link["ifname"] for link in json.loads(text or "[]") if "ifname" in link}


def dynamic_from_ip(text):
    """``ip -j -4 addr show`` into the names with a dynamic (lease-like, finite) IPv4 address."""
    found = set()
    for link in json.loads(text or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") != "inet" or not info.get("dynamic"):
                continue
            if info.get("valid_life_time", 4294967295) != 4294967295:
                found.add(link.get("ifname"))
    return found


def ifupdown_dhcp(text):
    return set(_IFUPDOWN_RE.findall(text or ""))


def dhclient_lease_interfaces(text):
    return set(_DHCLIENT_IFACE_RE.findall(text or ""))


def nm_device_has_dhcp(text):
    return any(line.strip() in ("[dhcp4]", "[dhcp6]") for line in (text or "").splitlines())


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _files(root, pattern):
    return sorted(glob.glob(os.path.join(root, pattern)))


def detect(runner, root="/"):
    """``{ifname: [evidence, ...]}`` for the existing interfaces that get an address by DHCP."""
    ip = runner.bin_path("ip", required=False)
    links = {}
    found = {}

    def add(name, why):
        if name in links.values():
            found.setdefault(name, [])
            if why not in found[name]:
                found[name].append(why)

    if ip:
        rc, out, _err = runner.run([ip, "-j", "link", "show"], check=False)
        if rc == 0:
            links = links_from_ip(out)
        rc, out, _err = runner.run([ip, "-j", "-4", "addr", "show"], check=False)
        if rc == 0:
            for name in sorted(dynamic_from_ip(out)):
                add(name, "kernel: dynamic IPv4 address with a lease lifetime")
    for path in _files(root, "run/systemd/netif/leases/*"):
        base = os.path.basename(path)
        if base.isdigit() and int(base) in links:
            add(links[int(base)], "systemd-networkd lease")
    for path in _files(root, "run/NetworkManager/devices/*"):
        base = os.path.basename(path)
        if base.isdigit() and int(base) in links and nm_device_has_dhcp(_read(path)):
            add(links[int(base)], "NetworkManager DHCP")
    for path in _files(root, "var/lib/NetworkManager/*.lease"):
        match = _NM_LEASE_RE.match(os.path.basename(path))
        if match:
            add(match.group(1), "NetworkManager lease file")
    for path in _files(root, "var/lib/dhcp/dhclient*.lease*"):
        base = os.path.basename(path)
        match = _DHCLIENT_FILE_RE.match(base)
        if match:
            add(match.group(1), "dhclient lease file")
        for name in sorted(dhclient_lease_interfaces(_read(path))):
            add(name, "dhclient lease file")
    for directory in DHCPCD_DIRS:
        for path in _files(root, directory + "/*.lease*"):
            match = _DHCPCD_FILE_RE.match(os.path.basename(path))
            if match and not os.path.basename(path).startswith("dhclient"):
                add(match.group(1), "dhcpcd lease file")
    for path in [os.path.join(root, "etc/network/interfaces")] + _files(root, "etc/network/interfaces.d/*"):
        for name in sorted(ifupdown_dhcp(_read(path))):
            add(name, "ifupdown inet dhcp")
    return {name: found[name] for name in sorted(found)}

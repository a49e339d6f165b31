# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``info`` module's body: facts about WireGuard interfaces and peers, never keys."""

from __future__ import annotations

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, TunnelgateError, redact_keys
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import NAME_RE
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.live import _json, parse_wg_dump


def wireguard_info(runner, name=None, now=None):
    """Facts about WireGuard interfaces and peers. Never private or preshared keys."""
    if name is not None and not NAME_RE.match(name):
        raise TunnelgateError("name", "%r is not a valid interface name (1-15 of A-Z a-z 0-9 _ = + . -)" % (name,))
    if not runner.bin_path("wg", required=False):
        return {}, ["the wg tool (wireguard-tools) is not installed: no WireGuard facts"]
    argv = ["wg", "show", name or "all", "dump"]
    rc, out, err = runner.run(argv, check=False)
    if rc != 0:
        if name:
            raise TunnelgateError("name", "%s is not a WireGuard interface (%s)" % (name, redact_keys(err.strip())))
        raise CommandError(argv, rc, out, err)
    dump = parse_wg_dump(out, name)
    interfaces = {}
    for ifname, data in dump.items():
        peers = []
        for peer in data["peers"].values():
            handshake = peer["latest_handshake"] or None
            peers.append({
                "public_key": peer["public_key"],
                "endpoint": peer["endpoint"],
                "allowed_ips": list(peer["allowed_ips"]),
                "latest_handshake": handshake,
                "latest_handshake_age": (int(now - handshake) if handshake and now is not None else None),
                "transfer_rx": peer["transfer_rx"],
                "transfer_tx": peer["transfer_tx"],
                "persistent_keepalive": peer["persistent_keepalive"],
                "preshared_key": peer["preshared_key"],
            })
        entry = {"public_key": data["public_key"], "listen_port": data["listen_port"], "fwmark": data["fwmark"],
                 "peers": peers, "addresses": [], "mtu": None}
        for link in _json(runner, ["ip", "-j", "addr", "show", "dev", ifname]):
            entry["mtu"] = link.get("mtu")
            entry["addresses"] = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
                                  if a.get("scope") == "global"]
        interfaces[ifname] = entry
    return interfaces, []

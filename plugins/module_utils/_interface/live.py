# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live state: the running interface read into a ``State`` (``wg show NAME dump``, ``ip -j``).

Reads only; nothing here changes the host. ``snapshot_as_desired`` turns a live read into a
desired state so that a failed apply can put it back.
"""

from __future__ import annotations

import collections
import ipaddress
import json

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError, redact_keys
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import FULL_MASK, PeerState, Route, Rule, State
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import parse_dump, split_live_endpoint


def _json(runner, argv):
    rc, out, _err = runner.run(argv, check=False)
    if rc != 0 or not out.strip():
        return []
    return json.loads(out)


def hide_secrets(runner, *values):
    """Tell Ansible about secrets read from the host, so it masks them in anything returned (a second
    guard: results are built from fingerprints and booleans in the first place)."""
    register = getattr(runner, "no_log", None)
    for value in values:
        if value and register:
            register(value)


def parse_wg_dump(text, name, keep_secrets=False):
    """``parse_dump`` for ``wg show NAME|all dump`` output; a format it does not know fails naming ``name``."""
    try:
        return parse_dump(text, name=name, keep_secrets=keep_secrets)
    except ValueError as exc:  # the message never quotes the dump (it holds private keys)
        raise TunnelgateError("name", "wg show %s dump: %s" % (name or "all", exc)) from None


def _normalize_dst(dst, family):
    if dst in (None, "default"):
        return "0.0.0.0/0" if family == 4 else "::/0"
    return str(ipaddress.ip_network(dst, strict=False))


def read_routes(runner, name, tables):
    routes = collections.Counter()
    for family in (4, 6):
        for entry in _json(runner, ["ip", "-j", "-%d" % family, "route", "show", "table", "main", "dev", name]):
            if entry.get("protocol") == "kernel" or entry.get("type", "unicast") != "unicast":
                continue
            routes[Route(family, "main", _normalize_dst(entry.get("dst"), family), "unicast")] += 1
        for table in sorted(tables):
            for entry in _json(runner, ["ip", "-j", "-%d" % family, "route", "show", "table", table]):
                kind = entry.get("type", "unicast")
                if kind in ("throw", "unreachable") or (kind == "unicast" and entry.get("dev") == name):
                    routes[Route(family, table, _normalize_dst(entry.get("dst"), family), kind)] += 1
    return routes


def read_rules(runner):
    rules = collections.Counter()
    for family in (4, 6):
        for entry in _json(runner, ["ip", "-j", "-%d" % family, "rule", "show"]):
            table = str(entry.get("table", ""))
            if table in ("local",) or "priority" not in entry:
                continue
            src = entry.get("src")
            src = None if src in (None, "all") else str(ipaddress.ip_network("%s/%s" % (
                src, entry.get("srclen", 32 if family == 4 else 128)), strict=False))
            fwmark = entry.get("fwmark")
            fwmask = entry.get("fwmask")
            fwmask = None if fwmask is None or int(fwmask, 0) == FULL_MASK else int(fwmask, 0)
            known = {"priority", "src", "srclen", "table", "not", "fwmark", "fwmask", "suppress_prefixlen", "protocol"}
            if set(entry) - known:  # a selector we do not create (iif, dst, ...): never ours to match
                src = "%s+%s" % (src, ",".join(sorted(set(entry) - known)))
            rules[Rule(family, int(entry["priority"]), src, table, int(fwmark, 0) if fwmark else None,
                       "not" in entry, entry.get("suppress_prefixlen"), fwmask)] += 1
    return rules


def read_live(runner, name, tables):
    """Read the running interface ``name`` into a ``State`` (``exists`` False when absent)."""
    live = State(name)
    if not runner.bin_path("ip", required=False):
        return live
    links = _json(runner, ["ip", "-d", "-j", "link", "show", "dev", name])
    live.rules = read_rules(runner)
    live.routes = read_routes(runner, name, tables)
    if not links:
        return live
    link = links[0]
    live.exists = True
    live.mtu = link.get("mtu")
    flags = link.get("flags")
    live.up = flags is None or "UP" in flags
    info_kind = (link.get("linkinfo") or {}).get("info_kind")
    live.kind = "kernel" if info_kind == "wireguard" else "userspace" if info_kind == "tun" else info_kind
    if not runner.bin_path("wg", required=False):
        raise TunnelgateError("name", "interface %s exists but the wg tool (wireguard-tools) is not installed" % name)
    rc, out, err = runner.run(["wg", "show", name, "dump"], check=False)
    if rc != 0:
        raise TunnelgateError("name", "%s exists but is not a WireGuard interface (%s)" % (name, redact_keys(err.strip())))
    dump = parse_wg_dump(out, name, keep_secrets=True).get(name)
    if dump is None:
        raise TunnelgateError("name", "wg show %s dump returned nothing" % name)
    live.public_key = dump["public_key"]
    live.private_key_value = dump.get("private_key")
    hide_secrets(runner, live.private_key_value, *(p.get("preshared_key_value") for p in dump["peers"].values()))
    live.listen_port = dump["listen_port"]
    live.fwmark = dump["fwmark"]
    for key, peer in dump["peers"].items():
        endpoint = peer["endpoint"]
        live.peers[key] = PeerState(key, peer["allowed_ips"], endpoint, None, peer["persistent_keepalive"],
                                    psk_value=peer.get("preshared_key_value"))
    for entry in _json(runner, ["ip", "-j", "addr", "show", "dev", name]):
        for info in entry.get("addr_info", []):
            if info.get("scope") == "global":
                live.addresses.append(ipaddress.ip_interface("%s/%s" % (info["local"], info["prefixlen"])))
    return live


def snapshot_as_desired(live, file_text):
    """A live snapshot turned into a desired state (for restoring it after a failed apply)."""
    desired = State(live.name)
    desired.exists = live.exists
    desired.kind = "auto"
    desired.public_key = live.public_key
    desired.private_key_value = live.private_key_value
    desired.listen_port = live.listen_port
    desired.fwmark = live.fwmark
    desired.mtu = live.mtu
    desired.addresses = list(live.addresses)
    for key, peer in live.peers.items():
        endpoint = peer.endpoint
        candidates = {split_live_endpoint(endpoint)} if endpoint else None
        desired.peers[key] = PeerState(key, peer.allowed_ips, endpoint, candidates, peer.keepalive,
                                       psk_value=peer.psk_value)
    desired.routes = collections.Counter(live.routes)
    desired.rules = collections.Counter(live.rules)
    desired.file_text = file_text
    return desired

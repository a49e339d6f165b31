# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: what must change to turn the live state into the desired one.

``make_plan`` compares a desired and a live ``State`` and returns a ``Plan`` (the ``wg set``
arguments, addresses, MTU, routes, rules, sysctls, restart reasons). A ``DifferenceTracker``
records every compared field: it is what the diff shows. Nothing here runs a command.
"""

from __future__ import annotations

import collections

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import DifferenceTracker
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import (
    WG_SET_PEERS_PER_CALL,
    State,
    _sorted_routes,
    _sorted_rules,
    route_argv,
    rule_argv,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import canonical_networks, split_live_endpoint


class Plan:
    def __init__(self, name):
        self.name = name
        self.file_change = False
        self.dropin_change = False
        self.create = False
        self.restart_reasons = []
        self.wg_args = []
        self.secret_files = {}      # placeholder -> secret value (restore only); written 0600
        self.peers_added = []
        self.peers_removed = []
        self.peers_updated = []
        self.private_key_change = False
        self.addr_add = []
        self.addr_del = []
        self.mtu = None
        self.route_add = []
        self.route_del = []
        self.rule_add = []
        self.rule_del = []
        self.sysctls = []
        self.unit_enable = None
        self.destroy = False
        self.removing = False
        self.tracker = DifferenceTracker()

    @property
    def live_change(self):
        return bool(self.wg_args or self.addr_add or self.addr_del or self.mtu is not None or self.route_add
                    or self.route_del or self.rule_add or self.rule_del or self.sysctls)

    @property
    def changed(self):
        return bool(self.file_change or self.dropin_change or self.create or self.restart_reasons
                    or self.live_change or self.unit_enable is not None or self.destroy)

    def changes(self):
        """A short human list of what changes (for the result's ``changes``)."""
        out = []
        if self.create:
            out.append("create interface %s" % self.name)
        if self.destroy:
            out.append("remove interface %s" % self.name)
        out += ["restart: %s" % r for r in self.restart_reasons]
        verb = "remove" if self.destroy or self.removing else "write"
        if self.file_change:
            out.append("%s configuration file" % verb)
        if self.dropin_change:
            out.append("%s systemd drop-in" % verb)
        if self.private_key_change:
            out.append("load private key from key file")
        out += ["add peer %s" % _peer_label(p) for p in self.peers_added]
        out += ["remove peer %s" % _peer_label(p) for p in self.peers_removed]
        out += ["update peer %s (%s)" % (_peer_label(p), ", ".join(p["changes"])) for p in self.peers_updated]
        out += ["add address %s" % a for a in self.addr_add] + ["remove address %s" % a for a in self.addr_del]
        if self.mtu is not None:
            out.append("set MTU %s" % self.mtu)
        out += ["set sysctl %s=%s" % kv for kv in self.sysctls]
        out += ["add route %s" % " ".join(route_argv(r, self.name)[4:]) for r in self.route_add]
        out += ["remove route %s" % " ".join(route_argv(r, self.name)[4:]) for r in self.route_del]
        out += ["add rule %s" % " ".join(rule_argv(r)[4:]) for r in self.rule_add]
        out += ["remove rule %s" % " ".join(rule_argv(r)[4:]) for r in self.rule_del]
        if self.unit_enable is not None:
            out.append("%s wg-quick@%s at boot" % ("enable" if self.unit_enable else "disable", self.name))
        return out


def _peer_label(entry):
    if entry.get("description"):
        return "%s (%s)" % (entry["description"], entry["public_key"])
    return entry["public_key"]


def _peer_entry(peer, fields=None):
    entry = {"public_key": peer.public_key}
    if peer.description:
        entry["description"] = peer.description
    if fields is not None:
        entry["changes"] = fields
    return entry


def _endpoint_matches(desired_peer, live_peer):
    if desired_peer.endpoint is None:
        return True  # not configured: the peer roams, whatever it is now is fine
    live = split_live_endpoint(live_peer.endpoint)
    return live is not None and live in (desired_peer.endpoint_candidates or set())


def _same_networks(wanted, live):
    """Same set of networks? Fast on the usual equal text; normalizes only when the text differs."""
    if len(wanted) == len(live) and set(wanted) == set(live):
        return True
    return canonical_networks(wanted) == canonical_networks(live)


def _secret_arg(plan, path, value, what):
    if path:
        return path
    if value is None:
        return "/dev/null"
    placeholder = "@secret%d:%s" % (len(plan.secret_files), what)
    plan.secret_files[placeholder] = value
    return placeholder


def plan_live(plan, desired, live):
    """Fill ``plan`` with the live changes that turn ``live`` into ``desired`` (both exist)."""
    tracker = plan.tracker
    wg = []
    key_changes = desired.public_key is None or desired.public_key != live.public_key
    tracker.add("public_key", live.public_key, desired.public_key if desired.public_key else "(from %s)" % desired.private_key_path)
    if key_changes:
        plan.private_key_change = True
        wg += ["private-key", _secret_arg(plan, desired.private_key_path, desired.private_key_value, "private")]
    if desired.listen_port is not None:
        tracker.add("listen_port", live.listen_port, desired.listen_port)
        if desired.listen_port != live.listen_port:
            wg += ["listen-port", str(desired.listen_port)]
    tracker.add("fwmark", live.fwmark, desired.fwmark)
    if desired.fwmark != live.fwmark:
        wg += ["fwmark", str(desired.fwmark or "off")]
    peer_args = []
    unchanged = 0
    for key, peer in live.peers.items():
        if key not in desired.peers:
            plan.peers_removed.append(_peer_entry(peer))
            peer_args.append(["peer", key, "remove"])
            tracker.add("peer %s" % key, peer.view(), None)
    for key, peer in desired.peers.items():
        current = live.peers.get(key)
        psk_arg = None
        if peer.psk_path or peer.psk_value:
            psk_arg = _secret_arg(plan, peer.psk_path, peer.psk_value, "psk")
        if current is None:
            args = ["peer", key]
            if psk_arg:
                args += ["preshared-key", psk_arg]
            if peer.endpoint:
                args += ["endpoint", peer.endpoint]
            if peer.keepalive:
                args += ["persistent-keepalive", str(peer.keepalive)]
            args += ["allowed-ips", ",".join(peer.allowed_ips)]
            peer_args.append(args)
            plan.peers_added.append(_peer_entry(peer))
            tracker.add("peer %s" % key, None, peer.view())
            continue
        fields, args = [], ["peer", key]
        if not _same_networks(peer.allowed_ips, current.allowed_ips):
            fields.append("allowed_ips")
            args += ["allowed-ips", ",".join(peer.allowed_ips)]
        if not _endpoint_matches(peer, current):
            fields.append("endpoint")
            args += ["endpoint", peer.endpoint]
        if (peer.keepalive or None) != (current.keepalive or None):
            fields.append("persistent_keepalive")
            args += ["persistent-keepalive", str(peer.keepalive or "off")]
        wanted_psk = peer.psk_value if peer.psk_known else object()
        if wanted_psk != current.psk_value:
            fields.append("preshared_key")
            args += ["preshared-key", psk_arg or "/dev/null"]
        if not fields:
            unchanged += 1
            continue
        plan.peers_updated.append(_peer_entry(peer, fields))
        peer_args.append(args)
        live_view = current.view()
        if peer.endpoint is None:
            live_view.pop("endpoint", None)
        elif "endpoint" not in fields:
            live_view["endpoint"] = peer.endpoint
        if "preshared_key" not in fields:
            live_view["preshared_key"] = peer.view()["preshared_key"]
        else:
            live_view["preshared_key"] = "(differs)" if current.psk_value else False
        if peer.description:
            live_view["description"] = peer.description
        tracker.add("peer %s" % key, live_view, peer.view())
    # Unchanged peers are only counted: a diff of thousands of identical peers helps nobody.
    tracker.add("peers unchanged", unchanged, unchanged)
    if wg or peer_args:
        plan.wg_args = [wg + sum(peer_args[:WG_SET_PEERS_PER_CALL], [])]
        rest = peer_args[WG_SET_PEERS_PER_CALL:]
        while rest:
            plan.wg_args.append(sum(rest[:WG_SET_PEERS_PER_CALL], []))
            rest = rest[WG_SET_PEERS_PER_CALL:]

    want = set(desired.address_strings())
    have = set(live.address_strings())
    tracker.add("addresses", live.address_strings(), desired.address_strings())
    plan.addr_del = sorted(have - want)
    plan.addr_add = [a for a in desired.address_strings() if a not in have]
    if desired.mtu is not None:
        tracker.add("mtu", live.mtu, desired.mtu)
        if desired.mtu != live.mtu:
            plan.mtu = desired.mtu


def plan_routing(plan, desired, live, owned_tables, owned_rules=frozenset()):
    """Routes and rules: add what is missing, remove what is ours and no longer wanted."""
    live_routes = collections.Counter({r: n for r, n in live.routes.items()
                                       if r.table == "main" or r.table in owned_tables})
    want_routes = desired.routes
    plan.route_add = _sorted_routes((want_routes - live_routes).elements())
    plan.route_del = _sorted_routes((live_routes - want_routes).elements())
    live_rules = collections.Counter({r: n for r, n in live.rules.items()
                                      if r.table in owned_tables or r in desired.rules or r in owned_rules})
    plan.rule_add = _sorted_rules((desired.rules - live_rules).elements())
    plan.rule_del = _sorted_rules((live_rules - desired.rules).elements())
    plan.tracker.add("routes", [" ".join(route_argv(r, plan.name)[4:]) for r in _sorted_routes(live_routes.elements())],
                     [" ".join(route_argv(r, plan.name)[4:]) for r in _sorted_routes(want_routes.elements())])
    plan.tracker.add("rules", [" ".join(rule_argv(r)[4:]) for r in _sorted_rules(live_rules.elements())],
                     [" ".join(rule_argv(r)[4:]) for r in _sorted_rules(desired.rules.elements())])


def make_plan(desired, live, file_before, file_after, owned_tables, dropin_before=None, dropin_after=None,
              sysctl_values=None, owned_rules=frozenset()):
    """Everything that must change to reach ``desired`` (state=present) from ``live``.

    ``owned_rules``: rules a previous run set up outside the tunnel's table (``bypass_fwmark``).
    """
    plan = Plan(desired.name)
    plan.file_change = file_before != file_after
    plan.dropin_change = dropin_before != dropin_after
    owned = set(owned_tables) | ({desired.tunnel_table} if desired.tunnel_table else set())
    if not live.exists:
        # wg-quick brings everything up from the file; the plan against an empty interface only
        # names what that will be (peers added, addresses...) for the result and the diff.
        plan_live(plan, desired, State(desired.name))
        plan.wg_args, plan.secret_files, plan.private_key_change = [], {}, False
        plan.addr_add, plan.mtu = [], None
        plan.create = True
        plan.tracker.add("state", "absent", "present")
        return plan
    if desired.kind in ("kernel", "userspace") and live.kind != desired.kind:
        plan.restart_reasons.append("implementation is %s, wanted %s" % (live.kind, desired.kind))
    plan_live(plan, desired, live)
    plan_routing(plan, desired, live, owned, owned_rules)
    for key, value in sorted(desired.sysctls.items()):
        current = (sysctl_values or {}).get(key)
        if current != value:
            plan.sysctls.append((key, value))
    return plan

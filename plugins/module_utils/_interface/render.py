# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering: the wg-quick file and the systemd drop-in for a desired ``State``.

No key material is ever rendered: ``PostUp`` hooks load the keys from their files.
"""

from __future__ import annotations

import shlex

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import (
    FULL_MASK,
    KERNEL_ONLY_SENTINEL,
    SAFE_PATH_RE,
    Rule,
    _sorted_routes,
    _sorted_rules,
    route_argv,
    rule_argv,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import META_PREFIX, render_config

MANAGED_HEADER = (
    "Ansible managed: tunnelgate.wireguard.interface. Local changes are overwritten.",
    "No key material here: PostUp loads the keys from their files (wg set %i private-key PATH).",
)


def render_desired(desired, header=MANAGED_HEADER):
    """The wg-quick file for ``desired``: no key material, ``Table = off``, hooks for the rest."""
    iface = []
    if desired.addresses:
        iface.append(("Address", ", ".join(str(a) for a in desired.addresses)))
    if desired.listen_port is not None:
        iface.append(("ListenPort", str(desired.listen_port)))
    if desired.fwmark is not None:
        iface.append(("FwMark", str(desired.fwmark)))
    if desired.mtu is not None:
        iface.append(("MTU", str(desired.mtu)))
    iface.append(("Table", "off"))
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PreUp", " ".join(rule_argv(rule, "del")) + " 2>/dev/null || true"))
    iface.append(("PostUp", "wg set %%i private-key %s" % shlex.quote(desired.private_key_path)))
    for peer in desired.peers.values():
        if peer.psk_path:
            iface.append(("PostUp", "wg set %%i peer %s preshared-key %s" % (peer.public_key, shlex.quote(peer.psk_path))))
    for key, value in sorted(desired.sysctls.items()):
        path = "/proc/sys/" + key.replace(".", "/")
        iface.append(("PostUp", "grep -qx %s %s || sysctl -q -w %s=%s" % (value, path, key, value)))
    for route in _sorted_routes(desired.routes.elements()):
        iface.append(("PostUp", " ".join(route_argv(route, "%i"))))
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PostUp", " ".join(rule_argv(rule, "add"))))
    iface += desired.dns_hooks
    for rule in _sorted_rules(desired.rules.elements()):
        iface.append(("PostDown", " ".join(rule_argv(rule, "del")) + " || true"))
    for route in _sorted_routes(desired.routes.elements()):
        if route.kind in ("throw", "unreachable"):
            iface.append(("PostDown", " ".join(route_argv(route, "%i", "del")) + " || true"))
    peers = []
    for peer in desired.peers.values():
        items = [("PublicKey", peer.public_key)]
        if peer.allowed_ips:
            items.append(("AllowedIPs", ", ".join(peer.allowed_ips)))
        if peer.endpoint:
            items.append(("Endpoint", peer.endpoint))
        if peer.keepalive:
            items.append(("PersistentKeepalive", str(peer.keepalive)))
        peers.append({"description": peer.description, "items": items})
    meta = {"table": desired.tunnel_table or "none", "implementation": desired.kind}
    bypass = sorted({"%#x/%#x@%d" % (r.fwmark, FULL_MASK if r.fwmask is None else r.fwmask, r.priority)
                     for r in desired.rules if r.table == "main" and r.fwmark})
    if bypass:
        meta["bypass"] = ",".join(bypass)
    return render_config(list(header), meta, iface, peers)


def previous_tables(config_text):
    """The tunnel routing table a previous run's file set up (from its meta comment)."""
    for line in (config_text or "").splitlines():
        if line.startswith(META_PREFIX):
            meta = dict(token.split("=", 1) for token in line[len(META_PREFIX):].split() if "=" in token)
            table = meta.get("table")
            return {table} if table and table.isdigit() else set()
        if line.startswith("["):
            break
    return set()


def unit_shell_word(path):
    """``path`` as one double-quoted bash word inside a single-quoted systemd command line.

    ``build_desired`` only lets through paths of characters that mean nothing to systemd or bash
    (``SAFE_PATH_RE``); anything else is refused here too, never escaped half-way.
    """
    if not SAFE_PATH_RE.match(path or ""):
        raise TunnelgateError("private_key_path", "%r cannot be written into a systemd unit safely" % (path,))
    return '"%s"' % path


def previous_bypass_rules(config_text):
    """The ``fwmark MARK/MASK lookup main`` rules a previous run's file set up (from its meta comment)."""
    for line in (config_text or "").splitlines():
        if line.startswith(META_PREFIX):
            meta = dict(token.split("=", 1) for token in line[len(META_PREFIX):].split() if "=" in token)
            rules = set()
            for item in filter(None, meta.get("bypass", "").split(",")):
                try:
                    selector, priority = item.split("@")
                    mark, _sep, mask = selector.partition("/")
                    fwmask = int(mask, 0) if mask and int(mask, 0) != FULL_MASK else None
                    rules.update(Rule(family, int(priority), None, "main", int(mark, 0), False, None, fwmask)
                                 for family in (4, 6))
                except ValueError:
                    continue  # not ours to remove
            return rules
        if line.startswith("["):
            break
    return set()


def render_dropin(desired, kind):
    """systemd drop-in for wg-quick@NAME: the implementation, and a reload that keeps the key.

    The stock ``ExecReload`` runs ``wg syncconf`` on the stripped file, which has no PrivateKey
    and therefore WIPES the live private key (checked with wireguard-tools 1.0.20210914). Ours
    feeds the key from the key file through a pipe (bash builtins only: the key is in no argv).
    """
    lines = ["# Ansible managed: tunnelgate.wireguard.interface", "[Service]"]
    if kind == "userspace":
        lines.append("Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go")
    elif kind == "kernel":
        lines.append("Environment=WG_QUICK_USERSPACE_IMPLEMENTATION=%s" % KERNEL_ONLY_SENTINEL)
    lines += [
        "ExecReload=",
        "ExecReload=/bin/bash -ec 'exec wg syncconf %%i <(printf \"[Interface]\\\\nPrivateKey = %%%%s\\\\n\" "
        "\"$$(< %s)\"; wg-quick strip %%i)'" % unit_shell_word(desired.private_key_path),
    ]
    return "\n".join(lines) + "\n"

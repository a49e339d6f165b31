# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``interface`` module's body: desired -> live -> plan -> (check mode stops here) -> apply.

``run_interface`` returns the module result (``changed``, ``changes``, ``diff``...); errors are
``TunnelgateError``s naming the option to fix. ``state=absent`` is ``_run_absent``.
"""

from __future__ import annotations

import json

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, TunnelgateError, read_text
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._dns import InterfaceDns, diff_entry, remove_interface_dns
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.apply import Applier, Host, _detect_implementation, _guard, _restore, _write_files
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.base import NAME_RE, State
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.desired import (
    _read_psks,
    build_desired,
    default_resolver,
    read_private_public_key,
    without_ipv6,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.live import hide_secrets, read_live, snapshot_as_desired
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.plan import Plan, _peer_entry, make_plan
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.render import (
    previous_bypass_rules,
    previous_tables,
    render_desired,
    render_dropin,
)
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._wgconf import redact_config, short_key


UNIT_RUNNING = ("active", "activating", "deactivating", "reloading")


def repair_reasons(name, live, unit_status, use_unit, unit):
    """Why an existing interface must be brought up again from scratch: a rerun repairs a host whatever
    state it is in (live changes on a down link fail: "Device for nexthop is not up")."""
    reasons = []
    if unit_status in ("activating", "deactivating"):
        reasons.append("%s is stuck %s (e.g. resolving an endpoint name)" % (
            unit, "starting" if unit_status == "activating" else "stopping"))
    elif use_unit and unit_status == "failed":
        reasons.append("%s has failed" % unit)
    if live.up is False:
        reasons.append("%s is down" % name)
    return reasons


def _result_base(name, plan, config_path):
    return {
        "changed": plan.changed,
        "name": name,
        "config_path": config_path,
        "restarted": False,
        "peers_added": plan.peers_added,
        "peers_removed": plan.peers_removed,
        "peers_updated": plan.peers_updated,
        "changes": plan.changes(),
    }


def run_interface(params, runner, host=None, check_mode=False, module=None, resolver=default_resolver,
                  key_reader=read_text, diff=True):
    """The module body: returns the result dict. Raises TunnelgateError / CommandError."""
    host = host or Host()
    name = params["name"]
    config_path = host.config_path(name)
    dropin_path = host.dropin_path(name)
    file_before = read_text(config_path)
    dropin_before = read_text(dropin_path) if host.systemd else None
    owned = previous_tables(file_before)
    owned_rules = previous_bypass_rules(file_before)
    applier = Applier(runner, host, module)

    if params.get("state") == "absent":
        return _run_absent(params, runner, host, applier, check_mode, file_before, dropin_before, owned, diff,
                           owned_rules)

    desired = build_desired(params, resolver)
    desired.public_key = read_private_public_key(desired.private_key_path, key_reader)
    if desired.public_key is None and not check_mode:
        raise TunnelgateError("private_key_path", "%s does not exist (create it with tunnelgate.wireguard.keypair)"
                              % desired.private_key_path)
    if desired.public_key in desired.peers:
        raise TunnelgateError("peers", "the interface's own public key %s is listed as a peer" % short_key(desired.public_key),
                              desired.peers[desired.public_key].label)
    _read_psks(desired, check_mode)
    hide_secrets(runner, *(peer.psk_value for peer in desired.peers.values()))
    dns = InterfaceDns(name, desired.dns, params.get("dns_method"), runner, previous_config=file_before)
    desired.dns_hooks = dns.hooks()
    ipv6_disabled = host.ipv6_disabled(name)
    ipv6_skipped = without_ipv6(desired) if ipv6_disabled else []
    tables = owned | ({desired.tunnel_table} if desired.tunnel_table else set())
    file_after = render_desired(desired)
    dropin_after = render_dropin(desired, desired.kind) if host.systemd else None

    live = read_live(runner, name, tables)
    sysctl_values = {key: host.sysctl(key) for key in desired.sysctls}
    plan = make_plan(desired, live, file_before, file_after, tables, dropin_before, dropin_after, sysctl_values,
                     owned_rules=owned_rules)
    use_unit = host.systemd and params.get("enabled", True)
    status, enabled = applier.unit_state(name) if host.systemd else (None, None)
    active = status in UNIT_RUNNING
    if host.systemd and bool(enabled) != bool(params.get("enabled", True)):
        plan.unit_enable = bool(params.get("enabled", True))
    if live.exists:
        plan.restart_reasons += repair_reasons(name, live, status, use_unit, applier.unit(name))

    result = _result_base(name, plan, config_path)
    dns_plan = dns.plan()
    result["changed"] = result["changed"] or dns_plan.changed
    result["changes"] += dns_plan.changes
    result["ipv6_disabled"] = ipv6_disabled
    if ipv6_skipped:
        result["ipv6_skipped"] = ipv6_skipped
        result.setdefault("warnings", []).append(
            "IPv6 is disabled for %s on this host (net.ipv6.conf.default/%s.disable_ipv6=1), so it runs IPv4 only: "
            "left out %s. Block IPv6 egress (kill switch) if IPv6 must not leave outside the tunnel"
            % (name, name, "; ".join(ipv6_skipped)))
    if diff:
        result["diff"] = _diff(config_path, file_before, file_after, plan) + [diff_entry(dns_plan)]
    if params.get("enabled", True) and not host.systemd:
        result.setdefault("warnings", []).append(
            "enabled: systemd is not running on this host, so nothing brings %s up at boot; "
            "run 'wg-quick up %s' from your init system" % (name, name))
    if check_mode or not plan.changed:
        result["public_key"] = live.public_key if live.exists else desired.public_key
        if dns_plan.changed and not check_mode:
            dns.apply(module)
        return result

    snapshot = snapshot_as_desired(live, file_before)
    snapshot.dropin_text = dropin_before
    try:
        kind = desired.kind
        if plan.create or plan.restart_reasons:
            if desired.kind == "auto" and plan.create:
                kind = _detect_implementation(runner, name)
            if plan.create and use_unit and active:
                # RemainAfterExit unit still "active" although the link is gone: stop it first.
                runner.run(["systemctl", "stop", applier.unit(name)], check=False)
            if plan.restart_reasons:
                applier.stop(name, active, file_before is not None, tables, owned_rules)
                result["restarted"] = True
            _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan)
            applier.start(name, kind, use_unit)
            # Reconcile against what wg-quick brought up (normally nothing is left to do).
            live_now = read_live(runner, name, tables)
            follow = make_plan(desired, live_now, file_after, file_after, tables,
                               sysctl_values={k: host.sysctl(k) for k in desired.sysctls})
            applier.apply_live(follow)
        else:
            _write_files(runner, host, module, config_path, file_after, dropin_path, dropin_after, plan)
            applier.apply_live(plan)
        if plan.unit_enable is not None:
            runner.run(["systemctl", "enable" if plan.unit_enable else "disable", applier.unit(name)])
        _guard(runner, name, desired.public_key)
        dns.apply(module)  # against the tunnel as it is now (wg-quick's hooks may have done it already)
    except (CommandError, TunnelgateError) as exc:
        problems = _restore(runner, host, applier, module, snapshot, desired, name, tables, use_unit)
        message = "%s; the previous state was restored" % exc if not problems else \
            "%s; restoring the previous state also failed: %s" % (exc, "; ".join(problems))
        if isinstance(exc, TunnelgateError):
            raise TunnelgateError(exc.option, message.split(": ", 1)[-1], exc.item) from None
        raise TunnelgateError("name", "applying the change to %s failed: %s" % (name, message)) from None
    final = read_live(runner, name, tables)
    result["public_key"] = final.public_key
    result["implementation"] = final.kind
    return result


def _run_absent(params, runner, host, applier, check_mode, file_before, dropin_before, owned, diff=True,
                owned_rules=frozenset()):
    name = params["name"]
    if not NAME_RE.match(name or ""):
        raise TunnelgateError("name", "%r is not a valid interface name" % (name,))
    config_path = host.config_path(name)
    live = read_live(runner, name, owned) if runner.bin_path("ip", required=False) else State(name)
    plan = Plan(name)
    leftovers = [r for r in live.rules if r.table in owned or r in owned_rules]
    plan.destroy = live.exists or bool(leftovers) or bool(live.routes)
    plan.removing = True
    plan.file_change = file_before is not None
    plan.dropin_change = dropin_before is not None
    status, enabled = applier.unit_state(name) if host.systemd else (None, None)
    active = status in UNIT_RUNNING
    if enabled:
        plan.unit_enable = False
    plan.peers_removed = [_peer_entry(p) for p in live.peers.values()]
    plan.tracker.add("state", "present" if live.exists else "absent", "absent")
    result = _result_base(name, plan, config_path)
    dns_plan = remove_interface_dns(name, runner, check_mode=True)
    result["changed"] = result["changed"] or dns_plan.changed
    result["changes"] += dns_plan.changes
    if diff:
        result["diff"] = _diff(config_path, file_before, None, plan) + [diff_entry(dns_plan)]
    if check_mode or not result["changed"]:
        return result
    applier.stop(name, active, file_before is not None, owned, owned_rules)
    if plan.unit_enable is False:
        runner.run(["systemctl", "disable", applier.unit(name)], check=False)
    host.remove(config_path)
    if host.systemd and dropin_before is not None:
        host.remove(host.dropin_path(name))
        runner.run(["systemctl", "daemon-reload"], check=False)
    remove_interface_dns(name, runner, module=applier.module)  # the previous DNS back (after PostDown did its part)
    return result


def _diff(config_path, before, after, plan):
    live_before, live_after = plan.tracker.get_before_after()
    return [
        {"before_header": config_path, "after_header": config_path,
         "before": redact_config(before) or "", "after": redact_config(after) or ""},
        {"before_header": "%s (live)" % plan.name, "after_header": "%s (live)" % plan.name,
         "before": _yamlish(live_before), "after": _yamlish(live_after)},
    ]


def _yamlish(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"

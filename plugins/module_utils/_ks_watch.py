# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch watcher: reload the rules within a second when another tool removed them.

Private to the collection (leading underscore): not a public API.

The routing lock (``_ks_routing``) holds through any firewall flush for ordinary sockets and for
forwarded traffic, but two things only the firewall can do: a socket bound to the uplink
(``SO_BINDTODEVICE``) bypasses routing decisions (the kernel sends it "on link" when the lookup
fails), and DNS enforcement / LAN-only rules live in the firewall. The watcher closes that gap: a
small ``sh`` loop (``tunnelgate-killswitch-MODE-watch.service``) checks every ``interval`` seconds
that our hook, the LAST rule of each of our chains (a flushed chain has none) and the routing
lock's prohibit are present, and otherwise restarts the boot unit, which loads the saved rules
(the same text apply loads). Checks are argv-only commands of the backend's own tools; nothing is
parsed in shell.
"""

from __future__ import annotations

import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.iptables import TOOLS, join_tokens, render_rule

WATCH_INTERVAL = 0.5


def firewall_checks(backend):
    """Shell lines that succeed while the rules engine's rule set is intact on ``backend`` (planned).

    iptables: each hook jump, and the LAST rule of each of our chains (``-C`` compares it as the
    kernel holds it; a flushed chain has none). nftables: each chain of ours holds all its rules.
    """
    checks = []
    if backend.name == "iptables":
        for family in (4, 6):
            ipt = backend.bins[TOOLS[family][0]]
            for table, plan in sorted(backend.plans.get(family, {}).items()):
                if plan.desired is None:
                    continue
                flag = "" if table == "filter" else " -t %s" % table
                checks += ["%s -w%s -C %s -j %s" % (ipt, flag, hook, top) for hook, top in plan.hooks]
                for chain, rules in plan.desired:
                    if rules:
                        checks.append("%s -w%s -C %s %s" % (ipt, flag, chain, join_tokens(render_rule(rules[-1], family))))
    else:
        for chain in backend.chains:
            checks.append('[ "$(%s -a list chain inet %s %s | grep -c "# handle")" -ge %d ]' % (
                backend.nft, backend.table, chain.name, len(chain.rules)))
    return checks


def watch_unit_name(mode):
    return "tunnelgate-killswitch-%s-watch.service" % mode


def render_script(mode, boot_unit, checks, interval=WATCH_INTERVAL):
    """The watcher loop; ``checks`` are shell command lines that all succeed while the switch is intact."""
    lines = [
        "#!/bin/sh",
        "# Managed by tunnelgate.wireguard.killswitch: do not edit.",
        "# Reloads the %s-mode kill switch (%s) within %ss when another tool flushed or reloaded" % (mode, boot_unit, interval),
        "# the firewall (iptables -F, nft flush ruleset, systemctl restart nftables, firewalld/ufw reloads).",
        "intact() {",
    ]
    lines += ["    %s || return 1" % check for check in checks]
    lines += [
        "    return 0",
        "}",
        "# --check: one look, the exit status says whether the switch is intact (the metrics program asks)",
        'if [ "${1:-}" = "--check" ]; then intact >/dev/null 2>&1; exit $?; fi',
        "while :; do",
        "    if ! intact >/dev/null 2>&1; then",
        '        echo "kill switch rules missing: reloading %s"' % boot_unit,
        "        systemctl restart %s || sleep 10" % boot_unit,
        "    fi",
        "    sleep %s" % interval,
        "done",
        "",
    ]
    return "\n".join(lines)


def render_unit(mode, script_path, boot_unit):
    return "\n".join([
        "# Managed by tunnelgate.wireguard.killswitch: do not edit.",
        "[Unit]",
        "Description=tunnelgate kill switch watcher (%s mode): reloads the rules another tool removed" % mode,
        "Documentation=https://github.com/tunnelgate/wireguard/blob/main/docs/killswitch.md",
        "After=%s" % boot_unit,
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=/bin/sh %s" % script_path,
        "Restart=always",
        "RestartSec=2",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


class WatchPlan:
    """The watcher unit: wanted (text) or not (None), compared with the unit file and its state."""

    def __init__(self, runner, mode, unit_text, unit_dir):
        self.runner = runner
        self.name = watch_unit_name(mode)
        self.path = os.path.join(unit_dir, self.name)
        self.text = unit_text
        try:
            with open(self.path, encoding="utf-8") as handle:
                self.before = handle.read()
        except (IOError, OSError):
            self.before = None
        self.systemctl = runner.bin_path("systemctl", required=unit_text is not None)
        self.active_before = self._state("is-active") == "active" if self.before is not None else False
        self.enabled_before = self._state("is-enabled") == "enabled" if self.before is not None else False

    def _state(self, verb):
        if not self.systemctl:
            return ""
        _rc, out, _err = self.runner.run([self.systemctl, verb, self.name], check=False)
        return out.strip()

    @property
    def changed(self):
        if self.text is None:
            return self.before is not None
        return self.before != self.text or not (self.active_before and self.enabled_before)

    def stop(self):
        """Before the rules change: a watcher must not reload the old rules in the middle of a switch."""
        if self.active_before:
            self.runner.run([self.systemctl, "stop", self.name], check=False)

    def finish(self, write, rules_changed):
        """After the rules (and the boot unit) are in place: (re)start, or remove."""
        if self.text is None:
            if self.before is not None:
                if self.systemctl:
                    self.runner.run([self.systemctl, "disable", "--now", self.name], check=False)
                os.unlink(self.path)
                if self.systemctl:
                    self.runner.run([self.systemctl, "daemon-reload"], check=False)
            return
        if self.before != self.text:
            write(self.path, self.text)
            self.runner.run([self.systemctl, "daemon-reload"])
        if not self.enabled_before:
            self.runner.run([self.systemctl, "enable", self.name])
        if self.active_before and not rules_changed and self.before == self.text:
            return
        self.runner.run([self.systemctl, "restart", self.name])

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine: boot persistence (rule files + a systemd unit ordered before network-pre.target).

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import read_text, write_file_atomic

UNIT_DIR = "/etc/systemd/system"
DOCS = "https://github.com/tunnelgate/wireguard/blob/main/docs/"


def render_unit(ruleset, exec_lines):
    """A oneshot unit that loads the rules before any network is configured at boot."""
    lines = [
        "# Managed by %s: do not edit." % ruleset.managed_by,
        "[Unit]",
        "Description=%s" % ruleset.description,
        "Documentation=%s%s" % (DOCS, ruleset.docs),
        "DefaultDependencies=no",
        "Wants=network-pre.target",
        "Before=network-pre.target shutdown.target",
        # Firewall loaders that replace whole rulesets run first, so they cannot wipe ours.
        "After=nftables.service netfilter-persistent.service iptables.service ip6tables.service",
        "Conflicts=shutdown.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
    ]
    lines.extend("ExecStart=%s" % line for line in exec_lines)
    lines.extend(["", "[Install]", "WantedBy=sysinit.target", ""])
    return "\n".join(lines)


class PersistPlan:
    """Files and unit state for boot persistence, compared with what is on disk."""

    def __init__(self, runner, unit, files, unit_text, rules_dir, unit_dir, stale_files, prune_dir=False):
        self.runner = runner
        self.prune_dir = prune_dir
        self.unit = unit
        self.files = files  # {path: content}, empty when not persisting
        self.unit_text = unit_text  # None when not persisting
        self.rules_dir = rules_dir
        self.unit_path = os.path.join(unit_dir, unit)
        self.stale = [p for p in stale_files if os.path.exists(p)]
        self.systemctl = runner.bin_path("systemctl", required=unit_text is not None)
        self.changes = []
        for path, content in sorted(files.items()):
            if read_text(path) != content:
                self.changes.append(path)
        self.unit_before = read_text(self.unit_path)
        if self.unit_before != unit_text:
            self.changes.append(self.unit_path)
        self.enabled_before = self._is_enabled()
        self.enabled_after = unit_text is not None
        if self.enabled_before != self.enabled_after:
            self.changes.append("enabled")
        self.changes.extend(self.stale)

    def _is_enabled(self):
        if self.unit_before is None:
            return False
        if not self.systemctl:
            return False
        rc, out, _err = self.runner.run([self.systemctl, "is-enabled", self.unit], check=False)
        return out.strip() == "enabled"

    @property
    def changed(self):
        return bool(self.changes)

    def write_files(self, module=None):
        """Before the rules are applied: the rules file is what apply loads."""
        if self.files and not os.path.isdir(self.rules_dir):
            os.makedirs(self.rules_dir, 0o700)
        for path, content in sorted(self.files.items()):
            if read_text(path) != content:
                write_file_atomic(path, content, 0o600, module)

    def finish(self, module=None):
        """After the rules are applied: unit file, enablement, stale files."""
        if self.unit_text is not None:
            if self.unit_before != self.unit_text:
                write_file_atomic(self.unit_path, self.unit_text, 0o644, module)
                self.runner.run([self.systemctl, "daemon-reload"])
            if not self.enabled_before:
                self.runner.run([self.systemctl, "enable", self.unit])
        elif self.unit_before is not None:
            if self.systemctl:
                # A oneshot that ran at boot stays "active" (and listed) until stopped; it has no ExecStop,
                # so stopping it changes no rule.
                self.runner.run([self.systemctl, "stop", self.unit], check=False)
                self.runner.run([self.systemctl, "disable", self.unit], check=False)
            os.unlink(self.unit_path)
            if self.systemctl:
                self.runner.run([self.systemctl, "daemon-reload"], check=False)
        for path in self.stale:
            if os.path.exists(path):
                os.unlink(path)
        if self.prune_dir and not self.files and os.path.isdir(self.rules_dir) and not os.listdir(self.rules_dir):
            os.rmdir(self.rules_dir)  # nothing of ours is left in it

    def describe(self, enabled):
        return "# boot persistence (%s): %s\n" % (self.unit, "enabled" if enabled else "disabled")

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kill switch: plan (live vs desired), apply, and boot persistence through a systemd unit.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import read_text, write_file_atomic
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchSpec, chain_order
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_iptables import IptablesBackend
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_nftables import NftablesBackend

RULES_DIR = "/etc/tunnelgate/killswitch"
UNIT_DIR = "/etc/systemd/system"


# --------------------------------------------------------------------------- persistence


def unit_name(mode):
    return "tunnelgate-killswitch-%s.service" % mode


def render_unit(mode, backend, exec_lines):
    """A oneshot unit that closes the switch before any network is configured at boot."""
    lines = [
        "# Managed by tunnelgate.wireguard.killswitch: do not edit.",
        "[Unit]",
        "Description=tunnelgate kill switch (%s mode, %s): fail-closed egress before the network" % (mode, backend),
        "Documentation=https://github.com/tunnelgate/wireguard/blob/main/docs/killswitch.md",
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

    def __init__(self, runner, mode, files, unit_text, rules_dir, unit_dir, stale_files):
        self.runner = runner
        self.mode = mode
        self.files = files  # {path: content}, empty when not persisting
        self.unit_text = unit_text  # None when not persisting
        self.rules_dir = rules_dir
        self.unit_path = os.path.join(unit_dir, unit_name(mode))
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
        rc, out, _err = self.runner.run([self.systemctl, "is-enabled", unit_name(self.mode)], check=False)
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
        name = unit_name(self.mode)
        if self.unit_text is not None:
            if self.unit_before != self.unit_text:
                write_file_atomic(self.unit_path, self.unit_text, 0o644, module)
                self.runner.run([self.systemctl, "daemon-reload"])
            if not self.enabled_before:
                self.runner.run([self.systemctl, "enable", name])
        elif self.unit_before is not None:
            if self.systemctl:
                self.runner.run([self.systemctl, "disable", name], check=False)
            os.unlink(self.unit_path)
            if self.systemctl:
                self.runner.run([self.systemctl, "daemon-reload"], check=False)
        for path in self.stale:
            if os.path.exists(path):
                os.unlink(path)


# --------------------------------------------------------------------------- orchestration


class Killswitch:
    """Decide, then act: ``plan()`` reads live state and compares; ``apply()`` changes the host."""

    def __init__(self, spec, runner, module=None, rules_dir=RULES_DIR, unit_dir=UNIT_DIR):
        self.spec = spec
        self.runner = runner
        self.module = module
        self.rules_dir = rules_dir
        self.unit_dir = unit_dir
        self.backend = None
        self.other = None
        self.persist = None

    def _backends(self):
        classes = {"iptables": IptablesBackend, "nftables": NftablesBackend}
        main = classes[self.spec.backend](self.runner, self.spec.mode, self.rules_dir)
        other_name = "nftables" if self.spec.backend == "iptables" else "iptables"
        other = classes[other_name](self.runner, self.spec.mode, self.rules_dir)
        return main, other

    def plan(self):
        self.backend, other = self._backends()
        self.backend.require()
        self.backend.plan(self.spec)
        # Switching backends must not leave the previous backend's chains of this mode behind.
        self.other = other if other.available() else None
        if self.other is not None:
            self.other.plan(None)
        persisting = self.spec.state == "present" and self.spec.persist
        files = self.backend.persist_files() if persisting else {}
        unit_text = render_unit(self.spec.mode, self.spec.backend, self.backend.boot_commands()) if persisting else None
        stale = [p for p in self.backend.all_files() + other.all_files() if p not in files]
        self.persist = PersistPlan(self.runner, self.spec.mode, files, unit_text, self.rules_dir, self.unit_dir, stale)
        return self

    @property
    def changed(self):
        return self.backend.changed or (self.other is not None and self.other.changed) or self.persist.changed

    def diff(self):
        before, after = self.backend.diff_text()
        if self.other is not None and self.other.changed:
            other_before, other_after = self.other.diff_text()
            before += other_before
            after += other_after
        before += "# boot persistence (%s): %s\n" % (unit_name(self.spec.mode), "enabled" if self.persist.enabled_before else "disabled")
        after += "# boot persistence (%s): %s\n" % (unit_name(self.spec.mode), "enabled" if self.persist.enabled_after else "disabled")
        return {"before": before, "after": after, "before_header": "live rules", "after_header": "desired rules"}

    def apply(self):
        if self.spec.state == "present":
            self.persist.write_files(self.module)
        if self.other is not None and self.other.changed:
            self.other.apply()
        if self.backend.changed:
            self.backend.apply()
        self.persist.finish(self.module)

    def result(self):
        return {
            "changed": self.changed,
            "backend": self.spec.backend,
            "mode": self.spec.mode,
            "state": self.spec.state,
            "chains": chain_order(self.spec.mode, self.spec.backend) if self.spec.state == "present" else [],
            "hooks": self.backend.hooks() if self.spec.state == "present" else {},
            "rules": self.backend.desired_lines() if self.spec.state == "present" else {},
            "unit": unit_name(self.spec.mode) if self.persist.enabled_after else None,
        }


def run_module(module, runner, rules_dir=RULES_DIR, unit_dir=UNIT_DIR):
    """Entry point for the thin module: returns the result dict (raises TunnelgateError)."""
    spec = KillswitchSpec(module.params)
    for warning in spec.warnings:
        module.warn(warning)
    killswitch = Killswitch(spec, runner, module=module, rules_dir=rules_dir, unit_dir=unit_dir).plan()
    for warning in killswitch.backend.warnings:
        module.warn(warning)
    result = killswitch.result()
    if module._diff:
        result["diff"] = killswitch.diff()
    if killswitch.changed and not module.check_mode:
        killswitch.apply()
    return result

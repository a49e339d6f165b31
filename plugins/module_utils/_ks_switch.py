# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kill switch as a whole: firewall rule set + routing lock + watcher, planned and applied together.

Private to the collection (leading underscore): not a public API.

* the firewall rules: ``_killswitch.KillswitchRules`` on the rules engine (``_rules``);
* the routing lock of the mode (``_ks_routing``): policy rules that no firewall flush touches (host
  mode: everything the host sends or forwards, at 32764/32765; forward mode: what comes from its
  sources, at 32762/32763); its lines come FIRST in the boot unit, so a boot whose rules file cannot
  be loaded still comes up closed;
* the watcher (``_ks_watch``): reloads the rules within a second after another tool removed them;
* ``allow_dhcp: auto`` (``_ks_dhcp``): DHCP client requests out of the DHCP-managed interfaces.

Order of changes: never a moment more open than before. The watcher is stopped first (so it cannot
reload old rules in the middle of a change), the lock is closed before the firewall changes, the
engine loads the new rules before it removes another backend's, a lock that is no longer wanted is
removed last, and the watcher is started again at the end.
"""

from __future__ import annotations

import os

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import write_file_atomic
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import RULES_DIR, KillswitchRules, KillswitchSpec
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_dhcp import detect as detect_dhcp
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_routing import LOCKS, RoutingLock, forward_lock_rules, lock_rules
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_watch import WatchPlan, firewall_checks
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_watch import render_script as render_watch_script
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._ks_watch import render_unit as render_watch_unit
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.engine import RulesEngine, decide_then_act
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.persist import UNIT_DIR


class Killswitch:
    """Decide, then act: ``plan()`` reads the live state; ``apply()`` changes the host."""

    def __init__(self, spec, runner, module=None, rules_dir=RULES_DIR, unit_dir=UNIT_DIR, root="/"):
        self.spec = spec
        self.runner = runner
        self.module = module
        self.rules_dir = rules_dir
        self.unit_dir = unit_dir
        self.root = root
        self.dhcp_found = {}
        self.lock = None
        self.engine = None
        self.watch = None
        self.watch_script = None
        self.watch_text = None
        self.watch_script_before = None

    def _detect_dhcp(self):
        if self.spec.mode == "host" and self.spec.state == "present" and self.spec.allow_dhcp == "auto":
            self.dhcp_found = detect_dhcp(self.runner, self.root)
            self.spec.dhcp_interfaces = sorted(self.dhcp_found)

    def _plan_lock(self):
        """Each mode owns its own routing lock (its own priorities); neither touches the other's."""
        wanted = None
        if self.spec.state == "present" and self.spec.routing_lock:
            if self.spec.mode == "host":
                dhcp = self.spec.dhcp_interfaces is None or bool(self.spec.dhcp_interfaces)
                wanted = lock_rules(self.spec, dhcp=dhcp)
            else:
                wanted = forward_lock_rules(self.spec)
        return RoutingLock(self.runner, LOCKS[self.spec.mode]).plan(wanted)

    @property
    def lock_wanted(self):
        return self.lock is not None and any(self.lock.desired.get(f) for f in self.lock.families)

    def plan(self):
        present = self.spec.state == "present"
        self._detect_dhcp()
        self.lock = self._plan_lock()
        boot_first = self.lock.boot_commands() if self.lock is not None else []
        self.engine = RulesEngine(KillswitchRules(self.spec, boot_first), self.spec.backend, present, self.runner,
                                  self.rules_dir, persist=self.spec.persist, module=self.module, unit_dir=self.unit_dir)
        self.engine.plan()
        self.watch_script = os.path.join(self.rules_dir, "%s.watch" % self.spec.mode)
        self.watch_script_before = self._read_watch_script()
        unit = self.engine.ruleset.unit
        watch_unit = None
        self.watch_text = None
        if present and self.spec.persist and self.spec.watch:
            # the firewall first: it is what another tool removes, and the loop stops at the first failed check
            checks = firewall_checks(self.engine.backend) + (self.lock.watch_checks() if self.lock is not None else [])
            self.watch_text = render_watch_script(self.spec.mode, unit, checks)
            watch_unit = render_watch_unit(self.spec.mode, self.watch_script, unit)
        self.watch = WatchPlan(self.runner, self.spec.mode, watch_unit, self.unit_dir)
        return self

    def _read_watch_script(self):
        try:
            with open(self.watch_script, encoding="utf-8") as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    @property
    def changed(self):
        return (self.engine.changed or (self.lock is not None and self.lock.changed) or self.watch.changed
                or self.watch_script_before != self.watch_text)

    def diff(self):
        diff = self.engine.diff()
        if self.lock is not None:
            header = "# routing lock (policy rules at priorities %d/%d: no firewall flush touches them)\n" % (
                self.lock.kind.exception_priority, self.lock.kind.lock_priority)
            diff["before"] += header + "".join(line + "\n" for line in self.lock.diff_lines("before"))
            diff["after"] += header + "".join(line + "\n" for line in self.lock.diff_lines("after"))
        running = self.watch.before is not None and self.watch.active_before
        diff["before"] += "# watcher (%s): %s\n" % (self.watch.name, "running" if running else "off")
        diff["after"] += "# watcher (%s): %s\n" % (self.watch.name, "running" if self.watch.text else "off")
        return diff

    def apply(self):
        self.watch.stop()
        if self.lock_wanted and self.lock.changed:
            self.lock.apply()
        if self.engine.changed:
            self.engine.apply()
        if self.lock is not None and not self.lock_wanted and self.lock.changed:
            self.lock.apply()
        if self.watch_text is not None and self.watch_script_before != self.watch_text:
            if not os.path.isdir(self.rules_dir):
                os.makedirs(self.rules_dir, 0o700)
            write_file_atomic(self.watch_script, self.watch_text, 0o600, self.module)
        elif self.watch_text is None and self.watch_script_before is not None:
            os.unlink(self.watch_script)
        self.watch.finish(lambda path, text: write_file_atomic(path, text, 0o644, self.module), rules_changed=True)

    def result(self):
        result = self.engine.result()
        result["changed"] = self.changed
        result["routing_lock"] = self.lock.result() if self.lock is not None else {}
        result["watcher"] = self.watch.name if self.watch.text is not None else None
        if self.spec.allow_dhcp == "auto":
            result["dhcp_interfaces"] = self.dhcp_found
        else:
            result["dhcp_interfaces"] = {"*": ["allow_dhcp: true"]} if self.spec.dhcp_interfaces is None else {}
        return result

    @property
    def warnings(self):
        return self.engine.warnings

    def run(self, module):
        return decide_then_act(self, module)


def run_module(module, runner, rules_dir=RULES_DIR, unit_dir=UNIT_DIR, root="/"):
    """Entry point for the thin module: returns the result dict (raises TunnelgateError)."""
    spec = KillswitchSpec(module.params)
    for warning in spec.warnings:
        module.warn(warning)
    result = Killswitch(spec, runner, module=module, rules_dir=rules_dir, unit_dir=unit_dir, root=root).run(module)
    result.update(mode=spec.mode, state=spec.state)
    return result

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules engine: decide, then act, for one rule set on one backend.

Private to the collection (leading underscore): not a public API.

``plan()`` reads the live rules and compares them with the desired ones (nothing changes on the
host); the result, the diff and check mode come from the plan; ``apply()`` writes the rule files,
loads the rules atomically, removes the other backend's copy of the same rule set (after the new
one is live, so a backend switch never leaves a moment without rules) and sets up the boot unit.
"""

from __future__ import annotations

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.iptables import IptablesBackend
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.nftables import NftablesBackend
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._rules.persist import UNIT_DIR, PersistPlan, render_unit

BACKEND_CLASSES = {"iptables": IptablesBackend, "nftables": NftablesBackend}


class RulesEngine:
    """One rule set, ``present`` or not, on ``backend``; the other backend's copy is always removed."""

    def __init__(self, ruleset, backend, present, runner, rules_dir, persist=True, module=None, unit_dir=UNIT_DIR):
        self.ruleset = ruleset
        self.backend_name = backend
        self.present = present
        self.runner = runner
        self.rules_dir = rules_dir
        self.unit_dir = unit_dir
        self.persisting = present and persist
        self.module = module
        self.backend = None
        self.other = None
        self.persist = None

    def plan(self):
        self.backend = BACKEND_CLASSES[self.backend_name](self.runner, self.ruleset, self.rules_dir)
        other_name = "nftables" if self.backend_name == "iptables" else "iptables"
        other = BACKEND_CLASSES[other_name](self.runner, self.ruleset, self.rules_dir)
        self.backend.require()
        self.backend.plan(self.present)
        # Switching backends must not leave the previous backend's chains of this rule set behind.
        self.other = other if other.available() else None
        if self.other is not None:
            self.other.plan(False)
        files = self.backend.persist_files() if self.persisting else {}
        unit_text = None
        if self.persisting:
            unit_text = render_unit(self.ruleset, list(self.ruleset.boot_first) + self.backend.boot_commands())
        stale = [p for p in self.backend.all_files() + other.all_files() if p not in files]
        self.persist = PersistPlan(self.runner, self.ruleset.unit, files, unit_text, self.rules_dir, self.unit_dir, stale,
                                   prune_dir=self.ruleset.prune_dir)
        return self

    @property
    def warnings(self):
        return list(self.backend.warnings)

    @property
    def changed(self):
        return self.backend.changed or (self.other is not None and self.other.changed) or self.persist.changed

    def diff(self):
        before, after = self.backend.diff_text()
        if self.other is not None and self.other.changed:
            other_before, other_after = self.other.diff_text()
            before += other_before
            after += other_after
        before += self.persist.describe(self.persist.enabled_before)
        after += self.persist.describe(self.persist.enabled_after)
        return {"before": before, "after": after, "before_header": "live rules", "after_header": "desired rules"}

    def apply(self):
        if self.present:
            self.persist.write_files(self.module)
        if self.backend.changed:
            self.backend.apply()
        if self.other is not None and self.other.changed:
            self.other.apply()
        self.persist.finish(self.module)

    def result(self):
        present = self.present
        return {
            "changed": self.changed,
            "backend": self.backend_name,
            "chains": self.ruleset.chain_names(self.backend_name) if present else [],
            "hooks": self.backend.hooks() if present else {},
            "rules": self.backend.desired_lines() if present else {},
            "unit": self.ruleset.unit if self.persist.enabled_after else None,
        }

    def run(self, module):
        return decide_then_act(self, module)


def decide_then_act(planner, module):
    """Plan, report (result, diff), and apply unless in check mode.

    ``planner`` has ``plan()``, ``warnings``, ``result()``, ``diff()``, ``changed`` and ``apply()``:
    the rules engine itself and the kill switch that wraps it (rules + routing lock + watcher).
    """
    planner.plan()
    for warning in planner.warnings:
        module.warn(warning)
    result = planner.result()
    if module._diff:
        result["diff"] = planner.diff()
    if planner.changed and not module.check_mode:
        planner.apply()
    return result

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The example alert rules load in Prometheus (promtool, from Debian's prometheus package, which
scripts/test.sh installs) and use only metric names the metrics program writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _metrics

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
RULES = os.path.join(ROOT, "examples", "prometheus", "tunnelgate-alerts.yml")


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (scripts/test.sh does)"
    done = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_name_only_metrics_that_exist():
    with open(RULES, encoding="utf-8") as handle:
        used = set(re.findall(r"\btunnelgate_[a-z_]+\b", handle.read()))
    assert used and used <= set(_metrics.HELP), used - set(_metrics.HELP)

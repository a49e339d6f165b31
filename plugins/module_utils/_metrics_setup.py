# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``metrics`` module's body: install the metrics program, its timer and a role's fragment.

Private to the collection (leading underscore): not a public API.

Several roles on one host share one program and one timer; each role has its own fragment
(``/etc/tunnelgate/metrics.d/ROLE.json``: egress mode, interfaces, kill switch modes). The last
fragment removed takes the program, the units and the metrics file with it.
"""

from __future__ import annotations

import inspect
import json
import os
import re

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _metrics
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError, read_text, write_file_atomic

PROGRAM = "/usr/local/lib/tunnelgate/metrics.py"
SERVICE = "tunnelgate-metrics.service"
TIMER = "tunnelgate-metrics.timer"
UNIT_DIR = "/etc/systemd/system"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
_DIRECTORY_RE = re.compile(r"^/[A-Za-z0-9_./-]*\Z")


def program_text():
    """The program installed on the host: this collection's ``_metrics`` module, run as a script."""
    return "#!/usr/bin/python3\n# Managed by tunnelgate.wireguard.metrics: do not edit.\n" + inspect.getsource(_metrics)


def render_service(directory, program=PROGRAM):
    return "\n".join([
        "# Managed by tunnelgate.wireguard.metrics: do not edit.",
        "[Unit]",
        "Description=tunnelgate: WireGuard and kill switch metrics for the node exporter",
        "Documentation=https://github.com/tunnelgate/wireguard/blob/main/docs/operations.md",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=/usr/bin/python3 %s --directory %s" % (program, directory),
        "",
    ])


def render_timer(interval):
    return "\n".join([
        "# Managed by tunnelgate.wireguard.metrics: do not edit.",
        "[Unit]",
        "Description=tunnelgate: refresh the metrics every %d seconds" % interval,
        "",
        "[Timer]",
        "OnBootSec=5s",
        "OnUnitActiveSec=%ds" % interval,
        "AccuracySec=1s",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def render_fragment(params):
    fragment = {"egress_mode": params["egress_mode"], "interfaces": sorted(set(params["interfaces"])),
                "killswitch": sorted(set(params["killswitch"]))}
    return json.dumps(fragment, indent=2, sort_keys=True) + "\n"


def check_params(params):
    if not NAME_RE.match(params["name"] or ""):
        raise TunnelgateError("name", "%r is not a metrics fragment name (a-z, 0-9 and _, starting with a letter, "
                                      "at most 32 characters, for example host_vpn)" % (params["name"],))
    directory = params["directory"]
    if not _DIRECTORY_RE.match(directory) or "/../" in directory + "/" or directory.rstrip("/") in ("", "/etc", "/usr"):
        raise TunnelgateError("directory", "%r is not a directory path this module writes metrics to (an absolute "
                                           "path of letters, digits, '_', '.', '-' and '/')" % (directory,))
    if not 5 <= params["interval"] <= 3600:
        raise TunnelgateError("interval", "%r is outside 5-3600 seconds" % (params["interval"],))
    for item in params["interfaces"]:
        if not re.match(r"^[A-Za-z0-9_=+.-]{1,15}\Z", item):
            raise TunnelgateError("interfaces", "%r is not an interface name" % (item,))


class MetricsPlan:
    """What to write and remove, compared with the host; ``apply`` makes it so."""

    def __init__(self, runner, params, fragment_dir=_metrics.FRAGMENT_DIR, unit_dir=UNIT_DIR, program=PROGRAM):
        check_params(params)
        self.runner = runner
        self.params = params
        self.fragment_path = os.path.join(fragment_dir, params["name"] + ".json")
        self.fragment_dir = fragment_dir
        self.unit_dir = unit_dir
        self.program = program
        self.output = os.path.join(params["directory"], _metrics.OUTPUT_NAME)
        present = params["state"] == "present"
        others = [name for name in self._fragments() if name != params["name"]]
        # the shared program and units stay while any role's fragment remains
        keep_shared = present or bool(others)
        self.files = {self.fragment_path: render_fragment(params) if present else None}
        if keep_shared:
            if present:  # a role that is removed leaves the shared files of the others as they are
                self.files[program] = program_text()
                self.files[os.path.join(unit_dir, SERVICE)] = render_service(params["directory"], program)
                self.files[os.path.join(unit_dir, TIMER)] = render_timer(params["interval"])
        else:
            for path in (program, os.path.join(unit_dir, SERVICE), os.path.join(unit_dir, TIMER), self.output):
                self.files[path] = None
        self.before = {path: read_text(path) for path in self.files}
        self.changes = sorted(path for path, text in self.files.items() if self.before[path] != text)
        self.timer_wanted = keep_shared
        self.timer_active = self._timer_active()

    def _fragments(self):
        try:
            names = os.listdir(self.fragment_dir)
        except OSError:
            return []
        return sorted(name[:-len(".json")] for name in names if name.endswith(".json"))

    def _timer_active(self):
        systemctl = self.runner.bin_path("systemctl", required=False)
        if not systemctl:
            return None
        rc, dummy, dummy = self.runner.run([systemctl, "is-active", "--quiet", TIMER], check=False)
        return rc == 0

    @property
    def changed(self):
        return bool(self.changes) or (self.timer_active is not None and self.timer_active != self.timer_wanted)

    def diff(self):
        before, after = [], []
        for path in sorted(self.files):
            if path == self.program:  # the program's text is the collection's; say only whether it changes
                before.append("%s: %s\n" % (path, "present" if self.before[path] is not None else "absent"))
                after.append("%s: %s\n" % (path, "present" if self.files[path] is not None else "absent"))
                continue
            for lines, text in ((before, self.before[path]), (after, self.files[path])):
                lines.append("# %s%s\n" % (path, "" if text is not None else ": absent"))
                lines.append(text or "")
        before.append("# %s: %s\n" % (TIMER, "active" if self.timer_active else "inactive"))
        after.append("# %s: %s\n" % (TIMER, "active" if self.timer_wanted else "inactive"))
        return {"before": "".join(before), "after": "".join(after)}

    def apply(self, module=None):
        systemctl = self.runner.bin_path("systemctl", required=True)
        if not self.timer_wanted:
            self.runner.run([systemctl, "disable", "--now", TIMER], check=False)
            # a run the timer started just before stays loaded (listed, maybe failed) after its file is gone
            self.runner.run([systemctl, "stop", SERVICE], check=False)
        for path in self.changes:
            text = self.files[path]
            if text is None:
                if os.path.lexists(path):
                    os.unlink(path)
                continue
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            mode = 0o755 if path == self.program else 0o644
            write_file_atomic(path, text, mode, module)
        if not self.timer_wanted or self.params["state"] == "absent":
            # our own directories go when nothing is left in them (the metrics directory is the node exporter's)
            for directory in (os.path.dirname(self.program), self.fragment_dir):
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
        if any(path.startswith(self.unit_dir + "/") for path in self.changes):
            self.runner.run([systemctl, "daemon-reload"])
        if not self.timer_wanted:
            self.runner.run([systemctl, "reset-failed", SERVICE, TIMER], check=False)
        if self.timer_wanted:
            self.runner.run([systemctl, "enable", "--now", TIMER])
            # a fresh file now, not only at the next tick (also checks that the program runs)
            self.runner.run([systemctl, "start", SERVICE])

    def result(self):
        return {"changed": self.changed, "fragment": self.fragment_path, "metrics_file": self.output,
                "timer": TIMER if self.timer_wanted else None}


def run_module(module, runner, **paths):
    plan = MetricsPlan(runner, module.params, **paths)
    if plan.changed and not module.check_mode:
        plan.apply(module)
    result = plan.result()
    if module._diff:
        result["diff"] = plan.diff()
    return result

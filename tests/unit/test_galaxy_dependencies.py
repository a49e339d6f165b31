# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""galaxy.yml declares exactly the collections the shipped content uses.

Shipped content is what ``ansible-galaxy collection build`` puts in the tarball and a user runs:
roles/, playbooks/, plugins/, meta/. The test lab and Molecule (community.docker connection,
profile_tasks callback) are development tools and do not count.
"""

from __future__ import annotations

import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SHIPPED = ("roles", "playbooks", "plugins", "meta")


def shipped_text():
    for top in SHIPPED:
        for base, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml", ".j2", ".py")):
                    with open(os.path.join(base, name), encoding="utf-8") as handle:
                        yield os.path.relpath(os.path.join(base, name), ROOT), handle.read()


def used_collections():
    used = {}
    for path, text in shipped_text():
        for match in re.finditer(r"\b([a-z_]+\.[a-z_]+)\.[a-z_]+\b", text):
            used.setdefault(match.group(1), set()).add(path)
    return used


def declared():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return set((yaml.safe_load(handle) or {}).get("dependencies") or {})


def test_every_declared_dependency_is_used_by_shipped_content():
    used = used_collections()
    unused = sorted(name for name in declared() if name not in used)
    assert not unused, "galaxy.yml declares collections nothing in %s uses: %s" % ("/".join(SHIPPED), unused)


def test_every_used_collection_is_declared():
    used = used_collections()
    known = {"ansible.builtin", "tunnelgate.wireguard"}
    # Collection names only (ansible.module_utils, ansible.plugins... are ansible-core's Python packages).
    candidates = {name for name in used if name.split(".")[0] in ("community", "containers", "kubernetes")
                  or name in ("ansible.posix", "ansible.utils", "ansible.netcommon", "ansible.windows")}
    missing = sorted(candidates - declared() - known)
    assert not missing, "shipped content uses %s but galaxy.yml does not declare them (%s)" % (
        missing, {m: sorted(used[m]) for m in missing})

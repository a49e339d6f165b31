# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/site.yml run for real (local connection, no host is touched).

Hosts of groups whose role is not part of the collection yet (docker_gateways) are skipped with a
message naming the group and the planned role; the run itself succeeds. Hosts of k8s_nodes run the
k8s_node_egress role: a node without a profile fails its validation, naming the variable and the host,
before anything is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SITE = os.path.join(ROOT, "playbooks", "site.yml")
PLANNED = {"docker_gateways": "docker_gateway"}

pytestmark = pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-playbook not on PATH")


def collections_path():
    """The directory holding ansible_collections/tunnelgate/wireguard (tests/unit/conftest.py makes it)."""
    parts = ROOT.split(os.sep)
    if parts[-3:] == ["ansible_collections", "tunnelgate", "wireguard"]:
        return os.sep.join(parts[:-3])
    return os.path.join(ROOT, ".cache", "collections")


def run_site(tmp_path, groups, *args):
    inventory = tmp_path / "inventory.ini"
    lines = []
    for group, hosts in groups.items():
        lines.append("[%s]" % group)
        lines.extend("%s ansible_connection=local ansible_python_interpreter=%s" % (h, sys.executable)
                     for h in hosts)
    inventory.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), SITE] + list(args), capture_output=True,
                          text=True, env=env, check=False, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_syntax_check(tmp_path):
    rc, out = run_site(tmp_path, {"docker_gateways": ["gw1"], "k8s_nodes": ["node1"]}, "--syntax-check")
    assert rc == 0, out


@pytest.mark.parametrize("group", sorted(PLANNED))
def test_populated_group_of_a_planned_role_is_skipped_with_a_message(tmp_path, group):
    role = PLANNED[group]
    rc, out = run_site(tmp_path, {group: ["%s-a" % group, "%s-b" % group]})
    assert rc == 0, out
    assert re.search(r"%s-a\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=0" % group, out), out
    # one clear message naming the role and the hosts that were skipped
    assert "tunnelgate.wireguard.%s" % role in out, out
    assert "%s-a" % group in out and "not part of" in out, out


def test_planned_roles_really_do_not_exist_yet():
    """When a planned role lands, site.yml must run it: this test then fails as a reminder."""
    for role in PLANNED.values():
        assert not os.path.isdir(os.path.join(ROOT, "roles", role)), (
            "roles/%s exists now: make playbooks/site.yml include it instead of skipping its group" % role)


def test_k8s_nodes_run_the_role_and_fail_validation_first(tmp_path):
    """A node without tunnelgate_profile stops in the key play, naming the variable and the node."""
    rc, out = run_site(tmp_path, {"k8s_nodes": ["node-a"]})
    assert rc != 0, out
    assert "tunnelgate_profile" in out and "node-a" in out, out
    assert re.search(r"node-a\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", out), out
    # the key play stopped the node: the role's main play never ran
    assert "Configure the tunnel and the pod routing" not in out, out

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/site.yml run for real (local connection, no host is touched).

Hosts of k8s_nodes and docker_gateways run their roles: a host without a profile fails its validation,
naming the variable and the host, before anything is touched.
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


def test_k8s_nodes_run_the_role_and_fail_validation_first(tmp_path):
    """A node without tunnelgate_profile stops in the key play, naming the variable and the node."""
    rc, out = run_site(tmp_path, {"k8s_nodes": ["node-a"]})
    assert rc != 0, out
    assert "tunnelgate_profile" in out and "node-a" in out, out
    assert re.search(r"node-a\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", out), out
    # the key play stopped the node: the role's main play never ran
    assert "Configure the tunnel and the pod routing" not in out, out


def test_docker_gateways_run_the_role_and_fail_validation_first(tmp_path):
    """A Docker host without tunnelgate_profile stops in the key play, naming the variable and the host."""
    rc, out = run_site(tmp_path, {"docker_gateways": ["gw-a"]})
    assert rc != 0, out
    assert "tunnelgate_profile" in out and "gw-a" in out, out
    assert re.search(r"gw-a\s+:\s+ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", out), out
    assert "Create the tunneled Docker networks" not in out, out

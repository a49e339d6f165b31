# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the remote_controller scenario: the administrator is never locked out.

The controller manages the VPN host over SSH from ANOTHER network (172.30.19.10, through the router
that is the host's default gateway), as a remote fleet is managed. Prepare opened two long-lived
inbound TCP connections before the first run: the SSH master connection (ControlPersist) that every
ansible-playbook of this scenario reuses, and a stream that exchanges a line every 0.5 s. Converge
(site.yml) and idempotence (the rerun) went over that SSH master. The tests, in file order:
- the stream never missed an echo and the SSH master is still the very same TCP connection,
- site.yml again (0 changed) and verify.yml pass over that same connection,
- the host's own traffic still goes through the tunnel (the echo target sees the exit's address),
- tunnel down: the kill switch lets nothing of the host out (0 leaks),
- tunnel down: SSH from the controller still works - a session opened before the outage and a new
  connection - with strict reverse-path filtering (rp_filter=1) on the host,
- positive control: the same site.yml run without the fix loses the controller.

Lab inspection uses `docker exec` (testinfra's docker backend); only what the controller sees goes
over SSH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(SCENARIO))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOST = "remote-controller-host"
HOST_ADDRESSES = {"172.30.9.11", "fd42:7467:9::11"}
EXIT_V4, EXIT_V6 = "172.30.9.10", "fd42:7467:9::10"
CONTROLLER = "172.30.19.10"

testinfra_hosts = ["remote-controller-internet"]


def lab_node(name):
    """A lab container through `docker exec` (never through the routing under test)."""
    return testinfra.get_host("docker://%s" % name)


def ansible(*args, timeout=300):
    """What the controller sees: ansible over SSH from the controller network."""
    proc = subprocess.run(["ansible", "-i", INVENTORY] + list(args), capture_output=True, text=True, cwd=SCENARIO,
                          check=False, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def playbook(path, *args, timeout=900):
    proc = subprocess.run(["ansible-playbook", "-i", INVENTORY, path] + list(args), capture_output=True, text=True,
                          cwd=SCENARIO, check=False, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    """{host: {'ok': n, 'changed': n, 'unreachable': n, 'failed': n}} from a play recap."""
    found = {}
    for match in re.finditer(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M):
        found[match.group(1)] = {"ok": int(match.group(2)), "changed": int(match.group(3)),
                                 "unreachable": int(match.group(4)), "failed": int(match.group(5))}
    return found


def ssh_master_connection():
    """SSH_CONNECTION of a command run through the controller's SSH master (its TCP 4-tuple)."""
    rc, out = ansible(HOST, "-m", "ansible.builtin.shell", "-a", 'echo "SSH_CONNECTION=$SSH_CONNECTION"')
    assert rc == 0, out
    return re.search(r"SSH_CONNECTION=(.*)", out).group(1).strip()


def fresh_ssh(timeout=8):
    """A NEW SSH connection from the controller network (no master), as a later run would open."""
    rc, out = ansible(HOST, "-m", "ansible.builtin.ping", "-e",
                      "ansible_ssh_args='-o ControlMaster=no -o ControlPath=none -o ConnectTimeout=%d'" % timeout,
                      timeout=timeout * 6)
    return rc, out


def stream_log():
    """The stream client's log: [(ts, kind, rest)]."""
    text = lab_node("remote-controller-ctl").check_output("cat /var/log/lab-stream.log")
    rows = []
    for line in text.splitlines():
        ts, kind, *rest = line.split()
        rows.append((float(ts), kind, rest))
    return rows


def wait_handshake(timeout=60):
    host = lab_node(HOST)
    end = time.time() + timeout
    while time.time() < end:
        out = host.run("wg show wg0 latest-handshakes")
        if out.rc == 0 and out.stdout.split() and int(out.stdout.split()[-1]) > time.time() - 180:
            return True
        time.sleep(1)
    return False


def inbound_rules(family):
    """The host's policy-routing rules that send marked (inbound) connections to the main table."""
    out = lab_node(HOST).check_output("ip -%d rule show" % family)
    return [line for line in out.splitlines() if "fwmark" in line and "lookup main" in line]


# --------------------------------------------------------------------------- the first run


def test_the_controller_is_off_link_and_keeps_its_ssh_master():
    recorded = lab_node(HOST).check_output("cat /run/lab-controller-ssh").strip()
    assert recorded.split()[0] == CONTROLLER, recorded
    # the same TCP connection (address AND port) carried prepare, converge, idempotence and this command
    assert ssh_master_connection() == recorded


def test_a_long_lived_inbound_stream_survives_the_first_run():
    rows = stream_log()
    host = lab_node(HOST)
    tunnel_up = float(host.check_output(
        "date -d \"$(systemctl show -p ActiveEnterTimestamp --value wg-quick@wg0)\" +%s"))
    assert rows[0][1] == "start" and rows[0][0] < tunnel_up, (rows[0], tunnel_up)  # opened before the run
    assert [r for r in rows if r[1] in ("timeout", "error")] == []
    oks = [r[0] for r in rows if r[1] == "ok"]
    assert oks[-1] > time.time() - 5, "the stream stopped at %s" % oks[-1]
    gaps = [b - a for a, b in zip(oks, oks[1:])]
    assert max(gaps) < 6.0, max(gaps)  # never a stall, not even while the tunnel came up (1.9 s seen under load)


def test_rerun_and_verify_over_the_same_ssh_session():
    before = ssh_master_connection()
    rc, out = playbook(os.path.join(ROOT, "playbooks", "site.yml"))
    assert rc == 0, out
    assert recap(out)[HOST] == {**recap(out)[HOST], "changed": 0, "unreachable": 0, "failed": 0}, out
    rc, out = playbook(os.path.join(ROOT, "playbooks", "verify.yml"), "-e", "verify_egress_url=tcp://198.51.100.10:80")
    assert rc == 0, out
    row = next(line for line in out.splitlines() if HOST in line and "PASS" in line)
    assert EXIT_V4 in row, row
    assert ssh_master_connection() == before
    rc, out = fresh_ssh()
    assert rc == 0, out  # and a new connection (a later run, another admin) gets in too


# --------------------------------------------------------------------------- the host's own traffic


def test_the_hosts_own_egress_still_goes_through_the_tunnel(host):
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    result = lab.probe(lab_node(HOST), timeout=3)
    assert result["tcp/v4"] == "SRC %s" % EXIT_V4 and result["udp/v4"] == "SRC %s" % EXIT_V4, result
    assert result["tcp/v6"] == "SRC %s" % EXIT_V6 and result["udp/v6"] == "SRC %s" % EXIT_V6, result
    time.sleep(1)
    assert sentinel.seen_from(HOST_ADDRESSES, since) == {"packets": 0, "requests": 0, "dns": 0}


def test_tunnel_down_nothing_leaks(host):
    sentinel = lab.Sentinel(host)
    node = lab_node(HOST)
    node.check_output("systemctl stop wg-quick@wg0")
    try:
        assert node.run("ip link show wg0").rc != 0
        since = sentinel.now()
        plain = lab.probe(node, timeout=1)
        bound = lab.probe(node, bind_device="eth0", timeout=1)
        time.sleep(2)
        assert all(v.startswith("fail") for v in plain.values()), plain
        assert all(v.startswith("fail") for v in bound.values()), bound
        assert sentinel.seen_from(HOST_ADDRESSES, since) == {"packets": 0, "requests": 0, "dns": 0}
    finally:
        node.check_output("systemctl start wg-quick@wg0")
    assert wait_handshake()
    assert lab.probe(node, timeout=3)["tcp/v4"] == "SRC %s" % EXIT_V4


# A session of its own (not the scenario's master, which was opened before the first run): opened while
# the tunnel is up, kept across the outage.
SESSION_ARGS = ("ansible_ssh_args='-o ControlMaster=auto -o ControlPath=/tmp/tg-rc-session-%C -o ControlPersist=5m "
                "-o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o ConnectTimeout=8'")


def session_connection():
    rc, out = ansible(HOST, "-m", "ansible.builtin.shell", "-a", 'echo "SSH_CONNECTION=$SSH_CONNECTION"',
                      "-e", SESSION_ARGS, timeout=60)
    assert rc == 0, out
    return re.search(r"SSH_CONNECTION=(.*)", out).group(1).strip()


def test_tunnel_down_ssh_still_works():
    """Issue 8 item 1, the case that stayed open: while the tunnel is DOWN (the kill switch's routing lock
    prohibits whatever falls through to the main table's default route), the administrator on another
    network still gets in - a NEW SSH connection, and a session opened before the tunnel went down - with
    strict reverse-path filtering (rp_filter=1) on the host. Failed before the fix (strict xfail): the
    reply's first route lookup (the SYN-ACK's) carried no mark and ended at the lock's prohibit."""
    node = lab_node(HOST)
    assert node.check_output("sysctl -n net.ipv4.conf.all.rp_filter").strip() == "1"  # strict, from molecule.yml
    assert node.check_output("sysctl -n net.ipv4.tcp_fwmark_accept").strip() == "1"
    before = session_connection()
    assert before.split()[0] == CONTROLLER, before
    node.check_output("systemctl stop wg-quick@wg0")
    started = time.time()
    try:
        assert node.run("ip link show wg0").rc != 0
        assert "prohibit" in node.check_output("ip rule show priority 32765")  # the lock is what stands in the way
        assert session_connection() == before  # the session survives the outage
        rc, out = fresh_ssh()
        assert rc == 0, out  # and a new connection (another admin, the next run) gets in
        print("tunnel down: session and fresh SSH from %s answered within %.1f s" % (CONTROLLER, time.time() - started))
    finally:
        node.check_output("systemctl start wg-quick@wg0")
        assert wait_handshake()
    assert session_connection() == before  # and it is still the same session with the tunnel back


# --------------------------------------------------------------------------- positive control


def test_positive_control_without_the_fix_the_run_loses_the_controller():
    """The same site.yml run with the inbound-reply routing switched off cuts the controller off.

    Last test: afterwards the host is restored through `docker exec` (an admin's console) and a
    normal run over SSH puts everything back.
    """
    rc, out = playbook(os.path.join(ROOT, "playbooks", "site.yml"), "-e", "host_vpn_inbound_via_uplink=false",
                       timeout=600)
    assert rc != 0 and recap(out)[HOST]["unreachable"] == 1, out
    rc, out = fresh_ssh()
    assert rc != 0, out  # no way back in over the network
    lost = [r for r in stream_log() if r[1] == "timeout"]
    assert lost, "the stream should have stalled too"

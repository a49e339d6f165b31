# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the host_vpn scenario: what a user of site.yml relies on, proven with the lab internet.

The tests run in file order and each leaves the lab as it found it (tunnels up):
- the echo target sees only the server's address from both clients (IPv4 and IPv6, TCP and UDP),
- DNS goes through the tunnel: the sink resolver sees the query from the server, never from a client,
- the metrics file follows traffic, shows a stale handshake while the exit is unreachable, a flushed kill
  switch as not intact, and holds no key (valid exposition format, checked by promtool),
- with the tunnel down, nothing of the client reaches the internet (also sockets bound to eth0),
- across a reboot the kill switch is closed before the tunnel is up (boot-time probe loop),
- a `--limit client1` run (with or without the server) keeps client2's peer and changes nothing,
- check mode on a fresh host changes nothing there nor on the server,
- a third client gets a new address and the first two keep theirs,
- key rotation of one client is live and leaves the other client alone,
- playbooks/verify.yml passes and prints its table,
- host_vpn_state: absent takes the third client out: its egress is its own uplink again, nothing of ours
  is left (same snapshot as the fresh host), a rerun changes nothing, the server dropped only its peer,
- migrating a host with a hand-made wg-quick config (real keys) under -vvv --diff prints no key byte.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(SCENARIO))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
THIRD = os.path.join(SCENARIO, "inventory", "third-client.yml")
REMOVE_THIRD = os.path.join(SCENARIO, "inventory", "remove-third-client.yml")
FRESH_SNAPSHOT = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"), "host-vpn-client3.fresh.json")
SERVER_ADDRESSES = {"172.30.5.10", "fd42:7467:5::10"}
CLIENTS = ["host-vpn-client1", "host-vpn-client2"]

testinfra_hosts = ["host-vpn-internet"]


def node(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def playbook(path, *args, extra_inventory=False, remove_third=False):
    argv = ["ansible-playbook", "-i", INVENTORY]
    if extra_inventory or remove_third:
        argv += ["-i", THIRD]
    if remove_third:
        argv += ["-i", REMOVE_THIRD]
    argv += [path] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    """{host: {'ok': n, 'changed': n, 'failed': n}} from a play recap."""
    found = {}
    for match in re.finditer(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M):
        found[match.group(1)] = {"ok": int(match.group(2)), "changed": int(match.group(3)),
                                 "unreachable": int(match.group(4)), "failed": int(match.group(5))}
    return found


def server_state():
    return json.loads(node("host-vpn-server").file("/var/lib/tunnelgate/server.json").content_string)


def server_peers():
    out = node("host-vpn-server").check_output("wg show wg0 peers")
    return set(out.split())


def wait_handshake(name, timeout=60):
    host = node(name)
    end = time.time() + timeout
    while time.time() < end:
        dump = host.run("wg show wg0 latest-handshakes")
        if dump.rc == 0 and dump.stdout.split() and int(dump.stdout.split()[-1]) > 0:
            if time.time() - int(dump.stdout.split()[-1]) < 180:
                return True
        time.sleep(1)
    return False


def wait_booted(name, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        result = node(name).run("systemctl is-system-running")
        if result.stdout.strip() in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError("%s did not finish booting" % name)


def client_addresses(name):
    return lab.global_addresses(node(name))


def assert_nothing_from(sentinel, name, since, until=None):
    seen = sentinel.seen_from(client_addresses(name), since, until)
    assert seen == {"packets": 0, "requests": 0, "dns": 0}, "%s leaked: %s" % (name, seen)


# --------------------------------------------------------------------------- traffic and DNS


def test_echo_target_sees_only_the_server(host):
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    for name in CLIENTS:
        result = lab.probe(node(name), timeout=3)
        for kind in ("tcp/v4", "udp/v4"):
            assert result[kind] == "SRC 172.30.5.10", (name, kind, result)
        for kind in ("tcp/v6", "udp/v6"):
            assert result[kind] == "SRC fd42:7467:5::10", (name, kind, result)
    time.sleep(1)
    report = sentinel.report(since)
    assert set(report["requests"]) <= SERVER_ADDRESSES and report["requests"], report
    for name in CLIENTS:
        assert_nothing_from(sentinel, name, since)


def test_dns_goes_through_the_tunnel_never_from_a_client(host):
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    for index, name in enumerate(CLIENTS):
        client = node(name)
        nameservers = [line.split()[1] for line in client.file("/etc/resolv.conf").content_string.splitlines()
                       if line.startswith("nameserver")]
        assert nameservers == ["10.66.5.1", "fd66:5::1"]
        answer = client.run("getent ahostsv4 dnsleak-%s-%s.lab" % (index, int(since)))
        assert answer.rc == 0 and "198.51.100.10" in answer.stdout, answer.stderr
    time.sleep(1)
    report = sentinel.report(since)
    assert any(name.startswith("dnsleak-") for name in report["dns_names"]), report
    assert set(report["dns"]) <= SERVER_ADDRESSES and report["dns"], report
    for name in CLIENTS:
        assert_nothing_from(sentinel, name, since)


# --------------------------------------------------------------------------- metrics (issue 13)

METRICS_FILE = "/var/lib/prometheus/node-exporter/tunnelgate.prom"


def metrics(name, refresh=True):
    """The node's metrics file, refreshed now (the timer's service), checked by promtool, parsed."""
    host = node(name)
    if refresh:
        host.check_output("systemctl start tunnelgate-metrics.service")
    text = host.file(METRICS_FILE).content_string
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr  # parse errors and lint warnings alike
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def peer_value(values, metric):
    found = [value for key, value in values.items() if key.startswith(metric + "{")]
    assert len(found) == 1, (metric, values)
    return found[0]


def test_metrics_follow_traffic_and_show_a_stale_handshake(host):
    """Bytes grow with traffic; with the exit unreachable the client sends but receives nothing and the age of its
    latest handshake grows; the exit counts its clients; kill switch present and intact; no key in the file."""
    client = node("host-vpn-client1")
    server = node("host-vpn-server")
    assert client.service("tunnelgate-metrics.timer").is_running
    before = metrics("host-vpn-client1")
    assert before['tunnelgate_killswitch_present{mode="host"}'] == 1
    assert before['tunnelgate_killswitch_intact{mode="host"}'] == 1
    assert before['tunnelgate_interface_up{interface="wg0"}'] == 1
    assert before['tunnelgate_egress_mode{mode="host",role="host_vpn"}'] == 1
    for _round in range(20):
        lab.probe(client, timeout=2)
    after = metrics("host-vpn-client1")
    for metric in ("tunnelgate_peer_receive_bytes_total", "tunnelgate_peer_transmit_bytes_total"):
        assert peer_value(after, metric) > peer_value(before, metric), metric
    exit_view = metrics("host-vpn-server")
    assert exit_view['tunnelgate_interface_peers{interface="wg0"}'] >= 2
    assert exit_view['tunnelgate_interface_peers_recent_handshake{interface="wg0"}'] >= 2
    assert exit_view['tunnelgate_egress_mode{mode="exit",role="server"}'] == 1
    secrets = [client.check_output("wg show wg0 private-key"), server.check_output("wg show wg0 private-key")]
    for name in ("host-vpn-client1", "host-vpn-server"):
        text = node(name).file(METRICS_FILE).content_string
        assert not [secret for secret in secrets if secret in text]
        assert not re.search(r"[A-Za-z0-9+/]{43}=", text), "a key-shaped value in the metrics of %s" % name
    # the exit becomes unreachable (its WireGuard port drops everything, both ways) while the client keeps sending
    server.check_output("iptables -I INPUT 1 -p udp --dport 51820 -j DROP && iptables -I OUTPUT 1 -p udp --sport 51820 -j DROP")
    try:
        cut = metrics("host-vpn-client1")
        for _round in range(6):
            lab.probe(client, timeout=1)
        time.sleep(2)
        stale = metrics("host-vpn-client1")
    finally:
        server.check_output("iptables -D INPUT -p udp --dport 51820 -j DROP; iptables -D OUTPUT -p udp --sport 51820 -j DROP")
    handshake = "tunnelgate_peer_latest_handshake_seconds"
    assert peer_value(stale, handshake) == peer_value(cut, handshake) > 0
    age_cut = cut["tunnelgate_metrics_timestamp_seconds"] - peer_value(cut, handshake)
    age_stale = stale["tunnelgate_metrics_timestamp_seconds"] - peer_value(stale, handshake)
    assert age_stale >= age_cut + 5, (age_cut, age_stale)
    assert peer_value(stale, "tunnelgate_peer_transmit_bytes_total") > peer_value(cut, "tunnelgate_peer_transmit_bytes_total")
    assert peer_value(stale, "tunnelgate_peer_receive_bytes_total") == peer_value(cut, "tunnelgate_peer_receive_bytes_total")
    # a flushed kill switch shows as not intact until the watcher restores it
    client.check_output("systemctl stop tunnelgate-killswitch-host-watch.service")
    try:
        client.check_output("iptables -F TUNNELGATE-OUT")
        assert metrics("host-vpn-client1")['tunnelgate_killswitch_intact{mode="host"}'] == 0
    finally:
        client.check_output("systemctl start tunnelgate-killswitch-host-watch.service")
    deadline = time.time() + 10
    while metrics("host-vpn-client1")['tunnelgate_killswitch_intact{mode="host"}'] != 1:
        assert time.time() < deadline, "the watcher did not restore the kill switch"
        time.sleep(1)
    assert lab.probe(client, timeout=3)["tcp/v4"] == "SRC 172.30.5.10"


# --------------------------------------------------------------------------- kill switch


def test_killswitch_holds_with_the_tunnel_down(host):
    sentinel = lab.Sentinel(host)
    client = node("host-vpn-client1")
    client.check_output("systemctl stop wg-quick@wg0 || wg-quick down wg0")
    try:
        assert client.run("ip link show wg0").rc != 0
        since = sentinel.now()
        plain = lab.probe(client, timeout=1)
        bound = lab.probe(client, bind_device="eth0", timeout=1)
        dns = client.run("getent ahostsv4 tunnel-down.lab")
        time.sleep(2)
        assert all(v.startswith("fail") for v in plain.values()), plain
        assert all(v.startswith("fail") for v in bound.values()), bound
        assert dns.rc != 0
        assert_nothing_from(sentinel, "host-vpn-client1", since)
    finally:
        client.check_output("systemctl start wg-quick@wg0")
    assert wait_handshake("host-vpn-client1")
    assert lab.probe(client, timeout=3)["tcp/v4"] == "SRC 172.30.5.10"


def test_killswitch_holds_across_a_reboot(host):
    sentinel = lab.Sentinel(host)
    name = "host-vpn-client2"
    node(name).check_output("mkdir -p /etc/lab && touch /etc/lab/boot-probe && rm -f /var/log/lab-boot-probe.log")
    since = sentinel.now()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    try:
        wait_booted(name)
        assert wait_handshake(name), "no handshake after the reboot"
        time.sleep(5)
        log = node(name).file("/var/log/lab-boot-probe.log").content_string.splitlines()
        assert len(log) > 20, "the boot probe loop did not run"
        assert_nothing_from(sentinel, name, since)
        assert node(name).check_output("systemctl is-active tunnelgate-killswitch-host.service") == "active"
        assert lab.probe(node(name), timeout=3)["tcp/v6"] == "SRC fd42:7467:5::10"
        resolv = node(name).file("/etc/resolv.conf").content_string
        assert "nameserver 10.66.5.1" in resolv, "DNS is not back on the tunnel after the reboot"
    finally:
        node(name).run("rm -f /etc/lab/boot-probe; systemctl stop lab-boot-probe.service")


# --------------------------------------------------------------------------- partial runs, new hosts


def test_limit_to_one_client_keeps_the_other_peer(host):
    before = server_state()
    peers = server_peers()
    assert len(peers) == 2
    rc, out = playbook("converge.yml", "--limit", "host-vpn-client1")
    assert rc == 0, out
    assert recap(out)["host-vpn-client1"]["changed"] == 0, out
    rc, out = playbook("converge.yml", "--limit", "host-vpn-server,host-vpn-client1")
    assert rc == 0, out
    rows = recap(out)
    assert rows["host-vpn-server"]["changed"] == 0 and rows["host-vpn-client1"]["changed"] == 0, out
    assert server_peers() == peers
    assert server_state() == before
    assert wait_handshake("host-vpn-client2")


def test_check_mode_on_a_fresh_host_changes_nothing(host):
    fresh = node("host-vpn-client3")
    with open(FRESH_SNAPSHOT, "w", encoding="utf-8") as handle:  # compared after host_vpn_state: absent
        json.dump(lab.snapshot(fresh), handle)
    state_before = node("host-vpn-server").file("/var/lib/tunnelgate/server.json").sha256sum
    resolv_before = fresh.file("/etc/resolv.conf").content_string
    rc, out = playbook("converge.yml", "--check", "--diff", "--limit", "host-vpn-server,host-vpn-client3",
                       extra_inventory=True)
    assert rc == 0, out
    assert recap(out)["host-vpn-server"]["changed"] == 0, out
    assert not fresh.file("/etc/wireguard/keys/wg0.key").exists
    assert fresh.run("ip link show wg0").rc != 0
    assert fresh.run("iptables -S TUNNELGATE-OUT").rc != 0
    assert fresh.file("/etc/resolv.conf").content_string == resolv_before
    assert node("host-vpn-server").file("/var/lib/tunnelgate/server.json").sha256sum == state_before
    assert len(server_peers()) == 2


def test_a_third_client_does_not_renumber_the_others(host):
    before = server_state()["peers"]
    rc, out = playbook("converge.yml", extra_inventory=True)
    assert rc == 0, out
    after = server_state()["peers"]
    for name in CLIENTS:
        assert after[name] == before[name]
    assert after["host-vpn-client3"]["addresses"] == ["10.66.5.4/32", "fd66:5::4/128"]
    assert len(server_peers()) == 3
    assert lab.probe(node("host-vpn-client3"), timeout=3)["tcp/v4"] == "SRC 172.30.5.10"
    for name in CLIENTS:
        assert wait_handshake(name)


FLOW_PPS = 50


def start_flow(name):
    """50 packets per second from the node to the lab internet (through its tunnel), until stop_flow."""
    node(name).check_output("rm -f /tmp/flow.log; nohup ping -n -i %s 198.51.100.10 >/tmp/flow.log 2>&1 &" % (1.0 / FLOW_PPS))


def stop_flow(name):
    """(transmitted, received) of the flow; ping prints its statistics on SIGINT."""
    host = node(name)
    host.run("pkill -INT -x ping")
    deadline = time.time() + 10
    while time.time() < deadline:
        match = re.search(r"(\d+) packets transmitted, (\d+) received", host.file("/tmp/flow.log").content_string)
        if match:
            return int(match.group(1)), int(match.group(2))
        time.sleep(0.5)
    raise AssertionError("no ping statistics on %s" % name)


def test_key_rotation_is_live_and_leaves_the_others_alone(host, capsys):
    """rotate_keys.yml switches the host and its server at the same instant: a 50 pps flow of the rotated host
    loses at most one second of packets (measured and printed), the other client's flow loses none, nothing
    leaks meanwhile, and the server keeps the host's addresses."""
    sentinel = lab.Sentinel(host)
    before = server_state()["peers"]
    since = sentinel.now()
    for name in CLIENTS:
        start_flow(name)
    try:
        time.sleep(2)
        rc, out = playbook(os.path.join(ROOT, "playbooks", "rotate_keys.yml"), "-e", "rotate_hosts=host-vpn-client1",
                           extra_inventory=True)
        time.sleep(2)
    finally:
        flows = {name: stop_flow(name) for name in CLIENTS}
    assert rc == 0, out
    lost = {name: sent - received for name, (sent, received) in flows.items()}
    with capsys.disabled():  # the figure goes into the log of the run
        print("\nkey rotation under a %d pps flow: %s" % (FLOW_PPS, ", ".join(
            "%s lost %d of %d packets (%.2f s)" % (name, lost[name], flows[name][0], lost[name] / FLOW_PPS)
            for name in CLIENTS)))
    assert flows["host-vpn-client1"][0] > 10 * FLOW_PPS, flows  # the flow ran across the whole rotation
    assert lost["host-vpn-client1"] <= FLOW_PPS, "the rotated host was without tunnel for more than 1 s: %s" % flows
    assert lost["host-vpn-client2"] == 0, flows
    assert_nothing_from(sentinel, "host-vpn-client1", since)
    after = server_state()["peers"]
    assert after["host-vpn-client1"]["public_key"] != before["host-vpn-client1"]["public_key"]
    assert after["host-vpn-client1"]["addresses"] == before["host-vpn-client1"]["addresses"]
    assert after["host-vpn-client2"] == before["host-vpn-client2"]
    assert after["host-vpn-client3"] == before["host-vpn-client3"]
    client = node("host-vpn-client1")
    assert client.check_output("wg show wg0 public-key") == after["host-vpn-client1"]["public_key"]
    assert after["host-vpn-client1"]["public_key"] in server_peers()
    assert before["host-vpn-client1"]["public_key"] not in server_peers()
    assert wait_handshake("host-vpn-client1")
    assert lab.probe(client, timeout=3)["tcp/v4"] == "SRC 172.30.5.10"
    rc, out = playbook(os.path.join(ROOT, "playbooks", "rotate_keys.yml"), "-e", "rotate_hosts=host-vpn-client1",
                       "--check", extra_inventory=True)
    assert rc == 0, out
    assert client.check_output("wg show wg0 public-key") == after["host-vpn-client1"]["public_key"]


def test_verify_playbook_passes_and_prints_the_table(host):
    rc, out = playbook(os.path.join(ROOT, "playbooks", "verify.yml"), "-e", "verify_egress_url=tcp://198.51.100.10:80",
                       extra_inventory=True)
    assert rc == 0, out
    for name in CLIENTS + ["host-vpn-client3"]:
        row = next(line for line in out.splitlines() if name in line and "PASS" in line)
        assert "172.30.5.10" in row and "iptables" in row, row


def test_verify_playbook_fails_a_host_whose_tunnel_is_down(host):
    client = node("host-vpn-client3")
    client.check_output("systemctl stop wg-quick@wg0")
    try:
        rc, out = playbook(os.path.join(ROOT, "playbooks", "verify.yml"), "-e",
                           "verify_egress_url=tcp://198.51.100.10:80", extra_inventory=True)
    finally:
        client.check_output("systemctl start wg-quick@wg0")
    assert rc != 0, out
    row = next(line for line in out.splitlines() if "host-vpn-client3 " in line and "FAIL" in line)
    assert "tunnel" in row and "handshake" in row, row
    rows = recap(out)
    assert rows["host-vpn-client3"]["failed"] == 1 and rows["host-vpn-client1"]["failed"] == 0, out
    assert wait_handshake("host-vpn-client3")


# --------------------------------------------------------------------------- lifecycle: leaving the VPN


def test_host_vpn_state_absent_gives_the_host_its_uplink_back(host):
    client = node("host-vpn-client3")
    before = server_state()["peers"]
    assert "host-vpn-client3" in before and len(server_peers()) == 3
    assert lab.probe(client, timeout=3)["tcp/v4"] == "SRC 172.30.5.10"
    saved_resolv = client.file("/var/lib/tunnelgate/resolv.conf.wg0.orig").content_string
    rc, out = playbook("converge.yml", "--limit", "host-vpn-server,host-vpn-client3", remove_third=True)
    assert rc == 0, out
    assert recap(out)["host-vpn-client3"]["changed"] > 0, out
    # the host's own egress again: the echo target sees the host's own addresses (IPv4 and IPv6)
    result = lab.probe(client, timeout=3)
    for kind in ("tcp/v4", "udp/v4"):
        assert result[kind] == "SRC 172.30.5.13", (kind, result)
    for kind in ("tcp/v6", "udp/v6"):
        assert result[kind] == "SRC fd42:7467:5::13", (kind, result)
    assert client.file("/etc/resolv.conf").content_string == saved_resolv
    # nothing of ours is left: the same snapshot as the fresh host (addresses, rules, routes, firewall,
    # files under /etc/wireguard, /etc/tunnelgate, /etc/systemd/system, /usr/local/sbin, units, resolver)
    assert client.run("ip link show wg0").rc != 0
    assert "TUNNELGATE" not in client.check_output("iptables-save; ip6tables-save").upper()
    assert "tunnelgate" not in client.run("nft list ruleset").stdout
    assert client.run("systemctl is-enabled wg-quick@wg0").stdout.strip() not in ("enabled",)
    with open(FRESH_SNAPSHOT, encoding="utf-8") as handle:
        fresh = json.load(handle)
    diff = lab.snapshot_diff(fresh, lab.snapshot(client))
    assert diff == "", diff
    # the server dropped the peer; the others keep their addresses and keys
    after = server_state()["peers"]
    assert "host-vpn-client3" not in after
    for name in CLIENTS:
        assert after[name] == before[name]
    assert server_peers() == {before[name]["public_key"] for name in CLIENTS}
    for name in CLIENTS:
        assert wait_handshake(name)


def test_host_vpn_state_absent_rerun_changes_nothing(host):
    rc, out = playbook("converge.yml", "--limit", "host-vpn-server,host-vpn-client3", remove_third=True)
    assert rc == 0, out
    rows = recap(out)
    assert rows["host-vpn-client3"]["changed"] == 0 and rows["host-vpn-server"]["changed"] == 0, out


# --------------------------------------------------------------------------- migrating a wg-quick host


HANDMADE = """[Interface]
PrivateKey = {private}
Address = 10.99.0.2/24
ListenPort = 51999

[Peer]
PublicKey = {peer}
PresharedKey = {psk}
AllowedIPs = 10.99.0.0/24
Endpoint = 172.30.5.10:51999
"""


def key_leaks(text, secrets):
    """Every secret found in ``text``: as written, and base64-encoded (slurp, module args)."""
    found = []
    for secret in secrets:
        if secret in text or base64.b64encode(secret.encode()).decode() in text:
            found.append(secret[:6] + "...")
    return found


def test_migrating_a_handmade_wg_quick_host_prints_no_key(host):
    """A wg-quick user's host (wg0.conf with PrivateKey and PresharedKey, tunnel up) joins with -vvv --diff."""
    client = node("host-vpn-client3")
    client.run("wg-quick down wg0")  # a leftover of an interrupted run
    private = client.check_output("wg genkey")
    psk = client.check_output("wg genpsk")
    peer = client.check_output("wg genkey | wg pubkey")
    client.check_output("umask 077 && printf '%%s' %s > /etc/wireguard/wg0.conf"
                        % shlex.quote(HANDMADE.format(private=private, psk=psk, peer=peer)))
    client.check_output("wg-quick up wg0")
    secrets = [private, psk]
    # positive control: the detector finds the keys in a log that does show them
    rc, control = run(["ansible", "-i", INVENTORY, "host-vpn-client3", "-vvv", "-m", "ansible.builtin.command",
                       "-a", "cat /etc/wireguard/wg0.conf"])
    assert rc == 0, control
    assert len(key_leaks(control, secrets)) == 2, "the detector misses keys: the leak test would prove nothing"
    rc, out = playbook("converge.yml", "-vvv", "--diff", "--limit", "host-vpn-server,host-vpn-client3",
                       extra_inventory=True)
    assert rc == 0, out
    new_private = client.check_output("cat /etc/wireguard/keys/wg0.key")
    server_private = node("host-vpn-server").check_output("cat /etc/wireguard/keys/wg0.key")
    leaks = key_leaks(out, secrets + [new_private, server_private])
    assert leaks == [], "key material in the -vvv --diff log (%d bytes of output): %s" % (len(out), leaks)
    # and the host is a VPN host now
    assert "PrivateKey" not in client.file("/etc/wireguard/wg0.conf").content_string
    assert wait_handshake("host-vpn-client3")
    assert lab.probe(client, timeout=3)["tcp/v4"] == "SRC 172.30.5.10"

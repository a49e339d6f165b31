"""The exit server role on both firewall backends (server-ipt: iptables, server-nft: nftables).

What a user cares about, in order (the last test takes the servers out):
- the templated firewall of earlier versions on server-ipt is gone (chains, unit, script, files), the new
  rule set is live in its place;
- each backend holds the server's rules, and only that backend;
- a client's traffic to the lab internet leaves through its server: the echo target sees the SERVER's
  address (IPv4 and IPv6), nothing from the client's own addresses;
- profiles that share a server but differ in dns each get what they ask for (the resolver runs though
  the FIRST profile of server-ipt does not use it);
- switching server_firewall_backend loads the new backend and removes the old, traffic still flows, and
  switching back works the same;
- the rules come back at boot (before the network), and the tunnel works again;
- check mode on a fresh host changes nothing there;
- server_state: absent leaves no rule, chain, table, unit or file of ours, and a rerun changes nothing.
"""

import os
import re
import subprocess
import sys
import time

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
SERVERS = {"server-ipt": "iptables", "server-nft": "nftables"}
CLIENT_OF = {"server-ipt": "server-client1", "server-nft": "server-client2"}
SERVER_ADDRESSES = {"server-ipt": ["172.30.8.10", "fd42:7467:8::10"], "server-nft": ["172.30.8.20", "fd42:7467:8::20"]}
LEGACY_FILES = ["/usr/local/sbin/tunnelgate-server-firewall", "/etc/tunnelgate/server-firewall.rules.v4",
                "/etc/tunnelgate/server-firewall.rules.v6", "/etc/systemd/system/tunnelgate-server-firewall.service"]

testinfra_hosts = ["server-internet"]


def node(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def playbook(path, *args):
    argv = ["ansible-playbook", "-i", INVENTORY, path] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    found = {}
    for match in re.finditer(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M):
        found[match.group(1)] = {"ok": int(match.group(2)), "changed": int(match.group(3)), "failed": int(match.group(5))}
    return found


def wait_handshake(name, timeout=60, after=None):
    """A handshake within the last 3 minutes (or after the time ``after``)."""
    host = node(name)
    end = time.time() + timeout
    while time.time() < end:
        out = host.run("wg show wg0 latest-handshakes").stdout.split()
        if out and int(out[-1]) > max(0, (after or 0), time.time() - 180):
            return True
        time.sleep(1)
    return False


def wait_booted(name, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if node(name).run("systemctl is-system-running").stdout.strip() in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError("%s did not finish booting" % name)


def all_iptables(host):
    """Every table of both families, as the tools print them (without their timestamped comments)."""
    return host.check_output("{ iptables-save; ip6tables-save; } | grep -v '^#'")


def our_units(host):
    listed = host.run("systemctl list-units --all --no-legend --plain 'tunnelgate*' 'wg-quick@*'").stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


# --------------------------------------------------------------------------- migration and backends


def test_old_templated_firewall_is_gone_and_the_rule_set_took_its_place():
    host = node("server-ipt")
    for path in LEGACY_FILES:
        assert not host.file(path).exists, path
    assert "tunnelgate-server-firewall.service" not in our_units(host)
    rules = all_iptables(host)
    for old in ("TG-SERVER-INPUT", "TG-SERVER-FORWARD", "TG-SERVER-NAT"):
        assert old not in rules, old
    for new in ("-A INPUT -j TG-SERVER-IN", "-A FORWARD -j TG-SERVER-FWD", "-A POSTROUTING -j TG-SERVER-SNAT",
                "-A TG-SERVER-SNAT -s 10.66.8.0/24 -o eth0 -j MASQUERADE",
                "-A TG-SERVER-SNAT -s fd66:8::/64 -o eth0 -j MASQUERADE",
                "-A TG-SERVER-MSS -o wg0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"):
        assert new in rules, new
    assert host.check_output("systemctl is-enabled tunnelgate-firewall-server.service") == "enabled"


def test_each_backend_holds_the_rules_and_only_it():
    ipt, nft = node("server-ipt"), node("server-nft")
    assert "tunnelgate_server" not in ipt.check_output("nft list tables")
    assert "TG-" not in all_iptables(nft)
    table = nft.check_output("nft list table inet tunnelgate_server")
    for line in ("udp dport 51821 accept", 'ip saddr 10.66.18.0/24 masquerade', "ip6 saddr fd66:18::/64 masquerade",
                 "tcp option maxseg size set rt mtu", "type nat hook postrouting priority srcnat"):
        assert line in table, line
    assert nft.check_output("systemctl is-enabled tunnelgate-firewall-server.service") == "enabled"


# --------------------------------------------------------------------------- traffic


def test_egress_leaves_through_the_server_on_both_backends(host):
    sentinel = lab.Sentinel(host)
    for server, client in CLIENT_OF.items():
        assert wait_handshake(client), "%s: no handshake with %s" % (client, server)
        since = sentinel.now()
        result = lab.probe(node(client))
        until = sentinel.now()
        v4, v6 = SERVER_ADDRESSES[server]
        assert result["tcp/v4"] == "SRC %s" % v4, (server, result)
        assert result["udp/v4"] == "SRC %s" % v4, (server, result)
        assert result["tcp/v6"] == "SRC %s" % v6, (server, result)
        assert sentinel.seen_from([v4, v6], since, until)["requests"] >= 3  # positive control
        seen = sentinel.seen_from(lab.global_addresses(node(client)), since, until)
        assert seen == {"packets": 0, "requests": 0, "dns": 0}, "%s reached the internet itself: %s" % (client, seen)


def test_dns_per_profile_the_resolver_runs_for_the_profile_that_asks_for_it(host):
    # server-ipt's FIRST profile (ipt-own-dns) uses the lab resolver; exit-ipt (client1's) wants the server's.
    assert node("server-ipt").check_output("systemctl is-active tunnelgate-dns-wg0.service") == "active"
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    answer = node("server-client1").check_output("dig +short +time=3 +tries=2 @10.66.8.1 profile-dns.lab A")
    assert answer.strip() == lab.SENTINEL_V4
    until = sentinel.now()
    assert sentinel.seen_from(["172.30.8.10"], since, until)["dns"] >= 1, "the server's resolver asked upstream"
    assert sentinel.seen_from(lab.global_addresses(node("server-client1")), since, until)["dns"] == 0


def test_backend_switch_loads_the_new_backend_then_removes_the_old(host):
    limit = ("--limit", "server-ipt,server-client1")
    rc, out = playbook("converge.yml", *limit, "-e", "server_firewall_backend=nftables")
    assert rc == 0, out
    assert recap(out)["server-ipt"]["changed"] > 0
    server = node("server-ipt")
    assert "TG-" not in all_iptables(server)
    assert "ip saddr 10.66.8.0/24 masquerade" in server.check_output("nft list table inet tunnelgate_server")
    assert lab.probe(node("server-client1"))["tcp/v4"] == "SRC 172.30.8.10"
    rc, out = playbook("converge.yml", *limit)  # back to the inventory's iptables
    assert rc == 0, out
    assert "tunnelgate_server" not in server.check_output("nft list tables")
    assert "-A TG-SERVER-SNAT -s 10.66.8.0/24 -o eth0 -j MASQUERADE" in all_iptables(server)
    assert lab.probe(node("server-client1"))["tcp/v4"] == "SRC 172.30.8.10"
    rc, out = playbook("converge.yml", *limit)
    assert rc == 0 and recap(out)["server-ipt"]["changed"] == 0, out


def test_rules_come_back_at_boot_before_the_network(host):
    name = "server-nft"
    rebooted = time.time()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    wait_booted(name)
    server = node(name)
    assert server.check_output("systemctl is-active tunnelgate-firewall-server.service") == "active"
    order = server.check_output("systemctl show -p Before tunnelgate-firewall-server.service")
    assert "network-pre.target" in order
    assert "masquerade" in server.check_output("nft list table inet tunnelgate_server")
    assert wait_handshake(CLIENT_OF[name], timeout=90, after=rebooted), "no new handshake after the reboot"
    assert lab.probe(node(CLIENT_OF[name]))["tcp/v4"] == "SRC 172.30.8.20"


# --------------------------------------------------------------------------- check mode, absent


def test_check_mode_on_a_fresh_host_changes_nothing():
    fresh = node("server-fresh")
    before = (all_iptables(fresh), fresh.check_output("nft list ruleset"), fresh.check_output("ls -A /etc/systemd/system"))
    rc, out = playbook("fresh.yml", "--check", "--diff")
    assert rc == 0, out
    assert recap(out)["server-fresh"]["changed"] > 0  # it reports what it would do
    after = (all_iptables(fresh), fresh.check_output("nft list ruleset"), fresh.check_output("ls -A /etc/systemd/system"))
    assert before == after
    for path in ("/etc/wireguard/keys/wg0.key", "/var/lib/tunnelgate", "/etc/tunnelgate", "/etc/wireguard/wg0.conf",
                 "/etc/sysctl.d/90-tunnelgate-server.conf"):
        assert not fresh.file(path).exists, path
    assert fresh.run("ip link show wg0").rc != 0


def test_absent_leaves_nothing_of_ours_and_a_rerun_changes_nothing():
    # server-nft rebooted above: its boot units ran and are active, the harder case for removal
    rc, out = playbook("absent.yml")
    assert rc == 0, out
    assert all(recap(out)[s]["changed"] > 0 for s in SERVERS), out
    rc, out = playbook("absent.yml")
    assert rc == 0, out
    assert all(recap(out)[s]["changed"] == 0 for s in SERVERS), out
    for name in SERVERS:
        server = node(name)
        assert "TG-" not in all_iptables(server) and "TUNNELGATE" not in all_iptables(server), name
        assert "tunnelgate" not in server.check_output("nft list tables"), name
        assert server.run("ip link show wg0").rc != 0, name
        assert our_units(server) == [], (name, our_units(server))
        assert server.check_output("ls -A /etc/systemd/system | grep -E 'tunnelgate|wg-quick' || true") == "", name
        for path in ("/etc/tunnelgate", "/var/lib/tunnelgate", "/etc/sysctl.d/90-tunnelgate-server.conf",
                     "/etc/wireguard/wg0.conf"):
            assert not server.file(path).exists, (name, path)
        assert server.run("pgrep -x dnsmasq").rc != 0, name
        # documented: the private key stays (server_remove_key: false), so a server that comes back keeps its identity
        assert server.file("/etc/wireguard/keys/wg0.key").exists, name

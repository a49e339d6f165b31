# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the provider scenario: a third-party provider reached by a DNS NAME, with the kill switch closed.

The provider (provider-vpn) is a plain wg-quick server made by hand, not the collection's server role. The
tests run in file order and each leaves the lab as it found it (client1's tunnel up):
- egress and DNS go via the provider only (the echo target and the sink see the provider's address),
- the endpoint is pinned: wg-quick's file and the kill switch hold an ADDRESS, so no DNS is needed to start,
- a tunnel restart and a reboot with the kill switch closed come back by themselves, 0 leaks (DNS included),
- the endpoint moving to another address is picked up by the next run (resolved through the tunnel),
- a rerun with the tunnel down (no DNS at all) brings it back from the pinned address,
- check mode on a fresh host changes nothing; its first real run tells the user which key to register and
  where, without failing anyone; once the key is registered the host egresses via the provider, idempotently.
Figures (come-back times, leak counts) are appended to $TG_CACHE/molecule-logs/provider-figures.jsonl.
"""

from __future__ import annotations

import json
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
CLIENT2 = os.path.join(SCENARIO, "inventory", "client2.yml")
CLIENT2_REGISTERED = os.path.join(SCENARIO, "inventory", "client2-registered.yml")
PROVIDER = {"172.30.12.10", "fd42:7467:12::10"}
NAME = "vpn.provider.lab"
RECORDS = "/etc/lab/dns-records"
FIGURES = os.path.join(os.environ.get("TG_CACHE", "/tmp"), "molecule-logs", "provider-figures.jsonl")
ADDRESS_ENDPOINT = re.compile(r"^Endpoint = (\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):51820$", re.M)

testinfra_hosts = ["provider-internet"]


def node(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def playbook(*args, inventories=()):
    argv = ["ansible-playbook", "-i", INVENTORY]
    for extra in inventories:
        argv += ["-i", extra]
    argv += ["converge.yml"] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def site(*args, inventories=()):
    """Only tunnelgate.wireguard.site (converge.yml also plays the provider's web page)."""
    argv = ["ansible-playbook", "-i", INVENTORY]
    for extra in inventories:
        argv += ["-i", extra]
    argv += ["tunnelgate.wireguard.site"] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    found = {}
    for match in re.finditer(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M):
        found[match.group(1)] = {"ok": int(match.group(2)), "changed": int(match.group(3)),
                                 "unreachable": int(match.group(4)), "failed": int(match.group(5))}
    return found


def figure(**values):
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    with open(FIGURES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(values, ts=time.time())) + "\n")
    print("FIGURE", json.dumps(values))


def handshake_after(name, since, timeout=90, traffic=False):
    """Seconds from ``since`` until a handshake newer than ``since`` (None if none within ``timeout``).

    ``traffic``: send a ping through the tunnel now and then. A live session is kept across an
    endpoint change, and WireGuard only rekeys (a new handshake, to the NEW endpoint) when it sends
    data after REKEY_AFTER_TIME (120 s); without traffic that may never happen.
    """
    end = time.time() + timeout
    last_ping = 0.0
    while time.time() < end:
        dump = node(name).run("wg show wg0 latest-handshakes")
        fields = dump.stdout.split()
        if dump.rc == 0 and len(fields) >= 2 and int(fields[-1]) >= int(since):
            return time.time() - since
        if traffic and time.time() - last_ping > 5:
            node(name).run("ping -c1 -W1 198.51.100.10")
            last_ping = time.time()
        time.sleep(0.5)
    return None


def wait_booted(name, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        result = node(name).run("systemctl is-system-running")
        if result.stdout.strip() in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError("%s did not finish booting" % name)


def leaks(sentinel, name, since, until=None):
    return sentinel.seen_from(lab.global_addresses(node(name)), since, until)


def set_records(line):
    node("provider-internet").check_output("printf '%%s\\n' %s > %s" % (json.dumps(line), RECORDS))


def resolution_lines(out):
    """What the role's name-resolution tasks said in a site.yml run (for an assertion message)."""
    lines = out.splitlines()
    keep = [i for i, line in enumerate(lines) if "endpoint" in line.lower() and "TASK [" in line]
    return "\n".join("\n".join(lines[i:i + 6]) for i in keep)


def pinned_endpoint(name):
    out = node(name).check_output("wg show wg0 endpoints")
    return out.split()[-1]


def killswitch_rules(name):
    return node(name).check_output("iptables -S TUNNELGATE-OUT; ip6tables -S TUNNELGATE-OUT")


def register(public_key, addresses, label):
    """The provider's web page: the key goes live and into the provider's wg0.conf."""
    provider = node("provider-vpn")
    provider.check_output("wg set wg0 peer %s allowed-ips %s" % (public_key, ",".join(addresses)))
    provider.check_output("printf '\\n# %s\\n[Peer]\\nPublicKey = %s\\nAllowedIPs = %s\\n' >> /etc/wireguard/wg0.conf"
                          % (label, public_key, ", ".join(addresses)))


def assert_via_provider(name, provider=frozenset(PROVIDER)):
    """TCP and UDP over IPv4 and IPv6 reach the echo target, which sees one of the provider's addresses."""
    result = lab.probe(node(name), timeout=3)
    for kind in ("tcp/v4", "udp/v4", "tcp/v6", "udp/v6"):
        family = 6 if kind.endswith("v6") else 4
        seen = result[kind][len("SRC "):] if result[kind].startswith("SRC ") else None
        assert seen in provider and (":" in seen) == (family == 6), (name, kind, result)


# --------------------------------------------------------------------------- egress and DNS


def test_egress_goes_via_the_provider_only(host):
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    assert_via_provider("provider-client1")
    time.sleep(1)
    report = sentinel.report(since)
    assert report["requests"] and set(report["requests"]) <= PROVIDER, report
    assert leaks(sentinel, "provider-client1", since) == {"packets": 0, "requests": 0, "dns": 0}


def test_dns_goes_via_the_provider_only(host):
    sentinel = lab.Sentinel(host)
    client = node("provider-client1")
    nameservers = [line.split()[1] for line in client.file("/etc/resolv.conf").content_string.splitlines()
                   if line.startswith("nameserver")]
    assert nameservers == ["10.66.12.1", "fd66:12::1"]
    since = sentinel.now()
    query = "dnsleak-%d.lab" % int(since)
    answer = client.run("getent ahostsv4 %s" % query)
    assert answer.rc == 0 and "198.51.100.10" in answer.stdout, answer.stderr
    # the provider's own name resolves too, through the tunnel (what the role does on every run)
    answer = client.run("getent ahosts %s" % NAME)
    assert answer.rc == 0 and "172.30.12.10" in answer.stdout, answer.stdout
    time.sleep(1)
    report = sentinel.report(since)
    assert set(report["dns_by_name"].get(query + ".", {})) <= PROVIDER and report["dns_by_name"][query + "."], report
    assert set(report["dns_by_name"].get(NAME + ".", {})) <= PROVIDER, report
    assert leaks(sentinel, "provider-client1", since) == {"packets": 0, "requests": 0, "dns": 0}


def test_the_endpoint_is_pinned_to_an_address(host):
    client = node("provider-client1")
    config = client.file("/etc/wireguard/wg0.conf").content_string
    assert NAME not in re.findall(r"^Endpoint = .*$", config, re.M)[0], config
    found = ADDRESS_ENDPOINT.search(config)
    assert found and found.group(1).strip("[]") in PROVIDER, config
    assert pinned_endpoint("provider-client1") == found.group(0).split(" = ")[1]
    rules = killswitch_rules("provider-client1")
    assert re.search(r"-d %s/(32|128) -p udp -m udp --dport 51820 -j RETURN" % re.escape(found.group(1).strip("[]")),
                     rules), rules


# --------------------------------------------------------------------------- restart and reboot, switch closed


def test_tunnel_restart_comes_back_by_itself_without_leaks(host):
    sentinel = lab.Sentinel(host)
    client = node("provider-client1")
    client.check_output("mkdir -p /etc/lab && touch /etc/lab/boot-probe && rm -f /var/log/lab-boot-probe.log")
    client.check_output("systemctl restart lab-boot-probe.service")  # probes TCP/UDP/DNS for 60 s
    since = sentinel.now()
    try:
        client.check_output("systemctl restart wg-quick@wg0")
        back = handshake_after("provider-client1", since)
        assert back is not None, "no handshake after the tunnel restart"
        time.sleep(3)
        assert_via_provider("provider-client1")
        until = sentinel.now()
        seen = leaks(sentinel, "provider-client1", since, until)
        report = sentinel.report(since, until)
        figure(case="tunnel restart", come_back_s=round(back, 1), leaks=seen)
        assert seen == {"packets": 0, "requests": 0, "dns": 0}, seen
        # positive control: in the same window the sentinel saw the client's probes via the provider
        assert set(report["requests"]) <= PROVIDER and report["requests"], report
    finally:
        client.run("rm -f /etc/lab/boot-probe; systemctl stop lab-boot-probe.service")


def test_reboot_comes_back_by_itself_without_leaks(host):
    sentinel = lab.Sentinel(host)
    name = "provider-client1"
    node(name).check_output("mkdir -p /etc/lab && touch /etc/lab/boot-probe && rm -f /var/log/lab-boot-probe.log")
    since = sentinel.now()
    subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    try:
        back = handshake_after(name, since)
        assert back is not None, "no handshake after the reboot"
        wait_booted(name)
        time.sleep(5)
        log = node(name).file("/var/log/lab-boot-probe.log").content_string.splitlines()
        assert len(log) > 20, "the boot probe loop did not run"
        assert node(name).check_output("systemctl is-active tunnelgate-killswitch-host.service") == "active"
        assert_via_provider(name)
        resolv = node(name).file("/etc/resolv.conf").content_string
        assert "nameserver 10.66.12.1" in resolv, "DNS is not back on the tunnel after the reboot"
        until = sentinel.now()
        seen = leaks(sentinel, name, since, until)
        report = sentinel.report(since, until)
        figure(case="reboot", come_back_s=round(back, 1), boot_probes=len(log), leaks=seen)
        assert seen == {"packets": 0, "requests": 0, "dns": 0}, seen
        assert set(report["requests"]) <= PROVIDER and report["requests"], report
    finally:
        node(name).run("rm -f /etc/lab/boot-probe; systemctl stop lab-boot-probe.service")


# --------------------------------------------------------------------------- re-resolution on every run


def test_a_moved_endpoint_is_picked_up_by_the_next_run(host):
    sentinel = lab.Sentinel(host)
    provider = node("provider-vpn")
    provider.check_output("ip addr add 172.30.12.11/24 dev eth0 && ip addr add fd42:7467:12::11/64 dev eth0 nodad")
    try:
        set_records("%s 172.30.12.11 fd42:7467:12::11" % NAME)
        since = sentinel.now()
        rc, out = site("--limit", "provider-client1")
        assert rc == 0, out
        moved = pinned_endpoint("provider-client1")
        assert moved in ("172.30.12.11:51820", "[fd42:7467:12::11]:51820"), (moved, resolution_lines(out))
        rules = killswitch_rules("provider-client1")
        assert moved.rsplit(":", 1)[0].strip("[]") + "/" in rules, rules
        # a new handshake with the moved endpoint: within one rekey interval (120 s) of traffic
        assert handshake_after("provider-client1", since, timeout=200, traffic=True) is not None
        # the provider's NAT may now leave from its new address too
        assert_via_provider("provider-client1", PROVIDER | {"172.30.12.11", "fd42:7467:12::11"})
        report = sentinel.report(since)
        # the name was resolved through the tunnel: the sink saw the query from the provider only
        assert report["dns_by_name"].get(NAME + ".") and set(report["dns_by_name"][NAME + "."]) <= PROVIDER, report
        assert leaks(sentinel, "provider-client1", since) == {"packets": 0, "requests": 0, "dns": 0}
    finally:
        set_records("%s 172.30.12.10 fd42:7467:12::10" % NAME)
        rc, out = site("--limit", "provider-client1")
        provider.run("ip addr del 172.30.12.11/24 dev eth0; ip addr del fd42:7467:12::11/64 dev eth0")
    assert rc == 0, out
    assert pinned_endpoint("provider-client1").strip("[]").rsplit(":", 1)[0].strip("[]") in PROVIDER
    assert handshake_after("provider-client1", time.time() - 120) is not None


def test_a_rerun_with_the_tunnel_down_brings_it_back(host):
    sentinel = lab.Sentinel(host)
    client = node("provider-client1")
    client.check_output("systemctl stop wg-quick@wg0")
    assert client.run("getent ahosts %s" % NAME).rc != 0, "DNS still works with the tunnel down"
    since = sentinel.now()
    rc, out = site("--limit", "provider-client1")
    assert rc == 0, out
    assert "pinned" in out, out
    assert handshake_after("provider-client1", since) is not None
    assert_via_provider("provider-client1")
    assert leaks(sentinel, "provider-client1", since) == {"packets": 0, "requests": 0, "dns": 0}


# --------------------------------------------------------------------------- a new host, registration flow


def test_check_mode_on_a_fresh_host_changes_nothing(host):
    fresh = node("provider-client2")
    resolv_before = fresh.file("/etc/resolv.conf").content_string
    rc, out = site("--check", "--diff", "--limit", "provider-client2", inventories=[CLIENT2])
    assert rc == 0, out
    assert recap(out)["provider-client2"]["failed"] == 0, out
    assert not fresh.file("/etc/wireguard/keys/wg0.key").exists
    assert fresh.run("ip link show wg0").rc != 0
    assert fresh.run("iptables -S TUNNELGATE-OUT").rc != 0
    assert fresh.file("/etc/resolv.conf").content_string == resolv_before


def test_the_first_run_says_which_key_to_register_and_fails_nobody(host):
    rc, out = site(inventories=[CLIENT2])
    assert rc == 0, out
    rows = recap(out)
    assert rows["provider-client1"]["failed"] == 0 and rows["provider-client1"]["changed"] == 0, out
    assert rows["provider-client2"]["failed"] == 0, out
    fresh = node("provider-client2")
    public_key = fresh.check_output("wg pubkey < /etc/wireguard/keys/wg0.key")
    message = next((line for line in out.splitlines() if public_key in line), None)
    assert message is not None, out
    assert "lab-provider" in out and "vpn.provider.lab:51820" in out and "tunnelgate_address" in out, out
    # not configured yet: the provider cannot know the key, so the host is not cut off
    assert fresh.run("ip link show wg0").rc != 0
    assert fresh.run("iptables -S TUNNELGATE-OUT").rc != 0


def test_once_registered_the_new_host_egresses_via_the_provider(host):
    rc, out = site("--limit", "provider-client2", inventories=[CLIENT2])
    assert rc == 0, out
    key = re.search(r"register the public key (\S+)", out)
    assert key, out  # still pending, and still says which key
    register(key.group(1), ["10.66.12.3/32", "fd66:12::3/128"], "provider-client2")
    rc, out = site("--limit", "provider-client2", inventories=[CLIENT2, CLIENT2_REGISTERED])
    assert rc == 0, out
    assert_via_provider("provider-client2")
    rc, out = site(inventories=[CLIENT2, CLIENT2_REGISTERED])
    assert rc == 0, out
    rows = recap(out)
    assert rows["provider-client2"]["changed"] == 0 and rows["provider-client1"]["changed"] == 0, out
    sentinel = lab.Sentinel(host)
    since = sentinel.now()
    assert_via_provider("provider-client1")
    assert leaks(sentinel, "provider-client2", since) == {"packets": 0, "requests": 0, "dns": 0}

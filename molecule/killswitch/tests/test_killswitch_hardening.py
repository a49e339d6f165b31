"""Closed means closed (issue 8, item 4) and DHCP renewals with the switch closed (item 5).

Runs after test_killswitch.py (file order), on the same lab. Every leak test breaks the tunnel at
the same time (the interface is deleted), so only the kill switch stands between a client and the
lab internet; each has a positive control that must leak, or the sentinel proves nothing.

* another tool flushes or reloads the firewall (``iptables -F``, a whole-table ``iptables-restore``
  as netfilter-persistent/ufw/firewalld reloads do, ``nft flush ruleset``, ``systemctl restart
  nftables``): the routing lock (policy rules at priorities 32764/32765, which no firewall tool
  touches) keeps the host's own traffic AND the traffic it forwards off the uplink: 0 leaks, no
  window; the watcher restores the firewall (window measured) for what routing cannot hold
  (sockets bound to the uplink device, DNS enforcement);
* host mode covers what the host FORWARDS (a VM namespace that no forward-mode switch names);
* forward mode's own routing lock (32762/32763) holds its sources (the pod) by itself: host-mode lock
  off, firewall flushed, tunnel deleted -> the host and the VM leak, the pod does not;
* switching ``backend`` never leaves a moment without a switch (a 1 kHz UDP blaster runs through
  the switch in both directions, with the routing lock off so only the firewall protects);
* the boot unit cannot load its rules (corrupt or missing file): the host still comes up closed;
* a DHCP lease renewal goes out with the switch closed (``allow_dhcp: auto`` detects the
  systemd-networkd lease), and is rejected with ``allow_dhcp: false`` (control).

Figures go to $KS_HARDENING_FIGURES (default /tmp/killswitch-hardening-figures.json) and stdout.
"""

import json
import os
import shlex
import subprocess
import sys
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402

testinfra_hosts = ["killswitch-ipt"]  # the flow drives every container itself; run it once

SCENARIO_DIR = os.path.join(os.path.dirname(__file__), "..")
CLIENTS = {
    "killswitch-ipt": {"index": 2, "backend": "iptables"},
    "killswitch-nft": {"index": 3, "backend": "nftables"},
}
SERVER_UPLINK = {"172.30.4.10", "fd42:7467:4::10"}
INTERNET_OWN = {"198.51.100.10", "2001:db8:100::10", "172.30.4.254", "fd42:7467:4::254"}
TIMEOUT = 0.5
FIGURES = {"states": {}}
BLASTER = r"""
import os, socket, sys, time
targets = [(socket.AF_INET, "198.51.100.10"), (socket.AF_INET6, "2001:db8:100::10")]
socks = [(socket.socket(fam, socket.SOCK_DGRAM), addr) for fam, addr in targets]
if len(sys.argv) > 2:
    for sock, _addr in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[2].encode())
sent = tries = 0
end = time.time() + float(sys.argv[1])
while time.time() < end and not os.path.exists("/run/tg-blast.stop"):
    for sock, addr in socks:
        tries += 1
        try:
            sock.sendto(b"blast", (addr, 7))
            sent += 1
        except OSError:
            pass
    time.sleep(0.001)
with open("/run/tg-blast.count", "w") as out:
    out.write("%d %d\n" % (tries, sent))
"""


def node(name):
    return testinfra.get_host("docker://" + name)


@pytest.fixture(scope="module")
def internet():
    return lab.Sentinel(node("killswitch-internet"))


@pytest.fixture(scope="module", autouse=True)
def figures():
    """Figures are written whatever happens (a failing test's figures are the interesting ones)."""
    for name in CLIENTS:  # test_killswitch.py rebooted the clients: namespaces are gone
        node(name).check_output("/usr/local/sbin/tg-pod-up && /usr/local/sbin/tg-vm-up")
    yield FIGURES
    write_figures()


def uplinks(name):
    index = CLIENTS[name]["index"]
    return {"172.30.4.1%d" % (index - 1), "fd42:7467:4::1%d" % (index - 1)}


def ansible_playbook(*args):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    argv = ["ansible-playbook", "-i", inventory] + list(args)
    res = subprocess.run(argv, cwd=SCENARIO_DIR, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return res


def converge(limit=None, host_only=False, **extra):
    """converge.yml (optionally one client, optionally only the host-mode task), extra vars as JSON."""
    args = ["converge.yml"]
    if limit:
        args += ["--limit", limit]
    if host_only:
        args += ["--tags", "ks_host"]
    if extra:
        args += ["-e", json.dumps(extra)]
    return ansible_playbook(*args)


def netns_probe(host, netns):
    cmd = "ip netns exec %s python3 -c %s '' %s" % (netns, shlex.quote(lab._PROBE), TIMEOUT)  # pylint: disable=protected-access
    return json.loads(host.check_output(cmd))


KINDS = ("host", "host-bound-eth0", "pod", "vm")


def fire(state, names=tuple(CLIENTS), kinds=KINDS):
    """One round of every probe from each client, the socket bound to eth0, its pod and its VM."""
    results, sent = {}, 0
    for name in names:
        host = node(name)
        for kind, run in (("host", lambda h=host: lab.probe(h, None, TIMEOUT)),
                          ("host-bound-eth0", lambda h=host: lab.probe(h, "eth0", TIMEOUT)),
                          ("pod", lambda h=host: netns_probe(h, "pod")),
                          ("vm", lambda h=host: netns_probe(h, "vm"))):
            if kind not in kinds:
                continue
            out = run()
            sent += len(out)
            results.setdefault(name, {})[kind] = out
    FIGURES["states"].setdefault(state, {})["probes_sent"] = sent
    return results


def leaks_since(internet, since, state):
    time.sleep(2)  # the packet log is written by tcpdump, give it a moment
    report = internet.report(since)
    leaked = {}
    for kind in ("packets", "requests", "dns"):
        for src, count in report[kind].items():
            if src not in SERVER_UPLINK and src not in INTERNET_OWN:
                leaked.setdefault(src, {})[kind] = count
    entry = FIGURES["states"].setdefault(state, {})
    entry["leaked_packets"] = sum(v.get("packets", 0) for v in leaked.values())
    entry["leaks_by_source"] = leaked
    return leaked


def tunnel_down(name):
    node(name).run("ip link del wg0")


def tunnel_up(name, tries=30):
    host = node(name)
    for _attempt in range(3):  # wireguard-go may not answer yet right after it started (after a boot)
        if host.run("/usr/local/sbin/tg-tunnel-up").rc == 0:
            break
        time.sleep(1)
    else:
        host.check_output("/usr/local/sbin/tg-tunnel-up")
    for _attempt in range(tries):
        if host.run("ping -c 1 -W 1 10.66.4.1").rc == 0:
            return
        time.sleep(1)
    raise AssertionError("%s: no handshake with the server" % name)


def write_figures():
    path = os.environ.get("KS_HARDENING_FIGURES", "/tmp/killswitch-hardening-figures.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(FIGURES, handle, indent=2, sort_keys=True)
    print(json.dumps(FIGURES, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- DHCP (item 5)


def _dhcp_requests(host):
    log = host.run("cat /run/lab-dhcpsrv.log 2>/dev/null").stdout
    return sum(1 for line in log.splitlines() if "DHCPREQUEST(eth0)" in line)


def _renew(host):
    """Ask systemd-networkd to renew now; returns how many new DHCPREQUESTs dnsmasq logged."""
    before = _dhcp_requests(host)
    host.check_output("networkctl renew tgdhcp0")
    time.sleep(4)
    return _dhcp_requests(host) - before


def test_dhcp_renewal_with_the_switch_closed():
    name = "killswitch-ipt"
    host = node(name)
    host.check_output("/usr/local/sbin/tg-dhcp-up")
    for _attempt in range(30):
        if "10.202.2." in host.check_output("ip -4 -o addr show dev tgdhcp0"):
            break
        time.sleep(1)
    else:
        raise AssertionError("tgdhcp0 got no lease: %s" % host.run("networkctl status tgdhcp0").stdout)
    # control: allow_dhcp false (the old default) -> the unicast renewal is rejected by the switch
    converge(name, host_only=True, ks_allow_dhcp=False)
    blocked = _renew(host)
    # the default (auto) detects the networkd lease on tgdhcp0 and lets the client's requests out
    res = converge(name, host_only=True)
    allowed = _renew(host)
    FIGURES["dhcp"] = {"renewal_requests_seen_allow_dhcp_false": blocked, "renewal_requests_seen_allow_dhcp_auto": allowed}
    assert blocked == 0, "the control must fail: with allow_dhcp=false the renewal must not reach the server"
    assert allowed > 0, "allow_dhcp=auto: the renewal did not reach the DHCP server\n" + res.stdout[-3000:]
    log = host.check_output("tail -n 20 /run/lab-dhcpsrv.log")
    assert "DHCPACK(eth0)" in log, log


# --------------------------------------------------------------------------- flushes and reloads (4a, 4d)

FLUSHES = {
    # state: {backend: command}, applied while the tunnel interface is deleted
    "iptables_F_and_nft_flush_ruleset": {
        "iptables": "iptables -w -F && ip6tables -w -F",
        "nftables": "nft flush ruleset",
    },
    "whole_table_restore_like_ufw_firewalld": {
        "iptables": "printf '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n' "
                    "| iptables-restore -w && "
                    "printf '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n' "
                    "| ip6tables-restore -w",
        "nftables": "printf 'flush ruleset\\ntable inet filter {\\n chain output { type filter hook output priority 0; }\\n}\\n' "
                    "| nft -f -",
    },
    "systemctl_restart_nftables": {
        "iptables": "systemctl restart nftables",
        "nftables": "systemctl restart nftables",
    },
}


CHECK = {  # the host-mode switch is back (what the watcher restores)
    "iptables": "iptables -w -C OUTPUT -j TUNNELGATE-OUT 2>/dev/null && "
                "iptables -w -C TUNNELGATE-OUT -j REJECT --reject-with icmp-admin-prohibited 2>/dev/null",
    "nftables": "nft list chain inet tunnelgate host_output >/dev/null 2>&1",
}
WATCHERS = "tunnelgate-killswitch-host-watch.service tunnelgate-killswitch-forward-watch.service"


def _assert_nothing_left(name, backend):
    """The breaker really removed the firewall switch (or the test would prove nothing)."""
    host = node(name)
    if backend == "iptables":
        assert host.run("iptables -w -C OUTPUT -j TUNNELGATE-OUT").rc != 0, name
    else:
        assert host.run("nft list table inet tunnelgate").rc != 0, name


def _without(results, kinds):
    return {name: {k: v for k, v in out.items() if k not in kinds} for name, out in results.items()}


@pytest.mark.parametrize("state", list(FLUSHES))
def test_firewall_flushed_while_tunnel_down_leaks_nothing(internet, state):
    """1. watchers stopped, firewall flushed, tunnel deleted: the routing lock alone keeps the host's
    sockets, its pod and its VM off the uplink (0 leaks, no window). Sockets BOUND to eth0 bypass
    routing: recorded, not asserted (that is the watcher's job).
    2. watchers running, flushed again: the window until the rules are back is measured in the
    container (10 ms polling) while a 1 kHz blaster bound to eth0 runs; after it, every probe
    (bound ones included) leaks nothing, and a rerun of the module changes nothing."""
    entry = FIGURES["states"].setdefault(state, {})
    for name, cfg in CLIENTS.items():
        host = node(name)
        tunnel_down(name)
        host.check_output("systemctl stop %s" % WATCHERS)
        host.check_output(FLUSHES[state][cfg["backend"]])
        _assert_nothing_left(name, cfg["backend"])
    since = internet.now()
    results = fire(state, kinds=("host", "pod", "vm"))
    leaked = leaks_since(internet, since, state)
    lock = {name: node(name).check_output("ip rule show priority 32765") for name in CLIENTS}
    if state == list(FLUSHES)[0]:
        since = internet.now()
        fire(state + "_bound_eth0_no_watcher", kinds=("host-bound-eth0",))
        entry["bound_eth0_leaks_without_watcher"] = sum(
            v.get("packets", 0) for v in leaks_since(internet, since, state + "_bound_eth0_no_watcher").values())
    windows = {}
    for name, cfg in CLIENTS.items():
        host = node(name)
        host.check_output("systemctl start %s" % WATCHERS)
        for _attempt in range(50):
            if host.run(CHECK[cfg["backend"]]).rc == 0:
                break
            time.sleep(0.1)
        host.run("rm -f /run/tg-blast.stop /run/tg-blast.count")
        host.check_output("systemd-run --unit=tg-blast --collect python3 -c %s 30 eth0" % shlex.quote(BLASTER))
    time.sleep(1)
    since = internet.now()
    for name, cfg in CLIENTS.items():
        measure = ("%s >/dev/null 2>&1; t0=$(date +%%s%%N); until %s; do sleep 0.01; done; t1=$(date +%%s%%N); "
                   "echo $(( (t1 - t0) / 1000000 ))" % (FLUSHES[state][cfg["backend"]], CHECK[cfg["backend"]]))
        windows[name] = int(node(name).check_output("timeout 20 sh -c %s" % shlex.quote(measure)))
    time.sleep(1)
    for name in CLIENTS:
        node(name).check_output("touch /run/tg-blast.stop")
    blasted = leaks_since(internet, since, state + "_watcher_window")
    entry["restore_window_ms"] = windows
    entry["bound_eth0_blaster_packets_leaked_in_window"] = sum(v.get("packets", 0) for v in blasted.values())
    time.sleep(1)
    since = internet.now()
    fire(state + "_after_restore")
    restored = leaks_since(internet, since, state + "_after_restore")
    assert leaked == {}, (state, leaked, lock)
    for name in CLIENTS:
        for kind, out in _without(results, ()).get(name, {}).items():
            assert not any(v.startswith("SRC") for v in out.values()), (state, name, kind, out)
    assert all(ms < 5000 for ms in windows.values()), ("restored within seconds", windows)
    assert restored == {}, (state, restored)


def test_rerun_after_the_watcher_restored_changes_nothing():
    """The watcher reloaded exactly the rules the module wants (the last flush above)."""
    rerun = converge()
    recap = [line for line in rerun.stdout.splitlines() if line.startswith("killswitch-")]
    assert recap and all("changed=0" in line for line in recap), recap


def test_positive_control_without_routing_lock(internet):
    """Host mode's routing_lock: false -> with the tunnel down the VM leaks (host-mode firewall sees only
    OUTPUT); after a flush the host leaks too, while the pod, a forward-mode source, is still held by the
    forward-mode routing lock ALONE (32762/32763: no firewall, no host-mode lock). With the forward lock
    off as well, the pod leaks. Proves both tests above can fail, and that the forward lock holds by itself."""
    converge(host_only=True, ks_routing_lock=False)
    try:
        for name in CLIENTS:
            tunnel_down(name)
        since = internet.now()
        fire("control_no_lock_tunnel_down")
        leaked_down = leaks_since(internet, since, "control_no_lock_tunnel_down")
        for name in CLIENTS:
            node(name).check_output("systemctl stop %s && nft flush ruleset" % WATCHERS)
        since = internet.now()
        fire("control_no_host_lock_flushed_forward_lock_alone")
        leaked_flushed = leaks_since(internet, since, "control_no_host_lock_flushed_forward_lock_alone")
        forward_locks = {name: node(name).check_output("ip rule show priority 32763; ip -6 rule show priority 32763")
                         for name in CLIENTS}
        converge(ks_routing_lock=False, ks_forward_routing_lock=False)
        no_forward_lock = {name: node(name).check_output("ip rule show priority 32763; ip -6 rule show priority 32763")
                           for name in CLIENTS}
        for name in CLIENTS:
            node(name).check_output("systemctl stop %s && nft flush ruleset" % WATCHERS)
        since = internet.now()
        fire("control_no_lock_flushed")
        leaked_no_lock = leaks_since(internet, since, "control_no_lock_flushed")
    finally:
        converge()  # both modes, both locks: the flush removed the forward-mode switch too
    for name, cfg in CLIENTS.items():
        vm_v4 = "10.201.%d.2" % cfg["index"]
        pod = {"10.200.%d.2" % cfg["index"], "fd42:7467:4:20%d::2" % cfg["index"]}
        uplink_v4 = {a for a in uplinks(name) if "." in a}
        assert "prohibit" in forward_locks[name] and "prohibit" not in no_forward_lock[name], (forward_locks, no_forward_lock)
        assert leaked_down.get(vm_v4, {}).get("packets", 0) > 0, (name, leaked_down)
        assert not set(leaked_down) & uplinks(name), ("the firewall alone holds the host's own traffic", leaked_down)
        for src in {vm_v4} | uplink_v4:
            assert leaked_flushed.get(src, {}).get("packets", 0) > 0, (name, src, leaked_flushed)
        assert not set(leaked_flushed) & pod, ("the forward-mode lock alone holds the pod", name, leaked_flushed)
        for src in {vm_v4, "10.200.%d.2" % cfg["index"]} | uplink_v4:
            assert leaked_no_lock.get(src, {}).get("packets", 0) > 0, (name, src, leaked_no_lock)


def test_vm_forwarded_traffic_goes_through_the_tunnel_when_up(internet):
    """With the tunnel up, the VM's traffic is routed into the tunnel (the exit drops a source it does
    not know), never to the uplink."""
    for name in CLIENTS:
        tunnel_up(name)
    since = internet.now()
    fire("vm_tunnel_up")
    assert leaks_since(internet, since, "vm_tunnel_up") == {}


# --------------------------------------------------------------------------- backend switch (4c)


def test_backend_switch_never_opens(internet):
    """iptables -> nftables -> iptables under a 1 kHz UDP blaster, tunnel deleted, routing lock OFF:
    only the firewall stands between the client and the sentinel during both switches."""
    name = "killswitch-ipt"
    host = node(name)
    converge(name, host_only=True, ks_routing_lock=False)
    tunnel_down(name)
    host.run("rm -f /run/tg-blast.stop /run/tg-blast.count")
    host.check_output("systemd-run --unit=tg-blast --collect python3 -c %s 180" % shlex.quote(BLASTER))
    time.sleep(1)
    since = internet.now()
    started = time.time()
    converge(name, host_only=True, ks_backend="nftables", ks_routing_lock=False)
    on_nft = host.run("nft list chain inet tunnelgate host_output").rc == 0
    ipt_gone = host.run("iptables -w -C OUTPUT -j TUNNELGATE-OUT").rc != 0
    converge(name, host_only=True, ks_routing_lock=False)
    duration = time.time() - started
    host.check_output("touch /run/tg-blast.stop")
    time.sleep(1)
    tries, sent = (int(x) for x in host.check_output("cat /run/tg-blast.count").split())
    leaked = leaks_since(internet, since, "backend_switch")
    converge(name, host_only=True)
    tunnel_up(name)
    FIGURES["backend_switch"] = {"blaster_attempts_total": tries, "blaster_sendto_accepted": sent,
                                 "switch_seconds_both_ways": round(duration, 1)}
    assert on_nft and ipt_gone, "the switch to nftables did not happen"
    assert tries > 1000, "the blaster did not run"
    assert leaked == {}, leaked
    assert host.run("nft list chain inet tunnelgate host_output").rc != 0, "the nftables switch was not removed after switching back"


# --------------------------------------------------------------------------- boot unit cannot load (4b)


def _wait_booted(name):
    host = node(name)
    for _attempt in range(90):
        if host.run("systemctl is-active lab-uplink.service").stdout.strip() == "active":
            return host
        time.sleep(1)
    raise AssertionError("%s did not boot" % name)


def test_boot_with_broken_rules_comes_up_closed(internet):
    """Corrupt (iptables) or delete (nftables) the host-mode rules file, reboot: the boot unit fails
    visibly, yet the boot-time probe and the sentinel see nothing from the host."""
    breakers = {
        "iptables": "printf '*filter\\n-A NO-SUCH-CHAIN -j ACCEPT\\nCOMMIT\\n' > /etc/tunnelgate/killswitch/host.v4.rules",
        "nftables": "rm -f /etc/tunnelgate/killswitch/host.nft",
    }
    converge()  # the switch as converge.yml wants it, whatever an earlier test left behind
    for name, cfg in CLIENTS.items():
        node(name).check_output(breakers[cfg["backend"]])
    since = internet.now()
    for name in CLIENTS:
        subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    for name in CLIENTS:
        _wait_booted(name)
    time.sleep(15)  # the boot probe races for a while; no tunnel exists at all
    probes = 0
    units = {}
    for name in CLIENTS:
        host = node(name)
        units[name] = host.run("systemctl is-active tunnelgate-killswitch-host.service").stdout.strip()
        log = host.check_output("cat /var/log/lab-boot-probe.log 2>/dev/null || true")
        fresh = [line for line in log.splitlines() if float(line.split()[0]) >= since]
        probes += len(fresh)
        assert fresh, "%s: the boot probe did not run" % name
        assert not [line for line in fresh if line.endswith(" ok") and " tcp " in line], (name, fresh[:5])
    leaked = leaks_since(internet, since, "reboot_rules_file_broken")
    FIGURES["states"]["reboot_rules_file_broken"]["boot_probes_sent"] = probes
    FIGURES["states"]["reboot_rules_file_broken"]["host_unit_state"] = units
    assert all(state != "active" for state in units.values()), ("a broken rules file must fail visibly", units)
    assert leaked == {}, leaked
    # repair: the rerun rewrites the files and loads the rules
    converge()
    for name in CLIENTS:
        host = node(name)
        host.check_output("systemctl reset-failed tunnelgate-killswitch-host.service || true")
        host.check_output("/usr/local/sbin/tg-pod-up && /usr/local/sbin/tg-vm-up")
        tunnel_up(name)

"""The kill switch against the lab internet: nothing from the clients reaches it except through the tunnel.

For each tunnel state, every client (host mode) and the pod namespace behind it (forward mode) fire
TCP, UDP, ICMP, DNS (UDP and TCP), IPv4 and IPv6 probes at the sentinel, once with normal sockets
and once with sockets bound to the uplink (SO_BINDTODEVICE eth0). The sentinel's packet log then
must hold 0 packets from any source except the exit server (tunnelled traffic arrives NATed from
there). A positive control with the switch removed must leak, or the sentinel proves nothing.

Figures (probes sent, leaks per state) are written to $KS_FIGURES (default
/tmp/killswitch-figures.json) and printed.
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
    "killswitch-ipt": {"index": 2, "ipv6": True, "backend": "iptables"},
    "killswitch-nft": {"index": 3, "ipv6": False, "backend": "nftables"},
}
SERVER = "killswitch-server"
SERVER_UPLINK = {"172.30.4.10", "fd42:7467:4::10"}
INTERNET_OWN = {"198.51.100.10", "2001:db8:100::10", "172.30.4.254", "fd42:7467:4::254"}
ROUNDS = 2
TIMEOUT = 0.5
FIGURES = {"rounds_per_state": ROUNDS, "states": {}}


def node(name):
    return testinfra.get_host("docker://" + name)


@pytest.fixture(scope="module")
def internet():
    return lab.Sentinel(node("killswitch-internet"))


def tunnel_up(name, tries=30):
    host = node(name)
    host.check_output("/usr/local/sbin/tg-tunnel-up")
    for _attempt in range(tries):
        if host.run("ping -c 1 -W 1 10.66.4.1").rc == 0:
            return
        time.sleep(1)
    raise AssertionError("%s: no handshake with the server" % name)


def pod_probe(host):
    cmd = "ip netns exec pod python3 -c %s '' %s" % (shlex.quote(lab._PROBE), TIMEOUT)  # pylint: disable=protected-access
    return json.loads(host.check_output(cmd))


def fire(state):
    """Run the probe rounds from every client and its pod; returns results per client/kind."""
    results = {}
    sent = 0
    for name in CLIENTS:
        host = node(name)
        for _round in range(ROUNDS):
            for kind, run in (("host", lambda h=host: lab.probe(h, None, TIMEOUT)),
                              ("host-bound-eth0", lambda h=host: lab.probe(h, "eth0", TIMEOUT)),
                              ("pod", lambda h=host: pod_probe(h))):
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
    through_tunnel = sum(n for src, n in report["packets"].items() if src in SERVER_UPLINK)
    entry = FIGURES["states"].setdefault(state, {})
    entry["leaked_packets"] = sum(v.get("packets", 0) for v in leaked.values())
    entry["leaks_by_source"] = leaked
    entry["packets_via_tunnel"] = through_tunnel
    return leaked


def ansible_playbook(*args):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    argv = ["ansible-playbook", "-i", inventory] + list(args)
    return subprocess.run(argv, cwd=SCENARIO_DIR, capture_output=True, text=True, check=False)


def ansible_module(pattern, args):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    argv = ["ansible", pattern, "-i", inventory, "-m", "tunnelgate.wireguard.killswitch", "-a", args]
    return subprocess.run(argv, cwd=SCENARIO_DIR, capture_output=True, text=True, check=False)


def write_figures():
    path = os.environ.get("KS_FIGURES", "/tmp/killswitch-figures.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(FIGURES, handle, indent=2, sort_keys=True)
    print(json.dumps(FIGURES, indent=2, sort_keys=True))


def ok(result):
    return result.startswith("SRC") or result == "ok"


# --------------------------------------------------------------------------- the states


def test_up_traffic_goes_through_the_tunnel_only(internet):
    for name in CLIENTS:
        tunnel_up(name)
    since = internet.now()
    results = fire("up")
    assert leaks_since(internet, since, "up") == {}
    for name, cfg in CLIENTS.items():
        for kind in ("host", "pod"):
            out = results[name][kind]
            assert out["tcp/v4"] == "SRC 172.30.4.10", (name, kind, out)
            assert out["udp/v4"] == "SRC 172.30.4.10", (name, kind, out)
            assert out["dns/v4"] == "ok" and out["dnstcp/v4"] == "ok" and out["icmp/v4"] == "ok", (name, kind, out)
            if cfg["ipv6"]:
                assert out["tcp/v6"] == "SRC fd42:7467:4::10", (name, kind, out)
                assert out["icmp/v6"] == "ok", (name, kind, out)
            else:
                assert not any(ok(out[k]) for k in out if k.endswith("/v6")), (name, kind, out)
        bound = results[name]["host-bound-eth0"]
        assert not any(ok(v) for v in bound.values()), (name, bound)


def test_inbound_connection_is_answered_with_the_switch_on():
    """Host mode never cuts off an inbound session (SSH, Ansible): replies of inbound connections leave."""
    client = node("killswitch-ipt")  # no allow_lan there: only the reply rule lets the answer out
    client.run("systemd-run --unit=tg-listen --collect timeout 20 nc -l -p 2222")
    time.sleep(1)
    assert node(SERVER).run("echo hi | nc -N -w 3 172.30.4.11 2222").rc == 0
    # ...while the client itself cannot open a connection to a listening LAN host outside the tunnel
    server = node(SERVER)
    server.run("systemd-run --unit=tg-listen2 --collect timeout 10 nc -l -p 2223")
    time.sleep(1)
    assert client.run("nc -z -w 2 172.30.4.10 2223").rc != 0
    assert node("killswitch-nft").run("nc -z -w 2 172.30.4.10 2223").rc == 0, "allow_lan lets the nft client reach the LAN"


@pytest.mark.parametrize("state,breaker", [
    ("down", "ip link set wg0 down"),
    ("interface_deleted", "ip link del wg0"),
    ("wireguard_go_killed", "kill -9 $(pgrep -x wireguard-go)"),
])
def test_broken_tunnel_leaks_nothing(internet, state, breaker):
    for name in CLIENTS:
        tunnel_up(name)
        node(name).check_output(breaker)
    since = internet.now()
    results = fire(state)
    assert leaks_since(internet, since, state) == {}
    for name in CLIENTS:
        for kind, out in results[name].items():
            assert not any(v.startswith("SRC") for v in out.values()), (state, name, kind, out)


def test_server_unreachable_leaks_nothing(internet):
    for name in CLIENTS:
        tunnel_up(name)
    node(SERVER).check_output("ip link del wg0")
    try:
        since = internet.now()
        fire("server_unreachable")
        assert leaks_since(internet, since, "server_unreachable") == {}
    finally:
        node(SERVER).check_output("/usr/local/sbin/tg-tunnel-up")


def test_positive_control_without_the_switch_leaks(internet):
    """Remove the switch (module, state=absent), delete the tunnel: the sentinel MUST see the clients."""
    for mode in ("host", "forward"):
        for name, cfg in CLIENTS.items():
            res = ansible_module(name, "mode=%s state=absent backend=%s" % (mode, cfg["backend"]))
            assert res.returncode == 0, res.stdout + res.stderr
    for name in CLIENTS:
        node(name).run("ip link del wg0")
    since = internet.now()
    fire("control_switch_removed")
    leaked = leaks_since(internet, since, "control_switch_removed")
    for name, cfg in CLIENTS.items():
        uplink_v4 = "172.30.4.1%d" % (cfg["index"] - 1)
        uplink_v6 = "fd42:7467:4::1%d" % (cfg["index"] - 1)
        pod_v4 = "10.200.%d.2" % cfg["index"]
        for src in (uplink_v4, uplink_v6, pod_v4):
            assert leaked.get(src, {}).get("packets", 0) > 0, (name, src, leaked)
    # put the switch back exactly as converge does
    res = ansible_playbook("converge.yml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]


def _monotonic(host, unit, prop):
    return int(host.check_output("systemctl show -p %s --value %s" % (prop, unit)) or 0)


def test_reboot_switch_closed_before_the_network(internet):
    """docker restart = a real boot: the switch is loaded before network-pre, the boot probe races it."""
    since = internet.now()
    for name in CLIENTS:
        subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    for name in CLIENTS:
        host = node(name)
        for _attempt in range(60):
            if host.run("systemctl is-active lab-uplink.service").stdout.strip() == "active":
                break
            time.sleep(1)
    time.sleep(15)  # let the boot probe race for a while (no tunnel exists at all yet)
    probes = 0
    for name in CLIENTS:
        host = node(name)
        for mode in ("host", "forward"):
            unit = "tunnelgate-killswitch-%s.service" % mode
            assert host.check_output("systemctl is-active %s" % unit) == "active", (name, unit)
            closed = _monotonic(host, unit, "ActiveEnterTimestampMonotonic")
            uplink = _monotonic(host, "lab-uplink.service", "ExecMainStartTimestampMonotonic")
            assert 0 < closed < uplink, (name, unit, closed, uplink)
        log = host.check_output("cat /var/log/lab-boot-probe.log 2>/dev/null || true")
        fresh = [line for line in log.splitlines() if float(line.split()[0]) >= since]
        probes += len(fresh)
        assert fresh, "%s: the boot probe did not run" % name
        assert not [line for line in fresh if line.endswith(" ok") and " tcp " in line], (name, fresh[:5])
    entry = FIGURES["states"].setdefault("reboot_before_tunnel", {})
    entry["boot_probes_sent"] = probes
    assert leaks_since(internet, since, "reboot_before_tunnel") == {}


def test_after_reboot_rules_equal_desired_and_tunnel_works(internet):
    res = ansible_playbook("converge.yml", "--check")
    assert res.returncode == 0, res.stdout[-3000:]
    recap = [line for line in res.stdout.splitlines() if line.startswith("killswitch-")]
    assert recap and all("changed=0" in line for line in recap), recap
    for name in CLIENTS:
        node(name).check_output("/usr/local/sbin/tg-pod-up")
        tunnel_up(name)
    since = internet.now()
    results = fire("up_after_reboot")
    assert leaks_since(internet, since, "up_after_reboot") == {}
    for name in CLIENTS:
        assert results[name]["host"]["tcp/v4"] == "SRC 172.30.4.10"
        assert results[name]["pod"]["tcp/v4"] == "SRC 172.30.4.10"
    write_figures()

"""The interface module on real hosts: handshake, traffic through the tunnel, files, boot units."""

import base64
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402

testinfra_hosts = ["interface-server", "interface-client"]

SERVER_UPLINK = ("172.30.3.10", "fd42:7467:3::10")
SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def client(host):
    return host.get_host("docker://interface-client")


@pytest.fixture(scope="module")
def server(host):
    return host.get_host("docker://interface-server")


@pytest.fixture(scope="module")
def internet(host):
    return host.get_host("docker://interface-internet")


def wait_for_ping(node, address, tries=30):
    for dummy_try in range(tries):
        if node.run("ping -c 1 -W 1 %s" % address).rc == 0:
            return True
        time.sleep(1)
    return False


@pytest.fixture(scope="module")
def hardened(host):
    return host.get_host("docker://interface-hardened")


def test_hardened_node_really_has_ipv6_disabled_for_new_interfaces_but_not_on_eth0(hardened):
    assert hardened.check_output("cat /proc/sys/net/ipv6/conf/default/disable_ipv6") == "1"
    assert hardened.check_output("cat /proc/sys/net/ipv6/conf/wg0/disable_ipv6") == "1"
    assert any(":" in a for a in lab.global_addresses(hardened))  # the uplink could leak IPv6


def test_hardened_tunnel_runs_ipv4_only_and_blocks_ipv6(hardened):
    assert hardened.check_output("systemctl is-active wg-quick@wg0.service") == "active"
    assert "inet6" not in hardened.check_output("ip -6 addr show dev wg0")
    assert "unreachable default" in hardened.check_output("ip -6 route show table 51820")
    assert "not from all fwmark 0xca6c lookup 51820" in hardened.check_output("ip -6 rule show")
    assert "default dev wg0" in hardened.check_output("ip -4 route show table 51820")


def test_hardened_traffic_ipv4_through_the_server_ipv6_nowhere(hardened, internet):
    assert wait_for_ping(hardened, "10.66.3.1")
    sentinel = lab.Sentinel(internet)
    since = sentinel.now()
    result = lab.probe(hardened, timeout=2.0)
    assert result["tcp/v4"] == "SRC %s" % SERVER_UPLINK[0], result
    assert result["udp/v4"] == "SRC %s" % SERVER_UPLINK[0], result
    assert not result["tcp/v6"].startswith("SRC"), result
    assert not result["udp/v6"].startswith("SRC"), result
    time.sleep(1)
    seen = sentinel.seen_from(lab.global_addresses(hardened), since=since)
    assert seen == {"packets": 0, "requests": 0, "dns": 0}


def test_hardened_leak_check_positive_control(hardened, internet):
    """The same sentinel sees the hardened node when it sends from its uplink on purpose (bound to eth0)."""
    sentinel = lab.Sentinel(internet)
    since = sentinel.now()
    result = lab.probe(hardened, bind_device="eth0", timeout=2.0)
    own = lab.global_addresses(hardened)
    assert result["tcp/v4"] in ["SRC %s" % a for a in own], result
    time.sleep(1)
    assert sentinel.seen_from(own, since=since)["requests"] > 0


def test_live_public_key_is_the_key_files(host):
    live = host.check_output("wg show wg0 public-key")
    from_file = host.check_output("wg pubkey < /etc/wireguard/keys/wg0.key")
    assert live == from_file


def test_config_file_is_private_keyless_and_accepted_by_wg_quick(host):
    conf = host.file("/etc/wireguard/wg0.conf")
    assert conf.user == "root" and conf.mode == 0o600
    text = conf.content_string
    assert "PrivateKey" not in text and "PresharedKey" not in text
    assert host.check_output("cat /etc/wireguard/keys/wg0.key") not in text
    assert "PostUp = wg set %i private-key /etc/wireguard/keys/wg0.key" in text
    stripped = host.check_output("wg-quick strip wg0")
    assert "[Peer]" in stripped


def test_unit_enabled_and_active(host):
    assert host.service("wg-quick@wg0").is_enabled
    assert host.check_output("systemctl is-active wg-quick@wg0.service") == "active"


def test_handshake_and_ping_both_families(client, server):
    assert wait_for_ping(client, "10.66.3.1")
    assert wait_for_ping(client, "fd66:3::1")
    assert wait_for_ping(server, "10.66.3.2")
    for node in (client, server):
        handshakes = node.check_output("wg show wg0 latest-handshakes").split()
        assert int(handshakes[1]) > 0


def test_client_traffic_leaves_through_the_server(client, internet):
    assert wait_for_ping(client, "10.66.3.1")
    sentinel = lab.Sentinel(internet)
    since = sentinel.now()
    result = lab.probe(client, timeout=2.0)
    assert result["tcp/v4"] == "SRC %s" % SERVER_UPLINK[0], result
    assert result["tcp/v6"] == "SRC %s" % SERVER_UPLINK[1], result
    assert result["udp/v4"] == "SRC %s" % SERVER_UPLINK[0], result
    seen = sentinel.seen_from(lab.global_addresses(client), since=since)
    assert seen == {"packets": 0, "requests": 0, "dns": 0}


def test_full_tunnel_routing_without_writing_read_only_sysctls(client):
    rules = client.check_output("ip -4 rule show")
    assert "not from all fwmark 0xca6c lookup 51820" in rules
    assert "lookup main suppress_prefixlength 0" in rules
    assert "default dev wg0" in client.check_output("ip -4 route show table 51820")
    assert "default dev wg0" in client.check_output("ip -6 route show table 51820")
    assert client.check_output("cat /proc/sys/net/ipv4/conf/all/src_valid_mark") == "1"
    # /proc/sys is read-only here: wg-quick's own unconditional sysctl write would have failed
    assert client.run("sysctl -q -w net.ipv4.conf.all.src_valid_mark=1").rc != 0


def test_reload_keeps_the_private_key(client):
    before = client.check_output("wg show wg0 public-key")
    client.check_output("systemctl reload wg-quick@wg0.service")
    assert client.check_output("wg show wg0 public-key") == before
    assert wait_for_ping(client, "10.66.3.1")


def test_info_module_facts_have_no_secrets(host):
    out = host.ansible("tunnelgate.wireguard.info", "name=wg0", check=False)
    wg0 = out["interfaces"]["wg0"]
    assert wg0["public_key"] == host.check_output("wg show wg0 public-key")
    raw = json.dumps(out)
    assert host.check_output("cat /etc/wireguard/keys/wg0.key") not in raw


def run_playbook(playbook):
    """Run a playbook of this scenario at -vvv --diff against the Molecule instances; return the log."""
    binary = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    argv = [binary, "-vvv", "--diff", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(SCENARIO_DIR, playbook)]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if ephemeral and os.path.isdir(ephemeral):
        with open(os.path.join(ephemeral, playbook.replace(".yml", ".log")), "w", encoding="utf-8") as handle:
            handle.write(proc.stdout)
    assert proc.returncode == 0, "%s failed:\n%s" % (playbook, proc.stdout[-4000:])
    return proc.stdout


def leaked_forms(key_b64):
    """A key as text (also unpadded, JSON-escaped), hex, and its file base64-encoded again (slurp)."""
    raw = base64.b64decode(key_b64)
    return {
        "text": key_b64,
        "unpadded": key_b64.rstrip("="),
        "json-escaped": key_b64.replace("/", "\\/"),
        "hex": raw.hex(),
        "file-as-base64": base64.b64encode((key_b64 + "\n").encode()).decode(),
    }


def find_leaks(log, key_b64):
    return sorted(name for name, form in leaked_forms(key_b64).items() if form in log)


@pytest.fixture(scope="session")
def migration_log():
    log = run_playbook("migration.yml")
    # the capture is a -vvv --diff log of the interface module taking over the hand-made file
    for marker in ("plugins/modules/interface.py", "wg9, set up by hand", "PrivateKey = (redacted)",
                   "PresharedKey = (redacted)", '"invocation"'):
        assert marker in log, "the migration log lacks %r" % marker
    return log


@pytest.mark.parametrize("path", ["hand.key", "old.key", "hand.psk", "peer.key", "/etc/wireguard/keys/wg9.key"])
def test_migration_vvv_diff_log_holds_no_key(migration_log, path):
    """Issue #8.2: check mode, state=absent (check and real) and the real run, all at -vvv --diff, over a
    hand-made wg-quick file with its keys in it: none of those keys anywhere in the log."""
    server = testinfra.get_host("docker://interface-server")
    key = server.check_output("cat %s", path if path.startswith("/") else "/root/migration/" + path).strip()
    assert len(key) == 44
    assert find_leaks(migration_log, key) == [], "key material of %s is in the -vvv --diff log" % path


def test_migration_leak_search_finds_a_key_that_leaks(migration_log):
    """Positive control: the throwaway key the last play prints on purpose IS found by the same search."""
    server = testinfra.get_host("docker://interface-server")
    key = server.check_output("cat /root/migration/throwaway.key").strip()
    assert "text" in find_leaks(migration_log, key)

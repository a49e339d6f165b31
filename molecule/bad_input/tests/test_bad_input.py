# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role-level bad-input corpus: malformed and hostile inventory input, run for real.

Each case is one ansible-playbook run (site.yml, or one role alone) against fresh lab hosts with one
piece of bad input. Every case must:
- fail (rc != 0) with no host reporting a change,
- print a message naming the variable to fix AND the host it belongs to,
- leave every host exactly as it was: addresses, policy rules, routes, iptables/nft, /etc/wireguard,
  /etc/tunnelgate, /etc/systemd/system, /usr/local/sbin, /var/lib/tunnelgate, units, resolv.conf.
Positive controls: the same base inventory passes (check mode, nothing changes), and the snapshot does
see a change when there is one.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "resources", "tests"))
import lab  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ["bad-input-server", "bad-input-client1", "bad-input-client2"]
SERVER, CLIENT1, CLIENT2 = HOSTS
SITE, ROLE_HOST_VPN, ROLE_SERVER = "converge.yml", "role_host_vpn.yml", "role_server.yml"
# A valid public key (nobody holds its private key): used where a case needs a well-formed key.
SOME_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PROFILE = {"server": SERVER, "network": ["10.66.13.0/24", "fd66:13::/64"], "port": 51820, "killswitch": True}
PROVIDER = {"endpoint": "172.30.13.10:51820", "public_key": SOME_KEY, "network": ["10.66.14.0/24"]}

testinfra_hosts = ["bad-input-internet"]


def node(name):
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))


def profiles(**fields):
    """tunnelgate_profiles with lab-exit changed by ``fields`` (None deletes a field)."""
    profile = copy.deepcopy(PROFILE)
    for name, value in fields.items():
        if value is None:
            profile.pop(name, None)
        else:
            profile[name] = value
    return {"lab-exit": profile}


def case(name, variable, host, playbook=SITE, extra=None, hostvars=None, limit=None):
    return pytest.param({"playbook": playbook, "extra": extra or {}, "hostvars": hostvars or {}, "limit": limit,
                         "variable": variable, "host": host}, id=name)


CASES = [
    # profiles: names, CIDRs, ports, keys, endpoints, unknown options, hostile characters
    case("unknown-profile", "tunnelgate_profile", CLIENT1, hostvars={CLIENT1: {"tunnelgate_profile": "nope"}}),
    case("cidr-invalid", "tunnelgate_profiles.lab-exit.network", SERVER,
         extra={"tunnelgate_profiles": profiles(network=["10.66.13.0/33"])}),
    case("cidr-host-bits", "tunnelgate_profiles.lab-exit.network", SERVER,
         extra={"tunnelgate_profiles": profiles(network=["10.66.13.7/24"])}),
    case("port-out-of-range", "tunnelgate_profiles.lab-exit.port", SERVER,
         extra={"tunnelgate_profiles": profiles(port=70000)}),
    case("port-non-ascii-digits", "tunnelgate_profiles.lab-exit.port", SERVER,
         extra={"tunnelgate_profiles": profiles(port="\u0665\u0661\u0668\u0662\u0660")}),
    case("mtu-too-small", "tunnelgate_profiles.lab-exit.mtu", SERVER,
         extra={"tunnelgate_profiles": profiles(mtu=100)}),
    case("unknown-profile-option", "tunnelgate_profiles.lab-exit.killswich", SERVER,
         extra={"tunnelgate_profiles": profiles(killswich=True)}),
    case("profile-name-hostile", "tunnelgate_profiles", SERVER,
         extra={"tunnelgate_profiles": {"lab-exit": PROFILE, "exit;reboot": PROFILE}}),
    case("dns-hostile", "tunnelgate_profiles.lab-exit.dns", SERVER,
         extra={"tunnelgate_profiles": profiles(dns=["10.66.13.1;reboot"])}),
    case("server-not-a-vpn-server", "tunnelgate_profiles.lab-exit.server", SERVER,
         extra={"tunnelgate_profiles": profiles(server=CLIENT2)}),
    case("provider-key-invalid", "tunnelgate_profiles.prov.public_key", SERVER,
         extra={"tunnelgate_profiles": {"lab-exit": PROFILE, "prov": dict(PROVIDER, public_key="AAAA")}}),
    case("provider-endpoint-newline", "tunnelgate_profiles.prov.endpoint", SERVER,
         extra={"tunnelgate_profiles": {"lab-exit": PROFILE,
                                        "prov": dict(PROVIDER, endpoint="172.30.13.10:51820\nPostUp = reboot")}}),
    case("provider-endpoint-substitution", "tunnelgate_profiles.prov.endpoint", SERVER,
         extra={"tunnelgate_profiles": {"lab-exit": PROFILE, "prov": dict(PROVIDER, endpoint="$(reboot):51820")}}),
    case("server-endpoint-hostile", "tunnelgate_endpoint", SERVER, extra={"tunnelgate_endpoint": "172.30.13.10;reboot"}),
    case("server-endpoint-newline", "tunnelgate_endpoint", SERVER,
         extra={"tunnelgate_endpoint": "172.30.13.10\nPostUp = reboot"}),
    # overlapping networks
    case("lan-overlaps-tunnel", "tunnelgate_profiles.lab-exit.allow_lan", SERVER,
         extra={"tunnelgate_profiles": profiles(allow_lan=["10.66.0.0/16"])}),
    case("tunnel-overlaps-host-network", "tunnelgate_profiles.lab-exit.network", CLIENT1,
         extra={"tunnelgate_profiles": profiles(network=["172.30.13.0/24"])}),
    # addresses and keys of hosts
    case("duplicate-address", "tunnelgate_address", CLIENT2,
         hostvars={CLIENT1: {"tunnelgate_address": "10.66.13.20"}, CLIENT2: {"tunnelgate_address": "10.66.13.20"}}),
    case("address-of-the-server", "tunnelgate_address", CLIENT1,
         hostvars={CLIENT1: {"tunnelgate_address": "10.66.13.1"}}),
    case("address-outside-network", "tunnelgate_address", CLIENT1,
         hostvars={CLIENT1: {"tunnelgate_address": "10.99.0.5"}}),
    case("duplicate-public-key", "tunnelgate_public_key", CLIENT2,
         hostvars={CLIENT1: {"tunnelgate_public_key": SOME_KEY}, CLIENT2: {"tunnelgate_public_key": SOME_KEY}}),
    case("public-key-invalid", "tunnelgate_public_key", CLIENT1,
         hostvars={CLIENT1: {"tunnelgate_public_key": "not-a-key;reboot"}}),
    # the host_vpn role's own variables: paths, names, choices
    case("key-path-semicolon", "host_vpn_key_path", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_key_path": "/etc/wireguard/k;touch /tmp/pwned"}),
    case("key-path-substitution", "host_vpn_key_path", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_key_path": "/etc/wireguard/$(touch /tmp/pwned)"}),
    case("key-path-newline", "host_vpn_key_path", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_key_path": "/etc/wireguard/k\nExecStartPre=/bin/touch /tmp/pwned"}),
    case("key-path-relative", "host_vpn_key_path", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_key_path": "../../tmp/wg0.key"}),
    case("interface-name-hostile", "host_vpn_interface", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_interface": "wg0;reboot"}),
    case("interface-name-too-long", "host_vpn_interface", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_interface": "tunnelgate-wg-0123"}),
    case("state-unknown", "host_vpn_state", CLIENT1, limit=CLIENT1, extra={"host_vpn_state": "gone"}),
    case("fwmark-zero", "host_vpn_fwmark", CLIENT1, limit=CLIENT1, extra={"host_vpn_fwmark": 0}),
    case("backend-unknown", "host_vpn_killswitch_backend", CLIENT1, limit=CLIENT1,
         extra={"host_vpn_killswitch_backend": "pf"}),
    # each role on its own (without site.yml's pre-flight) validates before touching its host
    case("role-host-vpn-unknown-profile", "tunnelgate_profile", CLIENT1, playbook=ROLE_HOST_VPN, limit=CLIENT1,
         hostvars={CLIENT1: {"tunnelgate_profile": "nope"}}),
    case("role-host-vpn-key-path-hostile", "host_vpn_key_path", CLIENT1, playbook=ROLE_HOST_VPN, limit=CLIENT1,
         extra={"host_vpn_key_path": "/etc/wireguard/`reboot`"}),
    case("role-host-vpn-address-outside", "tunnelgate_address", CLIENT1, playbook=ROLE_HOST_VPN, limit=CLIENT1,
         hostvars={CLIENT1: {"tunnelgate_address": "10.99.0.5"}}),
    case("role-server-duplicate-address", "tunnelgate_address", CLIENT2, playbook=ROLE_SERVER,
         hostvars={CLIENT1: {"tunnelgate_address": "10.66.13.20"}, CLIENT2: {"tunnelgate_address": "10.66.13.20"}}),
    case("role-server-endpoint-hostile", "tunnelgate_endpoint", SERVER, playbook=ROLE_SERVER,
         extra={"tunnelgate_endpoint": "exit$(reboot)"}),
]


def run(playbook, tmp_path, extra=None, hostvars=None, limit=None, check=False):
    argv = ["ansible-playbook", "-i", INVENTORY]
    if hostvars:
        overlay = tmp_path / "overlay.yml"
        overlay.write_text(yaml.safe_dump({"all": {"hosts": hostvars}}))
        argv += ["-i", str(overlay)]
    if extra:
        extra_file = tmp_path / "extra.json"
        extra_file.write_text(json.dumps(extra))
        argv += ["-e", "@%s" % extra_file]
    if limit:
        argv += ["--limit", limit]
    if check:
        argv += ["--check"]
    proc = subprocess.run(argv + [playbook], capture_output=True, text=True, cwd=SCENARIO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M)}


def names_variable_and_host(output, variable, host):
    """Our checks say 'VARIABLE (host HOST): ...'; Ansible's argument_specs name the variable in the
    failure of that host (fatal: [HOST])."""
    if re.search(re.escape(variable) + r" \(host " + re.escape(host) + r"\)", output):
        return True
    return any(variable in line for line in output.splitlines() if line.startswith("fatal: [%s]" % host))


@pytest.fixture(scope="module")
def baseline():
    return {name: lab.snapshot(node(name)) for name in HOSTS}


def assert_unchanged(baseline, label):
    for name in HOSTS:
        diff = lab.snapshot_diff(baseline[name], lab.snapshot(node(name)))
        assert diff == "", "%s: %s changed:\n%s" % (label, name, diff)


def test_snapshot_sees_a_change(host, baseline):
    """Positive control: the snapshot would notice a rule, a file or a resolver change."""
    client = node(CLIENT1)
    client.check_output("ip rule add from 10.66.13.99 lookup 4242 && mkdir -p /etc/tunnelgate && touch /etc/tunnelgate/x")
    try:
        diff = lab.snapshot_diff(baseline[CLIENT1], lab.snapshot(client))
        assert "lookup 4242" in diff and "/etc/tunnelgate/x" in diff, diff
    finally:
        client.check_output("ip rule del from 10.66.13.99 lookup 4242; rm -rf /etc/tunnelgate")
    assert_unchanged(baseline, "after the control")


def test_the_base_inventory_is_valid(host, baseline, tmp_path):
    """Positive control: without the bad input the same run passes (check mode: nothing changes).

    The pre-flight plans the whole inventory (server included); the clients run the host_vpn role in
    check mode. (The server role's own check mode needs a server that exists: not a fresh host.)
    """
    rc, out = run(SITE, tmp_path, limit="%s,%s" % (CLIENT1, CLIENT2), check=True)
    assert rc == 0, out
    assert_unchanged(baseline, "check mode of the valid inventory")


@pytest.mark.parametrize("spec", CASES)
def test_bad_input_fails_before_any_change(host, baseline, tmp_path, spec):
    start = time.time()
    rc, out = run(spec["playbook"], tmp_path, spec["extra"], spec["hostvars"], spec["limit"])
    assert rc != 0, "accepted:\n" + out
    changed = {name: n for name, n in recap(out).items() if n}
    assert not changed, "changes before the failure: %s\n%s" % (changed, out)
    assert names_variable_and_host(out, spec["variable"], spec["host"]), (
        "the message does not name %s and host %s:\n%s" % (spec["variable"], spec["host"], out))
    assert "pwned" not in node(CLIENT1).run("ls /tmp").stdout
    assert_unchanged(baseline, "%s (%.1f s)" % (spec["variable"], time.time() - start))

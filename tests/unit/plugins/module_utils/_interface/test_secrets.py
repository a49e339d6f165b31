# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No key material in any output (issue #8.2): diffs of any file the module shows (a hand-made
wg-quick file included), results and error messages, whatever command fails and whatever it prints."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import CommandError, TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.info import wireguard_info
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.live import read_live
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface.module import run_interface

from .fakes import OTHER_PRIVATE_B64, PEER_A, PRIVATE_B64, PSK_B64, FakeRunner, live_interface, run_params

# A second preshared key, only ever in the hand-made file (in a hook and a comment).
HOOK_PSK = base64.b64encode(b"h" * 32).decode()
SECRETS = (PRIVATE_B64, OTHER_PRIVATE_B64, PSK_B64, HOOK_PSK)

# What a host migrating from plain wg-quick (or another role) has: keys IN the file.
HAND_MADE = """# made by hand
[Interface]
PrivateKey = %(private)s
Address = 10.66.3.1/24
ListenPort = 51820
# old key: PrivateKey = %(old)s
PostUp = wg set %%i peer %(peer)s preshared-key <(echo %(hook)s)

[Peer]
PublicKey = %(peer)s
presharedkey=%(psk)s
AllowedIPs = 10.66.3.2/32
""" % {"private": PRIVATE_B64, "old": OTHER_PRIVATE_B64, "peer": PEER_A, "hook": HOOK_PSK, "psk": PSK_B64}


def leaked(data):
    text = json.dumps(data, default=str)
    return [s[:6] for s in SECRETS if s in text]


@pytest.mark.parametrize("state, check_mode", [
    ("present", True), ("present", False), ("absent", True), ("absent", False),
])
def test_diff_of_a_hand_made_file_redacts_every_key(host, state, check_mode):
    with open(host.config_path("wg0"), "w") as handle:
        handle.write(HAND_MADE)
    runner = FakeRunner(live_interface())
    runner.live["peers"][PEER_A]["psk"] = PSK_B64
    p = run_params(host) if state == "present" else {"name": "wg0", "state": "absent"}
    result = run_interface(p, runner, host=host, check_mode=check_mode, diff=True)
    assert leaked(result) == []
    before = result["diff"][0]["before"]
    # positive control: the old file IS shown, with its keys redacted and everything else kept
    assert "PrivateKey = (redacted)" in before and "presharedkey=(redacted)" in before
    assert "PublicKey = %s" % PEER_A in before and "peer %s preshared-key" % PEER_A in before
    assert "Address = 10.66.3.1/24" in before and "# made by hand" in before
    assert before.count("(redacted)") == 4


@pytest.mark.parametrize("stdout, stderr", [
    ("wg0\t%s\t%s\t51820\toff\n" % (PRIVATE_B64, PEER_A), ""),                 # stdout of a dump, no stderr
    ("", "Key is not the correct length or format: `%s'\n" % PSK_B64),           # stderr quoting a key
])
def test_failed_command_output_never_reaches_the_message(host, stdout, stderr):
    runner = FakeRunner(live_interface(port=40000))
    runner.fail[("wg", "set")] = (1, stdout, stderr)
    with pytest.raises(TunnelgateError) as err:
        run_interface(run_params(host), runner, host=host)
    assert "previous state was restored" in str(err.value)   # positive control: it did fail there
    assert leaked(str(err.value)) == []


def test_command_error_carries_no_stdout_and_redacts_stderr():
    err = CommandError(["wg", "show", "wg0", "dump"], 1, "x\t%s\n" % PRIVATE_B64, "bad key %s" % PSK_B64)
    assert "wg show wg0 dump" in str(err) and "rc=1" in str(err)
    assert leaked(str(err)) == []
    assert leaked(err.stderr) == []


def test_live_read_failure_does_not_quote_the_dump(host):
    runner = FakeRunner(live_interface())
    runner.fail[("wg", "show", "wg0", "dump")] = (1, "%s\n" % PRIVATE_B64, "Unable to access interface: %s" % PSK_B64)
    with pytest.raises(TunnelgateError, match="^name: wg0 exists but is not a WireGuard interface") as err:
        read_live(runner, "wg0", set())
    assert leaked(str(err.value)) == []


def test_malformed_dump_fails_without_quoting_its_fields():
    runner = FakeRunner(live_interface())
    original = runner.answer

    def answer(argv):
        if argv[:2] == ["wg", "show"]:
            # a peer line whose handshake field holds a key (a dump from another wg version)
            return 0, "%s\t%s\t51820\toff\n%s\t%s\t(none)\t(none)\t%s\t0\t0\toff\n" % (
                PRIVATE_B64, PEER_A, PEER_A, PSK_B64, OTHER_PRIVATE_B64)
        return original(argv)

    runner.answer = answer
    with pytest.raises(TunnelgateError, match="^name: ") as err:
        read_live(runner, "wg0", set())
    assert leaked(str(err.value)) == []
    with pytest.raises(TunnelgateError, match="^name: ") as err:
        wireguard_info(runner, "wg0")
    assert leaked(str(err.value)) == []


def test_info_failure_of_wg_show_all_does_not_quote_its_stdout():
    runner = FakeRunner(live_interface())
    runner.fail[("wg", "show", "all", "dump")] = (1, "wg0\t%s\t%s\t51820\toff\n" % (PRIVATE_B64, PEER_A), "")
    with pytest.raises(CommandError) as err:
        wireguard_info(runner)
    assert "wg show all dump" in str(err.value)
    assert leaked(str(err.value)) == []

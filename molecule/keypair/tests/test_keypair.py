# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifier of the keypair scenario: what a user relies on, checked on the real hosts.

- the files and directories have the modes and owners asked for,
- the public key the module returned is what `wg pubkey` derives from the key file,
- the second converge kept every key, `regenerate: always` replaces one,
- no key appears anywhere in a `-vvv --diff` log of the converge (and the search is proven to
  find a key that does leak).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAK_ROOT = "/root/leakcheck"
CONTROL_KEY = "/root/leakcheck-control/throwaway.key"
PRESHARED_DOMAIN = b"tunnelgate.wireguard preshared-key fingerprint v1\x00"

# (path, mode, owner, group) of every file and directory the converge manages.
EXPECTED_PATHS = [
    ("/etc/wireguard", 0o700, "root", "root"),
    ("/etc/wireguard/wg0.key", 0o600, "root", "root"),
    ("/etc/tunnelgate", 0o700, "root", "root"),
    ("/etc/tunnelgate/psk", 0o700, "root", "root"),
    ("/etc/tunnelgate/psk/peer1.psk", 0o600, "root", "root"),
    ("/var/lib/tgkeys", 0o700, "tgkeys", "tgkeys"),
    ("/var/lib/tgkeys/keys", 0o700, "tgkeys", "tgkeys"),
    ("/var/lib/tgkeys/keys/app.key", 0o640, "tgkeys", "tgkeys"),
    ("/etc/tunnelgate/rotate.key", 0o600, "root", "root"),
]


def read_json(host, path):
    return json.loads(host.file(path).content_string)


def key_text(host, path):
    text = host.file(path).content_string
    assert text.endswith("\n") and len(text) == 45, "%s is not a WireGuard key file" % path
    assert len(base64.b64decode(text.strip(), validate=True)) == 32
    return text.strip()


def wg_pubkey(host, path):
    return host.check_output("wg pubkey < %s", path).strip()


def private_fingerprint(public_b64):
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def preshared_fingerprint(key_b64):
    return hashlib.sha256(PRESHARED_DOMAIN + base64.b64decode(key_b64)).hexdigest()[:16]


def leaked_forms(key_b64):
    """Every form in which a key could show up in a log: text, hex, raw bytes as base64 (unpadded
    too), and the key file base64-encoded again (as slurp or a b64encode filter would show it)."""
    raw = base64.b64decode(key_b64)
    file_b64 = base64.b64encode((key_b64 + "\n").encode()).decode()
    return {
        "text": key_b64,
        "unpadded": key_b64.rstrip("="),
        "json-escaped": key_b64.replace("/", "\\/"),
        "hex": raw.hex(),
        "file-as-base64": file_b64,
        "text-as-base64": base64.b64encode(key_b64.encode()).decode(),
    }


def find_leaks(log, key_b64):
    return sorted(name for name, form in leaked_forms(key_b64).items() if form in log)


def run_playbook(playbook, *extra):
    """Run a playbook of this scenario at -vvv against the Molecule instances; return the log."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    binary = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    argv = [binary, "-vvv", "--diff", "-i", inventory, os.path.join(SCENARIO_DIR, playbook)] + list(extra)
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    log = proc.stdout
    # Kept next to the scenario's other state, for whoever debugs a failure.
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if ephemeral and os.path.isdir(ephemeral):
        with open(os.path.join(ephemeral, playbook.replace(".yml", ".log")), "w", encoding="utf-8") as handle:
            handle.write(log)
    assert proc.returncode == 0, "%s failed:\n%s" % (playbook, log[-4000:])
    return log


@pytest.fixture(scope="session")
def leakcheck_log():
    log = run_playbook("leakcheck.yml", "-e", "keypair_root=%s" % LEAK_ROOT)
    # The capture itself is a -vvv log that holds the full results of the keypair module.
    for marker in ("plugins/modules/keypair.py", '"invocation"', '"fingerprint"', '"public_key"'):
        assert marker in log, "the leak-check log lacks %r: not a -vvv log of the keypair module" % marker
    return log


@pytest.fixture(scope="session")
def control_log():
    return run_playbook("leak-control.yml")


@pytest.mark.parametrize("path, mode, owner, group", EXPECTED_PATHS)
def test_mode_and_owner(host, path, mode, owner, group):
    f = host.file(path)
    assert f.exists
    assert f.mode == mode, "%s has mode %o" % (path, f.mode)
    assert (f.user, f.group) == (owner, group)


def test_no_temporary_files_left(host):
    for directory in ("/etc/wireguard", "/etc/tunnelgate", "/etc/tunnelgate/psk", "/var/lib/tgkeys/keys"):
        names = host.check_output("ls -A %s", directory).split()
        assert not [n for n in names if n.startswith(".")], "%s: %s" % (directory, names)


@pytest.mark.parametrize("name", ["wg0", "app"])
def test_returned_public_key_is_what_wg_pubkey_derives(host, name):
    result = read_json(host, "/root/keypair-result.json")[name]
    assert result["public_key"] == wg_pubkey(host, result["path"])
    assert result["fingerprint"] == private_fingerprint(result["public_key"])


def test_preshared_key_is_a_key_and_nothing_public_was_returned(host):
    result = read_json(host, "/root/keypair-result.json")["psk"]
    assert result["returned_public_key"] is False
    assert result["fingerprint"] == preshared_fingerprint(key_text(host, result["path"]))


def test_second_converge_kept_every_key(host):
    """The idempotence run (a second converge) must not have replaced a key: the fingerprints the
    first converge recorded are those of the keys on disk now."""
    first = read_json(host, "/root/keypair-first-run.json")
    last = read_json(host, "/root/keypair-result.json")
    for name in ("wg0", "app"):
        assert first[name]["fingerprint"] == last[name]["fingerprint"]
        assert first[name]["public_key"] == wg_pubkey(host, first[name]["path"])
    assert first["psk"]["fingerprint"] == preshared_fingerprint(key_text(host, first["psk"]["path"]))


def test_check_mode_reports_the_existing_key_without_changes(host):
    path = "/etc/wireguard/wg0.key"
    before = host.file(path).sha256sum
    result = host.ansible("tunnelgate.wireguard.keypair", "path=%s" % path, check=True)
    assert result["changed"] is False and result["action"] == "keep"
    assert result["public_key"] == wg_pubkey(host, path)
    assert host.file(path).sha256sum == before


def test_regenerate_always_replaces_the_key(host):
    path = "/etc/tunnelgate/rotate.key"
    old_public = wg_pubkey(host, path)
    result = host.ansible("tunnelgate.wireguard.keypair", "path=%s regenerate=always" % path, check=False)
    assert result["changed"] is True and result["action"] == "regenerate"
    new_public = wg_pubkey(host, path)
    assert new_public != old_public
    assert result["public_key"] == new_public
    assert result["fingerprint"] == private_fingerprint(new_public)
    assert host.file(path).mode == 0o600


def test_invalid_file_is_refused_and_kept(host):
    path = "/etc/tunnelgate/invalid.key"
    host.check_output("printf 'hello\\n' > %s", path)
    try:
        # The --tree result of a failed module may lack "failed": judge by what it says and did.
        result = host.ansible("tunnelgate.wireguard.keypair", "path=%s" % path, check=False)
    except host.ansible.AnsibleException as err:
        result = err.result
    finally:
        content = host.file(path).content_string
        host.check_output("rm -f %s", path)
    assert result.get("changed") is False and "public_key" not in result
    assert path in result["msg"] and "regenerate: always" in result["msg"]
    assert content == "hello\n"


def test_leak_check_covered_every_key(host, leakcheck_log):
    keys = host.check_output("find %s -type f \\( -name '*.key' -o -name '*.psk' -o -name '*.before' \\)", LEAK_ROOT)
    names = sorted(os.path.relpath(p, LEAK_ROOT) for p in keys.split())
    assert names == sorted([
        "etc/wireguard/wg0.key",
        "etc/tunnelgate/psk/peer1.psk",
        "etc/tunnelgate/psk/peer1.psk.before",
        "etc/tunnelgate/rotate.key",
        "etc/tunnelgate/rotate.key.before",
        "etc/tunnelgate/removed.key.before",
        "etc/tunnelgate/not-a.key",
        "var/lib/tgkeys/keys/app.key",
    ])
    # The rotation happened: the keys before and after differ.
    assert key_text(host, LEAK_ROOT + "/etc/tunnelgate/rotate.key") != key_text(
        host, LEAK_ROOT + "/etc/tunnelgate/rotate.key.before")
    assert key_text(host, LEAK_ROOT + "/etc/tunnelgate/psk/peer1.psk") != key_text(
        host, LEAK_ROOT + "/etc/tunnelgate/psk/peer1.psk.before")


@pytest.mark.parametrize("path", [
    "etc/wireguard/wg0.key",
    "var/lib/tgkeys/keys/app.key",
    "etc/tunnelgate/rotate.key.before",
    "etc/tunnelgate/rotate.key",
    "etc/tunnelgate/psk/peer1.psk.before",
    "etc/tunnelgate/psk/peer1.psk",
    "etc/tunnelgate/removed.key.before",
])
def test_no_key_in_the_vvv_converge_log(host, leakcheck_log, path):
    key = key_text(host, "%s/%s" % (LEAK_ROOT, path))
    assert find_leaks(leakcheck_log, key) == [], "key material of %s is in the -vvv log" % path
    if not path.endswith((".psk", ".psk.before")):
        # Positive control: the same log does hold what the module returned for this key.
        public = wg_pubkey(host, "%s/%s" % (LEAK_ROOT, path))
        assert public in leakcheck_log
        assert private_fingerprint(public) in leakcheck_log


def test_leak_search_finds_a_key_that_leaks(host, control_log):
    """Negative control: a key that IS shown at -vvv (as text, and slurped) is found."""
    key = key_text(host, CONTROL_KEY)
    assert {"text", "file-as-base64"} <= set(find_leaks(control_log, key))

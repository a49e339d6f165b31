# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile and malformed input, rejected by the modules themselves (issue #8.6): the module-level corpus.

Each case runs the module's main() (argument_spec included) on a fake host and asserts that it fails
with a message that starts with (argument_spec errors: names) the option, and the peer where there is
one; that no command that changes the host ran; and that no file was written or removed.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils._interface import apply as itf_apply
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._killswitch import KillswitchSpec
from ansible_collections.tunnelgate.wireguard.plugins.modules import info, interface, keypair, killswitch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from _interface.fakes import PEER_A, PEER_B, PRIVATE_B64, FakeRunner, live_interface, mutating  # noqa: E402

from module_args import patch_module_args  # noqa: E402  (tests/unit is on sys.path)

ARABIC_51820 = "\u0665\u0661\u0668\u0662\u0660"   # int() and str.isdigit() accept these digits
ARABIC_24 = "\u0662\u0664"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A fake host: config and systemd dirs under tmp_path, a valid key file, a live wg0."""
    for name in ("etc", "systemd", "proc", "keys"):
        (tmp_path / name).mkdir()
    (tmp_path / "keys" / "wg0.key").write_text(PRIVATE_B64 + "\n")
    monkeypatch.setattr(itf_apply.Host.__init__, "__defaults__",
                        (str(tmp_path / "etc"), str(tmp_path / "systemd"), str(tmp_path / "proc"), False))
    return tmp_path


def tree(root):
    """Every path under ``root`` with its content (files) - to prove nothing was written or removed."""
    found = {}
    for base, dirs, files in os.walk(str(root)):
        for name in dirs:
            found[os.path.join(base, name)] = None
        for name in files:
            with open(os.path.join(base, name), "rb") as handle:
                found[os.path.join(base, name)] = handle.read()
    return found


def run_main(module, capsys, monkeypatch, runner, args):
    if hasattr(module, "CommandRunner"):
        monkeypatch.setattr(module, "CommandRunner", lambda _module: runner)
    with patch_module_args(dict(args, _ansible_check_mode=False, _ansible_diff=True)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def interface_args(lab_dir, **overrides):
    args = {
        "name": "wg0", "addresses": ["10.66.3.1/24", "fd66:3::1/64"], "listen_port": 51820,
        "private_key_path": str(lab_dir / "keys" / "wg0.key"),
        "peers": [
            {"public_key": PEER_A, "description": "a", "allowed_ips": ["10.66.3.2/32"],
             "endpoint": "172.30.3.11:51820"},
            {"public_key": PEER_B, "description": "b", "allowed_ips": ["10.66.3.3/32"]},
        ],
        "enabled": False,
    }
    args.update(overrides)
    return args


def peer_a(**overrides):
    entry = {"public_key": PEER_A, "description": "a", "allowed_ips": ["10.66.3.2/32"],
             "endpoint": "172.30.3.11:51820"}
    entry.update(overrides)
    return entry


def place_key_files(lab_dir, overrides):
    """Hostile key paths point into the lab's key directory and the files exist there, valid: only the
    module's validation can refuse them (not a missing file)."""
    keys = str(lab_dir / "keys")
    overrides = json.loads(json.dumps(overrides).replace("KEYS/", keys + "/"))
    paths = [overrides.get("private_key_path")] + [p.get("preshared_key_path") for p in overrides.get("peers", [])]
    for path in paths:
        if path and path.startswith(keys + "/"):
            with open(path, "w") as handle:
                handle.write(PRIVATE_B64 + "\n")
    return overrides


# (case id, overrides of a valid interface call, what the message must start with / name)
INTERFACE_CASES = [
    ("name-newline", {"name": "wg0\n"}, "name: "),
    ("name-shell", {"name": "wg0;reboot"}, "name: "),
    ("name-control-char", {"name": "wg\x1b0"}, "name: "),
    ("name-too-long", {"name": "wg0123456789abcd"}, "name: "),
    ("key-path-semicolon", {"private_key_path": "KEYS/k;touch pwned"}, "private_key_path: "),
    ("key-path-dollar-paren", {"private_key_path": "KEYS/$(id).key"}, "private_key_path: "),
    ("key-path-backtick", {"private_key_path": "KEYS/`id`.key"}, "private_key_path: "),
    ("key-path-newline", {"private_key_path": "KEYS/k\nExecStartPre=id"}, "private_key_path: "),
    ("key-path-quote", {"private_key_path": "KEYS/k'ey"}, "private_key_path: "),
    ("key-path-pipe", {"private_key_path": "KEYS/k|id"}, "private_key_path: "),
    ("key-path-ampersand", {"private_key_path": "KEYS/k&id"}, "private_key_path: "),
    ("key-path-redirect", {"private_key_path": "KEYS/k>passwd"}, "private_key_path: "),
    ("key-path-paren", {"private_key_path": "KEYS/(k)"}, "private_key_path: "),
    ("key-path-glob", {"private_key_path": "KEYS/*.key"}, "private_key_path: "),
    ("key-path-relative", {"private_key_path": "keys/wg0.key"}, "private_key_path: "),
    ("psk-path-semicolon", {"peers": [peer_a(preshared_key_path="KEYS/a.psk;id")]},
     "peers[0].preshared_key_path (a): "),
    ("psk-path-dollar", {"peers": [peer_a(preshared_key_path="KEYS/$(id).psk")]},
     "peers[0].preshared_key_path (a): "),
    ("endpoint-zone-newline", {"peers": [peer_a(endpoint="[fe80::1%eth0\nPostUp = touch /tmp/pwned]:51820")]},
     "peers[0].endpoint (a): "),
    ("endpoint-zone-equals", {"peers": [peer_a(endpoint="[fe80::1%eth0=x]:51820")]}, "peers[0].endpoint (a): "),
    ("endpoint-zone-hash", {"peers": [peer_a(endpoint="[fe80::1%eth0#x]:51820")]}, "peers[0].endpoint (a): "),
    ("endpoint-name-newline", {"peers": [peer_a(endpoint="vpn.example.org\n:51820")]}, "peers[0].endpoint (a): "),
    ("endpoint-port-arabic", {"peers": [peer_a(endpoint="172.30.3.11:%s" % ARABIC_51820)]},
     "peers[0].endpoint (a): "),
    ("endpoint-port-underscore", {"peers": [peer_a(endpoint="172.30.3.11:51_820")]}, "peers[0].endpoint (a): "),
    ("endpoint-name-unicode", {"peers": [peer_a(endpoint="vpn\u2028PostUp.example:51820")]},
     "peers[0].endpoint (a): "),
    ("allowed-ips-arabic-prefix", {"peers": [peer_a(allowed_ips=["10.66.3.0/%s" % ARABIC_24])]},
     "peers[0].allowed_ips (a): "),
    ("description-form-feed", {"peers": [peer_a(description="db\x0cPrivateKey = x")]}, "peers[0].description"),
    ("description-nul", {"peers": [peer_a(description="db\x00")]}, "peers[0].description"),
    ("description-line-separator", {"peers": [peer_a(description="db\u2028[Interface]")]}, "peers[0].description"),
    ("public-key-garbage", {"peers": [peer_a(public_key="$(reboot)")]}, "peers[0].public_key"),
    ("address-zone", {"addresses": ["fd00::1%eth0/64"]}, "addresses: "),
    ("dns-zone", {"dns": ["fe80::1%eth0"]}, "dns: "),
    ("dns-shell", {"dns": ["example.org;reboot"]}, "dns: "),
    ("dns-newline", {"dns": ["example.org\nPostUp = id"]}, "dns: "),
    ("table-arabic", {"table": ARABIC_51820}, "table: "),
    ("routing-source-zone", {"routing": {"sources": ["fe80::%eth0/64"]}, "table": "100"}, "routing.sources: "),
    ("listen-port-range", {"listen_port": 70000}, "listen_port: "),
    ("unknown-option", {"private_key_file": "/etc/wireguard/wg0.key"}, "private_key_file"),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in INTERFACE_CASES], ids=[c[0] for c in INTERFACE_CASES])
def test_interface_rejects_bad_input_before_touching_the_host(capsys, monkeypatch, lab, overrides, expected):
    runner = FakeRunner(live_interface())
    args = interface_args(lab, **place_key_files(lab, overrides))
    before = tree(lab)
    result = run_main(interface, capsys, monkeypatch, runner, args)
    assert result.get("failed") is True, result
    assert "does not exist" not in result["msg"]  # refused for what it is, not for a missing file
    if expected.endswith(" ") or expected.endswith(": ") or "(" in expected:
        assert result["msg"].startswith(expected), result["msg"]
    else:
        assert expected in result["msg"], result["msg"]
    assert mutating(runner.calls) == []
    assert tree(lab) == before
    assert PRIVATE_B64 not in json.dumps(result)


def test_the_interface_base_call_of_the_corpus_is_valid(capsys, monkeypatch, lab):
    """Positive control: without the bad value the same call succeeds (so each case fails for its value)."""
    runner = FakeRunner(live_interface())
    result = run_main(interface, capsys, monkeypatch, runner, interface_args(lab))
    assert not result.get("failed"), result


KEYPAIR_CASES = [
    ("path-newline", {"path": "KEYS/k\n.key"}, "path: "),
    ("path-escape", {"path": "KEYS/k\x1b[2J.key"}, "path: "),
    ("path-line-separator", {"path": "KEYS/k\u2028.key"}, "path: "),
    ("type-public", {"path": "KEYS/k.key", "type": "public"}, "type"),
    ("unknown-option", {"path": "KEYS/k.key", "private_key": PRIVATE_B64}, "private_key"),
]


@pytest.mark.parametrize("args, expected", [c[1:] for c in KEYPAIR_CASES], ids=[c[0] for c in KEYPAIR_CASES])
def test_keypair_rejects_bad_input_before_touching_the_host(capsys, monkeypatch, lab, args, expected):
    args = dict(args, path=args["path"].replace("KEYS", str(lab / "keys")))
    before = tree(lab)
    result = run_main(keypair, capsys, monkeypatch, None, args)
    assert result.get("failed") is True, result
    if expected.endswith(": "):
        assert result["msg"].startswith(expected), result["msg"]
    else:
        assert expected in result["msg"], result["msg"]
    assert tree(lab) == before


INFO_CASES = [
    ("name-newline", {"name": "wg0\n"}, "name: "),
    ("name-shell", {"name": "wg0;id"}, "name: "),
    ("name-control-char", {"name": "wg\x000"}, "name: "),
]


@pytest.mark.parametrize("args, expected", [c[1:] for c in INFO_CASES], ids=[c[0] for c in INFO_CASES])
def test_info_rejects_bad_input_without_running_a_command(capsys, monkeypatch, args, expected):
    runner = FakeRunner(live_interface())
    result = run_main(info, capsys, monkeypatch, runner, args)
    assert result.get("failed") is True and result["msg"].startswith(expected), result
    assert runner.calls == []


class RecordingRunner:
    """The killswitch's command seam: records, and answers nothing (validation must stop it first)."""

    def __init__(self):
        self.calls = []

    def bin_path(self, name, required=True):
        return "/usr/sbin/%s" % name

    def run(self, argv, check=True, data=None, environ=None):
        self.calls.append(list(argv))
        return 1, "", "not expected in this test"


def killswitch_args(**overrides):
    args = {"state": "present", "mode": "host", "backend": "iptables", "interfaces": ["wg0"], "fwmark": 51820,
            "endpoints": ["172.30.3.10:51820"], "ipv6": "tunnel", "persist": False}
    args.update(overrides)
    return args


# Every value here would reach a rule file (iptables-restore / nft -f input) verbatim if accepted.
KILLSWITCH_CASES = [
    ("interface-newline", {"interfaces": ["wg0\n-A TUNNELGATE-OUT -j ACCEPT"]}, "interfaces: "),
    ("interface-space", {"interfaces": ["wg0 -j ACCEPT"]}, "interfaces: "),
    ("allow-lan-zone-newline", {"allow_lan": ["fe80::%x\n-A TUNNELGATE-OUT -j ACCEPT/64"]}, "allow_lan: "),
    ("allow-lan-zone-space", {"allow_lan": ["fe80::%eth0 -j ACCEPT/64"]}, "allow_lan: "),
    ("dns-zone", {"dns_servers": ["fe80::1%eth0 -j ACCEPT"]}, "dns_servers: "),
    ("endpoint-zone", {"endpoints": ["[fe80::1%eth0]:51820"]}, "endpoints: "),
    ("exclude-zone", {"mode": "forward", "sources": ["172.18.0.0/16"], "exclude": ["fe80::%x y/64"]}, "exclude: "),
    ("unknown-option", {"allow_everything": True}, "allow_everything"),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in KILLSWITCH_CASES], ids=[c[0] for c in KILLSWITCH_CASES])
def test_killswitch_rejects_bad_input_before_running_a_command(capsys, monkeypatch, overrides, expected):
    runner = RecordingRunner()
    result = run_main(killswitch, capsys, monkeypatch, runner, killswitch_args(**overrides))
    assert result.get("failed") is True, result
    if expected.endswith(": "):
        assert result["msg"].startswith(expected), result["msg"]
    else:
        assert expected in result["msg"], result["msg"]
    assert runner.calls == []


def test_the_killswitch_base_call_of_the_corpus_is_valid():
    """Positive control: the same options without the bad value validate."""
    params = dict(killswitch_args(), allow_lan=[], allow_dhcp=False, allow_inbound_replies=True, sources=[], exclude=[],
                  dns_servers=[], reject=True, forward_chain="auto")
    KillswitchSpec(params)


def test_corpus_size():
    """The issue asks for at least 30 cases across modules and roles; the modules' share is here."""
    assert len(INTERFACE_CASES) + len(KEYPAIR_CASES) + len(INFO_CASES) + len(KILLSWITCH_CASES) >= 30

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key file lifecycle: validation, fingerprints, the plan, and the apply step."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _keypair as kp
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._common import TunnelgateError
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import clamp_scalar

# RFC 7748 section 6.1 (Alice): a clamped private key and its public key.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
ALICE_FILE = base64.b64encode(ALICE_PRIVATE) + b"\n"
ALICE_CLAMPED = clamp_scalar(ALICE_PRIVATE)  # the RFC scalar is unclamped; wg genkey stores clamped keys
UNCLAMPED = bytes(range(1, 33))  # low bits set: not what wg genkey makes


def b64(raw):
    return base64.b64encode(raw)


# --- decode_key / encode_key -----------------------------------------------------------------

@pytest.mark.parametrize(
    "content",
    [ALICE_FILE, b64(ALICE_PRIVATE), b64(ALICE_PRIVATE) + b"\r\n", b"  " + b64(ALICE_PRIVATE) + b"\n\n"],
    ids=["with-newline", "without-newline", "crlf", "surrounding-whitespace"],
)
def test_decode_key_accepts_key_files(content):
    assert kp.decode_key(content) == ALICE_PRIVATE


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty"),
        (b"\n", "empty"),
        (b"not a key\n", "expected 44 base64 characters, found 9"),
        (b64(ALICE_PRIVATE)[:-4] + b"\n", "expected 44 base64 characters, found 40"),
        (b64(ALICE_PRIVATE) + b"\n" + b64(ALICE_PRIVATE) + b"\n", "found 89"),
        (b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIA==\n", "found"),
        (b"!" * 44, "not valid base64"),
        (b"A" * 44, "does not decode to 32 bytes"),  # no padding: 33 bytes
        (b64(ALICE_PRIVATE)[:42] + b"B=", "not canonical"),  # trailing bits set
        (b"\xff\xfe" + b"A" * 42, "not ASCII"),
        (b"A" * 5000, "larger than 4096 bytes"),
    ],
    ids=[
        "empty", "only-newline", "text", "truncated", "two-keys", "pem", "bad-chars",
        "unpadded-33-bytes", "non-canonical", "binary", "huge",
    ],
)
def test_decode_key_rejects_non_keys_without_echoing_them(content, reason):
    with pytest.raises(ValueError) as excinfo:
        kp.decode_key(content)
    assert reason in str(excinfo.value)
    if len(content) > 8:
        assert content.strip().decode("latin-1") not in str(excinfo.value)


def test_encode_key_is_wg_format_and_round_trips():
    assert kp.encode_key(ALICE_PRIVATE) == ALICE_FILE.decode()
    assert kp.decode_key(kp.encode_key(ALICE_PRIVATE).encode()) == ALICE_PRIVATE
    with pytest.raises(ValueError):
        kp.encode_key(b"short")


# --- fingerprints ----------------------------------------------------------------------------

def test_private_fingerprint_is_short_sha256_of_public_key():
    expected = hashlib.sha256(ALICE_PUBLIC).hexdigest()[:16]
    assert kp.fingerprint(ALICE_PRIVATE, kp.TYPE_PRIVATE) == expected
    assert kp.public_key_b64(ALICE_PRIVATE) == b64(ALICE_PUBLIC).decode()


def test_preshared_fingerprint_is_domain_separated_and_reveals_no_plain_hash():
    psk = os.urandom(32)
    fp = kp.fingerprint(psk, kp.TYPE_PRESHARED)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp == hashlib.sha256(kp.PRESHARED_FINGERPRINT_DOMAIN + psk).hexdigest()[:16]
    # Not the plain SHA-256 of the key, nor anything containing the key.
    assert fp != hashlib.sha256(psk).hexdigest()[:16]
    assert psk.hex()[:16] != fp
    assert b64(psk).decode() not in fp
    # The same 32 bytes used as a private key fingerprint differently.
    assert fp != kp.fingerprint(psk, kp.TYPE_PRIVATE)


def test_fingerprint_rejects_unknown_type():
    with pytest.raises(ValueError):
        kp.fingerprint(ALICE_PRIVATE, "public")


def test_keyfile_repr_and_describe_hide_the_key():
    key_file = kp.KeyFile("/k", kp.FILE_VALID, key=ALICE_PRIVATE)
    assert b64(ALICE_PRIVATE).decode() not in repr(key_file)
    assert ALICE_PRIVATE.hex() not in repr(key_file)
    assert key_file.describe(kp.TYPE_PRIVATE) == {
        "fingerprint": kp.fingerprint(ALICE_PRIVATE, kp.TYPE_PRIVATE),
        "public_key": b64(ALICE_PUBLIC).decode(),
    }
    assert key_file.describe(kp.TYPE_PRESHARED)["public_key"] is None
    assert kp.KeyFile("/k", kp.FILE_MISSING).describe(kp.TYPE_PRIVATE) == {"fingerprint": None, "public_key": None}


# --- inspecting the host ---------------------------------------------------------------------

def test_inspect_key_file_classifies(tmp_path):
    missing = kp.inspect_key_file(str(tmp_path / "missing.key"))
    assert missing.status == kp.FILE_MISSING

    valid_path = tmp_path / "valid.key"
    valid_path.write_bytes(ALICE_FILE)
    valid = kp.inspect_key_file(str(valid_path))
    assert (valid.status, valid.key) == (kp.FILE_VALID, ALICE_PRIVATE)

    invalid_path = tmp_path / "invalid.key"
    invalid_path.write_bytes(b"hello\n")
    invalid = kp.inspect_key_file(str(invalid_path))
    assert invalid.status == kp.FILE_INVALID and invalid.key is None and "found 5" in invalid.reason


def test_inspect_key_file_refuses_directories_and_file_parents(tmp_path):
    with pytest.raises(TunnelgateError, match=r"^path: .* is a directory"):
        kp.inspect_key_file(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(TunnelgateError, match=r"^path: a parent of"):
        kp.inspect_key_file(str(tmp_path / "file" / "k.key"))


def test_inspect_directory_lists_missing_parents_outermost_first(tmp_path):
    state = kp.inspect_directory(str(tmp_path / "a" / "b" / "k.key"))
    assert state.missing == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    assert state.existing_mode is None

    tmp_path.chmod(0o750)
    present = kp.inspect_directory(str(tmp_path / "k.key"))
    assert present.missing == [] and stat.S_IMODE(present.existing_mode) == 0o750


def test_inspect_directory_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TunnelgateError, match=r"^path: .*/file is not a directory"):
        kp.inspect_directory(str(tmp_path / "file" / "sub" / "k.key"))


# --- the plan --------------------------------------------------------------------------------

MISSING = kp.KeyFile("/etc/wireguard/wg0.key", kp.FILE_MISSING)
VALID = kp.KeyFile("/etc/wireguard/wg0.key", kp.FILE_VALID, key=ALICE_CLAMPED)
VALID_UNCLAMPED = kp.KeyFile("/etc/wireguard/wg0.key", kp.FILE_VALID, key=UNCLAMPED)
INVALID = kp.KeyFile("/etc/wireguard/wg0.key", kp.FILE_INVALID, reason="the file is empty")
DIR_OK = kp.DirectoryState("/etc/wireguard", [], stat.S_IFDIR | 0o700)
DIR_MISSING = kp.DirectoryState("/etc/wireguard", ["/etc/wireguard"], None)


@pytest.mark.parametrize(
    "key_type, state, regenerate, current, directory, action, create_dirs",
    [
        ("private", "present", "never", MISSING, DIR_MISSING, "create", ["/etc/wireguard"]),
        ("private", "present", "never", MISSING, DIR_OK, "create", []),
        ("private", "present", "fail", MISSING, DIR_OK, "create", []),
        ("private", "present", "always", MISSING, DIR_OK, "create", []),
        ("private", "present", "never", VALID, DIR_OK, "keep", []),
        ("private", "present", "fail", VALID, DIR_OK, "keep", []),
        ("private", "present", "always", VALID, DIR_OK, "regenerate", []),
        ("private", "present", "never", VALID_UNCLAMPED, DIR_OK, "keep", []),
        ("private", "present", "always", INVALID, DIR_OK, "regenerate", []),
        ("preshared", "present", "never", VALID_UNCLAMPED, DIR_OK, "keep", []),
        ("preshared", "present", "fail", VALID_UNCLAMPED, DIR_OK, "keep", []),
        ("preshared", "present", "always", VALID, DIR_OK, "regenerate", []),
        ("private", "absent", "never", VALID, DIR_OK, "remove", []),
        ("private", "absent", "never", INVALID, DIR_OK, "remove", []),
        ("preshared", "absent", "never", MISSING, DIR_MISSING, "none", []),
    ],
)
def test_plan_table(key_type, state, regenerate, current, directory, action, create_dirs):
    plan = kp.plan_keypair(key_type, state, regenerate, current, directory)
    assert plan.action == action
    assert plan.create_directories == create_dirs
    assert plan.changed == (action in ("create", "regenerate", "remove") or bool(create_dirs))
    assert plan.warnings == []


@pytest.mark.parametrize("regenerate", ["never", "fail"])
@pytest.mark.parametrize("key_type", ["private", "preshared"])
def test_plan_refuses_to_overwrite_an_invalid_file(key_type, regenerate):
    with pytest.raises(TunnelgateError) as excinfo:
        kp.plan_keypair(key_type, "present", regenerate, INVALID, DIR_OK)
    message = str(excinfo.value)
    assert message.startswith("regenerate (/etc/wireguard/wg0.key): ")
    assert "the file is empty" in message
    assert "regenerate: always" in message


def test_plan_fail_mode_refuses_an_unclamped_private_key():
    with pytest.raises(TunnelgateError) as excinfo:
        kp.plan_keypair("private", "present", "fail", VALID_UNCLAMPED, DIR_OK)
    message = str(excinfo.value)
    assert message.startswith("regenerate (/etc/wireguard/wg0.key): ")
    assert "not a clamped X25519 private key" in message
    assert b64(UNCLAMPED).decode() not in message


@pytest.mark.parametrize(
    "mode, warns",
    [(0o700, False), (0o755, False), (0o775, True), (0o757, True), (0o1777, False)],
    ids=["0700", "0755", "group-writable", "world-writable", "sticky-tmp"],
)
def test_plan_warns_about_a_directory_others_can_write(mode, warns):
    directory = kp.DirectoryState("/srv/keys", [], stat.S_IFDIR | mode)
    plan = kp.plan_keypair("private", "present", "never", MISSING, directory)
    assert bool(plan.warnings) == warns
    if warns:
        assert "/srv/keys" in plan.warnings[0]


@pytest.mark.parametrize(
    "args, option",
    [
        (("public", "present", "never"), "type"),
        (("private", "present", "sometimes"), "regenerate"),
        (("private", "gone", "never"), "state"),
    ],
)
def test_plan_rejects_bad_choices_naming_the_option(args, option):
    with pytest.raises(TunnelgateError, match="^%s: " % option):
        kp.plan_keypair(*args, current=MISSING, directory=DIR_OK)


# --- diffs -----------------------------------------------------------------------------------

def test_diff_keep_shows_the_same_fingerprint_both_sides():
    plan = kp.plan_keypair("private", "present", "never", VALID, DIR_OK)
    diff = plan.diff()
    fp = kp.fingerprint(ALICE_CLAMPED, "private")
    assert fp == kp.fingerprint(ALICE_PRIVATE, "private")  # clamping does not change the key pair
    assert diff["before"] == diff["after"] == {"state": "present", "fingerprint": fp}
    assert diff["before_header"] == diff["after_header"] == "/etc/wireguard/wg0.key"


def test_diff_create_in_check_mode_is_pending_and_lists_directories():
    plan = kp.plan_keypair("private", "present", "never", MISSING, DIR_MISSING)
    diff = plan.diff()
    assert diff["before"] == {"state": "absent", "fingerprint": None, "directories_created": []}
    assert diff["after"] == {
        "state": "present",
        "fingerprint": kp.PENDING_FINGERPRINT,
        "directories_created": ["/etc/wireguard"],
    }


def test_diff_regenerate_after_apply_shows_new_fingerprint_only():
    plan = kp.plan_keypair("preshared", "present", "always", VALID, DIR_OK)
    new_key = os.urandom(32)
    after = kp.KeyFile(VALID.path, kp.FILE_VALID, key=new_key)
    diff = plan.diff(after)
    assert diff["before"]["fingerprint"] == kp.fingerprint(ALICE_CLAMPED, "preshared")
    assert diff["after"]["fingerprint"] == kp.fingerprint(new_key, "preshared")
    text = repr(diff)
    for secret in (ALICE_CLAMPED, new_key):
        assert b64(secret).decode() not in text and secret.hex() not in text


def test_diff_invalid_and_remove():
    plan = kp.plan_keypair("private", "absent", "never", INVALID, DIR_OK)
    diff = plan.diff()
    assert diff["before"] == {"state": "present", "fingerprint": "(not a valid key: the file is empty)"}
    assert diff["after"] == {"state": "absent", "fingerprint": None}


# --- apply -----------------------------------------------------------------------------------

def plan_for(tmp_path, name="keys/wg0.key", key_type="private", state="present", regenerate="never"):
    path = str(tmp_path / name)
    current = kp.inspect_key_file(path)
    directory = kp.inspect_directory(path)
    return kp.plan_keypair(key_type, state, regenerate, current, directory)


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_apply_create_private_key(tmp_path):
    plan = plan_for(tmp_path, "a/b/wg0.key")
    after = kp.apply_plan(plan, urandom=lambda n: b"\xff" * n)
    key_path = tmp_path / "a" / "b" / "wg0.key"
    expected = clamp_scalar(b"\xff" * 32)
    assert key_path.read_bytes() == b64(expected) + b"\n"
    assert after.status == kp.FILE_VALID and after.key == expected
    assert mode_of(key_path) == 0o600
    assert mode_of(tmp_path / "a") == 0o700 and mode_of(tmp_path / "a" / "b") == 0o700
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["wg0.key"]  # no temp files left


def test_apply_create_preshared_key_is_not_clamped(tmp_path):
    plan = plan_for(tmp_path, "wg0.psk", key_type="preshared")
    kp.apply_plan(plan, urandom=lambda n: b"\xff" * n)
    assert (tmp_path / "wg0.psk").read_bytes() == b64(b"\xff" * 32) + b"\n"


def test_apply_creates_files_private_even_with_a_lax_umask(tmp_path):
    old = os.umask(0)
    try:
        kp.apply_plan(plan_for(tmp_path, "d/wg0.key"))
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "d") == 0o700
    assert mode_of(tmp_path / "d" / "wg0.key") == 0o600


def test_apply_keep_does_not_touch_the_file(tmp_path):
    key_path = tmp_path / "wg0.key"
    key_path.write_bytes(ALICE_FILE)
    before = os.stat(str(key_path))
    plan = plan_for(tmp_path, "wg0.key")
    assert plan.action == "keep"
    after = kp.apply_plan(plan, urandom=lambda n: pytest.fail("keep must not generate a key"))
    assert after.key == ALICE_PRIVATE
    assert os.stat(str(key_path)).st_ino == before.st_ino
    assert key_path.read_bytes() == ALICE_FILE


@pytest.mark.parametrize("old_content", [ALICE_FILE, b"garbage\n"], ids=["valid", "invalid"])
def test_apply_regenerate_replaces_and_tightens_mode(tmp_path, old_content):
    key_path = tmp_path / "wg0.key"
    key_path.write_bytes(old_content)
    key_path.chmod(0o644)
    plan = plan_for(tmp_path, "wg0.key", regenerate="always")
    assert plan.action == "regenerate"
    after = kp.apply_plan(plan)
    assert after.key != ALICE_PRIVATE
    assert kp.decode_key(key_path.read_bytes()) == after.key
    assert kp.is_clamped(after.key)
    assert mode_of(key_path) == 0o600


def test_apply_remove(tmp_path):
    key_path = tmp_path / "wg0.key"
    key_path.write_bytes(ALICE_FILE)
    plan = plan_for(tmp_path, "wg0.key", state="absent")
    after = kp.apply_plan(plan)
    assert after.status == kp.FILE_MISSING
    assert not key_path.exists()
    assert tmp_path.is_dir()


def test_apply_refuses_a_short_random_source(tmp_path):
    plan = plan_for(tmp_path, "wg0.psk", key_type="preshared")
    with pytest.raises(RuntimeError):
        kp.apply_plan(plan, urandom=lambda n: b"\x00" * (n - 1))
    assert not (tmp_path / "wg0.psk").exists()


def test_apply_uses_the_module_for_the_atomic_move(tmp_path):
    moves = []

    class FakeModule:
        def atomic_move(self, src, dest, unsafe_writes=False):
            moves.append((os.path.dirname(src), dest, mode_of(src)))
            os.replace(src, dest)

    kp.apply_plan(plan_for(tmp_path, "wg0.key"), module=FakeModule())
    assert moves == [(str(tmp_path), str(tmp_path / "wg0.key"), 0o600)]

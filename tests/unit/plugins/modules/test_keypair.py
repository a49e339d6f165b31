# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The keypair module end to end: main() with patched module args, files in tmp_path."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from ansible.module_utils import basic

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _keypair as kp
from ansible_collections.tunnelgate.wireguard.plugins.module_utils._x25519 import public_key
from ansible_collections.tunnelgate.wireguard.plugins.modules import keypair

from module_args import patch_module_args  # noqa: E402  (tests/unit is on sys.path)


# A clamped private key, so regenerate=fail accepts it (wg genkey stores keys clamped).
KNOWN_PRIVATE = kp.clamp_scalar(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
KNOWN_PUBLIC_B64 = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="


def run_module(capsys, check_mode=False, diff=False, **args):
    """Run keypair.main() and return (result, raw stdout)."""
    args = dict(args)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            keypair.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def module_result(capsys, **kwargs):
    return run_module(capsys, **kwargs)[0]


def module_output(capsys, **kwargs):
    return run_module(capsys, **kwargs)[1]


def key_of(path):
    return kp.decode_key(open(str(path), "rb").read())


def b64(raw):
    return base64.b64encode(raw).decode()


def secret_forms(raw):
    """Every way a key could leak into JSON output."""
    return [b64(raw), raw.hex(), b64(raw).rstrip("="), base64.b64encode(raw).decode().replace("/", "\\/")]


def assert_no_secret(output, raw):
    for form in secret_forms(raw):
        assert form not in output, "key material leaked into the module output"


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def write_known_key(path, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(kp.encode_key(KNOWN_PRIVATE))
    path.chmod(mode)


def test_create_private_key(tmp_path, capsys):
    key_path = tmp_path / "etc" / "wireguard" / "wg0.key"
    result, out = run_module(capsys, path=str(key_path))
    assert result["changed"] is True
    assert result["action"] == "create"
    assert result["path"] == str(key_path)
    assert result["state"] == "file" and result["mode"] == "0600"
    raw = key_of(key_path)
    assert result["public_key"] == b64(public_key(raw))
    assert result["fingerprint"] == kp.fingerprint(raw, "private")
    assert mode_of(key_path) == 0o600
    assert mode_of(key_path.parent) == 0o700 and mode_of(key_path.parent.parent) == 0o700
    assert_no_secret(out, raw)


def test_second_run_keeps_the_key(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    first = module_result(capsys, path=str(key_path))
    content = key_path.read_bytes()
    second, out = run_module(capsys, path=str(key_path))
    assert second["changed"] is False and second["action"] == "keep"
    assert (second["public_key"], second["fingerprint"]) == (first["public_key"], first["fingerprint"])
    assert key_path.read_bytes() == content
    assert_no_secret(out, key_of(key_path))


def test_existing_key_reports_its_public_key(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    write_known_key(key_path)
    result, out = run_module(capsys, path=str(key_path))
    assert result["changed"] is False
    assert result["public_key"] == KNOWN_PUBLIC_B64
    assert_no_secret(out, KNOWN_PRIVATE)


def test_preshared_key_returns_no_public_key(tmp_path, capsys):
    key_path = tmp_path / "psk" / "peer.psk"
    result, out = run_module(capsys, path=str(key_path), type="preshared", diff=True)
    raw = key_of(key_path)
    assert result["changed"] is True
    assert "public_key" not in result
    assert result["fingerprint"] == kp.fingerprint(raw, "preshared")
    assert result["diff"]["after"]["fingerprint"] == result["fingerprint"]
    assert_no_secret(out, raw)


@pytest.mark.parametrize(
    "existing, expected_action, changed, returns_key",
    [
        (None, "create", True, False),
        ("valid", "keep", False, True),
        ("valid-0644", "keep", True, True),
    ],
    ids=["missing", "valid", "valid-lax-mode"],
)
def test_check_mode_reports_without_writing(tmp_path, capsys, existing, expected_action, changed, returns_key):
    key_path = tmp_path / "keys" / "wg0.key"
    if existing:
        write_known_key(key_path, mode=0o644 if existing.endswith("0644") else 0o600)
    before = key_path.read_bytes() if existing else None
    before_mode = mode_of(key_path) if existing else None

    result, out = run_module(capsys, check_mode=True, diff=True, path=str(key_path))

    assert result["action"] == expected_action
    assert result["changed"] is changed
    if returns_key:
        assert result["public_key"] == KNOWN_PUBLIC_B64
        assert result["fingerprint"] == kp.fingerprint(KNOWN_PRIVATE, "private")
        assert key_path.read_bytes() == before and mode_of(key_path) == before_mode
    else:
        assert result["public_key"] is None and result["fingerprint"] is None
        assert not key_path.parent.exists()
        assert result["diff"]["after"]["fingerprint"] == kp.PENDING_FINGERPRINT
    if existing == "valid-0644":
        assert result["diff"]["before"]["mode"] == "0644" and result["diff"]["after"]["mode"] == "0600"
    assert_no_secret(out, KNOWN_PRIVATE)


def test_check_mode_regenerate_leaves_the_key(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    write_known_key(key_path)
    result = module_result(capsys, check_mode=True, path=str(key_path), regenerate="always")
    assert result["changed"] is True and result["action"] == "regenerate"
    assert result["public_key"] is None
    assert key_of(key_path) == KNOWN_PRIVATE


@pytest.mark.parametrize("key_type", ["private", "preshared"])
def test_regenerate_always_replaces_the_key(tmp_path, capsys, key_type):
    key_path = tmp_path / "wg0.key"
    write_known_key(key_path)
    old_fp = kp.fingerprint(KNOWN_PRIVATE, key_type)
    result, out = run_module(capsys, diff=True, path=str(key_path), type=key_type, regenerate="always")
    new_raw = key_of(key_path)
    assert result["changed"] is True and result["action"] == "regenerate"
    assert new_raw != KNOWN_PRIVATE
    assert result["fingerprint"] == kp.fingerprint(new_raw, key_type) != old_fp
    assert result["diff"]["before"] == {"state": "present", "fingerprint": old_fp}
    assert result["diff"]["after"] == {"state": "present", "fingerprint": result["fingerprint"]}
    assert mode_of(key_path) == 0o600
    assert_no_secret(out, KNOWN_PRIVATE)
    assert_no_secret(out, new_raw)


@pytest.mark.parametrize("regenerate", ["never", "fail"])
def test_invalid_existing_file_fails_and_is_kept(tmp_path, capsys, regenerate):
    key_path = tmp_path / "wg0.key"
    key_path.write_text("this is not a key, it is my shopping list\n")
    result, out = run_module(capsys, path=str(key_path), regenerate=regenerate)
    assert result["failed"] is True
    assert str(key_path) in result["msg"]
    assert "regenerate: always" in result["msg"]
    assert "shopping" not in out
    assert key_path.read_text() == "this is not a key, it is my shopping list\n"


def test_invalid_existing_file_is_replaced_with_regenerate_always(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    key_path.write_text("garbage\n")
    result = module_result(capsys, path=str(key_path), regenerate="always", diff=True)
    assert result["changed"] is True and result["action"] == "regenerate"
    assert result["public_key"] == b64(public_key(key_of(key_path)))
    assert result["diff"]["before"]["fingerprint"].startswith("(not a valid key")


def test_regenerate_fail_refuses_a_preshared_key_as_private_key(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    key_path.write_text(kp.encode_key(bytes(range(1, 33))))
    result = module_result(capsys, path=str(key_path), regenerate="fail")
    assert result["failed"] is True
    assert result["msg"].startswith("regenerate (%s): " % key_path)


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_absent_removes_the_key(tmp_path, capsys, check_mode):
    key_path = tmp_path / "wg0.key"
    write_known_key(key_path)
    result, out = run_module(capsys, check_mode=check_mode, diff=True, path=str(key_path), state="absent")
    assert result["changed"] is True and result["action"] == "remove"
    assert result["public_key"] is None and result["fingerprint"] is None
    assert result["diff"]["after"] == {"state": "absent", "fingerprint": None}
    assert key_path.exists() is check_mode
    assert_no_secret(out, KNOWN_PRIVATE)


def test_absent_when_missing_is_unchanged(tmp_path, capsys):
    result = module_result(capsys, path=str(tmp_path / "nope" / "wg0.key"), state="absent")
    assert result["changed"] is False and result["action"] == "none" and result["state"] == "absent"
    assert not (tmp_path / "nope").exists()


def test_mode_option_and_mode_fix(tmp_path, capsys):
    key_path = tmp_path / "wg0.key"
    result = module_result(capsys, path=str(key_path), mode="0640")
    assert result["changed"] is True and mode_of(key_path) == 0o640
    again = module_result(capsys, path=str(key_path), mode="0640")
    assert again["changed"] is False
    fixed = module_result(capsys, path=str(key_path), diff=True)
    assert fixed["changed"] is True and fixed["action"] == "keep" and mode_of(key_path) == 0o600
    assert fixed["diff"]["before"]["mode"] == "0640" and fixed["diff"]["after"]["mode"] == "0600"


def test_path_that_is_a_directory_fails_naming_path(tmp_path, capsys):
    result = module_result(capsys, path=str(tmp_path))
    assert result["failed"] is True and result["msg"].startswith("path: ")


def test_group_writable_directory_warns(tmp_path, capsys, monkeypatch):
    # Where a warning ends up depends on whether controller code was imported in this process
    # (ansible-core 2.19 then displays it instead of returning it): record it at the module.
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg, *a, **kw: warnings.append(msg))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    result = module_result(capsys, path=str(shared / "wg0.key"))
    assert result["changed"] is True
    assert len(warnings) == 1 and "%s is writable by group or others" % shared in warnings[0]


def test_bad_choice_is_rejected_by_the_argument_spec(tmp_path, capsys):
    result = module_result(capsys, path=str(tmp_path / "k"), regenerate="sometimes")
    assert result["failed"] is True and "regenerate" in result["msg"]


def test_private_key_bytes_appear_nowhere_in_any_output(tmp_path, capsys):
    """Every code path the module has, with diff on; the key may appear in no form at all."""
    key_path = tmp_path / "keys" / "wg0.key"
    outputs = []
    for check_mode, args in [
        (True, {}),
        (False, {}),
        (False, {}),
        (True, {}),
        (False, {"mode": "0640"}),
        (False, {"regenerate": "fail"}),
        (True, {"regenerate": "always"}),
    ]:
        out = module_output(capsys, check_mode=check_mode, diff=True, path=str(key_path), **args)
        outputs.append(out)
    raw = key_of(key_path)
    for out in outputs:
        assert_no_secret(out, raw)
    # After a regeneration, neither the old nor the new key is in the output.
    out = module_output(capsys, diff=True, path=str(key_path), regenerate="always")
    assert_no_secret(out, raw)
    assert_no_secret(out, key_of(key_path))
    out = module_output(capsys, diff=True, path=str(key_path), state="absent")
    assert_no_secret(out, raw)

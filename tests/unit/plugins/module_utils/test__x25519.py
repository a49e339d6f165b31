# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 7748 test vectors for the pure-Python X25519, and cross-checks with `wg pubkey`."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from ansible_collections.tunnelgate.wireguard.plugins.module_utils import _x25519

# RFC 7748 section 5.2: X25519(scalar, u) = output.
RFC7748_5_2 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]

# RFC 7748 section 5.2, iterated: k = u = 9, then (k, u) = (X25519(k, u), k).
RFC7748_ITERATED = {
    1: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
    1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
}

# RFC 7748 section 6.1: Diffie-Hellman with Alice and Bob.
ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED_SECRET = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

# Key pairs made with `wg genkey | tee k | wg pubkey` (wireguard-tools), for the cross-check
# without the binary.
WG_TOOLS_PAIRS = [
    ("eGpjrSKmIslXyGDPo7AlD8WD8dKmAkVNENUjfvZzFnE=", "xBa/hcm9snruqkddGQVvajzIGVA7o8NZK5PLzYQ5EX4="),
]


def h(text):
    return bytes.fromhex(text)


@pytest.mark.parametrize("scalar, u, expected", RFC7748_5_2)
def test_rfc7748_section_5_2_vectors(scalar, u, expected):
    assert _x25519.x25519(h(scalar), h(u)).hex() == expected


def test_rfc7748_section_5_2_iterated():
    k = u = _x25519.BASE_POINT
    for i in range(1, 1001):
        k, u = _x25519.x25519(k, u), k
        if i in RFC7748_ITERATED:
            assert k.hex() == RFC7748_ITERATED[i], "after %d iterations" % i


@pytest.mark.parametrize(
    "private, public",
    [(ALICE_PRIVATE, ALICE_PUBLIC), (BOB_PRIVATE, BOB_PUBLIC)],
    ids=["alice", "bob"],
)
def test_rfc7748_section_6_1_public_keys(private, public):
    assert _x25519.public_key(h(private)).hex() == public


def test_rfc7748_section_6_1_shared_secret_both_ways():
    alice_view = _x25519.x25519(h(ALICE_PRIVATE), h(BOB_PUBLIC))
    bob_view = _x25519.x25519(h(BOB_PRIVATE), h(ALICE_PUBLIC))
    assert alice_view.hex() == SHARED_SECRET
    assert bob_view.hex() == SHARED_SECRET


def test_u_coordinate_high_bit_is_masked():
    scalar, u, expected = RFC7748_5_2[0]
    u_high = bytearray(h(u))
    u_high[31] |= 0x80
    assert _x25519.x25519(h(scalar), bytes(u_high)).hex() == expected


@pytest.mark.parametrize(
    "raw, clamped",
    [
        ("ff" * 32, "f8" + "ff" * 30 + "7f"),
        ("00" * 32, "00" * 31 + "40"),
        ("07" + "00" * 30 + "80", "00" * 31 + "40"),
    ],
    ids=["all-ones", "all-zeros", "low-and-top-bits"],
)
def test_clamp_scalar(raw, clamped):
    assert _x25519.clamp_scalar(h(raw)).hex() == clamped


def test_clamping_is_idempotent_and_applied_by_x25519():
    raw = bytes(range(32))
    clamped = _x25519.clamp_scalar(raw)
    assert _x25519.clamp_scalar(clamped) == clamped
    assert _x25519.public_key(raw) == _x25519.public_key(clamped)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "a" * 32])
def test_wrong_sizes_and_types_are_refused(bad):
    with pytest.raises(ValueError):
        _x25519.public_key(bad)
    with pytest.raises(ValueError):
        _x25519.x25519(b"\x01" * 32, bad)


def test_generate_private_key_is_clamped_and_uses_the_random_source():
    calls = []

    def fake_urandom(size):
        calls.append(size)
        return b"\xff" * size

    key = _x25519.generate_private_key(fake_urandom)
    assert calls == [32]
    assert key == _x25519.clamp_scalar(b"\xff" * 32)


def test_generated_keys_differ():
    assert _x25519.generate_private_key() != _x25519.generate_private_key()


@pytest.mark.parametrize("private_b64, public_b64", WG_TOOLS_PAIRS)
def test_matches_recorded_wg_pubkey(private_b64, public_b64):
    public = _x25519.public_key(base64.b64decode(private_b64))
    assert base64.b64encode(public).decode() == public_b64


@pytest.mark.skipif(shutil.which("wg") is None, reason="wireguard-tools (wg) is not installed")
@pytest.mark.parametrize("run", range(5))
def test_matches_wg_pubkey_for_fresh_keys(run):
    private_b64 = subprocess.run(["wg", "genkey"], check=True, capture_output=True, text=True).stdout
    expected = subprocess.run(
        ["wg", "pubkey"], input=private_b64, check=True, capture_output=True, text=True
    ).stdout.strip()
    public = _x25519.public_key(base64.b64decode(private_b64.strip()))
    assert base64.b64encode(public).decode() == expected

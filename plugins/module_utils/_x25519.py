# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tunnelgate maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""X25519 (RFC 7748) in pure Python: enough to derive a WireGuard public key from a private key.

The managed host then needs neither the ``wg`` binary nor the ``cryptography`` library.
This implementation follows RFC 7748 section 5 literally (scalar clamping, u-coordinate
decoding, the Montgomery ladder with conditional swaps). Python integers are not
constant-time; that is acceptable here because it only ever runs on the host that owns the
key, once per module run, never as a network-facing oracle.

Private to the collection (leading underscore): not a public API.
"""

from __future__ import annotations

import os

KEY_SIZE = 32
P = 2 ** 255 - 19
A24 = 121665
BASE_POINT = b"\x09" + b"\x00" * 31


def clamp_scalar(scalar):
    """Return the 32-byte scalar clamped as RFC 7748 section 5 ("decodeScalar25519") does.

    Clears the three low bits, clears bit 255 and sets bit 254. WireGuard stores private
    keys already clamped (``wg genkey`` does the same), so clamping is idempotent.
    """
    _check_length("scalar", scalar)
    clamped = bytearray(scalar)
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    return bytes(clamped)


def _check_length(what, value):
    if not isinstance(value, (bytes, bytearray)) or len(value) != KEY_SIZE:
        raise ValueError("%s must be %d bytes" % (what, KEY_SIZE))


def _decode_scalar(scalar):
    return int.from_bytes(clamp_scalar(scalar), "little")


def _decode_u(u):
    _check_length("u-coordinate", u)
    masked = bytearray(u)
    # RFC 7748: implementations of X25519 MUST mask the most significant bit.
    masked[31] &= 127
    return int.from_bytes(bytes(masked), "little") % P


def _encode_u(u):
    return (u % P).to_bytes(KEY_SIZE, "little")


def _cswap(swap, a, b):
    """Conditional swap without a data-dependent branch (as in RFC 7748's pseudo code)."""
    mask = -swap  # 0 or -1 (all bits set)
    dummy = mask & (a ^ b)
    return a ^ dummy, b ^ dummy


def x25519(scalar, u):
    """Return X25519(scalar, u) as 32 bytes (RFC 7748 section 5)."""
    k = _decode_scalar(scalar)
    x1 = _decode_u(u)
    x2, z2 = 1, 0
    x3, z3 = x1, 1
    swap = 0
    for t in range(254, -1, -1):
        k_t = (k >> t) & 1
        swap ^= k_t
        x2, x3 = _cswap(swap, x2, x3)
        z2, z3 = _cswap(swap, z2, z3)
        swap = k_t

        a = (x2 + z2) % P
        aa = (a * a) % P
        b = (x2 - z2) % P
        bb = (b * b) % P
        e = (aa - bb) % P
        c = (x3 + z3) % P
        d = (x3 - z3) % P
        da = (d * a) % P
        cb = (c * b) % P
        x3 = pow(da + cb, 2, P)
        z3 = (x1 * pow(da - cb, 2, P)) % P
        x2 = (aa * bb) % P
        z2 = (e * (aa + A24 * e)) % P

    x2, x3 = _cswap(swap, x2, x3)
    z2, z3 = _cswap(swap, z2, z3)
    return _encode_u(x2 * pow(z2, P - 2, P))


def public_key(private_key):
    """Return the 32-byte public key of a 32-byte private key (X25519 with the base point 9)."""
    return x25519(private_key, BASE_POINT)


def generate_private_key(urandom=os.urandom):
    """Return a new clamped 32-byte private key from the OS's CSPRNG (as ``wg genkey`` does)."""
    return clamp_scalar(urandom(KEY_SIZE))

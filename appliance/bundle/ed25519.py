"""Ed25519 signature verification (RFC 8032) in pure Python, standard library only.

Why it exists: the bundle's verifier must run on an air-gapped server *before* anything from the
bundle's wheelhouse is trusted, so it cannot import ``cryptography`` (which would be native code taken
from the very archive under test). Only verification is implemented; signing stays with
``cryptography`` and the keystore on the build machine. Speed is irrelevant (one signature per
bundle), so the arithmetic is the plain textbook form in extended twisted-Edwards coordinates.
This module is shipped verbatim inside every bundle next to ``verify_bundle.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
# DER prefix of an Ed25519 SubjectPublicKeyInfo (OID 1.3.101.112) followed by the 32 key bytes.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

_Point = tuple[int, int, int, int]


class InvalidSignature(ValueError):
    """The signature, the public key or the signed message does not check out."""


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    m = (y1 - x1) * (y2 - x2) % _P
    n = (y1 + x1) * (y2 + x2) % _P
    c = 2 * _D * t1 * t2 % _P
    dz = 2 * z1 * z2 % _P
    e, f, g, h = n - m, dz - c, dz + c, n + m
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: _Point) -> _Point:
    result: _Point = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


_IDENTITY: _Point = (0, 1, 1, 0)


def _small_order(point: _Point) -> bool:
    """Eight times a point of order 1, 2, 4 or 8 is the identity: such a key or R signs nothing.

    With a small-order public key, one signature can "verify" for many messages (or a key can be
    chosen to match a forged signature); RFC 8032 leaves the check optional, libsodium and
    ``cryptography``'s backends make it, and so does this verifier.
    """
    return _same(_multiply(8, point), _IDENTITY)


def _decode_point(encoded: bytes) -> _Point:
    if len(encoded) != 32:
        raise InvalidSignature("a point must be 32 bytes")
    value = int.from_bytes(encoded, "little")
    sign, y = value >> 255, value & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidSignature("point coordinate out of range")
    x_squared = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x_squared, (_P + 3) // 8, _P)
    if (x * x - x_squared) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x_squared) % _P:
        raise InvalidSignature("not a point on the curve")
    if x == 0 and sign:
        raise InvalidSignature("non-canonical point encoding")
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


_BASE_Y = 4 * pow(5, _P - 2, _P) % _P
_BASE = _decode_point(_BASE_Y.to_bytes(32, "little"))


def public_key_from_pem(pem: bytes) -> bytes:
    """The raw 32-byte key of an Ed25519 ``PUBLIC KEY`` PEM (what ``cryptography`` writes)."""
    lines = [line.strip() for line in pem.decode("ascii", "replace").splitlines()]
    try:
        begin = lines.index("-----BEGIN PUBLIC KEY-----")
        end = lines.index("-----END PUBLIC KEY-----")
        der = base64.b64decode("".join(lines[begin + 1 : end]), validate=True)
    except (ValueError, binascii.Error) as error:
        raise InvalidSignature("not a PEM public key") from error
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise InvalidSignature("not an Ed25519 public key")
    return der[len(_SPKI_PREFIX) :]


def verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is ``public_key``'s signature of ``message``."""
    if len(signature) != 64:
        raise InvalidSignature("a signature must be 64 bytes")
    point_a = _decode_point(public_key)
    point_r = _decode_point(signature[:32])
    if _small_order(point_a):
        raise InvalidSignature("the public key is a point of small order")
    if _small_order(point_r):
        raise InvalidSignature("the signature's R is a point of small order")
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        raise InvalidSignature("non-canonical signature scalar")
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    if not _same(_multiply(s, _BASE), _add(point_r, _multiply(h, point_a))):
        raise InvalidSignature("signature does not match")

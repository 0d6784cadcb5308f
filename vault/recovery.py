"""The recovery key: 160 random bits written as 8 groups of 4 Crockford base32 characters plus 1 check group.

Crockford's alphabet leaves out I, L, O and U, and reading maps the look-alikes back, so a key copied by hand from
paper survives the usual slips; the check group tells a typo apart from a key that belongs to another vault.
"""

from __future__ import annotations

import hashlib

from vault import crypto
from vault.errors import MalformedRecoveryKey

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_DECODE.update({"I": 1, "L": 1, "O": 0, "U": _DECODE["V"]})
SECRET_BYTES = 20


def _encode_bits(value: int, chars: int) -> str:
    return "".join(_ALPHABET[(value >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def _check(secret: bytes) -> str:
    digest = hashlib.sha256(b"medvault/recovery-check/v1" + secret).digest()
    return _encode_bits(int.from_bytes(digest[:3], "big") >> 4, 4)


def new_secret() -> bytes:
    return crypto.random_bytes(SECRET_BYTES)


def format_key(secret: bytes) -> str:
    body = _encode_bits(int.from_bytes(secret, "big"), 32)
    groups = [body[i:i + 4] for i in range(0, 32, 4)] + [_check(secret)]
    return "-".join(groups)


def parse_key(text: str) -> bytes:
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t\r\n")
    if len(cleaned) != 36 or any(ch not in _DECODE for ch in cleaned):
        raise MalformedRecoveryKey()
    value = 0
    for ch in cleaned[:32]:
        value = (value << 5) | _DECODE[ch]
    secret = value.to_bytes(SECRET_BYTES, "big")
    normalized_check = "".join(_ALPHABET[_DECODE[ch]] for ch in cleaned[32:])
    if normalized_check != _check(secret):
        raise MalformedRecoveryKey("That recovery key has a typo: its last group does not match; "
                                   "check each group against your printed recovery kit.")
    return secret

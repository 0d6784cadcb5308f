"""The few multiformats pieces medvault needs: unsigned varints, base58btc and RFC 4648 base32 multibase.

Small enough to keep here rather than pull in a dependency; ``sync`` reuses them for CIDs.
"""

from __future__ import annotations

import base64

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


def varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be unsigned")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """Returns (value, offset after it). Rejects varints longer than 9 bytes (the multiformats limit) and
    non-minimal ones, so every value has exactly one encoding."""
    value = shift = 0
    for i in range(9):
        if offset + i >= len(data):
            raise ValueError("truncated varint")
        byte = data[offset + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i:
                raise ValueError("non-minimal varint")
            return value, offset + i + 1
        shift += 7
    raise ValueError("varint too long")


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError("not base58btc")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\0" * leading + body


def b32encode_lower(data: bytes) -> str:
    """Lowercase RFC 4648 base32 without padding: the body of multibase 'b' (what IPFS prints for CIDv1)."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32decode_lower(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))

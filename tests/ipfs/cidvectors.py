"""The CID vectors of the shared fixtures' cid folder (tests.conftest.FIXTURES) and their inputs, generated as the vectors' recipe says."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from tests.conftest import FIXTURES

CID_FIXTURES = FIXTURES / "cid"


def load_vectors() -> dict:
    path = CID_FIXTURES / "vectors.json"
    if not path.exists():
        pytest.fail(f"the CID vectors are missing: expected {path} (tests.conftest.FIXTURES)",
                    pytrace=False)
    return json.loads(path.read_text())


class ChaChaStream:
    """The vectors' seeded inputs as a binary file object: ``size`` bytes of ChaCha20 keystream.

    Recipe from vectors.json: key = sha256(seed), all-zero nonce, block counter 0, i.e. ChaCha20 over zero bytes.
    Produced on demand so the 1 GiB inputs never sit in memory.
    """

    def __init__(self, seed: str, size: int) -> None:
        key = hashlib.sha256(seed.encode("utf-8")).digest()
        # cryptography's 16-byte ChaCha20 nonce is the 32-bit little-endian counter followed by the 96-bit nonce.
        self._enc = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        self._left = size

    def readinto(self, buf) -> int:
        n = min(len(buf), self._left)
        if n:
            buf[:n] = self._enc.update(bytes(n))
            self._left -= n
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        n = min(n, self._left)
        self._left -= n
        return self._enc.update(bytes(n))


def vector_input(vector: dict):
    """A file object over the vector's input."""
    if vector["seed"] is None:
        if vector["name"] != "hello-world":
            raise AssertionError(f"no recipe for unseeded vector {vector['name']}")
        return io.BytesIO(b"hello world")
    return ChaChaStream(vector["seed"], vector["size"])

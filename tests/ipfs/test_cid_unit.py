"""sync.cid without a node: parsing, streaming inputs, matching, profile rules."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.cid import (KUBO_V1, PROFILES, SHARE_PROFILE, UNIXFS_V0_2015, UNIXFS_V1_2025, ImportProfile, cid_matches,
                      compute_cid, is_valid_cid, parse_cid, raw_cid_of)
from sync.cid import _cid_text, _leaf, _node  # the block encoders, for the tree-shape reference below

HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
HELLO_V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
EMPTY_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"  # the well-known empty UnixFS file


def test_share_profile_is_named_and_raw_base32():
    assert SHARE_PROFILE is UNIXFS_V1_2025 is PROFILES["unixfs-v1-2025"]
    assert SHARE_PROFILE.chunker == "size-1048576"
    assert compute_cid(b"hello world") == HELLO_V1 == raw_cid_of(b"hello world")


def test_share_size_cap_keeps_the_cid_independent_of_node_link_limits():
    # js-ipfs cannot be told a link limit over HTTP and uses 174; a capped share never has more leaves than that,
    # so the node's DAG and the profile's agree. Raising the cap past this breaks daemon CID == local CID.
    from sync.cid import MAX_SHARE_BYTES
    assert -(-MAX_SHARE_BYTES // SHARE_PROFILE.chunk_size) <= 174


def test_empty_file():
    assert compute_cid(b"", UNIXFS_V0_2015) == EMPTY_V0
    assert compute_cid(b"", KUBO_V1) == raw_cid_of(b"")
    assert compute_cid(io.BytesIO(b""), UNIXFS_V0_2015) == EMPTY_V0


def test_single_chunk_raw_cid_is_the_plain_sha256():
    data = random.Random(1).randbytes(1000)
    parsed = parse_cid(compute_cid(data))
    assert (parsed.version, parsed.codec, parsed.digest) == (1, 0x55, hashlib.sha256(data).digest())


class _Trickle(io.RawIOBase):
    """A pipe-like reader that hands out at most a few bytes per call."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data, self._pos, self._rng = data, 0, random.Random(seed)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self._rng.randrange(1, 4000), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


class _ReadOnly:
    """A file object with only ``read`` (no ``readinto``), e.g. some archive members."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(n, 777) if n and n > 0 else n)


@pytest.mark.parametrize("profile", [UNIXFS_V0_2015, KUBO_V1, UNIXFS_V1_2025], ids=lambda p: p.name)
def test_short_reads_give_the_same_cid(profile):
    c = profile.chunk_size
    for size in (0, 1, c - 1, c, c + 1, 2 * c + 1):
        data = random.Random(size).randbytes(size)
        expected = compute_cid(data, profile)
        assert compute_cid(_Trickle(data, size), profile) == expected
        assert compute_cid(_ReadOnly(data), profile) == expected
        assert compute_cid(bytearray(data), profile) == compute_cid(memoryview(data), profile) == expected


def test_non_bytes_sources_are_refused():
    with pytest.raises(TypeError):
        compute_cid("hello world")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        compute_cid(io.StringIO("hello world"))  # type: ignore[arg-type]


def test_profile_rules():
    with pytest.raises(ValueError):
        ImportProfile("bad", cid_version=0, raw_leaves=True, chunk_size=1024, max_links=174)
    with pytest.raises(ValueError):
        ImportProfile("bad", cid_version=1, raw_leaves=True, chunk_size=0, max_links=174)
    with pytest.raises(ValueError):
        ImportProfile("bad", cid_version=1, raw_leaves=True, chunk_size=1024, max_links=174, layout="trickle")


def test_profiles_give_different_cids_past_one_chunk():
    data = random.Random(2).randbytes(300_000)
    cids = {compute_cid(data, p) for p in (UNIXFS_V0_2015, KUBO_V1, UNIXFS_V1_2025)}
    assert len(cids) == 3


# ---- parsing --------------------------------------------------------------------------------------------------


def test_parse_valid():
    v1 = parse_cid(HELLO_V1)
    assert (v1.version, v1.codec, v1.text) == (1, 0x55, HELLO_V1)
    v0 = parse_cid(HELLO_V0)
    assert (v0.version, v0.codec, v0.text) == (0, 0x70, HELLO_V0)
    dag = compute_cid(random.Random(3).randbytes(2 * 1048576 + 1))
    assert dag.startswith("bafybei") and parse_cid(dag).codec == 0x70


def _v1_text(raw: bytes) -> str:
    import base64
    return "b" + base64.b32encode(raw).decode().rstrip("=").lower()


INVALID = [
    "",
    "b",
    "Qm",
    HELLO_V1.upper(),                       # another multibase ('B' is upper-case base32)
    "B" + HELLO_V1[1:],
    HELLO_V1[:-1],                          # truncated
    HELLO_V1 + "a",                         # trailing junk
    HELLO_V1[:-1] + "f",                    # non-zero pad bits: an alias spelling of some CID
    "z" + HELLO_V1[1:],                     # base58btc multibase prefix with base32 body
    HELLO_V0[:-1] + "0",                    # '0' is not base58
    HELLO_V0[:-1],
    "../../../../etc/passwd",
    "bafkrei/../../x" + "a" * 44,
    HELLO_V1[:20] + "%2e" + HELLO_V1[23:],
    HELLO_V1 + "\n",
    " " + HELLO_V1[1:],
    _v1_text(b"\x01\x71\x12\x20" + bytes(32)),     # dag-cbor codec
    _v1_text(b"\x01\x55\x13\x40" + bytes(64)),     # sha2-512
    _v1_text(b"\x02\x55\x12\x20" + bytes(32)),     # CID version 2
    _v1_text(b"\x01\x55\x12\x1f" + bytes(32)),     # digest length field disagrees with the digest
]


@pytest.mark.parametrize("text", INVALID)
def test_parse_refuses(text):
    with pytest.raises(ValueError):
        parse_cid(text)
    assert not is_valid_cid(text)


def test_parse_refuses_non_text():
    with pytest.raises(ValueError):
        parse_cid(b"bafkrei")  # type: ignore[arg-type]


def test_valid_cids_round_trip_exhaustively_random():
    rng = random.Random(4)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 5000))
        for profile in (UNIXFS_V0_2015, KUBO_V1):
            cid = compute_cid(data, profile)
            assert parse_cid(cid).text == cid and is_valid_cid(cid)


# ---- matching -------------------------------------------------------------------------------------------------


def test_cid_matches():
    data = random.Random(5).randbytes(3 * 262144 + 5)
    for profile in (UNIXFS_V0_2015, KUBO_V1, UNIXFS_V1_2025):
        assert cid_matches(data, compute_cid(data, profile))
    share = compute_cid(data)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 1
    assert not cid_matches(bytes(tampered), share)
    assert not cid_matches(data, compute_cid(data, KUBO_V1), profiles=(SHARE_PROFILE,))
    assert not cid_matches(data, "not a cid")
    assert not cid_matches(b"hello world!", HELLO_V1)
    assert cid_matches(b"hello world", HELLO_V1)


# ---- the streaming builder against the plain definition of the balanced layout ---------------------------------

def _balanced_by_definition(data: bytes, profile: ImportProfile) -> str:
    """Group leaves ``max_links`` at a time, level by level, until one remains (the reference importers' rule)."""
    c = profile.chunk_size
    chunks = [data[i:i + c] for i in range(0, len(data), c)] or [b""]
    level = [_leaf(memoryview(ch), profile) for ch in chunks]
    while len(level) > 1:
        level = [_node(level[i:i + profile.max_links], profile) for i in range(0, len(level), profile.max_links)]
    return _cid_text(level[0].cid)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), chunk=st.integers(1, 64), links=st.integers(2, 8), v0=st.booleans())
def test_streaming_builder_equals_the_balanced_definition(data, chunk, links, v0):
    # Small chunks and link limits give trees many levels deep, where an off-by-one in flushing would show.
    profile = ImportProfile("p", cid_version=0 if v0 else 1, raw_leaves=not v0, chunk_size=chunk, max_links=links)
    expected = _balanced_by_definition(data, profile)
    assert compute_cid(data, profile) == expected
    assert compute_cid(_Trickle(data, len(data)), profile) == expected

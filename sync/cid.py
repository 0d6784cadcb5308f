"""UnixFS file CIDs computed locally, byte-identical to what an IPFS node computes.

A CID only proves anything if the receiver can recompute it from the bytes it fetched, so this module
re-implements the exact import pipeline of Kubo and js-ipfs for plain files: fixed-size chunking, leaves as
raw blocks or UnixFS ``File`` nodes, a *balanced* DAG of dag-pb nodes, sha2-256, and the textual CID
(base58btc for CIDv0, lowercase unpadded base32 with the ``b`` multibase prefix for CIDv1).

The dag-pb / UnixFS protobuf encoding is written by hand: it is a handful of fields, and a protobuf
dependency would be heavier than the code it replaces. Field order and presence follow the canonical
dag-pb encoding (links before data; a link's ``Name`` is written even when empty) because one byte of
difference changes every CID above it.

Profiles (see ``docs/content-addressing.md``):

``unixfs-v1-2025``  (medvault's share profile, :data:`SHARE_PROFILE`)
    CIDv1, raw leaves, 1 MiB chunks, 1024 links per node, balanced. This is the IPIP-499 profile that
    Kubo names ``unixfs-v1-2025``. Chosen because a share file (a compressed, encrypted FHIR bundle) is
    almost always under 1 MiB, so its CID is a single raw block: ``bafkrei...`` is then just the
    sha2-256 of the bytes, which any receiver can check with nothing but a hash function. The IPFS
    backend passes ``cid-version=1, raw-leaves=true, chunker=size-1048576`` so the daemon builds the same
    DAG; share files are capped at :data:`MAX_SHARE_BYTES`, far below 174 leaves of 1 MiB, so a daemon
    whose link limit cannot be set per call (js-ipfs uses 174) still yields the same CID.
``kubo-v1``
    Kubo's plain ``ipfs add --cid-version=1``: raw leaves, 256 KiB chunks, 174 links. Kept so that a file a
    user added by hand with Kubo's defaults can be verified.
``unixfs-v0-2015``
    The classic default (CIDv0, UnixFS ``File`` leaves, 256 KiB chunks, 174 links).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import BinaryIO, Union

from vault.multiformats import B58_ALPHABET, b32decode_lower, b32encode_lower, b58decode, b58encode, read_varint, varint

__all__ = [
    "ImportProfile",
    "PROFILES",
    "UNIXFS_V0_2015",
    "UNIXFS_V1_2025",
    "KUBO_V1",
    "SHARE_PROFILE",
    "MAX_SHARE_BYTES",
    "ParsedCid",
    "compute_cid",
    "parse_cid",
    "is_valid_cid",
    "cid_matches",
    "raw_cid_of",
]

CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MH_SHA2_256 = 0x12
_SHA256_LEN = 32


@dataclass(frozen=True)
class ImportProfile:
    name: str
    cid_version: int
    raw_leaves: bool
    chunk_size: int
    max_links: int
    layout: str = "balanced"

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        if self.cid_version == 0 and self.raw_leaves:
            # CIDv0 can only name dag-pb blocks; Kubo silently upgrades to v1 in that case.
            raise ValueError("raw leaves need CIDv1")
        if self.chunk_size <= 0 or self.max_links < 2:
            raise ValueError("chunk_size must be positive and max_links at least 2")
        if self.layout != "balanced":
            raise ValueError("only the balanced layout is implemented")

    @property
    def chunker(self) -> str:
        """The ``chunker`` argument an IPFS node takes for this profile."""
        return f"size-{self.chunk_size}"


UNIXFS_V0_2015 = ImportProfile("unixfs-v0-2015", cid_version=0, raw_leaves=False,
                               chunk_size=262144, max_links=174)
UNIXFS_V1_2025 = ImportProfile("unixfs-v1-2025", cid_version=1, raw_leaves=True,
                               chunk_size=1048576, max_links=1024)
KUBO_V1 = ImportProfile("kubo-v1", cid_version=1, raw_leaves=True,
                        chunk_size=262144, max_links=174)

PROFILES: dict[str, ImportProfile] = {p.name: p for p in (UNIXFS_V0_2015, UNIXFS_V1_2025, KUBO_V1)}

SHARE_PROFILE = UNIXFS_V1_2025

# 174 is the smallest link limit among the nodes we talk to (js-ipfs cannot be told otherwise over
# HTTP); staying under 174 chunks keeps the share profile's CID independent of that limit.
MAX_SHARE_BYTES = 64 * 1024 * 1024

Source = Union[bytes, bytearray, memoryview, BinaryIO]


# ---------------------------------------------------------------------------------------------------
# encodings




def _multihash(digest: bytes) -> bytes:
    return bytes((MH_SHA2_256, _SHA256_LEN)) + digest


def _cid_bytes(version: int, codec: int, digest: bytes) -> bytes:
    if version == 0:
        return _multihash(digest)
    return b"\x01" + varint(codec) + _multihash(digest)


def _cid_text(cid: bytes) -> str:
    if cid[0] == MH_SHA2_256:
        return b58encode(cid)
    return "b" + b32encode_lower(cid)


# ---------------------------------------------------------------------------------------------------
# DAG building


@dataclass(frozen=True)
class _Link:
    cid: bytes      # binary CID as it appears in a dag-pb link
    tsize: int      # bytes of the whole sub-DAG: what dag-pb calls Tsize
    filesize: int   # bytes of file content below this link (UnixFS blocksizes)


def _leaf(chunk: memoryview, profile: ImportProfile) -> _Link:
    n = len(chunk)
    if profile.raw_leaves:
        digest = hashlib.sha256(chunk).digest()
        return _Link(_cid_bytes(1, CODEC_RAW, digest), n, n)
    # UnixFS Data{Type=File, Data=chunk, filesize=n}; an empty Data field is omitted, as the
    # reference importers do (that gives the well-known empty-file CID).
    data_field = (b"\x12" + varint(n)) if n else b""
    tail = b"\x18" + varint(n)
    unixfs_len = 2 + len(data_field) + n + len(tail)
    head = b"\x0a" + varint(unixfs_len) + b"\x08\x02" + data_field
    h = hashlib.sha256(head)
    h.update(chunk)  # hashed in pieces so a chunk is never copied into a new block buffer
    h.update(tail)
    block_len = len(head) + n + len(tail)
    return _Link(_cid_bytes(profile.cid_version, CODEC_DAG_PB, h.digest()), block_len, n)


def _node(children: list[_Link], profile: ImportProfile) -> _Link:
    out = bytearray()
    filesize = 0
    for child in children:
        link = b"\x0a" + varint(len(child.cid)) + child.cid + b"\x12\x00" + b"\x18" + varint(child.tsize)
        out += b"\x12" + varint(len(link)) + link
        filesize += child.filesize
    unixfs = bytearray(b"\x08\x02\x18" + varint(filesize))
    for child in children:
        unixfs += b"\x20" + varint(child.filesize)
    out += b"\x0a" + varint(len(unixfs)) + unixfs
    digest = hashlib.sha256(out).digest()
    tsize = len(out) + sum(c.tsize for c in children)
    return _Link(_cid_bytes(profile.cid_version, CODEC_DAG_PB, digest), tsize, filesize)


class _BalancedBuilder:
    """Builds the balanced DAG one leaf at a time, keeping only one pending row per tree level.

    A row is turned into a node only when one more sibling arrives (or at the end), which yields exactly
    the tree the reference importers build by grouping leaves ``max_links`` at a time, level by level.
    """

    def __init__(self, profile: ImportProfile) -> None:
        self._profile = profile
        self._levels: list[list[_Link]] = [[]]

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        row = self._levels[level]
        if len(row) == self._profile.max_links:
            self._push(level + 1, _node(row, self._profile))
            self._levels[level] = row = []
        row.append(link)

    def add_leaf(self, link: _Link) -> None:
        self._push(0, link)

    def finish(self) -> _Link:
        level = 0
        while True:
            row = self._levels[level]
            top = all(not r for r in self._levels[level + 1:])
            if top and len(row) == 1:
                return row[0]  # a lone leaf is the file itself; a lone node is the root
            node = _node(row, self._profile)
            self._levels[level] = []
            self._push(level + 1, node)
            level += 1


def _chunks_from_buffer(data: memoryview, size: int):
    if len(data) == 0:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _chunks_from_file(stream: BinaryIO, size: int):
    # One buffer for the whole file: each chunk is hashed before the next read overwrites it.
    buf = bytearray(size)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    emitted = False
    while True:
        filled = 0
        while filled < size:
            # A short read is not the end of a pipe or socket; only an empty one is.
            if readinto is not None:
                got = readinto(view[filled:])
            else:
                piece = stream.read(size - filled)
                got = len(piece)
                view[filled:filled + got] = piece
            if not got:
                break
            filled += got
        if filled or not emitted:
            emitted = True
            yield view[:filled]
        if filled < size:
            return


def compute_cid(source: Source, profile: ImportProfile = SHARE_PROFILE) -> str:
    """The CID an IPFS node gives ``source`` (bytes or a binary file object read to its end) under ``profile``.

    A file object is read in chunk-sized pieces, so memory stays at a few chunks plus one row of links per
    tree level whatever the file size.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        chunks = _chunks_from_buffer(memoryview(source).cast("B"), profile.chunk_size)
    elif isinstance(source, io.TextIOBase):
        raise TypeError("compute_cid needs bytes or a binary file object, not text")
    elif hasattr(source, "read"):
        chunks = _chunks_from_file(source, profile.chunk_size)
    else:
        raise TypeError("compute_cid needs bytes or a binary file object")
    builder = _BalancedBuilder(profile)
    for chunk in chunks:
        builder.add_leaf(_leaf(chunk, profile))
    return _cid_text(builder.finish().cid)


def raw_cid_of(data: bytes) -> str:
    """The CIDv1 of ``data`` as one raw block (what every raw-leaves profile gives a file of one chunk)."""
    return _cid_text(_cid_bytes(1, CODEC_RAW, hashlib.sha256(data).digest()))


# ---------------------------------------------------------------------------------------------------
# parsing


@dataclass(frozen=True)
class ParsedCid:
    version: int
    codec: int
    digest: bytes

    @property
    def text(self) -> str:
        """The canonical text form: base58btc for v0, base32 for v1."""
        return _cid_text(_cid_bytes(self.version, self.codec, self.digest))


_B32_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_B58_CHARS = frozenset(B58_ALPHABET)
# 'b' + base32 of 0x01, codec (1 byte for raw and dag-pb), 0x12 0x20, 32 digest bytes.
_V1_TEXT_LEN = 1 + (36 * 8 + 4) // 5


def parse_cid(text: str) -> ParsedCid:
    """Strictly parse a file CID: CIDv0 (``Qm...``) or base32 CIDv1, raw or dag-pb, sha2-256 only.

    Anything else raises ``ValueError``; callers use this as the syntax gate before any lookup, so it
    accepts exactly one spelling per CID (no other multibases, no upper case, no trailing junk).
    """
    if not isinstance(text, str):
        raise ValueError("a CID is text")
    if len(text) == 46 and text.startswith("Qm"):
        if not set(text) <= _B58_CHARS:
            raise ValueError("CIDv0 has a character outside base58btc")
        raw = b58decode(text)
        if len(raw) != 34 or raw[0] != MH_SHA2_256 or raw[1] != _SHA256_LEN:
            raise ValueError("CIDv0 is not a sha2-256 multihash")
        parsed = ParsedCid(0, CODEC_DAG_PB, raw[2:])
    elif len(text) == _V1_TEXT_LEN and text[0] == "b":
        body = text[1:]
        if not set(body) <= _B32_CHARS:
            raise ValueError("CIDv1 has a character outside lowercase base32")
        try:
            raw = b32decode_lower(body)
        except ValueError as exc:
            raise ValueError("CIDv1 is not valid base32") from exc
        if raw[0] != 1:
            raise ValueError("not a CIDv1")
        codec, pos = read_varint(raw, 1)
        if codec not in (CODEC_RAW, CODEC_DAG_PB):
            raise ValueError("CID codec is neither raw nor dag-pb")
        if raw[pos:pos + 2] != bytes((MH_SHA2_256, _SHA256_LEN)) or len(raw) != pos + 2 + _SHA256_LEN:
            raise ValueError("CID multihash is not sha2-256")
        parsed = ParsedCid(1, codec, raw[pos + 2:])
    else:
        raise ValueError("not a CIDv0 or base32 CIDv1")
    if parsed.text != text:
        # Rejects non-canonical spellings (e.g. nonzero pad bits in base32) that would alias one CID.
        raise ValueError("CID is not in canonical form")
    return parsed


def is_valid_cid(text: str) -> bool:
    try:
        parse_cid(text)
    except ValueError:
        return False
    return True


def cid_matches(source: bytes, expected: str, profiles: tuple[ImportProfile, ...] | None = None) -> bool:
    """Whether ``source`` has CID ``expected`` under any of ``profiles`` (default: every known profile).

    A raw CID names a single block, so it is checked by its hash alone whatever the chunk size. An invalid
    ``expected`` is simply not a match.
    """
    try:
        parsed = parse_cid(expected)
    except ValueError:
        return False
    if parsed.codec == CODEC_RAW:
        return hashlib.sha256(source).digest() == parsed.digest
    candidates = profiles if profiles is not None else tuple(PROFILES.values())
    for profile in candidates:
        if profile.cid_version != parsed.version:
            continue
        if compute_cid(source, profile) == expected:
            return True
    return False

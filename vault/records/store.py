"""Rows of the records tables other than the resources themselves: sources and their original payloads, lookups,
attachments. Functions take a DB-API connection and never commit: callers own the transaction
(``Vault.transaction()``), which is what makes one import all-or-nothing. Resources are written by
``writer.SourceWriter`` alone."""

from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Iterator

from vault import jsonsafe
from vault.records import jsonutil, trust as trust_levels

TRUST_LEVELS = trust_levels.LEVELS
CHUNK = 1 << 20
# The original payload is stored as one zlib stream cut into chunks, the first starting with this marker. No
# payload medvault stores uncompressed can start with a NUL byte (``sources.detect`` only takes text that starts
# with "{", "[", "shc:/" or "eyJ", and documents by their magic), so older, uncompressed payloads still read.
PAYLOAD_MARK = b"\x00mvz1"
PAYLOAD_LEVEL = 1          # several times faster than the default level, for a few more percent of bytes
_COMPRESS_IN_THREAD = 256 * 1024


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def name_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Source:
    id: int
    kind: str
    name_sha256: str
    payload_sha256: str
    payload_size: int
    imported_at: str
    trust: str
    verification: dict | None


def find_source(conn, payload_sha256: str) -> int | None:
    row = conn.execute("SELECT id FROM rec_sources WHERE payload_sha256 = ?", (payload_sha256,)).fetchone()
    return row[0] if row else None


def add_source(conn, *, kind: str, name_sha256: str, payload_sha256: str, payload_size: int, trust: str,
               verification: dict | None = None, imported_at: str | None = None) -> int:
    assert trust in TRUST_LEVELS
    cur = conn.execute(
        "INSERT INTO rec_sources (kind, name_sha256, payload_sha256, payload_size, imported_at, trust, verification)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, name_sha256, payload_sha256, payload_size, imported_at or utc_now(), trust,
         jsonsafe.dumps_text(verification) if verification is not None else None))
    return cur.lastrowid


def compress_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stored form of a payload read in pieces (NDJSON streams through here): marker, then zlib, re-cut into
    chunks of at most ``CHUNK`` bytes."""
    z = zlib.compressobj(PAYLOAD_LEVEL)
    pending = [PAYLOAD_MARK]
    size = len(PAYLOAD_MARK)
    for chunk in chunks:
        out = z.compress(chunk)
        if out:
            pending.append(out)
            size += len(out)
        if size >= CHUNK:
            joined = b"".join(pending)
            for i in range(0, len(joined) - CHUNK + 1, CHUNK):
                yield joined[i:i + CHUNK]
            rest = joined[len(joined) - len(joined) % CHUNK:]
            pending, size = [rest], len(rest)
    pending.append(z.flush())
    joined = b"".join(pending)
    for i in range(0, len(joined), CHUNK):
        yield joined[i:i + CHUNK]


class CompressedPayload:
    """A whole payload hashed, then compressed, on another thread while this one parses and checks it: hashlib and
    zlib let go of the GIL, so on a machine with two cores neither costs time on the import's own path. A payload
    that will not be stored after all (a file imported before) is ``discard``-ed: compression stops at its next
    slice."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data
        self._sha: str | None = None
        self._stored: list[bytes] | None = None
        self._discarded = False
        self._hashed = threading.Event()
        self._thread: threading.Thread | None = None
        if len(data) >= _COMPRESS_IN_THREAD:
            self._thread = threading.Thread(target=self._run, name="payload-compress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            if self._sha is None:
                self._sha = hashlib.sha256(self._data).hexdigest()
        finally:
            self._hashed.set()
        view = memoryview(self._data)
        # the same zlib stream as compressing the whole at once: deflate does not cut blocks where input pieces end
        self._stored = list(compress_chunks(view[i:i + CHUNK] for i in range(0, len(view), CHUNK)
                                            if not self._discarded))

    def sha256(self) -> str:
        """SHA-256 (hex) of the payload as received."""
        if self._thread is not None:
            self._hashed.wait()
        if self._sha is None:
            self._sha = hashlib.sha256(self._data).hexdigest()
        return self._sha

    def discard(self) -> None:
        self._discarded = True

    def chunks(self) -> list[bytes]:
        if self._thread is not None:
            self._thread.join()
        elif self._stored is None:
            self._run()
        assert self._stored is not None and not self._discarded
        return self._stored


def add_payload(conn, source_id: int, chunks: Iterable[bytes]) -> None:
    """Store already compressed chunks (``compress_chunks`` or ``CompressedPayload.chunks``)."""
    conn.executemany("INSERT INTO rec_source_payload (source_id, seq, data) VALUES (?, ?, ?)",
                     ((source_id, seq, chunk) for seq, chunk in enumerate(c for c in chunks if c)))


def read_payload(conn, source_id: int) -> Iterator[bytes]:
    """The original bytes, as received, whether they were stored compressed or (by older versions) as they were."""
    rows = conn.execute("SELECT data FROM rec_source_payload WHERE source_id = ? ORDER BY seq", (source_id,))
    first = rows.fetchone()
    if first is None:
        return
    head = bytes(first[0])
    if not head.startswith(PAYLOAD_MARK):
        yield head
        for (data,) in rows:
            yield bytes(data)
        return
    z = zlib.decompressobj()
    yield z.decompress(head[len(PAYLOAD_MARK):])
    for (data,) in rows:
        out = z.decompress(bytes(data))
        if out:
            yield out
    tail = z.flush()
    if tail:
        yield tail


def get_source(conn, source_id: int) -> Source | None:
    row = conn.execute("SELECT id, kind, name_sha256, payload_sha256, payload_size, imported_at, trust, verification"
                       " FROM rec_sources WHERE id = ?", (source_id,)).fetchone()
    if not row:
        return None
    return Source(*row[:7], jsonsafe.loads_stored(row[7]) if row[7] else None)


def vault_hash_version(conn) -> int:
    """The content hash version this vault's stored hashes use (``meta.content_hash``; absent in vaults made
    before it existed, whose hashes are version 1 and stay so, so their records keep deduplicating)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'content_hash'").fetchone()
    return int(row[0]) if row else jsonutil.HASH_V1


def lookup_fullurl(conn, full_url: str) -> str | None:
    row = conn.execute("SELECT r.rtype, r.id FROM rec_fullurls f JOIN rec_resources r ON r.rid = f.rid"
                       " WHERE f.full_url = ?", (full_url,)).fetchone()
    return f"{row[0]}/{row[1]}" if row else None


def lookup_identifier(conn, rtype: str, value: str, system: str | None) -> list[str]:
    if system is None:
        rows = conn.execute("SELECT DISTINCT r.rtype, r.id FROM rec_identifiers i JOIN rec_resources r ON r.rid = i.rid"
                            " WHERE i.rtype = ? AND i.value = ?", (rtype, value)).fetchall()
    else:
        rows = conn.execute("SELECT DISTINCT r.rtype, r.id FROM rec_identifiers i JOIN rec_resources r ON r.rid = i.rid"
                            " WHERE i.rtype = ? AND i.system = ? AND i.value = ?", (rtype, system, value)).fetchall()
    return [f"{t}/{i}" for t, i in rows]


def add_attachment(conn, rid: int, content_type: str, data: bytes) -> int:
    """Store a document's bytes for a record, once: the same bytes for the same record are not stored again."""
    sha = hashlib.sha256(data).hexdigest()
    row = conn.execute("SELECT id FROM rec_attachments WHERE rid = ? AND sha256 = ?", (rid, sha)).fetchone()
    if row:
        return row[0]
    cur = conn.execute("INSERT INTO rec_attachments (rid, content_type, sha256, size, data) VALUES (?, ?, ?, ?, ?)",
                       (rid, content_type, sha, len(data), data))
    return cur.lastrowid


def attachment_by_sha256(conn, sha256: str) -> bytes | None:
    row = conn.execute("SELECT data FROM rec_attachments WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
    return bytes(row[0]) if row else None

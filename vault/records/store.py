"""Reads and writes of the records tables. Functions take a DB-API connection and never commit: callers own the
transaction (``Vault.transaction()``), which is what makes one import all-or-nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Iterator

from vault.records import jsonutil, trust as trust_levels
from vault.records.errors import WouldReplace
from vault.records.extract import identifiers, index_fields

TRUST_LEVELS = trust_levels.LEVELS
CHUNK = 1 << 20

ADDED, DUPLICATE, UPDATED = "added", "duplicate", "updated"


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
         json.dumps(verification) if verification is not None else None))
    return cur.lastrowid


def add_payload(conn, source_id: int, chunks: Iterable[bytes]) -> None:
    seq = 0
    for chunk in chunks:
        if chunk:
            conn.execute("INSERT INTO rec_source_payload (source_id, seq, data) VALUES (?, ?, ?)",
                         (source_id, seq, chunk))
            seq += 1


def read_payload(conn, source_id: int) -> Iterator[bytes]:
    for (data,) in conn.execute("SELECT data FROM rec_source_payload WHERE source_id = ? ORDER BY seq",
                                (source_id,)):
        yield bytes(data)


def get_source(conn, source_id: int) -> Source | None:
    row = conn.execute("SELECT id, kind, name_sha256, payload_sha256, payload_size, imported_at, trust, verification"
                       " FROM rec_sources WHERE id = ?", (source_id,)).fetchone()
    if not row:
        return None
    return Source(*row[:7], json.loads(row[7]) if row[7] else None)


def put_resource(conn, resource: dict, *, source_id: int, trust: str, imported_at: str,
                 full_url: str | None = None, text: str | None = None, person: int | None = None,
                 adds_only: bool = False) -> tuple[str, int]:
    """Store one validated resource. Returns (ADDED | DUPLICATE | UPDATED, rid).

    ``person`` is who a new record belongs to; a record already stored keeps its person, whoever's file repeats it.
    ``adds_only`` (a clinician's write-back): a newer version of a record the vault holds is refused with
    ``WouldReplace`` instead of replacing it.

    Dedupe: same type and id with the same content hash is the same record; same type and id with different content
    is a newer version (the old one moves to history); a different id with content identical to a record from an
    earlier source is the same record numbered differently (kept as an alias).
    """
    rtype, rid_str = resource["resourceType"], resource["id"]
    sha = jsonutil.content_hash(resource)
    row = conn.execute("SELECT rid, content_sha256, trust, version, json, source_id FROM rec_resources"
                       " WHERE rtype = ? AND id = ?", (rtype, rid_str)).fetchone()
    if row is None:
        alias = conn.execute("SELECT rid FROM rec_aliases WHERE rtype = ? AND id = ?", (rtype, rid_str)).fetchone()
        if alias is None:
            alias = conn.execute("SELECT rid FROM rec_resources WHERE rtype = ? AND content_sha256 = ?"
                                 " AND source_id <> ? LIMIT 1", (rtype, sha, source_id)).fetchone()
            if alias is not None:
                conn.execute("INSERT OR IGNORE INTO rec_aliases (rtype, id, rid) VALUES (?, ?, ?)",
                             (rtype, rid_str, alias[0]))
        if alias is not None:
            _seen(conn, alias[0], source_id, trust, full_url)
            return DUPLICATE, alias[0]
        f = index_fields(resource, text)
        cur = conn.execute(
            "INSERT INTO rec_resources (rtype, id, content_sha256, json, source_id, trust, imported_at, date,"
            " category, code_system, code, display, status, value_num, unit, person)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rtype, rid_str, sha, jsonutil.compact(resource), source_id, trust, imported_at, f.date, f.category,
             f.code_system, f.code, f.display, f.status, f.value_num, f.unit, person))
        rid = cur.lastrowid
        conn.execute("INSERT INTO rec_fts (rowid, body) VALUES (?, ?)", (rid, f.text))
        for system, value in identifiers(resource):
            conn.execute("INSERT OR IGNORE INTO rec_identifiers (rtype, system, value, rid) VALUES (?, ?, ?, ?)",
                         (rtype, system, value, rid))
        _seen(conn, rid, source_id, None, full_url)
        return ADDED, rid
    rid, old_sha, old_trust, version, old_json, old_source = row
    if old_sha == sha:
        _seen(conn, rid, source_id, trust, full_url)
        return DUPLICATE, rid
    if adds_only:
        raise WouldReplace()
    conn.execute("INSERT INTO rec_history (rid, version, content_sha256, json, source_id, superseded_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (rid, version, old_sha, old_json, old_source, imported_at))
    f = index_fields(resource, text)
    conn.execute(
        "UPDATE rec_resources SET version = ?, content_sha256 = ?, json = ?, source_id = ?, trust = ?,"
        " imported_at = ?, date = ?, category = ?, code_system = ?, code = ?, display = ?, status = ?,"
        " value_num = ?, unit = ? WHERE rid = ?",
        (version + 1, sha, jsonutil.compact(resource), source_id, trust, imported_at, f.date, f.category,
         f.code_system, f.code, f.display, f.status, f.value_num, f.unit, rid))
    conn.execute("DELETE FROM rec_fts WHERE rowid = ?", (rid,))
    conn.execute("INSERT INTO rec_fts (rowid, body) VALUES (?, ?)", (rid, f.text))
    conn.execute("DELETE FROM rec_identifiers WHERE rid = ?", (rid,))
    for system, value in identifiers(resource):
        conn.execute("INSERT OR IGNORE INTO rec_identifiers (rtype, system, value, rid) VALUES (?, ?, ?, ?)",
                     (rtype, system, value, rid))
    _seen(conn, rid, source_id, trust, full_url)
    return UPDATED, rid


class BatchWriter:
    """Stores many resources of one source with few statements.

    Lookups are prefetched per chunk with ``IN (...)`` and the secondary rows (search text, identifiers, source
    links, fullUrls) go in with ``executemany``. Anything that is not a plain new record (an id or content the vault
    already has) takes ``put_resource``'s path after a flush, so both paths store exactly the same thing.
    """

    CHUNK = 500

    def __init__(self, conn, *, source_id: int, trust: str, imported_at: str, adds_only: bool = False) -> None:
        self.conn, self.source_id, self.trust, self.imported_at = conn, source_id, trust, imported_at
        self.adds_only = adds_only
        self._known: set[tuple[str, str]] = set()
        self._shas: set[tuple[str, str]] = set()
        self._fts: list[tuple] = []
        self._ids: list[tuple] = []
        self._links: list[tuple] = []
        self._urls: list[tuple] = []

    def prefetch(self, resources: list[dict]) -> list[str]:
        """Load what the vault knows about these resources; returns their content hashes, in order."""
        shas = [jsonutil.content_hash(r) for r in resources]
        for i in range(0, len(resources), self.CHUNK):
            part = resources[i:i + self.CHUNK]
            ids = sorted({r["id"] for r in part})
            marks = ",".join("?" * len(ids))
            for table in ("rec_resources", "rec_aliases"):
                self._known.update(self.conn.execute(f"SELECT rtype, id FROM {table} WHERE id IN ({marks})", ids))
            sh = sorted(set(shas[i:i + self.CHUNK]))
            self._shas.update(self.conn.execute(
                f"SELECT rtype, content_sha256 FROM rec_resources WHERE content_sha256 IN ({','.join('?' * len(sh))})"
                " AND source_id <> ?", (*sh, self.source_id)))
        return shas

    def put(self, resource: dict, sha: str, *, full_url: str | None = None,
            text: str | None = None, person: int | None = None) -> tuple[str, int]:
        key = (resource["resourceType"], resource["id"])
        if key in self._known or (key[0], sha) in self._shas:
            self.flush()
            outcome, rid = put_resource(self.conn, resource, source_id=self.source_id, trust=self.trust,
                                        imported_at=self.imported_at, full_url=full_url, text=text, person=person,
                                        adds_only=self.adds_only)
            self._known.add(key)
            return outcome, rid
        f = index_fields(resource, text)
        rid = self.conn.execute(
            "INSERT INTO rec_resources (rtype, id, content_sha256, json, source_id, trust, imported_at, date,"
            " category, code_system, code, display, status, value_num, unit, person)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key[0], key[1], sha, jsonutil.compact(resource), self.source_id, self.trust, self.imported_at, f.date,
             f.category, f.code_system, f.code, f.display, f.status, f.value_num, f.unit, person)).lastrowid
        self._known.add(key)
        self._fts.append((rid, f.text))
        self._ids.extend((key[0], system, value, rid) for system, value in identifiers(resource))
        self._links.append((rid, self.source_id))
        if full_url and full_url.startswith(("urn:uuid:", "urn:oid:", "http://", "https://")):
            self._urls.append((full_url, rid))
        return ADDED, rid

    def flush(self) -> None:
        c = self.conn
        if self._fts:
            c.executemany("INSERT INTO rec_fts (rowid, body) VALUES (?, ?)", self._fts)
        if self._ids:
            c.executemany("INSERT OR IGNORE INTO rec_identifiers (rtype, system, value, rid) VALUES (?, ?, ?, ?)",
                          self._ids)
        if self._links:
            c.executemany("INSERT OR IGNORE INTO rec_resource_sources (rid, source_id) VALUES (?, ?)", self._links)
        if self._urls:
            c.executemany("INSERT OR IGNORE INTO rec_fullurls (full_url, rid) VALUES (?, ?)", self._urls)
        self._fts, self._ids, self._links, self._urls = [], [], [], []


def _seen(conn, rid: int, source_id: int, trust: str | None, full_url: str | None) -> None:
    """Link a record to a source it was seen in; ``trust`` None for a record inserted with that trust just now."""
    conn.execute("INSERT OR IGNORE INTO rec_resource_sources (rid, source_id) VALUES (?, ?)", (rid, source_id))
    if trust_levels.raises_copies(trust):
        # an issuer's signature seen later vouches for the same content seen earlier unsigned; a clinician's
        # signature covers what they wrote, not a copy of someone else's record inside it
        conn.execute(f"UPDATE rec_resources SET trust = ? WHERE rid = ? AND {trust_levels.rank_sql()} < ?",
                     (trust, rid, trust_levels.rank(trust)))
    if full_url and full_url.startswith(("urn:uuid:", "urn:oid:", "http://", "https://")):
        conn.execute("INSERT OR IGNORE INTO rec_fullurls (full_url, rid) VALUES (?, ?)", (full_url, rid))


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


def counts_by_type(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT rtype, count(*) FROM rec_resources GROUP BY rtype ORDER BY rtype").fetchall())


def row_counts(conn) -> dict[str, int]:
    """Row count of every records table; tests compare it before and after a refused import."""
    tables = ("rec_sources", "rec_source_payload", "rec_resources", "rec_resource_sources", "rec_history",
              "rec_aliases", "rec_fullurls", "rec_identifiers", "rec_attachments", "rec_issuers", "rec_cards",
              "rec_fts")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

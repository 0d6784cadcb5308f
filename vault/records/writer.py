"""The one way records enter a vault: ``SourceWriter`` stores everything one source adds (a file, pasted card text,
a received share, a clinician's write-back), inside the caller's transaction, so one source is all-or-nothing.

For each source: its ``rec_sources`` row, its original payload, its health cards; for each resource: the person it
belongs to, its content hash, de-duplication against what the vault holds, its query columns, full-text words,
identifiers and fullUrl, the sources it was seen in, trust raised where the source's check covers that content, and
its attachments. The caller (``importer``) opens the transaction, audits and commits.

De-duplication: same type and id with the same content hash is the same record; same type and id with different
content is a newer version (the old one moves to ``rec_history``); a different id with content identical to a record
from an earlier source is the same record numbered differently (kept as an alias).

Resources are written a chunk at a time: what the vault knows about a chunk is looked up in two joined queries, new
records get their row ids here (the transaction holds the write lock, so nobody else takes one) and every table is
written with ``executemany``. Anything that is not a plain new record (an id or content the vault already has)
takes the row-at-a-time path after the chunk so far is written, so both store exactly the same thing.

The writes stay on the importing thread: on a thread of their own they overlapped with preparing the next chunk,
but binding every row's parameters needs the GIL, and the handing back and forth of it cost more than the overlap
saved (the import of a large Synthea patient took 15-20% longer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from vault.records import jsonutil, persons, store, trust as trust_levels
from vault.records.errors import WouldReplace
from vault.records.extract import identifiers, index_fields

ADDED, DUPLICATE, UPDATED = "added", "duplicate", "updated"
# fullUrls worth remembering for later imports' references; others name nothing outside their file
_NAMING_URLS = ("urn:uuid:", "urn:oid:", "http://", "https://")

_INSERT_RESOURCE = ("INSERT INTO rec_resources (rid, rtype, id, content_sha256, json, source_id, trust, imported_at,"
                    " date, category, code_system, code, display, status, value_num, unit, person)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@dataclass
class NewSource:
    """What is recorded of where the records came from (no PHI: the name is hashed)."""
    kind: str
    name_sha256: str
    payload_sha256: str
    payload_size: int
    trust: str
    imported_at: str
    verification: dict | None = None


@dataclass
class Counts:
    added: int = 0
    duplicates: int = 0
    updated: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        return self.added + self.duplicates + self.updated

    def count(self, outcome: str, rtype: str) -> None:
        if outcome == ADDED:
            self.added += 1
        elif outcome == UPDATED:
            self.updated += 1
        else:
            self.duplicates += 1
        self.by_type[rtype] = self.by_type.get(rtype, 0) + 1


@dataclass(slots=True)
class _Item:
    resource: dict
    full_url: str | None
    text: str | None
    person: int | None
    documents: list[tuple[str, bytes]]


class SourceWriter:
    """Everything one source adds to the vault. ``add`` each resource in the file's order, then ``finish``.

    ``keep_other``: a Patient who is not the vault's person becomes another person (True) or stops the import with
    ``OtherPerson`` (False). ``adds_only`` (a clinician's write-back): a newer version of a record the vault holds is
    refused with ``WouldReplace`` instead of replacing it."""

    CHUNK = 500
    # a streamed file's resources wait here until a chunk is full: bounded by their size too, so a file of huge
    # lines never holds more than this much of them parsed
    PENDING_BYTES = 4 << 20

    def __init__(self, conn, source: NewSource, *, keep_other: bool, adds_only: bool = False) -> None:
        self.conn = conn
        self.trust, self.imported_at, self.adds_only = source.trust, source.imported_at, adds_only
        self.source_id = store.add_source(conn, kind=source.kind, name_sha256=source.name_sha256,
                                          payload_sha256=source.payload_sha256, payload_size=source.payload_size,
                                          trust=source.trust, verification=source.verification,
                                          imported_at=source.imported_at)
        self.owners = persons.Assigner(conn, keep_other=keep_other, now=source.imported_at)
        self.hash_version = store.vault_hash_version(conn)
        self.counts = Counts()
        self._pending: list[_Item] = []
        self._pending_bytes = 0
        self._known: set[tuple[str, str]] = set()       # (type, id) the vault or this source already has
        self._shas: set[tuple[str, str]] = set()        # (type, content hash) of records from other sources
        self._next_rid: int | None = None
        self._first_rid: int | None = None      # the first rid this writer may give: what was there before is below
        self._rows: list[tuple] = []
        self._fts: list[tuple] = []
        self._ids: list[tuple] = []
        self._links: list[tuple] = []
        self._urls: list[tuple] = []

    # --- what callers use ---------------------------------------------------------------------------------------
    def expect(self, resources: list[dict]) -> None:
        """Decide the persons of a whole file's Patients before its first resource is added: the file's Patient
        then owns what comes before it in the file too (a streamed file decides each Patient where it comes)."""
        self.owners.check(resources)

    def add(self, resource: dict, *, full_url: str | None = None, text: str | None = None,
            documents: Iterable[tuple[str, bytes]] = (), size: int = 0) -> None:
        """Queue one checked resource (with ``id`` and ``resourceType``); ``text`` is its search words when the
        caller has them, ``documents`` (content type, bytes) are stored as its attachments, ``size`` is what its
        JSON took in the file (bounds what waits)."""
        if resource["resourceType"] == "Patient" and not self.owners.decided(resource["id"]):
            # a new vault's first person takes over every record stored without one: these too
            self._drain()
        self._pending.append(_Item(resource, full_url, text, self.owners.resource(resource), list(documents)))
        self._pending_bytes += size
        if len(self._pending) >= self.CHUNK or self._pending_bytes >= self.PENDING_BYTES:
            self._drain()

    def lookup_fullurl(self, full_url: str) -> str | None:
        """``Type/id`` of the record an earlier resource (of this source or an earlier one) was named by."""
        if any(i.full_url for i in self._pending):
            self._drain()
        elif self._urls:
            self._flush()
        return store.lookup_fullurl(self.conn, full_url)

    def lookup_identifier(self, rtype: str, value: str, system: str | None) -> list[str]:
        if self._pending:
            self._drain()
        elif self._ids:
            self._flush()
        return store.lookup_identifier(self.conn, rtype, value, system)

    def add_payload(self, chunks: Iterable[bytes]) -> None:
        """The original bytes, already compressed (``store.compress_chunks`` or ``CompressedPayload.chunks``)."""
        store.add_payload(self.conn, self.source_id, chunks)

    def add_cards(self, cards: list[dict]) -> None:
        """Each SMART Health Card's JWS, verbatim, and what its verification found."""
        self.conn.executemany("INSERT INTO rec_cards (source_id, seq, jws, iss, kid, status, flags)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [(self.source_id, seq, card.pop("_jws"), card.get("issuer"), card.get("kid"),
                                card["status"], jsonutil.compact(card.get("flags", [])))
                               for seq, card in enumerate(cards)])

    def finish(self) -> Counts:
        """Everything added is in the database (in the caller's transaction) when this returns."""
        self._drain()
        return self.counts

    # --- writing ------------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        items, self._pending, self._pending_bytes = self._pending, [], 0
        if items:
            shas = self._prefetch([i.resource for i in items])
            for item, sha in zip(items, shas):
                outcome, rid = self._put(item, sha)
                self.counts.count(outcome, item.resource["resourceType"])
                if item.documents:
                    self._flush()               # the attachment rows refer to the record's row
                    for ctype, blob in item.documents:
                        store.add_attachment(self.conn, rid, ctype, blob)
        self._flush()

    def _prefetch(self, resources: list[dict]) -> list[str]:
        """Load what the vault knows about these resources; returns their content hashes, in order."""
        version = self.hash_version
        shas = [jsonutil.content_hash(r, version) for r in resources]
        keys = sorted({(r["resourceType"], r["id"]) for r in resources})
        values = ",".join("(?, ?)" for _ in keys)
        flat = [x for k in keys for x in k]
        for table in ("rec_resources", "rec_aliases"):
            self._known.update(self.conn.execute(
                f"SELECT t.rtype, t.id FROM (VALUES {values}) AS v JOIN {table} AS t"
                " ON t.rtype = v.column1 AND t.id = v.column2", flat))
        pairs = sorted({(r["resourceType"], sha) for r, sha in zip(resources, shas)})
        values = ",".join("(?, ?)" for _ in pairs)
        if self._first_rid is None:
            self._first_rid = self.conn.execute("SELECT coalesce(max(rid), 0) + 1 FROM rec_resources").fetchone()[0]
        # One content can be in the vault many times (a bulk export repeats a record under new ids). A join brought
        # back every copy for every batch, this file's own copies included, which made a large file's import grow
        # with the square of its size. Rows this file adds are all from this source and come from rid _first_rid
        # on, so "rid < _first_rid" leaves out nothing the source test keeps, and the index seeks past them.
        self._shas.update(self.conn.execute(
            f"SELECT v.column1, v.column2 FROM (VALUES {values}) AS v WHERE EXISTS (SELECT 1 FROM rec_resources"
            " AS t WHERE t.rtype = v.column1 AND t.content_sha256 = v.column2 AND t.rid < ? AND t.source_id <> ?)",
            [*(x for p in pairs for x in p), self._first_rid, self.source_id]))
        return shas

    def _put(self, item: _Item, sha: str) -> tuple[str, int]:
        resource = item.resource
        key = (resource["resourceType"], resource["id"])
        if key in self._known or (key[0], sha) in self._shas:
            self._flush()
            known = self._put_known(item, sha)
            if known is not None:
                self._known.add(key)
                return known
        if self._next_rid is None:
            self._next_rid = self.conn.execute("SELECT coalesce(max(rid), 0) + 1 FROM rec_resources").fetchone()[0]
        rid = self._next_rid
        self._next_rid += 1
        f = index_fields(resource, item.text)
        self._rows.append((rid, key[0], key[1], sha, jsonutil.compact(resource), self.source_id, self.trust,
                           self.imported_at, f.date, f.category, f.code_system, f.code, f.display, f.status,
                           f.value_num, f.unit, item.person))
        self._known.add(key)
        self._fts.append((rid, f.text))
        ids = identifiers(resource)
        if ids:                     # most records have none: no generator made for them
            self._ids.extend((key[0], system, value, rid) for system, value in ids)
        self._links.append((rid, self.source_id))
        if item.full_url and item.full_url.startswith(_NAMING_URLS):
            self._urls.append((item.full_url, rid))
        if len(self._rows) >= self.CHUNK:
            self._flush()
        return ADDED, rid

    def _put_known(self, item: _Item, sha: str) -> tuple[str, int] | None:
        """A resource whose id or content the vault may already have, one row at a time: DUPLICATE or UPDATED,
        or None when it is new after all."""
        c, resource = self.conn, item.resource
        rtype, rid_str = resource["resourceType"], resource["id"]
        row = c.execute("SELECT rid, content_sha256, version, json, source_id FROM rec_resources"
                        " WHERE rtype = ? AND id = ?", (rtype, rid_str)).fetchone()
        if row is None:
            alias = c.execute("SELECT rid FROM rec_aliases WHERE rtype = ? AND id = ?", (rtype, rid_str)).fetchone()
            if alias is None:
                alias = c.execute("SELECT rid FROM rec_resources WHERE rtype = ? AND content_sha256 = ?"
                                  " AND source_id <> ? LIMIT 1", (rtype, sha, self.source_id)).fetchone()
                if alias is None:
                    return None
                c.execute("INSERT OR IGNORE INTO rec_aliases (rtype, id, rid) VALUES (?, ?, ?)",
                          (rtype, rid_str, alias[0]))
            self._seen(alias[0], item.full_url)
            return DUPLICATE, alias[0]
        rid, old_sha, version, old_json, old_source = row
        if old_sha == sha:
            self._seen(rid, item.full_url)
            return DUPLICATE, rid
        if self.adds_only:
            raise WouldReplace()
        c.execute("INSERT INTO rec_history (rid, version, content_sha256, json, source_id, superseded_at)"
                  " VALUES (?, ?, ?, ?, ?, ?)", (rid, version, old_sha, old_json, old_source, self.imported_at))
        f = index_fields(resource, item.text)
        c.execute("UPDATE rec_resources SET version = ?, content_sha256 = ?, json = ?, source_id = ?, trust = ?,"
                  " imported_at = ?, date = ?, category = ?, code_system = ?, code = ?, display = ?, status = ?,"
                  " value_num = ?, unit = ? WHERE rid = ?",
                  (version + 1, sha, jsonutil.compact(resource), self.source_id, self.trust, self.imported_at,
                   f.date, f.category, f.code_system, f.code, f.display, f.status, f.value_num, f.unit, rid))
        c.execute("DELETE FROM rec_fts WHERE rowid = ?", (rid,))
        c.execute("INSERT INTO rec_fts (rowid, body) VALUES (?, ?)", (rid, f.text))
        c.execute("DELETE FROM rec_identifiers WHERE rid = ?", (rid,))
        c.executemany("INSERT OR IGNORE INTO rec_identifiers (rtype, system, value, rid) VALUES (?, ?, ?, ?)",
                      [(rtype, system, value, rid) for system, value in identifiers(resource)])
        self._seen(rid, item.full_url)
        return UPDATED, rid

    def _seen(self, rid: int, full_url: str | None) -> None:
        """Link a record already stored to this source too."""
        c = self.conn
        c.execute("INSERT OR IGNORE INTO rec_resource_sources (rid, source_id) VALUES (?, ?)", (rid, self.source_id))
        if trust_levels.raises_copies(self.trust):
            # an issuer's signature seen later vouches for the same content seen earlier unsigned; a clinician's
            # signature covers what they wrote, not a copy of someone else's record inside it
            c.execute(f"UPDATE rec_resources SET trust = ? WHERE rid = ? AND {trust_levels.rank_sql()} < ?",
                      (self.trust, rid, trust_levels.rank(self.trust)))
        if full_url and full_url.startswith(_NAMING_URLS):
            c.execute("INSERT OR IGNORE INTO rec_fullurls (full_url, rid) VALUES (?, ?)", (full_url, rid))

    def _flush(self) -> None:
        c = self.conn
        if self._rows:
            c.executemany(_INSERT_RESOURCE, self._rows)
        if self._fts:
            c.executemany("INSERT INTO rec_fts (rowid, body) VALUES (?, ?)", self._fts)
        if self._ids:
            c.executemany("INSERT OR IGNORE INTO rec_identifiers (rtype, system, value, rid) VALUES (?, ?, ?, ?)",
                          self._ids)
        if self._links:
            c.executemany("INSERT OR IGNORE INTO rec_resource_sources (rid, source_id) VALUES (?, ?)", self._links)
        if self._urls:
            c.executemany("INSERT OR IGNORE INTO rec_fullurls (full_url, rid) VALUES (?, ?)", self._urls)
        self._rows, self._fts, self._ids, self._links, self._urls = [], [], [], [], []

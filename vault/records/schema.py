"""Tables of the records feature. Registered by ``vault/schema.py`` in its ordered migration list.

Released migrations are frozen: later changes go in a new ``migrate_records_vN`` that alters, never drops.
Everything here lives inside the SQLCipher database, so original payloads, attachments and the full-text index are
encrypted at rest with the rest of the vault.
"""

from __future__ import annotations

_V1 = """
CREATE TABLE IF NOT EXISTS rec_sources (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,              -- fhir-json | fhir-ndjson | smart-health-card | document | generated
    name_sha256     TEXT NOT NULL,              -- hash of the file name: names often hold the patient's name
    payload_sha256  TEXT NOT NULL UNIQUE,       -- SHA-256 of the original bytes, as received
    payload_size    INTEGER NOT NULL,
    imported_at     TEXT NOT NULL,              -- UTC, ISO 8601
    trust           TEXT NOT NULL,              -- issuer-verified | clinician-signed | patient-entered | unverified
    verification    TEXT                        -- JSON: issuer, key id, expiry, revocation, reasons (no PHI)
);
CREATE TABLE IF NOT EXISTS rec_source_payload (
    source_id INTEGER NOT NULL REFERENCES rec_sources(id),
    seq       INTEGER NOT NULL,
    data      BLOB NOT NULL,                    -- original payload in 1 MiB chunks, so large files stream in
    PRIMARY KEY (source_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rec_resources (
    rid             INTEGER PRIMARY KEY,
    rtype           TEXT NOT NULL,
    id              TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    content_sha256  TEXT NOT NULL,
    json            TEXT NOT NULL,
    source_id       INTEGER NOT NULL REFERENCES rec_sources(id),
    trust           TEXT NOT NULL,
    imported_at     TEXT NOT NULL,
    date            TEXT,
    category        TEXT,
    code_system     TEXT,
    code            TEXT,
    display         TEXT,
    status          TEXT,
    value_num       REAL,
    unit            TEXT,
    UNIQUE (rtype, id)
);
CREATE INDEX IF NOT EXISTS rec_resources_date ON rec_resources (date);
CREATE INDEX IF NOT EXISTS rec_resources_type_date ON rec_resources (rtype, date);
CREATE INDEX IF NOT EXISTS rec_resources_code ON rec_resources (code, date);
CREATE INDEX IF NOT EXISTS rec_resources_sha ON rec_resources (rtype, content_sha256);
-- every source a resource was seen in (an overlapping export adds a row here, not a second resource)
CREATE TABLE IF NOT EXISTS rec_resource_sources (
    rid       INTEGER NOT NULL REFERENCES rec_resources(rid),
    source_id INTEGER NOT NULL REFERENCES rec_sources(id),
    PRIMARY KEY (rid, source_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rec_history (
    rid            INTEGER NOT NULL REFERENCES rec_resources(rid),
    version        INTEGER NOT NULL,
    content_sha256 TEXT NOT NULL,
    json           TEXT NOT NULL,
    source_id      INTEGER NOT NULL,
    superseded_at  TEXT NOT NULL,
    PRIMARY KEY (rid, version)
);
-- other ids a stored resource is known by (same content from a source that numbered it differently)
CREATE TABLE IF NOT EXISTS rec_aliases (
    rtype TEXT NOT NULL,
    id    TEXT NOT NULL,
    rid   INTEGER NOT NULL REFERENCES rec_resources(rid),
    PRIMARY KEY (rtype, id)
) WITHOUT ROWID;
-- bundle fullUrls (urn:uuid:...) seen, so a later bundle's references to them resolve
CREATE TABLE IF NOT EXISTS rec_fullurls (
    full_url TEXT PRIMARY KEY,
    rid      INTEGER NOT NULL REFERENCES rec_resources(rid)
) WITHOUT ROWID;
-- business identifiers, for conditional references (Organization?identifier=system|value)
CREATE TABLE IF NOT EXISTS rec_identifiers (
    rtype  TEXT NOT NULL,
    system TEXT NOT NULL,
    value  TEXT NOT NULL,
    rid    INTEGER NOT NULL REFERENCES rec_resources(rid),
    PRIMARY KEY (rtype, system, value, rid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rec_attachments (
    id           INTEGER PRIMARY KEY,
    rid          INTEGER NOT NULL REFERENCES rec_resources(rid),
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS rec_attachments_rid ON rec_attachments (rid);
-- SMART Health Card issuers the user chose to trust, with their keys and revocation lists
CREATE TABLE IF NOT EXISTS rec_issuers (
    iss       TEXT PRIMARY KEY,
    jwks      TEXT NOT NULL,
    crls      TEXT NOT NULL DEFAULT '{}',       -- JSON: kid -> {ctr, rids}
    added_at  TEXT NOT NULL
);
-- the original JWS of every card, verbatim, and what its verification found
CREATE TABLE IF NOT EXISTS rec_cards (
    source_id INTEGER NOT NULL REFERENCES rec_sources(id),
    seq       INTEGER NOT NULL,
    jws       TEXT NOT NULL,
    iss       TEXT,
    kid       TEXT,
    status    TEXT NOT NULL,                    -- verified | unverified | invalid
    flags     TEXT NOT NULL DEFAULT '[]',       -- JSON list: expired, revoked, unknown-issuer, ...
    PRIMARY KEY (source_id, seq)
);
CREATE VIRTUAL TABLE IF NOT EXISTS rec_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
"""


def migrate_records_v1(conn) -> None:
    """Create the records tables. Idempotent, and runs inside the caller's migration transaction."""
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)

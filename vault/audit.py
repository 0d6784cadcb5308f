"""The audit log: an append-only, hash-chained, MACed list of what happened to the vault.

Each entry's hash covers the previous entry's hash and its own canonical content; its MAC is HMAC-SHA256 of that
hash under the vault's audit subkey. Details hold ids, counts, types and hashes, never PHI. The latest hash is also
kept in ``meta``, so cutting entries off the end is detected, not only editing them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from vault import crypto

GENESIS = b"\0" * 32
EVENTS = frozenset({
    "init", "unlock", "unlock_failed", "lock", "passwd", "recover", "import", "export", "share", "revoke",
    "access", "open", "chain", "settings", "migrate", "recovery_key", "unlock_failed_rejected",
    "writeback", "writeback_received", "writeback_recheck", "restore",
})


def _entry_hash(prev: bytes, seq: int, at: str, event: str, details: str) -> bytes:
    body = json.dumps([seq, at, event, details], separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hashlib.sha256(prev + body).digest()


def append(conn: Any, mac_key: bytes, at: str, event: str, details: dict) -> int:
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, bytes(row[1])) if row else (1, GENESIS)
    details_json = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = _entry_hash(prev, seq, at, event, details_json)
    conn.execute("INSERT INTO audit (seq, at, event, details, prev, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (seq, at, event, details_json, prev, digest, crypto.mac(mac_key, digest)))
    conn.execute("INSERT INTO meta (key, value) VALUES ('audit_head', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (f"{seq}:{digest.hex()}",))
    return seq


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    event: str
    details: dict


@dataclass(frozen=True)
class AuditReport:
    entries: int
    intact: bool
    first_broken: int | None
    reason: str

    def sentence(self) -> str:
        if self.intact:
            return f"Audit log intact: {self.entries} entries, every database page checked."
        return f"Audit log broken at entry {self.first_broken}: {self.reason}."


def verify(conn: Any, mac_key: bytes) -> AuditReport:
    prev, expected_seq, count = GENESIS, 1, 0
    for seq, at, event, details, stored_prev, digest, mac in conn.execute(
            "SELECT seq, at, event, details, prev, hash, mac FROM audit ORDER BY seq"):
        count += 1
        if seq != expected_seq:
            return AuditReport(count, False, expected_seq, "an entry is missing")
        if bytes(stored_prev) != prev:
            return AuditReport(count, False, seq, "it does not follow the entry before it")
        if _entry_hash(prev, seq, at, event, details) != bytes(digest):
            return AuditReport(count, False, seq, "its content was changed")
        if not crypto.mac_equal(crypto.mac(mac_key, bytes(digest)), bytes(mac)):
            return AuditReport(count, False, seq, "its authentication code is wrong")
        prev, expected_seq = bytes(digest), seq + 1
    head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
    if count and (head is None or head[0] != f"{expected_seq - 1}:{prev.hex()}"):
        return AuditReport(count, False, expected_seq, "entries were removed from the end")
    return AuditReport(count, True, None, "")


def entries(conn: Any, limit: int = 1000, before: int | None = None) -> list[AuditEntry]:
    """The newest ``limit`` entries, newest first; with ``before``, those older than entry ``before`` (a page)."""
    rows = conn.execute("SELECT seq, at, event, details FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                        (before if before is not None else 2**62, limit))
    return [AuditEntry(seq, at, event, json.loads(details)) for seq, at, event, details in rows]

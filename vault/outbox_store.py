"""Persistent storage for the consent-chain outbox, inside the vault's (SQLCipher) database.

The outbox logic lives in ``sync.outbox``; this module only stores entries, so the vault stays free of any network
code. It takes any DB-API connection with sqlite3's dialect (``sqlcipher3.dbapi2`` in the app, plain ``sqlite3`` in
tests). Payloads are signed typed data and signatures: no PHI, no share key, no content address.

Every state change is one transaction, so a crash leaves an entry either in its old or its new state; an entry is
never deleted, so nothing queued can be lost.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

PENDING = "pending"
ANCHORED = "anchored"
FAILED = "failed"


@dataclass
class OutboxEntry:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: int
    state: str = PENDING
    block_number: int | None = None
    tx_hash: str | None = None
    reason: str | None = None  # machine-readable: the contract's error name
    message: str | None = None  # the sentence shown to the user
    attempts: int = 0
    last_error: str | None = None  # last transient problem (node down); the entry stays pending


_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'anchored', 'failed')),
    block_number INTEGER,
    tx_hash      TEXT,
    reason       TEXT,
    message      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS chain_outbox_state ON chain_outbox (state, id);
"""

_COLUMNS = "id, kind, payload, created_at, state, block_number, tx_hash, reason, message, attempts, last_error"


def create_tables(conn: Any) -> None:
    """Migration step for the vault: idempotent, so it can run on every open."""
    cur = conn.cursor()
    for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
        cur.execute(statement)
    conn.commit()


class SqlOutboxStore:
    """Implements ``sync.outbox.OutboxStore`` on a DB-API connection.

    By default each write is its own transaction. With ``own_transactions=False`` writes join the caller's open
    transaction instead (e.g. a share row and its queued grant are written together, or not at all); committing
    is then the caller's job.
    """

    def __init__(self, conn: Any, *, own_transactions: bool = True) -> None:
        self.conn = conn
        self.own_transactions = own_transactions

    def _write(self) -> Any:
        return self.conn if self.own_transactions else contextlib.nullcontext()

    def add(self, kind: str, payload: dict[str, Any], created_at: int) -> int:
        with self._write():
            cur = self.conn.execute(
                "INSERT INTO chain_outbox (kind, payload, created_at) VALUES (?, ?, ?)",
                (kind, json.dumps(payload, sort_keys=True), created_at),
            )
            return int(cur.lastrowid)

    def get(self, entry_id: int) -> OutboxEntry:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM chain_outbox WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise KeyError(entry_id)
        return _entry(row)

    def pending(self) -> list[OutboxEntry]:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM chain_outbox WHERE state = 'pending' ORDER BY id"
        ).fetchall()
        return [_entry(r) for r in rows]

    def all(self) -> list[OutboxEntry]:
        return [_entry(r) for r in self.conn.execute(f"SELECT {_COLUMNS} FROM chain_outbox ORDER BY id")]

    def mark_anchored(self, entry_id: int, block_number: int, tx_hash: str) -> None:
        self._update(
            entry_id,
            "state = 'anchored', block_number = ?, tx_hash = ?, reason = NULL, message = NULL, last_error = NULL",
            (block_number, tx_hash),
        )

    def mark_failed(self, entry_id: int, reason: str, message: str) -> None:
        self._update(entry_id, "state = 'failed', reason = ?, message = ?", (reason, message))

    def note_attempt(self, entry_id: int, error: str | None) -> None:
        self._update(entry_id, "attempts = attempts + 1, last_error = ?", (error,))

    def _update(self, entry_id: int, assignments: str, params: tuple[Any, ...]) -> None:
        with self._write():
            cur = self.conn.execute(f"UPDATE chain_outbox SET {assignments} WHERE id = ?", (*params, entry_id))
            if cur.rowcount != 1:
                raise KeyError(entry_id)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    (id_, kind, payload, created_at, state, block, tx_hash, reason, message, attempts, last_error) = row
    return OutboxEntry(
        id=id_,
        kind=kind,
        payload=json.loads(payload),
        created_at=created_at,
        state=state,
        block_number=block,
        tx_hash=tx_hash,
        reason=reason,
        message=message,
        attempts=attempts,
        last_error=last_error,
    )

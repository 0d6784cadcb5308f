"""Records held in memory only: what a clinician reads from a share without any of it reaching their disk.

``MemoryRecords`` is a ``:memory:`` SQLite database with a vault's schema (every migration applied, so tables,
indexes and persons are exactly a vault's) and the part of a vault's interface that the importer and the screens
use: ``read()``, ``read_only()``, ``transaction()``, ``audit()``, ``now()``. Records go in through the importer
(``ImportService``), so the search index, persons and query columns are filled by the one write path there is, and
every query function and screen works on it unchanged.

It is the standard library's SQLite, not SQLCipher: nothing is written anywhere, so there is nothing to encrypt, and
SQLCipher stays imported in ``vault.store`` alone. Temporary tables and sorts are kept in memory too
(``temp_store``), so a large query never spills to a temp file. ``close()`` frees it all.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from vault.errors import VaultLocked
from vault.schema import MIGRATIONS


class RecordsClosed(VaultLocked):
    default_message = "This shared record was closed; scan it again to read it."


class MemoryRecords:
    """An in-memory records database, safe to use from the task runner's threads (one statement at a time)."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.RLock()
        self._writing = 0
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = ON")
        for _name, step in MIGRATIONS:
            step(conn)
        self._conn: sqlite3.Connection | None = conn

    # --- what the importer and the screens use of a vault ---------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RecordsClosed()
        return self._conn

    def now(self) -> datetime:
        return self._clock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            self._writing += 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._writing -= 1

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self.conn

    @contextlib.contextmanager
    def read_only(self) -> Iterator[sqlite3.Connection]:
        """What the screens read through: the connection refuses writes for the whole block (``query_only``)."""
        with self._lock:
            conn = self.conn
            if self._writing:       # a read inside the importer's own transaction
                yield conn
                return
            conn.execute("PRAGMA query_only = ON")
            try:
                yield conn
            finally:
                conn.execute("PRAGMA query_only = OFF")

    def audit(self, event: str, *, conn: Any = None, **details: Any) -> int:
        """Nothing is logged here: the receiver's own vault records that the share was opened."""
        return 0

    # --- filling and emptying -----------------------------------------------------------------------------------
    def trust_issuers(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Trust the SMART Health Card issuers the receiver trusts: ``(iss, jwks, crls, added_at)`` rows as
        ``rec_issuers`` holds them, so cards in a share are checked against the receiver's own list."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO rec_issuers (iss, jwks, crls, added_at) VALUES (?, ?, ?, ?)",
                             list(rows))

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "MemoryRecords":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryRecords(open={self.is_open})"

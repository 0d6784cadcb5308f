"""Ordered schema migrations of the vault database.

``PRAGMA user_version`` counts the migrations applied. Opening a vault applies the missing ones in order, each in
its own transaction; a database with more migrations than this build knows was written by a newer medvault and is
refused rather than guessed at. Released steps are never edited: a change is a new step at the end, and
``tests/data/`` keeps a frozen vault of every released format to prove old vaults still open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Migration = Callable[[Any], None]


def _core_v1(conn: Any) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), ed25519_seed BLOB NOT NULL, "
                 "secp256k1_private BLOB NOT NULL, created_at TEXT NOT NULL)")
    conn.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL, "
                 "details TEXT NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL, mac BLOB NOT NULL)")
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _records_v1(conn: Any) -> None:
    from vault.records.schema import migrate_records_v1
    migrate_records_v1(conn)


def _outbox_v1(conn: Any) -> None:
    from vault.outbox_store import create_tables
    create_tables(conn)


def _shares_v1(conn: Any) -> None:
    from vault.shares_store import create_tables
    create_tables(conn)


def _persons_v1(conn: Any) -> None:
    from vault.records.persons import migrate_persons_v1
    migrate_persons_v1(conn)


def _shares_v2(conn: Any) -> None:
    from vault.shares_store import add_link_and_what
    add_link_and_what(conn)


# Released steps, in order. Never edit or reorder one; add a new step at the end.
MIGRATIONS: list[tuple[str, Migration]] = [
    ("core-v1", _core_v1),
    ("records-v1", _records_v1),
    ("outbox-v1", _outbox_v1),
    ("shares-v1", _shares_v1),
    ("persons-v1", _persons_v1),
    ("shares-v2", _shares_v2),
]
SCHEMA_VERSION = len(MIGRATIONS)

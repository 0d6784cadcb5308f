"""The second, read-only connection: it reads while the main connection holds a write transaction, and it cannot
write. Real threads and a real SQLCipher file."""

from __future__ import annotations

import threading

import pytest

from vault.errors import VaultError, VaultLocked


def _setting_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM settings").fetchone()[0]


def test_reads_while_a_write_transaction_is_open(unlocked_vault):
    vault = unlocked_vault
    vault.set_setting("committed", "yes")
    in_tx, release = threading.Event(), threading.Event()
    writer_error: list[BaseException] = []

    def writer() -> None:
        try:
            with vault.transaction() as conn:
                conn.execute("INSERT INTO settings (key, value) VALUES ('uncommitted', 'x')")
                in_tx.set()
                assert release.wait(30)
        except BaseException as exc:  # surfaced by the assertion below
            writer_error.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert in_tx.wait(10)
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(_read_count(vault)))
        reader.start()
        reader.join(5)
        # the read finished while the writer still holds its transaction open: it never waited for it
        assert not reader.is_alive() and t.is_alive()
        assert seen == [1]          # the committed row only, not the one inside the open transaction
    finally:
        release.set()
        t.join(10)
    assert not writer_error
    assert _read_count(vault) == 2  # a new read sees the commit


def _read_count(vault) -> int:
    with vault.read_only() as conn:
        return _setting_count(conn)


def test_cannot_write(unlocked_vault):
    vault = unlocked_vault
    before = _read_count(vault)
    with pytest.raises(VaultError):
        with vault.read_only() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES ('sneaky', 'x')")
    assert _read_count(vault) == before
    with vault.read() as conn:
        assert conn.execute("SELECT count(*) FROM settings WHERE key = 'sneaky'").fetchone()[0] == 0


def test_one_snapshot_per_block(unlocked_vault):
    vault = unlocked_vault
    with vault.read_only() as conn:
        first = _setting_count(conn)
        vault.set_setting("later", "1")  # committed on the main connection meanwhile
        assert _setting_count(conn) == first
    assert _read_count(vault) == first + 1


def test_closed_with_the_vault(unlocked_vault):
    vault = unlocked_vault
    _read_count(vault)
    reader = vault._ro_conn
    vault.close()
    assert vault._ro_conn is None
    with pytest.raises(Exception):
        reader.execute("SELECT 1")
    with pytest.raises(VaultLocked):
        with vault.read_only():
            pass

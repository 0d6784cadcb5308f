"""Helpers of the persons tests (a plain module: a second conftest.py would shadow tests/chain's)."""

from __future__ import annotations

import pytest

from tests.records.records_support import row_counts


def table_counts(conn) -> dict[str, int]:
    """Rows of every records table and of persons: a refused import must leave all of them as they were."""
    counts = row_counts(conn)
    counts["persons"] = conn.execute("SELECT count(*) FROM persons").fetchone()[0]
    return counts


def refused_then_kept(vault, path) -> None:
    """Import ``path`` into ``vault``: refused whole as someone else's, then kept as a separate person."""
    from vault.records.errors import OtherPerson
    from vault.records.importer import ImportOptions, ImportService
    with vault.read() as conn:
        before = table_counts(conn)
    with pytest.raises(OtherPerson):
        ImportService(vault).import_file(path)
    with vault.read() as conn:
        assert table_counts(conn) == before
    ImportService(vault, ImportOptions(other_person=True)).import_file(path)

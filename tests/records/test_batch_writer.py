"""The batch writer stores records a chunk at a time with executemany and numbers them itself: every record of a
large file is stored once with all its rows, a failing write rolls the whole file back, and so does a cancel
between chunks."""

from __future__ import annotations

import pytest

from vault.records import store
from vault.records.errors import ImportCancelled
from vault.records.importer import CancelToken, ImportService

from records_support import rows


def _resources(n: int) -> list[dict]:
    return [{"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": f"test {i}"}}
            for i in range(n)]


def test_a_failing_chunk_rolls_everything_back(vault):
    before = rows(vault)
    with pytest.raises(Exception) as err:
        with vault.transaction() as conn:
            # no such source: the foreign key refuses the writer's rows
            writer = store.BatchWriter(conn, source_id=999_999, trust="unverified", imported_at="now")
            resources = _resources(3 * store.BatchWriter.CHUNK)
            for r, sha in zip(resources, writer.prefetch(resources)):
                writer.put(r, sha)
            writer.flush()
    assert "FOREIGN KEY" in str(err.value.__cause__)      # the driver's error, turned into a vault error
    assert rows(vault) == before


def test_many_records_in_chunks_are_all_stored_once(vault, tmp_path):
    import json
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in _resources(2 * store.BatchWriter.CHUNK + 7)]}))
    report = ImportService(vault).import_file(path)
    assert report.added == 2 * store.BatchWriter.CHUNK + 7
    with vault.read() as conn:
        n = 2 * store.BatchWriter.CHUNK + 7
        assert conn.execute("SELECT count(*), count(DISTINCT rid) FROM rec_resources").fetchone() == (n, n)
        assert conn.execute("SELECT count(*) FROM rec_fts").fetchone()[0] == n
        assert conn.execute("SELECT count(*) FROM rec_resource_sources").fetchone()[0] == n


def test_cancelled_between_chunks_keeps_nothing(vault, tmp_path):
    import json
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in _resources(3 * store.BatchWriter.CHUNK)]}))
    before = rows(vault)
    token = CancelToken()

    def progress(done: int, total: int) -> None:
        if done > total * 3 // 4:        # the second half counts the writes
            token.cancel()

    with pytest.raises(ImportCancelled):
        ImportService(vault).import_file(path, progress, token)
    assert rows(vault) == before

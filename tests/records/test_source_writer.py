"""The one write path (``writer.SourceWriter``) stores records a chunk at a time with executemany and numbers them
itself: every record of a large file is stored once with all its rows, a failing write rolls the whole file back,
and so does a cancel between chunks. A streamed NDJSON file goes through the same chunks, so what a line needs of
the lines before it (a conditional reference, the person a later Patient becomes, a newer version of the same
record) must be written before it is looked up."""

from __future__ import annotations

import json

import pytest

from vault.records import persons, writer
from vault.records.errors import ImportCancelled
from vault.records.importer import CancelToken, ImportOptions, ImportService

from records_support import rows

CHUNK = writer.SourceWriter.CHUNK


def _resources(n: int) -> list[dict]:
    return [{"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": f"test {i}"}}
            for i in range(n)]


def _bundle(path, resources: list[dict]):
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in resources]}))
    return path


def _ndjson(path, resources: list[dict]):
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def test_a_failing_chunk_rolls_everything_back(vault):
    before = rows(vault)
    resources = _resources(3 * CHUNK)
    with pytest.raises(Exception) as err:
        with vault.transaction() as conn:
            w = writer.SourceWriter(conn, writer.NewSource("fhir-json", "0" * 64, "1" * 64, 1, "unverified", "now"),
                                    keep_other=False)
            for r in resources[:2 * CHUNK]:
                w.add(r)
            assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == 2 * CHUNK
            w.owners.file_person = 999_999      # no such person: the foreign key refuses the last chunk's rows
            for r in resources[2 * CHUNK:]:
                w.add(r)
            w.finish()
    assert "FOREIGN KEY" in str(err.value.__cause__)      # the driver's error, turned into a vault error
    assert rows(vault) == before


@pytest.mark.parametrize("form", ["bundle", "ndjson"])
def test_many_records_in_chunks_are_all_stored_once(vault, tmp_path, form):
    n = 2 * CHUNK + 7
    path = (_bundle if form == "bundle" else _ndjson)(tmp_path / f"many.{form}", _resources(n))
    report = ImportService(vault).import_file(path)
    assert report.added == n
    with vault.read() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT rid) FROM rec_resources").fetchone() == (n, n)
        assert conn.execute("SELECT count(*) FROM rec_fts").fetchone()[0] == n
        assert conn.execute("SELECT count(*) FROM rec_resource_sources").fetchone()[0] == n


def test_cancelled_between_chunks_keeps_nothing(vault, tmp_path):
    path = _bundle(tmp_path / "many.json", _resources(3 * CHUNK))
    before = rows(vault)
    token = CancelToken()

    def progress(done: int, total: int) -> None:
        if done > total * 3 // 4:        # the second half counts the writes
            token.cancel()

    with pytest.raises(ImportCancelled):
        ImportService(vault).import_file(path, progress, token)
    assert rows(vault) == before


def test_a_line_finds_what_earlier_lines_of_the_same_file_added(vault, tmp_path):
    """A conditional reference on line 3 to an Organization on line 1, a newer version of line 2's record on
    line 4, and the same content under another id within the file: all in one chunk, as they would be one line at
    a time."""
    org = {"resourceType": "Organization", "id": "org1", "name": "Clinic",
           "identifier": [{"system": "urn:test", "value": "42"}]}
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "glucose"}}
    ref = {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "sodium"},
           "performer": [{"reference": "Organization?identifier=urn:test|42"}]}
    newer = dict(obs, status="amended")
    path = _ndjson(tmp_path / "lines.ndjson", [org, obs, ref, newer])
    report = ImportService(vault).import_file(path)
    assert (report.added, report.updated, report.duplicates) == (3, 1, 0)
    with vault.read() as conn:
        stored = json.loads(conn.execute("SELECT json FROM rec_resources WHERE id = 'o2'").fetchone()[0])
        assert stored["performer"][0]["reference"] == "Organization/org1"
        assert conn.execute("SELECT version, status FROM rec_resources WHERE id = 'o1'").fetchone() == (2, "amended")
        assert conn.execute("SELECT count(*) FROM rec_history").fetchone()[0] == 1


def test_a_later_patient_in_a_stream_takes_over_what_came_before_it(vault, tmp_path):
    """In a new vault, records stored before the first Patient belong to nobody until the first Patient makes the
    vault's person; in a stream they are still waiting in the writer's chunk when that happens."""
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe", "given": ["Jane"]}],
               "birthDate": "1980-01-01"}
    org = {"resourceType": "Organization", "id": "org1", "name": "Clinic"}
    path = _ndjson(tmp_path / "stream.ndjson", [org, *_resources(3), patient])
    ImportService(vault).import_file(path)
    with vault.read() as conn:
        me = persons.primary(conn)
        assert me is not None
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE person IS NOT ?", (me,)).fetchone()[0] == 0


def test_a_streamed_file_about_someone_else_keeps_each_record_with_its_person(make_vault, tmp_path):
    v = make_vault()
    mine = {"resourceType": "Patient", "id": "me", "name": [{"family": "Doe", "given": ["Jane"]}],
            "birthDate": "1980-01-01"}
    ImportService(v).import_file(_ndjson(tmp_path / "me.ndjson", [mine]))
    child = {"resourceType": "Patient", "id": "kid", "name": [{"family": "Doe", "given": ["Tom"]}],
             "birthDate": "2015-05-05"}
    theirs = [dict(r, subject={"reference": "Patient/kid"}) for r in _resources(CHUNK + 3)]
    path = _ndjson(tmp_path / "kid.ndjson", [child, *theirs])
    report = ImportService(v, ImportOptions(other_person=True)).import_file(path)
    assert report.added == CHUNK + 4
    with v.read() as conn:
        kid = conn.execute("SELECT person FROM rec_resources WHERE id = 'kid'").fetchone()[0]
        assert kid != persons.primary(conn)
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE person = ?", (kid,)).fetchone()[0] == CHUNK + 4

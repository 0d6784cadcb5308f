"""Persons in the database: who owns records stored before anyone was known, the migration of vaults made before
persons existed, NDJSON streams, and reads per person."""

from __future__ import annotations

import json

from tests.conftest import FIXTURES, PASSPHRASE
from vault.records import query
from vault.records.importer import ImportOptions, ImportService
from vault.records.persons import EVERYONE, persons
from vault.schema import SCHEMA_VERSION

from persons_support import refused_then_kept
from tests.records.records_support import observation_codes, type_counts

SYNTHEA = FIXTURES / "synthea"
SUPPORT = sorted(SYNTHEA.glob("*Information*.json"))
NED = SYNTHEA / "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"
BUSTER = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"


def owners(vault) -> dict[int | None, int]:
    with vault.read() as conn:
        return dict(conn.execute("SELECT person, count(*) FROM rec_resources GROUP BY person").fetchall())


def test_records_stored_before_anyone_is_known_go_to_the_first_person(unlocked_vault):
    vault = unlocked_vault
    ImportService(vault).import_paths(SUPPORT)
    assert set(owners(vault)) == {None}
    with vault.read() as conn:
        assert persons(conn) == []
        # with no person yet, the vault's own records are the ones that belong to nobody
        assert type_counts(conn) == type_counts(conn, person=EVERYONE)
    ImportService(vault).import_file(NED)
    with vault.read() as conn:
        assert [p.display_name for p in persons(conn)] == ["Ned Hintz"]
    assert set(owners(vault)) == {1}


def test_a_file_about_two_people_is_refused_whole_in_an_empty_vault(unlocked_vault, tmp_path):
    both = {"resourceType": "Bundle", "type": "collection",
            "entry": [e for f in (NED, BUSTER) for e in json.loads(f.read_text())["entry"]]}
    f = tmp_path / "both.json"
    f.write_text(json.dumps(both))
    ImportService(unlocked_vault).import_paths(SUPPORT)
    refused_then_kept(unlocked_vault, f)
    with unlocked_vault.read() as conn:
        people = persons(conn)
        assert [(p.display_name, p.is_primary) for p in people] == [("Ned Hintz", True), ("Buster Hoeger", False)]
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE person IS NULL").fetchone()[0] == 0


def _as_ndjson(path, out) -> None:
    """The Patient and Conditions of a Synthea bundle as bulk NDJSON (literal references, as a bulk export has)."""
    entries = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    patient = next(r for r in entries if r["resourceType"] == "Patient")
    subject = {"reference": f"Patient/{patient['id']}"}
    conditions = [{**{k: v for k, v in r.items() if k != "encounter"}, "subject": subject}
                  for r in entries if r["resourceType"] == "Condition"]
    out.write_text("".join(json.dumps(r) + "\n" for r in [patient, *conditions]))


def test_ndjson_of_someone_else_is_refused_and_kept_on_request(unlocked_vault, tmp_path):
    vault = unlocked_vault
    ned, buster = tmp_path / "ned.ndjson", tmp_path / "buster.ndjson"
    _as_ndjson(NED, ned)
    _as_ndjson(BUSTER, buster)
    ImportService(vault).import_file(ned)
    refused_then_kept(vault, buster)
    with vault.read() as conn:
        assert type_counts(conn)["Condition"] == sum(
            1 for line in ned.read_text().splitlines() if '"resourceType": "Condition"' in line)
        assert type_counts(conn, person=2)["Condition"] == sum(
            1 for line in buster.read_text().splitlines() if '"resourceType": "Condition"' in line)


def test_reads_are_per_person(unlocked_vault):
    vault = unlocked_vault
    ImportService(vault).import_paths([*SUPPORT, NED])
    ImportService(vault, ImportOptions(other_person=True)).import_file(BUSTER)
    with vault.read_only() as conn:
        weight = "29463-7"
        mine, theirs = query.series(conn, weight), query.series(conn, weight, person=2)
        assert mine.points and theirs.points
        assert not {p.rid for p in mine.points} & {p.rid for p in theirs.points}
        rows = query.rows_by_rid(conn, [p.rid for p in mine.points + theirs.points])
        assert {r.rid for r in rows} == {p.rid for p in mine.points}
        assert {c["code"] for c in observation_codes(conn, person=2)} >= {weight}
        page = query.timeline(conn, person=2, limit=10_000)
        assert page.rows and all(r.rid in _rids(conn, 2) for r in page.rows)
        total = type_counts(conn, person=EVERYONE)
        split = [type_counts(conn), type_counts(conn, person=2)]
        assert {t: sum(c.get(t, 0) for c in split) for t in total} == total
        assert sum(query.category_counts(conn, "Observation", person=2).values()) > 0


def _rids(conn, person) -> set[int]:
    return {r[0] for r in conn.execute("SELECT rid FROM rec_resources WHERE person = ?", (person,))}


def test_migration_gives_an_older_vault_its_persons(vault_factory):
    """A vault written before persons existed (schema 4) with two patients mixed in: opening it migrates, the
    first patient becomes its person and each record goes to the patient it is about."""
    from vault.store import Vault
    vault = vault_factory("old")
    ImportService(vault).import_paths([*SUPPORT, NED])
    ImportService(vault, ImportOptions(other_person=True)).import_file(BUSTER)
    with vault.read() as conn:
        expected = dict(conn.execute("SELECT rid, person FROM rec_resources").fetchall())
    with vault.transaction() as conn:   # back to the released schema 4, as an older medvault left it
        conn.execute("DROP INDEX rec_resources_person_date")
        conn.execute("ALTER TABLE rec_resources DROP COLUMN person")
        conn.execute("DROP TABLE persons")
        conn.execute("ALTER TABLE shares DROP COLUMN link")     # and before shares-v2
        conn.execute("ALTER TABLE shares DROP COLUMN what")
    with vault.read() as conn:
        conn.execute("PRAGMA user_version = 4")
    folder = vault.folder
    vault.close()
    with Vault.unlock(folder, PASSPHRASE) as reopened, reopened.read() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [(p.id, p.display_name, p.birth_date, p.is_primary) for p in persons(conn)] == [
            (1, "Ned Hintz", "1993-12-08", True), (2, "Buster Hoeger", "1988-03-16", False)]
        assert dict(conn.execute("SELECT rid, person FROM rec_resources").fetchall()) == expected
        assert reopened.verify().intact

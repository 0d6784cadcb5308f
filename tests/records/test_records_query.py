"""Queries over real imported data: list filters, full-text search, the paged timeline, observation series."""

from __future__ import annotations

import pytest

from vault.records import query
from vault.records.importer import ImportService

from records_support import observation_codes, synthea_patients, synthea_support, type_counts


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from vault.store import Vault
    v, _ = Vault.create(tmp_path_factory.mktemp("q") / "v", "correct horse battery staple",
                        kdf_profile="test-insecure")
    largest = max(synthea_patients(), key=lambda p: p.stat().st_size)
    for p in synthea_support() + [largest]:
        ImportService(v).import_file(p)
    yield v
    v.close()


def test_list_by_type_category_code_and_dates(loaded):
    with loaded.read() as conn:
        labs = query.list_records(conn, rtype="Observation", category="laboratory", limit=1000)
        assert labs and all(r.rtype == "Observation" and r.category == "laboratory" for r in labs)
        dates = [r.date for r in labs]
        assert dates == sorted(dates, reverse=True)
        code = labs[0].code
        same = query.list_records(conn, code=code, limit=1000)
        assert same and all(r.code == code for r in same)
        year = labs[-1].date[:4]
        in_year = query.list_records(conn, rtype="Observation", date_from=year, date_to=year, limit=1000)
        assert in_year and all(r.date.startswith(year) for r in in_year)
        assert len(query.list_records(conn, rtype="Observation", limit=5, offset=5)) == 5
        assert type_counts(conn)["Observation"] >= len(labs)
        assert query.category_counts(conn, "Observation")["laboratory"] == len(labs)


def test_full_text_search_finds_by_words_and_prefix_and_survives_syntax(loaded):
    with loaded.read() as conn:
        hits = query.search(conn, "hemoglobin")
        assert hits and any("Hemoglobin" in (h.display or "") for h in hits)
        assert query.search(conn, "hemoglob") == hits            # prefix
        assert query.search(conn, "HEMOGLOBIN blood")            # several words, any case
        for hostile in ('"', "NEAR(", "*", "a OR", "-", "'; DROP TABLE rec_resources; --", "\x00"):
            query.search(conn, hostile)                           # never an FTS5 syntax error
        assert query.search(conn, "zzzznotaword") == []
        assert all(h.rtype == "Condition" for h in query.search(conn, "disorder", rtype="Condition"))


def test_timeline_pages_cover_everything_once_in_order(loaded):
    with loaded.read() as conn:
        seen, cursor, pages = [], None, 0
        while True:
            page = query.timeline(conn, before=cursor, limit=97)
            seen.extend(page.rows)
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        keys = [(r.date, r.rid) for r in seen]
        assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
        total = conn.execute("SELECT count(*) FROM rec_resources WHERE date IS NOT NULL AND rtype NOT IN ("
                             + ",".join("?" * len(query.TIMELINE_EXCLUDED)) + ")",
                             query.TIMELINE_EXCLUDED).fetchone()[0]
        assert len(seen) == total and pages > 3


def test_observation_series_with_units_including_components(loaded):
    with loaded.read() as conn:
        codes = observation_codes(conn)
        assert codes and all(c["count"] > 0 for c in codes)
        top = codes[0]
        s = query.series(conn, top["code"], top["system"])
        assert len(s.points) == top["count"] and s.unit == top["unit"]
        assert [p.date for p in s.points] == sorted(p.date for p in s.points)
        systolic = query.series(conn, "8480-6")           # inside blood-pressure panels' components
        assert systolic.points and systolic.unit == "mm[Hg]"
        assert all(60 < p.value < 260 for p in systolic.points)


def test_rows_load_lazily_by_id(loaded):
    with loaded.read() as conn:
        page = query.timeline(conn, limit=10)
        rids = [r.rid for r in page.rows]
        assert query.rows_by_rid(conn, list(reversed(rids))) == list(reversed(page.rows))
        res = query.get_by_rid(conn, rids[0])
        assert res["resourceType"] == page.rows[0].rtype and res["id"] == page.rows[0].id
        assert query.get_by_rid(conn, -1) is None


def test_search_matching_most_of_the_vault_returns_newest_first(loaded, monkeypatch):
    monkeypatch.setattr(query, "RANKED_MATCHES_MAX", 100)
    with loaded.read() as conn:
        hits = query.search(conn, "observation", limit=30)
        assert len(hits) == 30 and all(h.date for h in hits)
        assert [h.date for h in hits] == sorted((h.date for h in hits), reverse=True)
        newest = conn.execute("SELECT max(date) FROM rec_resources WHERE rtype = 'Observation'").fetchone()[0]
        assert hits[0].date >= newest
        assert all(h.rtype == "Observation" for h in query.search(conn, "observation", rtype="Observation"))

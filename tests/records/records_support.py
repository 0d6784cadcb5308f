"""Helpers shared by the records tests (the fixtures themselves are in this folder's conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vault.records.persons import where as person_where

PASSPHRASE = "correct horse battery staple"


def fixture_dir(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        # Third-party data is not copied into the repository: tests.conftest.FIXTURES says where it is read from.
        pytest.fail(f"test data missing: {path} (the shared third-party fixtures are read from "
                    f"{FIXTURES}, tests.conftest.FIXTURES)", pytrace=False)
    return path


def synthea_patients() -> list[Path]:
    d = fixture_dir("synthea")
    files = sorted(p for p in d.glob("*.json")
                   if not p.name.startswith(("hospitalInformation", "practitionerInformation")))
    if len(files) < 10:
        pytest.fail(f"expected 10 Synthea patient bundles in {d}, found {len(files)}", pytrace=False)
    return files


def synthea_support() -> list[Path]:
    d = fixture_dir("synthea")
    files = sorted(d.glob("hospitalInformation*.json")) + sorted(d.glob("practitionerInformation*.json"))
    if len(files) < 2:
        pytest.fail(f"the hospitalInformation/practitionerInformation bundles are missing from {d}", pytrace=False)
    return files


def counts_by_type(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT rtype, count(*) FROM rec_resources GROUP BY rtype ORDER BY rtype").fetchall())


def row_counts(conn) -> dict[str, int]:
    """Row count of every records table: compared before and after a refused import."""
    tables = ("rec_sources", "rec_source_payload", "rec_resources", "rec_resource_sources", "rec_history",
              "rec_aliases", "rec_fullurls", "rec_identifiers", "rec_attachments", "rec_issuers", "rec_cards",
              "rec_fts")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def counts(v) -> dict[str, int]:
    with v.read() as conn:
        return counts_by_type(conn)


def rows(v) -> dict[str, int]:
    with v.read() as conn:
        return row_counts(conn)


def type_counts(conn, *, person: int | None = None) -> dict[str, int]:
    """How many records of each type ``person`` has (None: the vault's own)."""
    mine, args = person_where(conn, person, use_index=False)
    return dict(conn.execute(f"SELECT rtype, count(*) FROM rec_resources WHERE {mine} GROUP BY rtype ORDER BY rtype",
                             args))


def observation_codes(conn, *, person: int | None = None) -> list[dict]:
    """Codes that have numeric values: code, system, display, most common unit, how many points, most first."""
    agg: dict[tuple, dict] = {}
    mine, args = person_where(conn, person, use_index=False)
    for code, system, display, unit, n in conn.execute(
            "SELECT code, code_system, max(display), unit, count(*) FROM rec_resources WHERE rtype = 'Observation'"
            f" AND value_num IS NOT NULL AND code IS NOT NULL AND {mine} GROUP BY code, code_system, unit", args):
        a = agg.setdefault((code, system), {"code": code, "system": system, "display": display, "units": {},
                                            "count": 0})
        a["units"][unit] = n
        a["count"] += n
        a["display"] = a["display"] or display
    for a in agg.values():
        named = {u: n for u, n in a.pop("units").items() if u}
        a["unit"] = min(named, key=lambda u: (-named[u], u)) if named else None
    return sorted(agg.values(), key=lambda a: (-a["count"], a["code"]))

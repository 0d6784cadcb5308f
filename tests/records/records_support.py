"""Helpers shared by the records tests (the fixtures themselves are in this folder's conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vault.records import store

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


def counts(v) -> dict[str, int]:
    with v.read() as conn:
        return store.counts_by_type(conn)


def rows(v) -> dict[str, int]:
    with v.read() as conn:
        return store.row_counts(conn)

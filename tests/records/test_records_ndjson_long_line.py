"""A bulk NDJSON file with a line far longer than any FHIR record is refused before a byte of it is stored.

The refusal always left the vault unchanged (the transaction rolls back), but the file had already been copied into
the database first: tens of megabytes written to the write-ahead log for nothing, on a laptop disk that may be
nearly full. The file size of the database and its log shows whether that copy happened.
"""

from __future__ import annotations

import json

import pytest

from vault.records.errors import ImportRejected
from vault.records.importer import ImportOptions, ImportService

from records_support import rows


def _db_bytes(vault) -> int:
    return sum(p.stat().st_size for p in vault.folder.iterdir() if p.name.startswith("vault.db"))


@pytest.mark.parametrize("where", ["last", "second"])
def test_a_line_over_the_limit_is_refused_before_the_file_is_stored(vault, tmp_path, where):
    good = json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female"})
    huge = '{"resourceType": "Patient", "id": "p2", "name": [{"text": "' + "x" * (40 << 20) + '"}]}'
    lines = [good] * 1000 + [huge] if where == "last" else [good, huge] + [good] * 1000
    path = tmp_path / "Patient.ndjson"
    path.write_text("\n".join(lines) + "\n")
    before_rows, before_bytes = rows(vault), _db_bytes(vault)
    with pytest.raises(ImportRejected) as err:
        ImportService(vault, ImportOptions()).import_file(path)
    line = 1001 if where == "last" else 2
    assert err.value.user_message == (f"Line {line} of the file is longer than 16 MB, so it is not a bulk FHIR "
                                      "record; nothing was imported.")
    assert rows(vault) == before_rows
    grown = _db_bytes(vault) - before_bytes
    assert grown < 1 << 20, f"the refused file was written into the database first ({grown} bytes)"


def test_the_same_refusal_with_skip_invalid(vault, tmp_path):
    """--skip-invalid skips records that are invalid, not a file that is not bulk FHIR at all."""
    path = tmp_path / "Patient.ndjson"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "p1"}) + "\n" + "[" * (17 << 20) + "\n")
    before = _db_bytes(vault)
    with pytest.raises(ImportRejected):
        ImportService(vault, ImportOptions(skip_invalid=True)).import_file(path)
    assert _db_bytes(vault) - before < 1 << 20

"""What orjson reads differently from the standard library, met at import: each case refused with its own plain
sentence and the vault unchanged (whole numbers beyond 64 bits would otherwise be stored as approximations)."""

from __future__ import annotations

import pytest

from vault.records.errors import MalformedJson, NestingTooDeep
from vault.records.importer import ImportOptions, ImportService

from records_support import rows

OBS = (b'{"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "glucose"}, '
       b'"valueQuantity": {"value": %s, "unit": "mg/dL"}}')


def _refused(vault, tmp_path, data: bytes, error=MalformedJson, **options) -> str:
    path = tmp_path / "edge.json"
    path.write_bytes(data)
    before = rows(vault)
    with pytest.raises(error) as err:
        ImportService(vault, ImportOptions(**options)).import_file(path)
    assert rows(vault) == before
    msg = err.value.user_message
    assert msg.endswith(".") and "\n" not in msg and "glucose" not in msg
    return msg


@pytest.mark.parametrize("number", [b"123456789012345678901234567890", b"-9223372036854775809", b"1e300"])
def test_numbers_too_large_to_keep_exactly(vault, tmp_path, number):
    msg = _refused(vault, tmp_path, OBS % number)
    assert "number too large to keep exactly" in msg


@pytest.mark.parametrize("validation", ["full", "structural"])
def test_large_numbers_in_ndjson_and_lists_too(vault, tmp_path, validation):
    line = OBS % b"1" + b"\n"
    big = (b'{"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "glucose"}, '
           b'"component": [{"code": {"text": "x"}, "valueSampledData": {"origin": {"value": 1}, "period": 1, '
           b'"dimensions": 1, "data": "1", "lowerLimit": 99999999999999999999999}}]}\n')
    path = tmp_path / "bulk.ndjson"
    path.write_bytes(line + big)
    before = rows(vault)
    with pytest.raises(MalformedJson) as err:
        ImportService(vault, ImportOptions(validation=validation)).import_file(path)
    assert "number too large" in err.value.user_message and rows(vault) == before


def test_the_largest_64_bit_numbers_are_kept(vault, tmp_path):
    path = tmp_path / "ok.json"
    path.write_bytes(OBS % b"18446744073709551615")
    assert ImportService(vault, ImportOptions(validation="structural")).import_file(path).added == 1


@pytest.mark.parametrize("data, words", [
    (OBS % b"NaN", "NaN or Infinity"),
    (OBS % b"-Infinity", "NaN or Infinity"),
    (OBS % b'"\\ud83d"', "surrogate"),
    (OBS % b'"\\udc00 alone"', "surrogate"),
])
def test_invalid_json_says_what_is_wrong(vault, tmp_path, data, words):
    msg = _refused(vault, tmp_path, data)
    assert words in msg and "line 1" in msg, msg


def test_depth_is_bounded_by_the_parser_and_the_records_limit(vault, tmp_path):
    deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 200 + b"]" * 200 + b"}"
    _refused(vault, tmp_path, deep, NestingTooDeep)
    deeper = b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _refused(vault, tmp_path, deeper, NestingTooDeep)

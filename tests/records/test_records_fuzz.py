"""Whatever bytes arrive, the importer answers with a report or a typed error with one sentence, never a crash."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from vault.records.errors import RecordsError
from vault.records.importer import ImportOptions, ImportReport, ImportService

from records_support import rows

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceType", "id", "entry", "resource", "type", "fullUrl", "reference", "code",
                         "subject", "status", "text", "div", "verifiableCredential", "x"]), inner, max_size=5),
    max_leaves=30)
_resource_types = st.sampled_from(["Patient", "Observation", "Bundle", "Condition", "Nope", "HumanName", ""])


def _check(vault, path) -> None:
    before = rows(vault)
    try:
        r = ImportService(vault, ImportOptions(skip_invalid=True)).import_file(path)
    except RecordsError as err:
        assert err.user_message and "\n" not in err.user_message
        assert rows(vault) == before
        return
    assert isinstance(r, ImportReport)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json, rtype=_resource_types)
def test_random_json_documents(vault, tmp_path, doc, rtype):
    if isinstance(doc, dict) and rtype:
        doc = dict(doc, resourceType=rtype)
    p = tmp_path / "fuzz.json"
    p.write_text(json.dumps(doc))
    _check(vault, p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"shc:/", b"shc:/1/2/", b"eyJ", b"%PDF-",
                                                             b'{"resourceType":"Bundle"', b"\x89PNG\r\n\x1a\n"]))
def test_random_bytes(vault, tmp_path, data, prefix):
    p = tmp_path / "fuzz.bin"
    p.write_bytes(prefix + data)
    _check(vault, p)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(digits=st.text(alphabet="0123456789/", max_size=200))
def test_random_qr_text(vault, digits):
    before = rows(vault)
    try:
        ImportService(vault).import_data(("shc:/" + digits).encode(), "scan.txt")
    except RecordsError as err:
        assert err.user_message and "\n" not in err.user_message
        assert rows(vault) == before

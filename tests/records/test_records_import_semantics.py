"""What one import means: atomic or --skip-invalid, streaming NDJSON, progress and cancel, references,
versions, provenance, documents."""

from __future__ import annotations

import json
import threading

import pytest

from vault.records import query, store
from vault.records.errors import DanglingReference, ImportCancelled, ImportRejected, ResourceInvalid
from vault.records.importer import CancelToken, ImportOptions, ImportService

from records_support import rows, synthea_patients


def _obs(i: int, **extra) -> dict:
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "effectiveDateTime": f"2021-01-{i % 28 + 1:02d}T10:00:00Z",
            "valueQuantity": {"value": 60 + i, "unit": "beats/minute"}, **extra}


def _bundle(resources, btype="collection") -> dict:
    return {"resourceType": "Bundle", "type": btype, "entry": [{"resource": r} for r in resources]}


def _write(tmp_path, name, doc) -> "Path":
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def test_skip_invalid_imports_the_valid_part_and_reports_each_skip(vault, tmp_path):
    doc = _bundle([_obs(1), {"resourceType": "Observation", "id": "bad1", "status": "final"}, _obs(2),
                   {"resourceType": "Nonsense", "id": "bad2"}])
    p = _write(tmp_path, "mixed.json", doc)
    with pytest.raises(ResourceInvalid):
        ImportService(vault).import_file(p)
    r = ImportService(vault, ImportOptions(skip_invalid=True)).import_file(p)
    assert r.added == 2
    assert [s.where for s in r.skipped] == ["entry 2", "entry 4"]
    assert "code" in r.skipped[0].reason and "FHIR R4 does not define" in r.skipped[1].reason
    assert "2 skipped as invalid" in r.sentence()


def test_skip_invalid_with_nothing_valid_still_imports_nothing(vault, tmp_path):
    p = _write(tmp_path, "allbad.json", _bundle([{"resourceType": "Observation", "id": "x"}]))
    before = rows(vault)
    with pytest.raises(ImportRejected) as err:
        ImportService(vault, ImportOptions(skip_invalid=True)).import_file(p)
    assert err.value.user_message.startswith("No record in the file is valid") and "entry 1" in err.value.user_message
    assert rows(vault) == before


def test_ndjson_streams_and_skips_bad_lines_when_asked(vault, tmp_path):
    lines = [json.dumps(_obs(i)) for i in range(500)]
    lines.insert(100, '{"resourceType": "Observation", "id": "torn"')
    p = _write(tmp_path, "Observation.ndjson", "\n".join(lines) + "\n")
    seen = []
    r = ImportService(vault, ImportOptions(skip_invalid=True)).import_file(p, progress=lambda d, t: seen.append((d, t)))
    assert r.added == 500 and [s.where for s in r.skipped] == ["line 101"]
    assert seen[-1] == (p.stat().st_size, p.stat().st_size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # re-import of the same bytes adds nothing
    assert ImportService(vault).import_file(p).already_imported


def test_ndjson_without_extension_is_detected(vault, tmp_path):
    p = _write(tmp_path, "export.json", "\n".join(json.dumps(_obs(i)) for i in range(3)) + "\n")
    assert ImportService(vault).import_file(p).kind == "fhir-ndjson"


def test_progress_is_monotonic_and_reaches_total(vault):
    f = max(synthea_patients(), key=lambda p: p.stat().st_size)
    seen = []
    ImportService(vault).import_paths([f] + [], progress=lambda i, n, d, t: seen.append((d, t)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1]


def test_cancel_leaves_the_vault_unchanged(vault):
    f = max(synthea_patients(), key=lambda p: p.stat().st_size)
    token = CancelToken()
    before = rows(vault)

    def progress(done, total):
        if done > total // 2:      # cancel during the write phase, from "another thread"
            t = threading.Thread(target=token.cancel)
            t.start()
            t.join()

    with pytest.raises(ImportCancelled):
        ImportService(vault).import_file(f, progress=progress, cancel=token)
    assert rows(vault) == before


def test_conditional_references_resolve_in_the_bundle_and_from_the_vault(vault, tmp_path):
    org = {"resourceType": "Organization", "id": "org-1", "name": "Clinic",
           "identifier": [{"system": "urn:example:org", "value": "42"}]}
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
           "serviceProvider": {"reference": "Organization?identifier=urn:example:org|42"}}
    r = ImportService(vault).import_file(_write(tmp_path, "a.json", _bundle([org, enc], "transaction")))
    assert r.added == 2
    enc2 = dict(enc, id="e2")
    ImportService(vault).import_file(_write(tmp_path, "b.json", _bundle([enc2], "transaction")))
    with vault.read() as conn:
        for eid in ("e1", "e2"):
            assert query.get(conn, "Encounter", eid)["serviceProvider"]["reference"] == "Organization/org-1"


def test_ambiguous_conditional_reference_is_refused(vault, tmp_path):
    orgs = [{"resourceType": "Organization", "id": f"org-{i}", "identifier": [{"system": "s", "value": "v"}]}
            for i in (1, 2)]
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
           "serviceProvider": {"reference": "Organization?identifier=s|v"}}
    with pytest.raises(DanglingReference):
        ImportService(vault).import_file(_write(tmp_path, "amb.json", _bundle(orgs + [enc], "transaction")))


def test_changed_content_is_a_new_version_with_history(vault, tmp_path):
    ImportService(vault).import_file(_write(tmp_path, "v1.json", _obs(1)))
    r = ImportService(vault).import_file(_write(tmp_path, "v2.json", _obs(1, status="amended")))
    assert (r.added, r.updated) == (0, 1)
    with vault.read() as conn:
        assert query.get(conn, "Observation", "o1")["status"] == "amended"
        assert conn.execute("SELECT version FROM rec_resources WHERE id = 'o1'").fetchone()[0] == 2
        old = conn.execute("SELECT json FROM rec_history").fetchone()[0]
        assert json.loads(old)["status"] == "final"
        assert len(query.provenance(conn, "Observation", "o1")) == 2


def test_same_content_under_another_id_from_another_source_is_one_record(vault, tmp_path):
    ImportService(vault).import_file(_write(tmp_path, "a.json", _obs(1)))
    r = ImportService(vault).import_file(_write(tmp_path, "b.json", _obs(1, id="renumbered")))
    assert (r.added, r.duplicates) == (0, 1)
    with vault.read() as conn:
        assert query.get(conn, "Observation", "renumbered")["id"] == "o1"   # found through its alias


def test_provenance_and_original_payload(vault, tmp_path):
    p = _write(tmp_path, "Quackenbush-records.json", _bundle([_obs(1), _obs(2)]))
    r = ImportService(vault).import_file(p)
    with vault.read() as conn:
        prov = query.provenance(conn, "Observation", "o2")
        assert len(prov) == 1
        src = prov[0]
        assert src["kind"] == "fhir-json" and src["trust"] == "unverified"
        assert src["name_sha256"] == store.name_hash(p.name) and "Quackenbush" not in json.dumps(prov)
        import hashlib
        assert src["payload_sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert b"".join(store.read_payload(conn, r.source_id)) == p.read_bytes()


def test_trust_option_marks_clinician_signed(vault, tmp_path):
    r = ImportService(vault, ImportOptions(trust="clinician-signed")).import_file(_write(tmp_path, "n.json", _obs(3)))
    assert r.trust == "clinician-signed"
    with vault.read() as conn:
        assert conn.execute("SELECT trust FROM rec_resources").fetchone()[0] == "clinician-signed"


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def test_pdf_becomes_document_reference_with_encrypted_attachment(vault, tmp_path):
    p = tmp_path / "discharge-letter.pdf"
    p.write_bytes(PDF)
    r = ImportService(vault).import_file(p)
    assert r.by_type == {"DocumentReference": 1} and r.trust == "patient-entered"
    with vault.read() as conn:
        (raw,) = conn.execute("SELECT json FROM rec_resources").fetchone()
        doc = json.loads(raw)
        att = doc["content"][0]["attachment"]
        assert att["contentType"] == "application/pdf" and att["size"] == len(PDF)
        (data, ctype) = conn.execute("SELECT data, content_type FROM rec_attachments").fetchone()
        assert bytes(data) == PDF and ctype == "application/pdf"
    # the bytes are not in the vault folder in clear
    for f in vault.folder.rglob("*"):
        if f.is_file():
            assert b"/Type/Catalog" not in f.read_bytes()
    assert ImportService(vault).import_file(p).already_imported


def test_plain_records_do_not_appear_in_clear_in_the_vault_folder(vault):
    f = max(synthea_patients(), key=lambda p: p.stat().st_size)
    ImportService(vault).import_file(f)
    family = json.loads(f.read_text(encoding="utf-8"))["entry"][0]["resource"]["name"][0]["family"].encode()
    for p in vault.folder.rglob("*"):
        if p.is_file():
            assert family not in p.read_bytes()


def test_parallel_validation_gives_the_same_answers(make_vault, tmp_path):
    resources = [_obs(i) for i in range(600)]
    resources[123] = {"resourceType": "Observation", "id": "bad", "status": "final"}
    resources[400] = {"resourceType": "Observation", "id": "bad2", "status": "final", "code": {"text": "x"},
                      "valueQuantity": {"value": "not a number"}}
    p = _write(tmp_path, "many.json", _bundle(resources))
    outcomes = []
    for workers in (1, 2):
        v = make_vault()
        with pytest.raises(ResourceInvalid) as err:
            ImportService(v, ImportOptions(workers=workers)).import_file(p)
        r = ImportService(v, ImportOptions(workers=workers, skip_invalid=True)).import_file(p)
        outcomes.append((err.value.user_message, r.added, [(s.where, s.reason) for s in r.skipped]))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == 598 and [w for w, _ in outcomes[0][2]] == ["entry 124", "entry 401"]


def test_two_threads_importing_the_same_file_store_it_once(vault):
    f = max(synthea_patients(), key=lambda p: p.stat().st_size)
    results, errors = [], []

    def run():
        try:
            results.append(ImportService(vault).import_file(f))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.already_imported for r in results) == [False, True]
    with vault.read() as conn:
        assert conn.execute("SELECT count(*) FROM rec_sources").fetchone()[0] == 1


@pytest.mark.parametrize("fmt", ["bundle", "ndjson"])
def test_documents_travel_inside_exports_and_come_back(make_vault, tmp_path, fmt):
    from vault.records import export
    v = make_vault()
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(PDF)
    ImportService(v).import_file(pdf)
    out = tmp_path / f"all.{fmt}"
    export.export(v, fmt, out)
    assert b"/Type/Catalog" not in out.read_bytes() and "data" in out.read_text()   # base64 inside the export
    fresh = make_vault()
    ImportService(fresh).import_file(out)
    for conn_of in (v, fresh):
        with conn_of.read() as conn:
            assert bytes(conn.execute("SELECT data FROM rec_attachments").fetchone()[0]) == PDF
    with v.read() as a, fresh.read() as b:
        assert a.execute("SELECT json FROM rec_resources").fetchall() == b.execute(
            "SELECT json FROM rec_resources").fetchall()


def test_altered_inline_document_is_refused(make_vault, tmp_path):
    from vault.records import export
    from vault.records.errors import DocumentInvalid
    v = make_vault()
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(PDF)
    ImportService(v).import_file(pdf)
    out = tmp_path / "all.json"
    export.export(v, "bundle", out)
    doc = json.loads(out.read_text())
    import base64
    att = doc["entry"][0]["resource"]["content"][0]["attachment"]
    att["data"] = base64.b64encode(PDF.replace(b"Catalog", b"Katalog")).decode()
    out.write_text(json.dumps(doc))
    fresh = make_vault()
    before = rows(fresh)
    with pytest.raises(DocumentInvalid):
        ImportService(fresh).import_file(out)
    assert rows(fresh) == before

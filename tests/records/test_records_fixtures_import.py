"""Real third-party data imports completely, dedupes on re-import, and round-trips through export."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from vault.records import export, store
from vault.records.errors import DanglingReference, RecordsError
from vault.records.fhir_models import model_of
from vault.records.importer import ImportOptions, ImportReport, ImportService
from vault.records.persons import EVERYONE

from records_support import counts, fixture_dir, rows, synthea_patients, synthea_support


def _expected_types(paths) -> Counter:
    """Distinct (type, id) per type across the files, read independently of the importer."""
    seen = set()
    for p in paths:
        doc = json.loads(p.read_text(encoding="utf-8"))
        resources = [e["resource"] for e in doc.get("entry", []) if "resource" in e] \
            if doc["resourceType"] == "Bundle" else [doc]
        seen.update((r["resourceType"], r["id"]) for r in resources)
    return Counter(t for t, _ in seen)


def _all_resources(v) -> set[tuple[str, str, str]]:
    with v.read() as conn:
        return set(conn.execute("SELECT rtype, id, json FROM rec_resources").fetchall())


def _ok(results) -> list[ImportReport]:
    bad = [(p.name, r.user_message) for p, r in results if isinstance(r, RecordsError)]
    assert not bad, bad
    return [r for _, r in results]


@pytest.fixture(scope="module")
def synthea_vault(tmp_path_factory):
    from vault.store import Vault
    v, _ = Vault.create(tmp_path_factory.mktemp("synthea") / "v", "correct horse battery staple",
                        kdf_profile="test-insecure")
    files = synthea_patients() + synthea_support()
    # ten different people: kept apart in one vault, which these tests read as a whole
    reports = _ok(ImportService(v, ImportOptions(other_person=True)).import_paths(files))
    yield v, files, reports
    v.close()


def test_every_synthea_bundle_imports_with_counts_per_type(synthea_vault):
    v, files, reports = synthea_vault
    assert len(reports) == len(files) == 12
    assert counts(v) == dict(_expected_types(files))
    with v.read() as conn:
        # provenance: every resource has a source, and each source kept its original bytes
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE source_id IS NULL").fetchone()[0] == 0
        for p, r in zip(files, reports):
            original = b"".join(store.read_payload(conn, r.source_id))
            assert original == p.read_bytes()
            src = store.get_source(conn, r.source_id)
            assert src.name_sha256 == store.name_hash(p.name) and p.stem not in json.dumps(src.verification)
            assert src.trust == "unverified"


def test_reimport_of_same_files_adds_nothing(synthea_vault):
    v, files, _ = synthea_vault
    before = rows(v)
    reports = _ok(ImportService(v).import_paths(files[:3]))
    assert all(r.already_imported and r.added == 0 for r in reports)
    assert rows(v) == before


def test_overlapping_export_reimport_adds_no_records(synthea_vault, tmp_path):
    v, _, _ = synthea_vault
    out = tmp_path / "subset.json"
    exported = export.export(v, "bundle", out, types=["Condition", "Immunization"])
    before = rows(v)
    r = ImportService(v).import_file(out)
    assert (r.added, r.updated, r.duplicates) == (0, 0, sum(exported.values())) and r.duplicates > 0
    after = rows(v)
    assert after["rec_resources"] == before["rec_resources"]
    assert after["rec_sources"] == before["rec_sources"] + 1   # the new file is a source of those records


def test_references_into_another_file_resolve_through_the_vault_or_are_refused(make_vault, tmp_path):
    """A patient bundle without its practitioner entries (as Synthea can also emit) points into the separate
    practitionerInformation bundle: alone it is refused whole; after that bundle (or with it) it imports."""
    patient = max(synthea_patients(), key=lambda p: p.stat().st_size)
    practitioners = next(p for p in synthea_support() if p.name.startswith("practitionerInformation"))
    known = {e["fullUrl"] for e in json.loads(practitioners.read_text(encoding="utf-8"))["entry"]}
    doc = json.loads(patient.read_text(encoding="utf-8"))
    doc["entry"] = [e for e in doc["entry"] if e["fullUrl"] not in known]
    stripped = tmp_path / "patient-without-practitioners.json"
    stripped.write_text(json.dumps(doc), encoding="utf-8")

    v = make_vault()
    before = rows(v)
    with pytest.raises(DanglingReference) as err:
        ImportService(v).import_file(stripped)
    assert "Practitioner" not in err.value.user_message or "reference" in err.value.user_message
    assert rows(v) == before

    results = ImportService(v).import_paths([stripped, practitioners])   # order given does not matter
    _ok(results)
    with v.read() as conn:
        enc = json.loads(conn.execute("SELECT json FROM rec_resources WHERE rtype = 'Encounter' LIMIT 1"
                                      ).fetchone()[0])
    ref = enc["participant"][0]["individual"]["reference"]
    assert ref.startswith("Practitioner/")           # rewritten from urn:uuid: to a literal reference
    with v.read() as conn:
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE rtype = 'Practitioner' AND id = ?",
                            (ref.split("/")[1],)).fetchone()[0] == 1


def test_every_us_core_example_imports_with_counts_per_type(vault):
    files = sorted(fixture_dir("us-core").glob("*.json"))
    assert len(files) == 230
    _ok(ImportService(vault, ImportOptions(other_person=True)).import_paths(files))
    assert counts(vault) == dict(_expected_types(files))


@pytest.mark.parametrize("fmt", ["bundle", "ndjson"])
def test_export_then_import_into_fresh_vault_gives_same_resources(synthea_vault, make_vault, tmp_path, fmt):
    v, _, _ = synthea_vault
    us_core = make_vault()
    _ok(ImportService(us_core, ImportOptions(other_person=True)).import_paths(
        sorted(fixture_dir("us-core").glob("*.json"))))
    for source in (v, us_core):
        out = tmp_path / f"export.{fmt}"
        exported = export.export(source, fmt, out, person=EVERYONE)
        assert exported == counts(source)
        fresh = make_vault()
        report = ImportService(fresh, ImportOptions(other_person=True)).import_file(out)
        assert report.added == sum(exported.values()) and not report.skipped
        assert _all_resources(fresh) == _all_resources(source)


def test_ips_of_largest_synthea_patient(make_vault, tmp_path):
    largest = max(synthea_patients(), key=lambda p: p.stat().st_size)
    v = make_vault()
    _ok(ImportService(v).import_paths(synthea_support() + [largest]))
    out = tmp_path / "ips.json"
    export.export(v, "ips", out)
    doc = json.loads(out.read_text(encoding="utf-8"))
    model_of(doc)  # validates as R4B
    assert doc["type"] == "document"
    comp = doc["entry"][0]["resource"]
    assert comp["resourceType"] == "Composition"
    assert comp["type"]["coding"][0] == {"system": "http://loinc.org", "code": "60591-5",
                                         "display": "Patient summary Document"}
    sections = {s["code"]["coding"][0]["code"]: s for s in comp["section"]}
    for required in ("11450-4", "48765-2", "10160-0"):
        s = sections[required]
        assert ("entry" in s) != ("emptyReason" in s)
    for s in sections.values():
        assert s["text"]["status"] == "generated" and s["text"]["div"].startswith("<div")
    full_urls = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    for s in sections.values():
        for ref in s.get("entry", []):
            assert ref["reference"] in full_urls           # every section entry is in the document
    problems = [full_urls[r["reference"]] for r in sections["11450-4"].get("entry", [])]
    assert problems and all(p["clinicalStatus"]["coding"][0]["code"] not in ("resolved", "inactive")
                            for p in problems)
    # the source has resolved conditions, and they were left out
    with v.read() as conn:
        resolved = conn.execute("SELECT count(*) FROM rec_resources WHERE rtype = 'Condition' AND status = 'resolved'"
                                ).fetchone()[0]
    assert resolved > 0
    meds = [full_urls[r["reference"]] for r in sections["10160-0"].get("entry", [])]
    assert all(m["status"] == "active" for m in meds)
    for code in ("30954-2", "8716-3"):          # latest result per code: one entry per code
        if code in sections:
            obs = [full_urls[r["reference"]] for r in sections[code]["entry"]]
            codes = [o["code"]["coding"][0]["code"] for o in obs]
            assert len(codes) == len(set(codes))
    assert "11369-6" in sections and "47519-4" in sections  # this patient has immunizations and procedures


def test_ips_documents_import_the_spec_example_and_our_own(make_vault, tmp_path):
    example = fixture_dir("shl-shc", "spec", "IPS_IG-bundle-01.json")
    v = make_vault()
    r = ImportService(v).import_file(example)
    assert counts(v) == dict(_expected_types([example])) and r.by_type["Composition"] == 1
    # our IPS, imported elsewhere, brings the summarised records with literal references again
    out = tmp_path / "ips.json"
    export.export(v, "ips", out)
    fresh = make_vault()
    r2 = ImportService(fresh).import_file(out)
    assert r2.added == len(json.loads(out.read_text())["entry"])
    with fresh.read() as conn:
        refs = [json.loads(j)["subject"]["reference"] for (j,) in conn.execute(
            "SELECT json FROM rec_resources WHERE rtype = 'Condition'")]
    assert refs and all(x.startswith("Patient/") for x in refs)

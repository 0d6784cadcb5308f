"""The summary's sections read from real vaults: a Synthea patient (what is active, the latest value and the one
before it, one line per vaccine, recent visits), US Core lab results flagged from their own interpretation or
range, and a second person kept apart."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.services import PastedText, Session
from tests.conftest import FIXTURES
from tests.gui.synthea_vault import FLETCHER, JULIETTE, NED, SYNTHEA, directory_files
from vault.records import persons, query
from vault.records.summary import list_label, summary

US_CORE = FIXTURES / "us-core"
_INACTIVE = {"inactive", "resolved", "remission", "refuted", "entered-in-error"}


def _resources(name: str) -> list[dict]:
    return [e["resource"] for e in json.loads((SYNTHEA / name).read_text("utf-8"))["entry"]]


def _code(concept: dict) -> str:
    return concept["coding"][0]["code"]


@pytest.fixture(scope="module")
def fletcher(tmp_path_factory):
    from tests.gui.synthea_vault import synthea_vault
    vault = synthea_vault(tmp_path_factory.mktemp("fletcher") / "v", FLETCHER)
    with vault.read_only() as conn:
        result = summary(conn)
    yield vault, result
    vault.close()


def test_problems_are_the_active_conditions_once_each(fletcher):
    _vault, s = fletcher
    conditions = [r for r in _resources(FLETCHER) if r["resourceType"] == "Condition"]
    active = {list_label("Condition", r["code"]["text"]) for r in conditions
              if _code(r["clinicalStatus"]) not in _INACTIVE}
    resolved = {list_label("Condition", r["code"]["text"]) for r in conditions
                if _code(r["clinicalStatus"]) == "resolved"}
    assert {i.label for i in s.problems} == active
    assert len(s.problems) == len(active) == 17
    assert not resolved & {i.label for i in s.problems} - active
    assert "Acute bronchitis" in resolved and "Acute bronchitis" not in {i.label for i in s.problems}
    assert [i.date for i in s.problems] == sorted((i.date for i in s.problems), reverse=True)


def test_medications_are_the_active_prescriptions_with_how_to_take_them(fletcher):
    _vault, s = fletcher
    active = {r["medicationCodeableConcept"]["text"] for r in _resources(FLETCHER)
              if r["resourceType"] == "MedicationRequest" and r["status"] == "active"}
    assert {i.label for i in s.medications} == active
    simvastatin = next(i for i in s.medications if i.label == "Simvistatin 10 MG")
    assert "once a day" in simvastatin.value


def test_one_line_per_vaccine_with_its_doses_and_last_date(fletcher):
    _vault, s = fletcher
    given = [r for r in _resources(FLETCHER) if r["resourceType"] == "Immunization" and r["status"] == "completed"]
    doses = Counter(_code(r["vaccineCode"]) for r in given)
    assert sorted(i.count for i in s.immunizations) == sorted(doses.values())
    assert sum(i.count for i in s.immunizations) == len(given) == 10
    last = max(r["occurrenceDateTime"] for r in given)
    assert s.immunizations[0].date[:10] == last[:10]


def test_latest_result_and_the_one_before_it_from_an_earlier_day(fletcher):
    vault, s = fletcher
    cholesterol = sorted((r for r in _resources(FLETCHER) if r["resourceType"] == "Observation"
                          and _code(r["code"]) == "2093-3"), key=lambda r: r["effectiveDateTime"])
    latest, earlier = cholesterol[-1], [r for r in cholesterol
                                        if r["effectiveDateTime"][:10] < cholesterol[-1]["effectiveDateTime"][:10]][-1]
    item = next(i for i in s.results if i.label == "Total Cholesterol")
    assert item.id == latest["id"] and item.date[:10] == latest["effectiveDateTime"][:10]
    assert item.value == f"{latest['valueQuantity']['value']:.0f} mg/dL"
    assert item.previous == f"{earlier['valueQuantity']['value']:.0f} mg/dL"
    assert item.previous_date[:10] == earlier["effectiveDateTime"][:10]
    with vault.read_only() as conn:
        assert query.get(conn, "Observation", item.id)["code"]["coding"][0]["code"] == "2093-3"


def test_blood_pressure_reads_systolic_over_diastolic(fletcher):
    _vault, s = fletcher
    panels = sorted((r for r in _resources(FLETCHER) if r["resourceType"] == "Observation"
                     and _code(r["code"]) == "55284-4"), key=lambda r: r["effectiveDateTime"])
    parts = {_code(c["code"]): c["valueQuantity"]["value"] for c in panels[-1]["component"]}
    bp = next(i for i in s.vitals if i.label == "Blood Pressure")
    systolic, diastolic = bp.value.removesuffix(" mmHg").split("/")
    assert float(systolic) == pytest.approx(parts["8480-6"], abs=0.5)
    assert float(diastolic) == pytest.approx(parts["8462-4"], abs=0.05)
    assert parts["8480-6"] > parts["8462-4"]


def test_recent_visits_are_the_newest_encounters(fletcher):
    _vault, s = fletcher
    encounters = sorted((r for r in _resources(FLETCHER) if r["resourceType"] == "Encounter"),
                        key=lambda r: r["period"]["start"], reverse=True)
    assert [i.id for i in s.encounters] == [r["id"] for r in encounters[:5]]
    assert all(i.value and "Springfield" in i.value for i in s.encounters)


def test_every_item_opens_a_record_of_the_vault(fletcher):
    vault, s = fletcher
    items = [i for key in ("problems", "medications", "immunizations", "vitals", "results", "encounters")
             for i in getattr(s, key)]
    assert len(items) > 60
    with vault.read_only() as conn:
        assert all(query.get(conn, i.rtype, i.id) is not None for i in items)


@pytest.fixture
def us_core(vault_factory):
    vault = vault_factory("us")
    files = [US_CORE / "patient-example.json", *sorted(US_CORE.glob("observation-serum-*.json")),
             *sorted(US_CORE.glob("observation-cbc-*.json"))]
    outcomes = Session(vault).import_sources(files)
    assert all(o.ok for o in outcomes), [o.sentence for o in outcomes]
    return vault, files[1:]


def test_results_are_flagged_as_their_lab_interpreted_them(us_core):
    vault, files = us_core
    expected = {}
    for f in files:
        doc = json.loads(f.read_text("utf-8"))
        letter = doc["interpretation"][0]["coding"][0]["code"]
        expected[doc["id"]] = {"H": "high", "L": "low", "N": None}[letter]
    with vault.read_only() as conn:
        s = summary(conn)
    assert {i.id: i.flag for i in s.results} == expected
    assert sorted(f for f in expected.values() if f) == ["high", "high", "low"]
    calcium = next(i for i in s.results if i.label.startswith("Calcium"))
    assert calcium.value == "7.7 mg/dL" and calcium.flag_label == "Low"


def test_without_an_interpretation_the_flag_comes_from_the_range(vault_factory):
    vault = vault_factory("range")
    session = Session(vault)
    assert session.import_sources([US_CORE / "patient-example.json"])[0].ok
    calcium = json.loads((US_CORE / "observation-serum-calcium.json").read_text("utf-8"))
    del calcium["interpretation"]          # 7.7 mg/dL against 8.5 to 10.5 mg/dL: low by its own range
    outcome = session.import_sources([PastedText(json.dumps(calcium))])[0]
    assert outcome.ok, outcome.sentence
    with vault.read_only() as conn:
        item, = summary(conn).results
    assert item.flag == "low"


def test_each_person_has_their_own_summary(vault_factory):
    vault = vault_factory("two")
    session = Session(vault)
    assert all(o.ok for o in session.import_sources([*directory_files(), SYNTHEA / JULIETTE]))
    refused, = session.import_sources([SYNTHEA / NED])
    assert refused.other_person
    assert session.import_sources([SYNTHEA / NED], other_person=True)[0].ok
    with vault.read_only() as conn:
        owner, other = persons.persons(conn)
        mine, theirs = summary(conn), summary(conn, person=other.id)
    assert owner.is_primary and not other.is_primary
    assert {i.label for i in mine.allergies} == {"Shellfish allergy", "Allergy to mould"}
    assert theirs.allergies == []
    ned_ids = {r["id"] for r in _resources(NED)}
    assert {i.id for i in theirs.immunizations} <= ned_ids and theirs.immunizations
    assert not {i.id for i in mine.immunizations} & ned_ids


def test_an_empty_vault_says_so(unlocked_vault):
    with unlocked_vault.read_only() as conn:
        s = summary(conn)
    assert s.is_empty() and s.problems == [] and s.results == []


def test_the_newest_record_of_a_problem_decides_whether_it_is_current(vault_factory):
    from tests.gui.synthea_vault import synthea_vault
    vault = synthea_vault(vault_factory("j").folder.parent / "juliette", JULIETTE)
    try:
        pregnancies = sorted((r for r in _resources(JULIETTE) if r["resourceType"] == "Condition"
                              and r["code"]["text"] == "Normal pregnancy"), key=lambda r: r["onsetDateTime"])
        assert len(pregnancies) > 5 and _code(pregnancies[-1]["clinicalStatus"]) == "active"
        assert all(_code(r["clinicalStatus"]) == "resolved" for r in pregnancies[:-1])
        with vault.read_only() as conn:
            s = summary(conn)
        assert [(i.label, i.id) for i in s.problems] == [("Normal pregnancy", pregnancies[-1]["id"])]
        assert {i.label for i in s.medications} == {"NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector",
                                                    "diphenhydrAMINE Hydrochloride 25 MG Oral Tablet"}
    finally:
        vault.close()


def test_a_code_whose_newest_record_is_a_report_and_records_without_a_code(vault_factory):
    """The latest test of a code is found when a newer lab report carries the same code, and records without any
    code (only words) still make the summary."""
    vault = vault_factory("codes")
    session = Session(vault)
    assert session.import_sources([US_CORE / "patient-example.json"])[0].ok
    lab = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory"}]}]
    a1c = {"coding": [{"system": "http://loinc.org", "code": "4548-4",
                       "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]}
    resources = [
        {"resourceType": "Observation", "id": "a1c-old", "status": "final", "category": lab, "code": a1c,
         "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2020-01-01",
         "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}},
        {"resourceType": "DiagnosticReport", "id": "a1c-report", "status": "final", "code": a1c,
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
         "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2021-01-01"},
        {"resourceType": "Observation", "id": "glucose-home", "status": "final", "category": lab,
         "code": {"text": "Home glucose reading"}, "subject": {"reference": "Patient/example"},
         "effectiveDateTime": "2021-02-01", "valueQuantity": {"value": 5.5, "unit": "mmol/L"}},
        {"resourceType": "Condition", "id": "knee", "code": {"text": "Sore knee"},
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        "code": "active"}]},
         "subject": {"reference": "Patient/example"}, "onsetDateTime": "2021-03-01"},
    ]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}
    outcome = session.import_sources([PastedText(json.dumps(bundle))])[0]
    assert outcome.ok, outcome.sentence
    with vault.read_only() as conn:
        assert query.get(conn, "Observation", "glucose-home") is not None
        assert conn.execute("SELECT code FROM rec_resources WHERE id IN ('glucose-home', 'knee')").fetchall() \
            == [(None,), (None,)]
        s = summary(conn)
    results = {i.id: i for i in s.results}
    assert set(results) == {"a1c-old", "glucose-home"}
    assert results["a1c-old"].value == "6.1 %" and results["glucose-home"].label == "Home glucose reading"
    assert [i.id for i in s.problems] == ["knee"]

"""Which records count as sensitive: each rule on records shaped as sources write them (ICD-10 and ICD-9 ranges,
SNOMED CT, LOINC and RxNorm lists, security labels, names, medicine ingredients, links and visits), what must not be
flagged, the Synthea patients as they are, and the promise that ``docs/sharing.md`` lists every code the module
uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vault.records import sensitive as S
from tests.conftest import FIXTURES, ROOT

SYNTHEA = FIXTURES / "synthea"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def condition(code: str, system: str = ICD10, display: str = "", **extra) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"resourceType": "Condition", "id": f"c-{code}", "code": {"coding": [coding]}, **extra}


def flag_one(resource: dict) -> S.Flag | None:
    """A single record judged on its own content (no links)."""
    found = S.direct_findings(resource)
    return S.Flag(tuple(found)) if found else None


def topics(resource: dict) -> set[str]:
    flag = flag_one(resource)
    return set(flag.topics) if flag else set()


@pytest.mark.parametrize("code,topic", [
    ("F32.9", S.MENTAL), ("F41.1", S.MENTAL), ("F20.0", S.MENTAL), ("F99", S.MENTAL), ("R45.851", S.MENTAL),
    ("F10.20", S.SUBSTANCE), ("F11.10", S.SUBSTANCE), ("F19", S.SUBSTANCE), ("K70.30", S.SUBSTANCE),
    ("Z71.41", S.SUBSTANCE),
    ("B20", S.HIV), ("Z21", S.HIV), ("Z11.4", S.HIV),
    ("O80", S.REPRODUCTIVE), ("O9A.111", S.REPRODUCTIVE), ("Z30.011", S.REPRODUCTIVE), ("Z3A.12", S.REPRODUCTIVE),
    ("A54.9", S.REPRODUCTIVE), ("N97.9", S.REPRODUCTIVE),
    ("Z15.01", S.GENETIC), ("Q90.9", S.GENETIC), ("Z14.1", S.GENETIC),
])
def test_icd10_ranges(code, topic):
    assert topics(condition(code)) == {topic}
    assert topics(condition(code.replace(".", ""), system="http://hl7.org/fhir/sid/icd-10")) == {topic}


def test_a_code_may_belong_to_two_topics():
    assert topics(condition("O98.711")) == {S.HIV, S.REPRODUCTIVE}            # HIV in pregnancy
    assert topics(condition("O28.5")) == {S.GENETIC, S.REPRODUCTIVE}          # antenatal chromosomal finding
    assert topics(condition("O99.320")) == {S.SUBSTANCE, S.REPRODUCTIVE}      # drug use in pregnancy


@pytest.mark.parametrize("code", ["F17.210", "E11.9", "I10", "J45.909", "Z00.00", "N39.0", "Q21.1", "R46.0"])
def test_icd10_codes_outside_the_ranges_are_not_flagged(code):
    # nicotine dependence (F17) is left to the patient on purpose: docs/sharing.md says so
    assert topics(condition(code)) == set()


@pytest.mark.parametrize("code,topic", [("296.20", S.MENTAL), ("303.90", S.SUBSTANCE), ("042", S.HIV),
                                        ("V22.0", S.REPRODUCTIVE), ("758.0", S.GENETIC)])
def test_icd9_ranges(code, topic):
    assert topics(condition(code, system="http://hl7.org/fhir/sid/icd-9-cm")) == {topic}


def test_snomed_loinc_and_rxnorm_lists():
    assert topics(condition("370143000", "http://snomed.info/sct")) == {S.MENTAL}
    assert topics(condition("7200002", "http://snomed.info/sct")) == {S.SUBSTANCE}
    hiv = {"resourceType": "Observation", "id": "o", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "75622-1"}]}}
    assert topics(hiv) == {S.HIV}
    variant = {"resourceType": "Observation", "id": "g", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]}}
    assert topics(variant) == {S.GENETIC}
    ring = {"resourceType": "MedicationRequest", "id": "m", "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "1367439"}]}}
    assert topics(ring) == {S.REPRODUCTIVE}
    # the same codes in a system that does not define them mean nothing here
    assert topics(condition("7200002", "http://example.org/local-codes")) == set()


def test_security_labels_from_the_source():
    def labelled(system: str, code: str) -> dict:
        return {"resourceType": "Observation", "id": "x", "status": "final", "code": {"text": "Panel"},
                "meta": {"security": [{"system": system, "code": code}]}}
    act = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    assert topics(labelled(act, "ETH")) == {S.SUBSTANCE}
    assert topics(labelled(act, "PSY")) == {S.MENTAL}
    assert topics(labelled(act, "HIV")) == {S.HIV}
    assert topics(labelled(act, "GDIS")) == {S.GENETIC}
    assert topics(labelled(act, "SEX")) == {S.REPRODUCTIVE}
    assert topics(labelled("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")) == {S.RESTRICTED}
    assert topics(labelled("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N")) == set()
    assert topics(labelled("http://example.org/tags", "HIV")) == set()     # only HL7's label systems count


def test_words_and_medicine_ingredients():
    text_only = {"resourceType": "Condition", "id": "t", "code": {"text": "HIV infection, on treatment"}}
    assert topics(text_only) == {S.HIV}
    assert topics({"resourceType": "Procedure", "id": "p", "status": "completed",
                   "code": {"text": "Karyotype analysis"}}) == {S.GENETIC}
    truvada = {"resourceType": "MedicationStatement", "id": "ms", "status": "active",
               "medicationCodeableConcept": {"text": "Emtricitabine 200 MG / Tenofovir 300 MG Oral Tablet"}}
    assert topics(truvada) == {S.HIV}
    methadone = {"resourceType": "MedicationRequest", "id": "mr", "status": "active",
                 "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                           "code": "864706", "display": "Methadone 10 MG"}]}}
    assert topics(methadone) == {S.SUBSTANCE}
    # words that only look alike
    for text in ("Hearing aids fitted", "Congenital heart disease", "Depressed skull fracture",
                 "Walking aids assessment"):
        assert topics({"resourceType": "Condition", "id": "n", "code": {"text": text}}) == set(), text
    # a medicine name is read as a medicine only on a medicine record
    assert topics({"resourceType": "Observation", "id": "lvl", "status": "final",
                   "code": {"text": "Lithium [Moles/volume] in Serum"}}) == set()


def test_links_and_visits_pass_sensitivity_on():
    alcoholism = condition("7200002", "http://snomed.info/sct", "Alcoholism")
    alcoholism["id"] = "alc"
    thiamine = {"resourceType": "MedicationRequest", "id": "thi", "status": "active",
                "medicationCodeableConcept": {"text": "Thiamine 100 MG"},
                "reasonReference": [{"reference": "Condition/alc"}]}
    visit = {"resourceType": "Encounter", "id": "v", "status": "finished",
             "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "72892002",
                                         "display": "Normal pregnancy"}]}]}
    weight = {"resourceType": "Observation", "id": "w", "status": "final", "code": {"text": "Body weight"},
              "encounter": {"reference": "Encounter/v"}}
    scan = {"resourceType": "Procedure", "id": "s", "status": "completed", "code": {"text": "Ultrasound scan"},
            "encounter": {"reference": "Encounter/v"}}
    bill = {"resourceType": "Claim", "id": "b", "status": "active",
            "diagnosis": [{"sequence": 1, "diagnosisReference": {"reference": "MedicationRequest/thi"}}],
            "item": [{"sequence": 1, "productOrService": {"text": "Visit"}}]}
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": {"text": "Panel"},
              "result": [{"reference": "urn:uuid:hiv-1"}]}
    hiv = {"resourceType": "Observation", "id": "h", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "7917-8"}]}}
    records = {"MedicationRequest/thi": thiamine, "Observation/w": weight, "Procedure/s": scan,
               "Claim/b": bill, "DiagnosticReport/r": report, "Observation/h": hiv}
    outside = {"Condition/alc": alcoholism, "Encounter/v": visit}
    flags = S.flag_records(records, aliases={"urn:uuid:hiv-1": "Observation/h"}, resolve=outside.get)
    assert set(flags["MedicationRequest/thi"].topics) == {S.SUBSTANCE}
    assert "linked to Alcoholism" in flags["MedicationRequest/thi"].sentence()
    assert set(flags["Claim/b"].topics) == {S.SUBSTANCE}             # a chain of links: bill -> medicine -> diagnosis
    assert set(flags["Procedure/s"].topics) == {S.REPRODUCTIVE}
    assert "part of a visit for Normal pregnancy" in flags["Procedure/s"].sentence()
    assert set(flags["DiagnosticReport/r"].topics) == {S.HIV}        # through the document's urn:uuid alias
    assert "Observation/w" not in flags                              # a weight taken at the visit says nothing


def _synthea(name: str) -> tuple[dict, dict]:
    bundle = json.loads((SYNTHEA / name).read_text())
    records = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}
    return records, {e["fullUrl"]: k for e, k in zip(bundle["entry"], records)}


def test_synthea_patients_as_they_are(fixtures_dir):
    records, urls = _synthea("Juliette_Padberg_4acd4ca8-d54b-47f4-bd13-051276711265.json")
    flags = S.flag_records(records, aliases=urls)
    pregnancies = [k for k, r in records.items() if r["resourceType"] == "Condition"
                   and r["code"]["coding"][0]["code"] == "72892002"]
    assert pregnancies and all(S.REPRODUCTIVE in flags[k].topics for k in pregnancies)
    assert S.HIV in flags[next(k for k, r in records.items() if r["resourceType"] == "Procedure"
                               and r["code"]["coding"][0]["code"] == "31676001")].topics
    contraceptive = next(k for k, r in records.items() if r["resourceType"] == "MedicationRequest"
                         and "Seasonique" in json.dumps(r))
    assert flags[contraceptive].topics == (S.REPRODUCTIVE,)
    # her allergies, vaccinations and blood counts are hers to share without a second thought
    for k, r in records.items():
        if r["resourceType"] in ("AllergyIntolerance", "Immunization", "Patient", "Organization"):
            assert k not in flags, (k, flags[k].sentence())

    records, urls = _synthea("Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json")
    flags = S.flag_records(records, aliases=urls)
    assert {k.split("/")[0] for k in flags} == {"Condition", "Claim", "ExplanationOfBenefit"}
    assert all(f.topics == (S.SUBSTANCE,) for f in flags.values())

    records, urls = _synthea("Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json")
    assert S.flag_records(records, aliases=urls) == {}


def test_the_user_documentation_lists_every_code_the_module_uses():
    doc = (ROOT / "docs" / "sharing.md").read_text()
    missing = []
    for table in (S.SNOMED_CODES, S.LOINC_CODES, S.RXNORM_CODES):
        missing += [c for codes in table.values() for c in codes if not re.search(rf"\b{re.escape(c)}\b", doc)]
    for ranges in (S.ICD10_RANGES, S.ICD9_RANGES):
        for pairs in ranges.values():
            for first, last in pairs:
                if first not in doc.replace(".", "") or last not in doc.replace(".", ""):
                    missing.append(f"{first}-{last}")
    missing += [code for code in S.SECURITY_CODES if f"`{code}`" not in doc]
    missing += [w for words in S.MEDICINE_WORDS.values() for w in words if w not in doc]
    assert not missing, f"docs/sharing.md does not list: {missing}"
    assert "can miss" in doc


def test_a_record_that_is_not_a_record_is_not_flagged():
    assert flag_one("not a record") is None          # type: ignore[arg-type]
    assert S.flag_records({"Condition/x": {"resourceType": "Condition", "id": "x"}}) == {}
    assert Path(S.__file__).read_text().count("import PySide6") == 0

"""Records in a patient's words: every Synthea resource type described from its JSON, words checked against the
JSON itself; dates in the local time zone; categories that split a real vault without overlap; keyset pages by
category that list every record once, in date order, both ways."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.records.records_support import fixture_dir, synthea_patients, synthea_support
from vault.records import describe, query
from vault.records.describe import describe as describe_resource
from vault.records.describe import local_date

FLETCHER = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
JULIETTE = "Juliette_Padberg_4acd4ca8-d54b-47f4-bd13-051276711265.json"


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Local dates depend on the time zone: these tests read them in UTC unless they set another."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _entries(name: str) -> list[dict]:
    doc = json.loads((fixture_dir("synthea") / name).read_text())
    return [e["resource"] for e in doc["entry"]]


def _first(resources: list[dict], rtype: str, test=lambda r: True) -> dict:
    return next(r for r in resources if r["resourceType"] == rtype and test(r))


def _us_core(name: str) -> dict:
    return json.loads((fixture_dir("us-core") / name).read_text())


def _ids(resources: list[dict]) -> dict[str, dict]:
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


def _names_for(resource: dict, pool: dict[str, dict]) -> dict[str, str]:
    """What the detail looks up: the names of what the record points at, with bundle references made literal."""
    out = {}
    for ref in describe.references(_literal(resource)):
        if ref in pool:
            out[ref] = describe.name_of(pool[ref])
    return out


def _literal(resource: dict) -> dict:
    """Synthea bundles point with urn:uuid:; the vault stores Type/id. Rewrite the way the importer does."""
    text = json.dumps(resource)
    for uuid in set(re.findall(r'"urn:uuid:([0-9a-f-]{36})"', text)):
        text = text.replace(f'"urn:uuid:{uuid}"', f'"{_KNOWN.get(uuid, "Unknown")}/{uuid}"')
    return json.loads(text)


_KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def fletcher() -> list[dict]:
    pool = _entries(FLETCHER)
    for path in synthea_support():
        pool += [e["resource"] for e in json.loads(path.read_text())["entry"]]
    for r in pool:
        _KNOWN[r["id"]] = r["resourceType"]
    return [_literal(r) for r in pool]


# --- words ------------------------------------------------------------------------------------------------------

def test_local_dates_read_like_a_letter():
    assert local_date("2021-03-12") == "12 March 2021"
    assert local_date("2021-03") == "March 2021"
    assert local_date("2021") == "2021"
    assert local_date("2021-03-12T14:05:00Z", True) == "12 March 2021, 14:05"
    assert local_date("2021-03-12T14:05:00+02:00", True) == "12 March 2021, 12:05"
    assert local_date(None) == "" and local_date(12) == ""
    assert local_date("not a date at all") == "not a date at all"   # shown as written, not hidden


def test_instants_are_shown_in_the_local_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    # two in the morning in UTC is the evening before in New York
    assert local_date("2021-03-12T02:00:00Z") == "11 March 2021"
    assert local_date("2021-03-12T02:00:00Z", True) == "11 March 2021, 21:00"
    assert local_date("2021-03-12") == "12 March 2021"          # a calendar date has no time zone


def test_plain_words():
    assert describe.plain("Hypertension (disorder)") == "Hypertension"
    assert describe.plain("Encounter for check up (procedure)") == "Encounter for check up"
    assert describe.plain("Body mass index 30+ - obesity (finding)") == "Body mass index 30+ - obesity"
    assert describe.plain("Feeling tired in last 2 weeks [Reported.PHQ]") == "Feeling tired in last 2 weeks"
    assert describe.plain("Cholesterol [Mass/volume] in Serum") == "Cholesterol [Mass/volume] in Serum"
    assert describe.unit_text("mm[Hg]") == "mmHg"
    assert describe.unit_text("{beats}/min") == "beats/min"
    assert describe.unit_text("{score}") == ""
    assert describe.unit_text("10*3/uL") == "×10³/µL"
    assert describe.unit_text("kg/m2") == "kg/m²"
    assert describe.plain_status("entered-in-error") == "Entered in error"
    assert describe.plain_status("some-new-code") == "Some new code"
    assert describe.plain_trust("issuer-verified").startswith("Verified")
    assert describe.plain_trust("unverified").startswith("Not verified")


# --- every Synthea record --------------------------------------------------------------------------------------

_RAW = re.compile(r"urn:uuid:|\b(?:Patient|Practitioner|Organization|Encounter|Condition)/[0-9a-f-]{8,}|None|\{|\}")


@pytest.mark.parametrize("path", synthea_patients() + synthea_support(), ids=lambda p: p.name[:20])
def test_every_synthea_record_is_described_without_codes_or_ids(path: Path):
    resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    kinds = Counter()
    for r in resources:
        d = describe_resource(r)
        kinds[r["resourceType"]] += 1
        assert d.title, r["resourceType"]
        # titles start with a capital, except a medicine's name, which keeps its lettering (diphenhydrAMINE)
        assert d.title[0] == d.title[0].upper() or r["resourceType"].startswith("Medication"), d.title
        assert not _RAW.search(d.title), d.title
        assert not re.search(r"\((?:disorder|procedure|finding|situation)\)", d.text()), d.text()
        for label, value in d.lines:
            assert label and value and value == value.strip(), (label, value)
            assert not _RAW.search(value), (r["resourceType"], label, value)
        if r["resourceType"] not in describe.DIRECTORY_TYPES and r["resourceType"] != "Goal":
            assert d.when, r["resourceType"]          # every record of the timeline has a date to show
    assert kinds


def test_condition(fletcher):
    pool = _ids(fletcher)
    r = _first(fletcher, "Condition", lambda c: "abatementDateTime" in c)
    d = describe_resource(r, _names_for(r, pool))
    assert d.title == describe.plain(r["code"]["text"])
    assert d.kind == "Condition"
    assert d.value("Status") == r["clinicalStatus"]["coding"][0]["code"].capitalize()
    assert d.value("Started") == local_date(r["onsetDateTime"])
    assert d.value("Ended") == local_date(r["abatementDateTime"])
    visit = pool[r["encounter"]["reference"]]
    assert d.value("During the visit") == describe.name_of(visit)
    assert local_date(visit["period"]["start"]) in d.value("During the visit")


def test_observation_with_value_and_unit(fletcher):
    r = _first(fletcher, "Observation", lambda o: o["code"]["coding"][0]["code"] == "29463-7")   # body weight
    d = describe_resource(r)
    value = r["valueQuantity"]["value"]
    number, unit = d.value("Result").split(" ", 1)
    assert abs(float(number) - value) < 0.01 * abs(value) and unit == r["valueQuantity"]["unit"]
    assert d.value("Taken") == local_date(r["effectiveDateTime"], True)
    assert d.kind == "Vital sign"
    assert describe.result_text(r) == d.value("Result")


def test_blood_pressure_components(fletcher):
    r = _first(fletcher, "Observation", lambda o: o["code"]["coding"][0]["code"] == "55284-4")
    d = describe_resource(r)
    comps = {c["code"]["text"]: c["valueQuantity"]["value"] for c in r["component"]}
    for name, value in comps.items():
        assert d.value(name) == f"{value:.0f} mmHg" if value >= 100 else d.value(name).endswith(" mmHg")
    systolic, diastolic = comps["Systolic Blood Pressure"], comps["Diastolic Blood Pressure"]
    shown = describe.result_text(r)
    assert shown.endswith(" mmHg")
    first, second = (float(x) for x in shown[:-5].split("/"))
    assert abs(first - systolic) < 1 and abs(second - diastolic) < 1     # systolic first, as it is written


def test_medication_request_names_the_prescriber_and_reason(fletcher):
    pool = _ids(fletcher)
    r = _first(fletcher, "MedicationRequest", lambda m: "reasonReference" in m and "requester" in m)
    d = describe_resource(r, _names_for(r, pool))
    assert d.title == r["medicationCodeableConcept"]["text"]
    assert d.kind == "Prescription"
    assert d.value("Status") == r["status"].capitalize()
    assert d.value("Prescribed") == local_date(r["authoredOn"])
    prescriber = pool[r["requester"]["reference"]]
    assert d.value("Prescribed by") == describe.human_name(prescriber["name"])
    assert not re.search(r"\d", d.value("Prescribed by"))       # Synthea's numbered names are cleaned
    reason = pool[r["reasonReference"][0]["reference"]]
    assert d.value("Reason") == describe.plain(reason["code"]["text"])


def test_immunization(fletcher):
    r = _first(fletcher, "Immunization")
    d = describe_resource(r)
    assert d.title == r["vaccineCode"]["text"]
    assert d.kind == "Vaccination"
    assert d.value("Status") == "Given"
    assert d.value("Given") == local_date(r["occurrenceDateTime"], True)


def test_encounter(fletcher):
    pool = _ids(fletcher)
    r = _first(fletcher, "Encounter", lambda e: e["type"][0]["text"].startswith("Encounter for check up"))
    d = describe_resource(r, _names_for(r, pool))
    assert d.title == "Visit for check up"
    assert d.value("Kind of visit") == "Outpatient visit"
    start, end = r["period"]["start"], r["period"]["end"]
    assert d.value("When") == f"{local_date(start, True)} to {local_date(end, True).split(', ')[1]}"
    org = pool[r["serviceProvider"]["reference"]]
    assert d.value("Organisation").casefold() == org["name"].casefold()
    doctor = pool[r["participant"][0]["individual"]["reference"]]
    assert d.value("Seen by") == describe.human_name(doctor["name"])


def test_procedure_careplan_report_claim_and_more(fletcher):
    pool = _ids(fletcher)
    proc = _first(fletcher, "Procedure", lambda p: "performedPeriod" in p)
    assert describe_resource(proc).value("Done").startswith(local_date(proc["performedPeriod"]["start"], True))
    plan = _first(fletcher, "CarePlan", lambda c: len(c.get("activity", [])) > 1)
    said = describe_resource(plan, _names_for(plan, pool))
    for act in plan["activity"]:
        assert act["detail"]["code"]["text"] in said.value("Activities")
    assert said.value("About") == describe.plain(pool[plan["addresses"][0]["reference"]]["code"]["text"])
    report = _first(fletcher, "DiagnosticReport")
    said = describe_resource(report)
    assert said.kind == "Lab report"
    assert said.value("Results") == ", ".join(dict.fromkeys(x["display"] for x in report["result"]))
    claim = _first(fletcher, "Claim")
    said = describe_resource(claim)
    assert said.value("Total") == f"{claim['total']['value']:,.2f} {claim['total']['currency']}"
    assert said.title.startswith("Insurance claim for ")
    eob = _first(fletcher, "ExplanationOfBenefit")
    assert describe_resource(eob).kind == "Insurance statement"
    goal = _first(fletcher, "Goal")
    said = describe_resource(goal)
    assert said.title.casefold() == goal["description"]["text"].casefold() and said.value("Status") == "Accepted"
    study = _first(fletcher, "ImagingStudy")
    said = describe_resource(study)
    assert study["series"][0]["bodySite"]["display"].lower() in said.title.lower()
    patient = _first(fletcher, "Patient")
    said = describe_resource(patient)
    assert said.value("Born") == local_date(patient["birthDate"]) and said.kind == "Person"
    practitioner = _first(fletcher, "Practitioner")
    assert describe_resource(practitioner).title == describe.human_name(practitioner["name"])


def test_allergy():
    r = _first(_entries(JULIETTE), "AllergyIntolerance")
    d = describe_resource(r)
    assert d.title == r["code"]["text"] and d.kind == "Allergy"
    assert d.value("How serious") == {"low": "Low risk", "high": "High risk"}[r["criticality"]]
    assert d.value("Caused by") == {"food": "Food", "environment": "Something in the environment",
                                    "medication": "Medicine"}[r["category"][0]]
    assert d.value("Recorded") == local_date(r["recordedDate"])


def test_lab_value_with_reference_range_and_flag():
    r = _us_core("observation-cbc-hemoglobin.json")
    d = describe_resource(r)
    low, high = r["referenceRange"][0]["low"]["value"], r["referenceRange"][0]["high"]["value"]
    assert d.value("Normal range") == f"{low:g}–{high:g} {r['referenceRange'][0]['low']['unit']}"
    assert d.value("Compared with the normal range") == "In range"
    # the same reading above its range, with no interpretation from the lab, is flagged in words by the value
    high_reading = json.loads(json.dumps(r))
    high_reading["valueQuantity"]["value"] = high + 3
    high_reading.pop("interpretation", None)
    said = describe_resource(high_reading)
    assert said.value("Compared with the normal range") == "High"
    assert said.value("Result").endswith("(high)")
    assert describe.result_text(high_reading).endswith("(high)")


def test_allergy_document_questionnaire_and_sources_from_us_core():
    allergy = describe_resource(_us_core("allergyintolerance-example.json"))
    assert allergy.value("How serious") == "High risk" and "skin rash" in allergy.value("Reactions")
    doc = describe_resource(_us_core("documentreference-discharge-summary.json"))
    assert doc.title == "Discharge Summary" and doc.value("Files") == "Text"
    answers = describe_resource(_us_core("QuestionnaireResponse-phq-9-example.json"))
    assert answers.value("Little interest or pleasure in doing things?") == "More than half the days"
    cards = [{"status": "unverified", "flags": ["unknown-issuer"], "issuer": "https://spec.smarthealth.cards/examples/issuer"}]
    lines = dict(describe.describe_sources([
        {"kind": "smart-health-card", "trust": "unverified", "imported_at": "2024-05-01T10:00:00.000000Z",
         "verification": {"cards": cards}},
        {"kind": "fhir-json", "trust": "unverified", "imported_at": "2024-06-01T10:00:00.000000Z",
         "verification": None}]))
    assert lines["Came from"] == "A SMART Health Card issued by https://spec.smarthealth.cards/examples/issuer"
    assert lines["Verified"] == "Not verified: the issuer is not one you trust"
    assert lines["Imported"] == "1 May 2024, 10:00"
    assert lines["Also found in"] == "1 other file, last imported 1 June 2024, 10:00"
    assert dict(describe.describe_sources([{"kind": "fhir-json", "trust": "issuer-verified",
                                            "imported_at": "2024-05-01T10:00:00Z"}]))["Verified"].startswith("Verified")


def test_malformed_parts_are_left_out_not_shown_half_understood():
    d = describe_resource({"resourceType": "Observation", "id": "x", "code": {"coding": "not a list"},
                           "valueQuantity": {"value": "12", "unit": 5}, "effectiveDateTime": 7,
                           "performer": "nobody", "note": [{"text": 3}]})
    assert d.title == "Observation" and d.lines == ()
    assert describe_resource("not a record").title == "Unreadable record"


# --- categories in a real vault ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    from tests.gui.synthea_vault import synthea_vault
    v = synthea_vault(tmp_path_factory.mktemp("describe") / "vault", FLETCHER)
    yield v
    v.close()


def test_categories_split_the_vault_without_overlap(vault):
    with vault.read() as conn:
        groups = query.kind_counts(conn)
        rows = conn.execute("SELECT rtype, category FROM rec_resources").fetchall()
    cats = [*describe.CATEGORIES, describe.other_category(groups), describe.INSURANCE]
    for rtype, category in rows:
        owners = [c.key for c in cats if c.matches(rtype, category)]
        if rtype in describe.DIRECTORY_TYPES:
            assert owners == [] and describe.category_key(rtype, category) is None
        else:
            assert owners == [describe.category_key(rtype, category)], (rtype, category, owners)
    entries = _entries(FLETCHER)
    by_type = Counter(r["resourceType"] for r in entries)
    count = {c.key: sum(n for (t, k), n in groups.items() if c.matches(t, k)) for c in cats}
    assert count["conditions"] == by_type["Condition"]
    assert count["medications"] == by_type["MedicationRequest"]
    assert count["immunizations"] == by_type["Immunization"]
    assert count["encounters"] == by_type["Encounter"]
    assert count["insurance"] == by_type["Claim"] + by_type["ExplanationOfBenefit"]
    labs = sum(1 for r in entries if r["resourceType"] in ("Observation", "DiagnosticReport")
               and r.get("category", [{}])[0].get("coding", [{}])[0].get("code") in ("laboratory", "LAB"))
    assert count["labs"] == labs
    assert count["other"] > 0 and "ImagingStudy" in {k.rtype for k in describe.other_category(groups).kinds}


@pytest.mark.parametrize("ascending", [False, True], ids=["newest first", "oldest first"])
def test_every_category_pages_through_each_record_once_in_date_order(vault, ascending):
    with vault.read() as conn:
        groups = query.kind_counts(conn)
        for cat in (*describe.CATEGORIES, describe.other_category(groups), describe.INSURANCE):
            expected = sum(n for (t, k), n in groups.items() if cat.matches(t, k))
            rows, cursor, pages = [], None, 0
            while True:
                page = query.records_page(conn, list(cat.kinds), after=cursor, ascending=ascending, limit=7)
                assert len(page.rows) <= 7
                rows += page.rows
                pages += 1
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert len(rows) == expected == len({r.rid for r in rows}), cat.label
            assert all(cat.matches(r.rtype, r.category) for r in rows)
            dated = [(r.date, r.rid) for r in rows if r.date]
            assert dated == sorted(dated, reverse=not ascending)
            assert all(r.date for r in rows[:len(dated)])      # records without a date come last
            assert pages == expected // 7 + 1


def test_a_page_with_a_date_range_equals_plain_sql(vault):
    with vault.read() as conn:
        kinds = [query.Kind("Condition"), query.Kind("Observation", only=("laboratory",))]
        page = query.records_page(conn, kinds, date_from="1990-01-01", date_to="1993-12-31", limit=10_000)
        expected = [r[0] for r in conn.execute(
            "SELECT rid FROM rec_resources WHERE (rtype = 'Condition' OR (rtype = 'Observation' AND category ="
            " 'laboratory')) AND date >= '1990-01-01' AND date <= '1993-12-31T99' ORDER BY date DESC, rid DESC")]
    assert [r.rid for r in page.rows] == expected and expected

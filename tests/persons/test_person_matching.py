"""Who is this Patient? The matching rules, on Patient records shaped like the ones providers send."""

from __future__ import annotations

import copy

import pytest

from vault.records.persons import display_name, facts, same_person

SYNTHEA_ID = "https://github.com/synthetichealth/synthea"
SSN = "http://hl7.org/fhir/sid/us-ssn"


def patient(*, given="Buster", family="Hoeger", birth="1988-03-16", ids=((SYNTHEA_ID, "ad2e3fc5"),), text=None):
    name: dict = {"use": "official", "family": family, "given": [given] if given else []}
    if text:
        name = {"text": text}
    return {"resourceType": "Patient", "id": "p", "name": [name], "birthDate": birth,
            "identifier": [{"system": s, "value": v} for s, v in ids]}


def same(a: dict, b: dict) -> bool:
    verdict = same_person(facts(a), facts(b))
    assert verdict == same_person(facts(b), facts(a))  # the rule is symmetric
    return verdict


def test_same_identifier_with_differently_written_name_is_the_same_person():
    a = patient()
    b = patient(given="BUSTER  J.", family="hoeger-")
    b["name"][0]["prefix"] = ["Mr."]
    assert same(a, b)
    # even a name written quite differently: the shared identifier is what says who this is
    assert same(a, patient(given="B.", family="Hoeger-Smith"))


def test_different_birth_date_is_another_person_even_with_a_shared_identifier():
    assert not same(patient(), patient(birth="1988-03-17"))
    assert not same(patient(ids=()), patient(ids=(), birth="1990-01-01"))


def test_same_identifier_system_with_different_values_is_another_person():
    a = patient(ids=((SSN, "999-59-2277"),))
    b = patient(ids=((SSN, "999-11-1111"),))
    assert not same(a, b)   # same name and birth date, but two different social security numbers


def test_without_comparable_identifiers_name_and_birth_date_decide():
    a = patient(ids=(("http://hospital-a.example/mrn", "1"),))
    b = patient(ids=(("http://clinic-b.example/mrn", "77"),), given="buster", family="HOEGER")
    assert same(a, b)
    assert same(patient(ids=()), patient(ids=(), given=None, text="Buster Hoeger"))
    assert not same(a, patient(ids=(("http://clinic-b.example/mrn", "77"),), given="Ned"))
    assert not same(a, patient(ids=(("http://clinic-b.example/mrn", "77"),), family="Hintz"))
    # a name alone, without a birth date on both sides, is not enough to mix two files
    assert not same(patient(ids=(), birth=None), patient(ids=(), birth=None))


def test_accents_and_case_are_not_differences():
    assert same(patient(ids=(), given="José", family="Müller"), patient(ids=(), given="JOSE", family="muller"))


def test_a_birth_date_with_time_compares_by_day():
    a = patient(ids=())
    b = copy.deepcopy(a)
    b["birthDate"] = "1988-03-16T08:30:00Z"
    assert same(a, b)


@pytest.mark.parametrize("bad", [{"resourceType": "Patient", "id": "x"},
                                 {"resourceType": "Patient", "id": "x", "name": "not a list", "identifier": {}},
                                 {"resourceType": "Patient", "id": "x", "name": [None, {"given": [3]}],
                                  "identifier": [None, {"system": 1}], "birthDate": 19880316}])
def test_odd_shapes_never_match_and_never_raise(bad):
    assert not same(bad, patient())
    assert display_name(bad) is None


def test_display_name_prefers_the_official_name():
    p = patient()
    p["name"].insert(0, {"use": "maiden", "family": "Johnston", "given": ["Courtney"]})
    assert display_name(p) == "Buster Hoeger"

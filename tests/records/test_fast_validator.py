"""The fast validator (the official FHIR R4 JSON Schema, patched, in jsonschema-rs) never accepts a resource the
R4B models refuse: over every fixture resource (Synthea, HL7's US Core examples, the HL7 SMART Health Cards and
Links examples and the validation SDK's broken cards) and a seeded corpus of at least 10,000 broken resources.

The converse is not required (the schema is stricter in places; the models then decide), but the fixtures show it
is rare: it is counted and bounded here so a patch that made the schema refuse everything would fail too."""

from __future__ import annotations

import random

import orjson
import pytest

from tests.records.fhir_mutations import fixture_resources, mutate
from vault import jsonsafe
from vault.records import fhir_models, fhir_schema
from vault.records.errors import ImportRejected

BROKEN_WANTED = 10_000
SEED = 20_260_611


def _models_accept(resource) -> bool:
    try:
        fhir_models.validate_resource(resource)
    except ImportRejected:
        return False
    return True


@pytest.fixture(scope="module")
def fixtures(fixtures_dir):
    found = list(fixture_resources())
    assert len(found) > 4000, "the shared fixtures are incomplete"
    return found


def test_the_shipped_r4b_constraints_match_the_installed_models():
    """``medvault_resources/fhir-schema/r4b-constraints.json`` is derived from fhir.resources; after an upgrade of it,
    scripts/fhir-schema-constraints must be run (and this differential test run again)."""
    assert fhir_models.schema_constraints(fhir_schema.load_schema()) == fhir_schema.load_constraints()


def test_the_official_schema_is_the_verbatim_hl7_file():
    import hashlib
    import medvault_resources
    digest = hashlib.sha256(medvault_resources.fhir_schema()).hexdigest()
    assert digest == "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"


def test_every_fixture_the_fast_validator_accepts_the_models_accept(fixtures):
    counts = {"both accept": 0, "both refuse": 0, "fast refuses, models accept": 0, "not decided": 0}
    unsound = []
    for where, resource in fixtures:
        fast, models = fhir_schema.accepts(resource), _models_accept(resource)
        if fast is None:
            counts["not decided"] += 1
        elif fast and not models:
            unsound.append(where)
        else:
            counts["both accept" if fast else "both refuse" if not models else "fast refuses, models accept"] += 1
    print(f"\nfixture resources: {len(fixtures)}; {counts}")
    assert not unsound, unsound[:10]
    assert counts["both accept"] > 4000
    # the two US Core QuestionnaireResponses carrying _questionnaire, which the R4 schema does not define
    assert counts["fast refuses, models accept"] <= 5


def test_no_broken_resource_gets_through_the_fast_validator(fixtures):
    rng = random.Random(SEED)
    bases = [r for _, r in fixtures if len(orjson.dumps(r)) < 20_000]
    counts = {"mutants": 0, "broken (models refuse)": 0, "fast accepts": 0, "fast refuses": 0, "not decided": 0}
    unsound = []
    while counts["broken (models refuse)"] < BROKEN_WANTED:
        mutant = mutate(rng.choice(bases), rng)
        counts["mutants"] += 1
        fast, models = fhir_schema.accepts(mutant), _models_accept(mutant)
        counts["not decided" if fast is None else "fast accepts" if fast else "fast refuses"] += 1
        if not models:
            counts["broken (models refuse)"] += 1
            if fast:
                unsound.append(orjson.dumps(mutant)[:400])
    print(f"\nmutation corpus: {counts}")
    assert not unsound, unsound[:5]


P = {"resourceType": "Patient"}
O = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
EXT = [{"url": "http://example.org/why", "valueCode": "unknown"}]


@pytest.mark.parametrize("resource", [
    dict(P, maritalStatus="married"),                                    # a string where an object belongs
    dict(O, subject="Patient/1"),
    dict(P, maritalStatus=[{"text": "married"}]),                        # a list where one object belongs
    {"resourceType": "Observation", "code": {"text": "x"}},               # a required primitive missing
    {"resourceType": "Observation", "_status": {"id": "a"}, "code": {"text": "x"}},   # ... with no extension
    dict(P, extension=[{"valueString": "a"}]),                           # Extension.url is required
    dict(O, valueString="a", valueInteger=1),                            # two values of one choice type
    dict(P, birthDate="2021-02-29"),                                      # calendar-impossible dates
    dict(O, effectiveDateTime="2019-02-29"),
    dict(O, issued="2019-02-29T10:00:00Z"),
    dict(O, effectiveDateTime="2016-02-30T23:59:60Z"),
    dict(P, _birthDate={}),                                               # an empty primitive extension
    dict(P, name=[{"given": ["a"], "_given": [{}]}]),
    dict(O, valueInteger=1.5),                                            # whole numbers and their bounds
    dict(O, valueInteger=2 ** 31),
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
     "valueSampledData": {"origin": {"value": 1}, "period": 1, "dimensions": 0, "data": "1"}},
    {"resourceType": "Binary", "contentType": "text/plain", "data": "abc"},   # base64 that does not decode
    dict(P, communication=[{"language": {"coding": [{"code": "\u0085en"}]}}]),  # NEL is white space to the models
    dict(P, extension=[None]),                                            # null in a list of objects
    dict(P, contained=[{"resourceType": "EffectEvidenceSynthesis", "status": "draft"}]),   # R4 only, not R4B
])
def test_what_the_official_schema_alone_lets_through_is_refused(resource):
    assert not _models_accept(resource)
    assert fhir_schema.accepts(resource) is False


@pytest.mark.parametrize("resource", [
    dict(P, birthDate="2020-02-29"),
    dict(O, effectiveDateTime="2016-12-31T23:59:60Z"),
    {"resourceType": "Observation", "_status": {"extension": EXT}, "code": {"text": "x"}},
    dict(O, valueString="a", _valueBoolean={"id": "b"}),
    dict(P, name=[{}]),
    {"resourceType": "Binary", "contentType": "text/plain", "data": "YWJj"},
])
def test_what_both_accept(resource):
    assert _models_accept(resource)
    assert fhir_schema.accepts(resource) is True


def test_resource_type_names_are_known_without_building_models():
    names = set(fhir_schema.load_schema()["definitions"]) | {"Citation", "Evidence", "SubscriptionTopic", "Foo", "patient", ""}
    for name in sorted(names):
        assert fhir_schema.is_resource_type(name) == fhir_models.is_resource_type(name), name


def test_types_the_schema_does_not_decide_go_to_the_models():
    assert fhir_schema.accepts({"resourceType": "Citation", "status": "draft"}) is None       # R4B only
    assert fhir_schema.accepts({"resourceType": "MedicinalProduct"}) is None                    # R4 only
    assert fhir_schema.accepts({"resourceType": {"not": "a name"}}) is None
    assert fhir_schema.accepts(["not", "a", "resource"]) is None

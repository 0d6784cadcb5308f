"""Broken FHIR resources for the differential test of the fast validator: real resources (the fixtures), each
changed in one or two places the way real files go wrong or an attacker would try, from a seeded generator so a
failure reproduces. Operators aim at what the schema and the R4B models might disagree on: JSON types, empty
objects and lists, nulls, missing required elements, two values for one choice type, impossible dates, whitespace
and odd characters in strings, numbers at and past their bounds, primitive extensions, base64, resource types."""

from __future__ import annotations

import random
from typing import Iterator

import orjson

from tests.conftest import FIXTURES

ODD_VALUES = ["x", "", " ", "  a", "a ", "a  b", 0, 1, -1, 1.5, 1.0, -0.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1,
              2 ** 63 - 1, 1e300, True, False, None, {}, [], [None], [{}], {"x": 1}, {"id": "a"}, ["a"], [1],
              "true", "1", "1.5", "2020", "2020-02-30", "urn:uuid:not-a-uuid", "Patient/1", "a\u0085b", "\u00a0",
              "\ufeff", "a\u2028b", "a\x0bb", "a\x0cb", "\t", "\n", "a\x00b", "\x1f", "é", "\U0001F600", "YQ==", "YR==",
              "a" * 70, "final", "http://example.org/x", "a b", {"extension": []}, {"extension": [{}]},
              {"extension": [{"url": "http://x"}]}, {"extension": [{"url": "http://x", "valueString": "y"}]}]
DATES = ["2020-02-30", "2021-02-29", "2020-02-29", "2019-04-31", "2019-06-31", "2019-13-01", "2019-00-10",
         "2019-01-00", "2019-01-32", "0000", "0001", "9999-12-31", "10000-01-01", "2019-1-01", "2019-01-1", "2019",
         "2019-02", "2019-02-29T10:00:00Z", "2020-02-29T10:00:00Z", "2019-02-28T10:00:00", "2019-02-28T24:00:00Z",
         "2019-02-28T23:59:60Z", "2019-02-29T23:59:60Z", "2019-02-28T23:60:00Z", "2019-02-28T10:00Z",
         "2019-02-28T10:00:00.Z", "2019-02-28T10:00:00.1234567890123456789012345678901234567890Z",
         "2019-02-28T10:00:00+14:00", "2019-02-28T10:00:00+14:01", "2019-02-28T10:00:00-00:00",
         "2019-02-28T10:00:00+1400", "2019-02-28t10:00:00z", "2019-02-28 10:00:00Z", "2019-02-28T10:00:00.5+05:30",
         "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+13:59", "9999-12-31T23:59:59-14:00", "2019-02-31",
         "2100-02-29", "2000-02-29", "1900-02-29", "2019-11-31T00:00:00Z", "10:00:00", "24:00:00", "23:59:60",
         "23:59:59.999999999999", "2019-02-28T10:00:00.000000000000000000001+01:00"]
CHARS = ["\u0085", "\u00a0", "\ufeff", "\u2028", "\u2029", "\u180e", "\u200b", "\u3000", "\x0b", "\x0c", "\x00",
         "\x1f", "\x7f", " ", "\t", "\n", "\r", "  "]
BASE64 = ["YQ==", "YR==", "YQ=", "YQ", "Y", "", " YWJj", "YWJj YWJj", "YWJj\nYWJj", "YW=j", "====", "YWJj====",
          "-_-_", "YWJ+", "YWJ/", "AAAA" * 100, "YWJjZA==", "YWJjZB=="]
EXT_VALUES = [{}, {"id": "x"}, {"extension": []}, {"extension": [{}]}, {"extension": [{"url": "http://x"}]},
              {"extension": [{"url": "http://x", "valueCode": "unknown"}]}, [], [{}], "x", None, {"id": ""},
              {"fhir_comments": ["x"]}, {"extension": [{"url": "http://x", "valueString": "a", "valueCode": "b"}]}]
TYPE_NAMES = ["Patient", "Observation", "Foo", "patient", "", "Bundle", "EffectEvidenceSynthesis", "Citation",
              "Resource", "DomainResource", "Element", "MedicinalProduct", "SubstancePolymer", None, 5]


def fixture_resources() -> Iterator[tuple[str, dict]]:
    """(where, resource) for every FHIR resource in the shared fixtures' JSON files, bundle entries and
    standalone resources alike (contained ones travel inside their parents)."""
    for path in sorted(FIXTURES.rglob("*.json")):
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            continue
        yield from _resources_in(doc, path.relative_to(FIXTURES).as_posix())


def _resources_in(doc, where: str) -> Iterator[tuple[str, dict]]:
    if not isinstance(doc, dict):
        return
    if isinstance(doc.get("resourceType"), str):
        if doc["resourceType"] == "Bundle":
            for i, e in enumerate(doc.get("entry", []) if isinstance(doc.get("entry"), list) else []):
                if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                    yield from _resources_in(e["resource"], f"{where}#entry{i}")
        yield where, doc
        return
    for key in ("vc",):
        if isinstance(doc.get(key), dict):
            bundle = doc[key].get("credentialSubject", {}).get("fhirBundle")
            yield from _resources_in(bundle, where + "#vc")


def _nodes(value, path=()) -> Iterator[tuple[tuple, object]]:
    """Every (path, value) below the root; a path is a tuple of keys and list positions."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,), v
            yield from _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield path + (i,), v
            yield from _nodes(v, path + (i,))


def _parent(root, path):
    node = root
    for p in path[:-1]:
        node = node[p]
    return node


def _choice_partner(key: str, rng: random.Random) -> tuple[str, object] | None:
    for stem in ("value", "effective", "onset", "abatement", "deceased", "multipleBirth", "occurrence", "performed",
                 "medication", "timing", "born", "age", "serviced", "location", "product", "asNeeded", "dose",
                 "rate", "item", "answer", "defaultValue", "fixed", "pattern", "content", "reported", "allowed",
                 "used", "subject", "probability", "scheduled", "when", "diagnosis", "procedure", "collected",
                 "fasting", "time", "additive", "definition", "identified", "bounds", "duration", "offset"):
        if key.startswith(stem) and key[len(stem):len(stem) + 1].isupper():
            return rng.choice([(stem + "String", "a"), (stem + "Boolean", True), (stem + "Integer", 1),
                               (stem + "DateTime", "2020-01-01"), (stem + "Quantity", {"value": 1}),
                               (stem + "CodeableConcept", {"text": "a"}), (stem + "Reference", {"reference": "a"}),
                               (stem + "Period", {"start": "2020"}), (stem + "Range", {"low": {"value": 1}}),
                               ("_" + stem + "String", {"id": "a"}), (stem + "Age", {"value": 1}),
                               (stem + "Date", "2020-01-01"), (stem + "Instant", "2020-01-01T00:00:00Z")])
    return None


def mutate(resource: dict, rng: random.Random) -> dict:
    """A copy of ``resource`` with one or two changes."""
    r = orjson.loads(orjson.dumps(resource))
    for _ in range(rng.choice((1, 1, 1, 2))):
        nodes = list(_nodes(r))
        if not nodes:
            r["resourceType"] = rng.choice(TYPE_NAMES)
            continue
        path, value = rng.choice(nodes)
        parent = _parent(r, path)
        key = path[-1]
        op = rng.randrange(14)
        if op == 0:
            parent[key] = rng.choice(ODD_VALUES)
        elif op == 1:
            del parent[key]
        elif op == 2 and isinstance(parent, dict):
            parent[rng.choice(["foo", "_foo", "fhir_comments", "resource_type", "_" + str(key), "extension",
                               "modifierExtension", "id", "Id", key + "s" if isinstance(key, str) else "x"])] = \
                rng.choice(ODD_VALUES)
        elif op == 3:
            parent[key] = rng.choice([{}, [], [{}], [[]], {"": ""}])
        elif op == 4 and isinstance(parent, dict) and isinstance(key, str):
            partner = _choice_partner(key, rng)
            if partner:
                parent[partner[0]] = partner[1]
            else:
                parent["_" + key.lstrip("_")] = rng.choice(EXT_VALUES)
        elif op == 5 and isinstance(value, str):
            parent[key] = rng.choice(DATES) if value[:2].isdigit() or rng.random() < 0.3 else value
        elif op == 6 and isinstance(value, str):
            at = rng.randrange(len(value) + 1)
            parent[key] = value[:at] + rng.choice(CHARS) + value[at:]
        elif op == 7 and isinstance(value, (int, float)) and not isinstance(value, bool):
            parent[key] = rng.choice([0, -1, 1, 1.5, 1.0, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), -(2 ** 31) - 1, 1e300,
                                      -1e-300, 0.1, True, "1", 10 ** 18])
        elif op == 8 and isinstance(parent, dict) and isinstance(key, str) and not isinstance(value, (dict, list)):
            parent["_" + key] = rng.choice(EXT_VALUES)
        elif op == 9:
            parent[key] = [value] if not isinstance(value, list) else (value[0] if value else None)
        elif op == 10 and isinstance(value, list):
            value.insert(rng.randrange(len(value) + 1), rng.choice([None, {}, "", [], 0]))
        elif op == 11:
            target = value if isinstance(value, dict) and "resourceType" in value else r
            target["resourceType"] = rng.choice(TYPE_NAMES)
        elif op == 12 and isinstance(value, str):
            parent[key] = rng.choice(BASE64)
        elif op == 13 and isinstance(parent, dict):
            parent.pop(rng.choice(list(parent)))   # often a required element
        else:
            parent[key] = rng.choice(ODD_VALUES)
    return r

"""The fast validator on the import path: HL7's official FHIR R4 JSON Schema, compiled once by jsonschema-rs.

The one module that imports ``jsonschema_rs``. The schema (``medvault_resources/fhir-schema/``, verbatim, CC0) is
patched in memory so it accepts nothing the R4B models (``fhir_models``, the reference) refuse:

- complex types must be JSON objects (the schema leaves their type open, so a string passed where an object
  belongs); a primitive's extension (``_birthDate``) must not be empty;
- what R4B changed against R4 comes from ``r4b-constraints.json`` (written by ``scripts/fhir-schema-constraints``
  from the installed models, and checked current by a test): elements R4B dropped or retyped are refused here,
  primitive types follow R4B, required elements (a required primitive may be given as an extension instead),
  at most one value per choice type (exactly one where R4B requires it);
- whole-number types are whole numbers within 32 bits, with their lower bounds;
- ``date``, ``dateTime`` and ``instant`` must be calendar dates (no 30 February), ``base64Binary`` must decode;
- only resource types both R4 and R4B define are checked here; anything else is "not decided" (None).

A resource this validator accepts is accepted by the R4B models too: ``tests/records/test_fast_validator.py``
checks that over every fixture and a corpus of mutated resources. The converse is not promised: the schema is
stricter in places (required code values, URIs with spaces), and what it refuses is decided, and worded, by the
R4B models. docs/import-formats.md lists both sides.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import re
import threading

import jsonschema_rs

import medvault_resources
from vault import jsonsafe

_INT32 = {"minimum": -(1 << 31), "maximum": (1 << 31) - 1}
_PRIMITIVES = {
    "integer": {"type": "integer", **_INT32},
    "unsignedInt": {"type": "integer", **_INT32, "minimum": 0},
    "positiveInt": {"type": "integer", **_INT32, "minimum": 1},
    "base64Binary": {"type": "string", "format": "fhir-base64"},
    "xhtml": {"type": "string"},
}
_CALENDAR = ("date", "dateTime", "instant")      # keep their patterns, add the calendar check
# Calendar dates without calling back into Python for each one: days a month never has are refused by pattern, and
# only a 29 February asks Python whether the year is a leap year.
_CALENDAR_CHECK = {
    "not": {"pattern": "^[0-9]{4}-(02-3[01]|(04|06|09|11)-31)"},
    "anyOf": [{"not": {"pattern": "^[0-9]{4}-02-29"}}, {"format": "fhir-leap-day"}],
}
# jsonschema-rs reads patterns as ECMAScript regular expressions, whose \s leaves out U+0085 (NEXT LINE); the models'
# engine counts it as white space. So, for the two patterns where that lets through what the models refuse (a code
# starting with it, a string of nothing else), it is added to \s by hand.
_NEL = "\u0085"
_PATTERNS = {
    "code": ("^[^\\s]+(\\s[^\\s]+)*$", f"^[^\\s{_NEL}]+([\\s{_NEL}][^\\s{_NEL}]+)*$"),
    "string": ("^[ \\r\\n\\t\\S]+$", f"^(?:[ \\r\\n\\t]|[^\\s{_NEL}])+$"),
}
# Primitive kinds whose patched definition accepts only what the R4B type accepts; any other kind R4B uses for an
# element (its UUIDs, say) makes that element refused here, so the models decide.
_SAFE_KINDS = frozenset({"string", "code", "id", "uri", "url", "canonical", "oid", "markdown", "date", "dateTime",
                         "instant", "time", "integer", "unsignedInt", "positiveInt", "decimal", "base64Binary",
                         "boolean", "xhtml"})
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

_lock = threading.Lock()
_compiled: tuple[object, frozenset[str], frozenset[str]] | None = None


def _leap_day(value: str) -> bool:
    """Called only for text starting "YYYY-02-29"."""
    return calendar.isleap(int(value[:4]))


def _base64(value: str) -> bool:
    # Canonical base64 only (re-encoding gives the same text): no whitespace, right padding, no stray bits.
    if len(value) % 4 or not _BASE64.fullmatch(value):
        return False
    try:
        return base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii") == value
    except (binascii.Error, ValueError):
        return False


_FORMATS = {"fhir-leap-day": _leap_day, "fhir-base64": _base64}


def load_schema() -> dict:
    return jsonsafe.loads(medvault_resources.fhir_schema())


def load_constraints() -> dict:
    return jsonsafe.loads(medvault_resources.r4b_constraints())


def patched_schema(schema: dict | None = None, constraints: dict | None = None) -> dict:
    """The official schema with the patches described above (a new dict; the inputs are not changed)."""
    schema = copy.deepcopy(schema) if schema is not None else load_schema()
    constraints = constraints if constraints is not None else load_constraints()
    defs = schema["definitions"]
    allowed = set(constraints["resource_types"])
    for name, replacement in _PRIMITIVES.items():
        defs[name] = dict(replacement, description=defs[name].get("description", ""))
    for name in _CALENDAR:
        defs[name].update(copy.deepcopy(_CALENDAR_CHECK))
    for name, (official, fixed) in _PATTERNS.items():
        assert defs[name]["pattern"] == official, f"the official schema's {name} pattern changed"
        defs[name]["pattern"] = fixed
    for name, d in defs.items():
        props = d.get("properties")
        if props is None:
            continue
        d["type"] = "object"
        _apply(d, props, constraints["definitions"].get(name, {}))
    # Element is what every primitive's extension (_birthDate) is, and only that: it holds an id or extensions,
    # never nothing (JSON Schema ignores keywords beside a $ref, so the definition itself says it)
    defs["Element"]["minProperties"] = 1
    only_allowed = [{"$ref": f"#/definitions/{t}"} for t in constraints["resource_types"]]
    defs["ResourceList"] = {"oneOf": only_allowed}
    schema["oneOf"] = only_allowed
    schema.pop("discriminator", None)
    assert allowed <= set(defs)
    return schema


def _apply(d: dict, props: dict, c: dict) -> None:
    for prop, kind in c.get("primitive", {}).items():
        if prop not in props:
            continue
        if kind not in _SAFE_KINDS:
            props[prop] = False
            continue
        if kind == "code" and "enum" in props[prop]:
            continue                                     # R4's required codes: stricter than R4B, so kept
        ref = {"$ref": f"#/definitions/{kind}"}
        props[prop] = {"type": "array", "items": ref} if props[prop].get("type") == "array" else ref
    for prop in c.get("forbid", []):
        props[prop] = False
    if c.get("required"):
        d["required"] = sorted(set(d.get("required", [])) | set(c["required"]))
    all_of = []
    for prop in c.get("required_primitive", []):
        # the value, or an extension saying why it is absent (an extension object with no extensions is not one)
        all_of.append({"anyOf": [
            {"required": [prop]},
            {"required": ["_" + prop],
             "properties": {"_" + prop: {"required": ["extension"], "properties": {"extension": {"minItems": 1}}}}},
        ]})
    dependencies = {}
    for group in c.get("choices", []) + c.get("required_choices", []):
        present = [v for v in group if v in props]
        for v in present:
            dependencies[v] = {"properties": {w: False for w in present if w != v}}
    for group in c.get("required_choices", []):
        all_of.append({"anyOf": [{"required": [v]} for v in group if v in props]})
    if dependencies:
        d["dependencies"] = dependencies
    if all_of:
        d["allOf"] = all_of


def _get() -> tuple[object, frozenset[str], frozenset[str]]:
    global _compiled
    with _lock:
        if _compiled is None:
            constraints = load_constraints()
            validator = jsonschema_rs.Draft6Validator(patched_schema(constraints=constraints), formats=_FORMATS,
                                                      validate_formats=True)
            _compiled = (validator, frozenset(constraints["resource_types"]),
                         frozenset(constraints["r4b_resource_types"]))
        return _compiled


def is_resource_type(name: object) -> bool:
    """Whether R4B defines a resource type of this name, from the list the constraints file carries."""
    return type(name) is str and name in _get()[2]


def warm() -> None:
    """Load and compile now (about a tenth of a second), so the first import does not wait for it."""
    _get()


def accepts(resource: object) -> bool | None:
    """True: valid (the R4B models accept it too). False: refused by the schema. None: a resource type this
    validator does not decide (not defined by both R4 and R4B). Never raises."""
    validator, types, _ = _get()
    if type(resource) is not dict:
        return None
    rtype = resource.get("resourceType")
    if type(rtype) is not str or rtype not in types:
        return None
    try:
        return validator.is_valid(resource)
    except (ValueError, TypeError, OverflowError):
        return None                     # a value JSON cannot hold (not from a parser): the models decide

"""Index fields pulled out of a resource: the date that places it on a timeline, its code, category, status,
a numeric value for charts, and the words full-text search matches. Stored beside the JSON so queries never
parse every record."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from vault.records.errors import NestingTooDeep
from vault.records.jsonutil import HUGE_NUMBER, MAX_DEPTH, raise_huge_number

# The element that says "when" for each type, best first. Types not listed fall back to common names.
_DATE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("effectiveInstant",), ("issued",)),
    "DiagnosticReport": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
    "Condition": (("onsetDateTime",), ("onsetPeriod", "start"), ("recordedDate",)),
    "AllergyIntolerance": (("onsetDateTime",), ("recordedDate",)),
    "Encounter": (("period", "start"),),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Immunization": (("occurrenceDateTime",), ("recorded",)),
    "MedicationRequest": (("authoredOn",),),
    "MedicationStatement": (("effectiveDateTime",), ("effectivePeriod", "start"), ("dateAsserted",)),
    "MedicationAdministration": (("effectiveDateTime",), ("effectivePeriod", "start")),
    "MedicationDispense": (("whenHandedOver",), ("whenPrepared",)),
    "CarePlan": (("period", "start"), ("created",)),
    "CareTeam": (("period", "start"),),
    "Claim": (("billablePeriod", "start"), ("created",)),
    "ExplanationOfBenefit": (("billablePeriod", "start"), ("created",)),
    "DocumentReference": (("date",), ("context", "period", "start")),
    "ImagingStudy": (("started",),),
    "Goal": (("startDate",), ("statusDate",)),
    "ServiceRequest": (("authoredOn",), ("occurrenceDateTime",)),
    "QuestionnaireResponse": (("authored",),),
    "Composition": (("date",),),
    "Provenance": (("recorded",),),
    "Coverage": (("period", "start"),),
    "Specimen": (("collection", "collectedDateTime"), ("receivedTime",)),
    "FamilyMemberHistory": (("date",),),
    "Media": (("createdDateTime",), ("issued",)),
    "Device": (("manufactureDate",),),
}
_FALLBACK_DATES = (("effectiveDateTime",), ("date",), ("recordedDate",), ("issued",), ("created",),
                   ("authoredOn",), ("period", "start"), ("occurrenceDateTime",))

_CODE_KEYS = {
    "Immunization": "vaccineCode",
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "MedicationDispense": "medicationCodeableConcept",
    "Encounter": "type",
    "DocumentReference": "type",
    "Claim": "type",
    "ExplanationOfBenefit": "type",
    "Coverage": "type",
    "Organization": "type",
}

# Elements whose text a person would search for; ids, urls and references are left out on purpose.
_TEXT_KEYS = frozenset({"display", "text", "div", "valueString", "family", "given", "prefix", "name", "title",
                        "description", "comment", "note", "code", "unit", "city", "state", "line"})
_WORD_LISTS = frozenset({"given", "prefix", "line"})
_TAG = re.compile(r"<[^>]*>")


@dataclass(slots=True)
class IndexFields:
    date: str | None
    category: str | None
    code_system: str | None
    code: str | None
    display: str | None
    status: str | None
    value_num: float | None
    unit: str | None
    text: str


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def normalize_date(value: Any) -> str | None:
    """A string that sorts in time order: instants in UTC with 'Z', partial dates left as given."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    if len(value) <= 10:
        return value
    return _instant_utc(value)


@functools.lru_cache(maxsize=4096)
def _instant_utc(value: str) -> str:
    # cached: one file repeats the same instants (a visit's time on each of its records)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:10]
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    if dt.year < 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")   # what older versions stored (the year not padded)
    # the same characters as strftime("%Y-%m-%dT%H:%M:%SZ"), several times faster
    return dt.isoformat()[:19] + "Z"


def _first_coding(concept: Any) -> tuple[str | None, str | None, str | None]:
    if concept is None:
        return _NO_CODING
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if not isinstance(concept, dict):
        return None, None, None
    codings = concept.get("coding")
    if isinstance(codings, list):
        for c in codings:
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                display = c.get("display") if isinstance(c.get("display"), str) else concept.get("text")
                return c.get("system") if isinstance(c.get("system"), str) else None, c["code"], display
    text = concept.get("text")
    return None, None, text if isinstance(text, str) else None


_NO_CODING = (None, None, None)


def _status(resource: dict) -> str | None:
    for key in ("clinicalStatus", "verificationStatus"):
        _, code, _ = _first_coding(resource.get(key))
        if code:
            return code
    status = resource.get("status")
    return status if isinstance(status, str) else None


def _search_text(resource: dict) -> str:
    return walk(resource)[1]


def walk(resource: dict, max_depth: int | None = None) -> tuple[list[dict], str]:
    """One pass over a resource: the objects holding its references (contained resources excluded; ``path_to``
    names where one is) and the words full-text search indexes. Iterative, and bounded to ``max_depth``
    (``NestingTooDeep`` beyond), so no input can exhaust the stack of this or any later walk. A number too large to
    keep exactly is refused here too, since this is the one walk every imported resource gets."""
    limit = max_depth or MAX_DEPTH
    refs: list[dict] = []
    words: list[str] = [resource.get("resourceType", "")]
    if "contained" in resource:
        # references inside contained resources point within them: not the file's to resolve, so that part of the
        # tree gives only its words
        top = resource.copy()       # a C-level copy and a delete: several times a comprehension's speed
        del top["contained"]
        _levels([top], 1, limit, words, refs.append)
        contained = resource["contained"]
        if type(contained) is list or type(contained) is dict:   # anything else is refused by validation later
            _levels([contained], 2, limit, words, None)
    else:
        _levels([resource], 1, limit, words, refs.append)
    # str.split() without arguments splits on the same white space as the regular expression \s+, in C
    return refs, " ".join(" ".join(words).split())


def _levels(level: list, depth: int, limit: int, words: list[str], add_ref) -> None:
    """Visit ``level`` (nodes at ``depth``) and everything below it, level by level: a node's depth is its level's,
    so nothing is paired with a depth (a tenth of the walk's time went to those pairs). The words come out in
    another order than a depth-first walk's, which search ignores."""
    huge = HUGE_NUMBER
    add_word, add_words = words.append, words.extend
    text_keys, word_lists, strip_tags = _TEXT_KEYS, _WORD_LISTS, _TAG.sub
    while level:
        if depth > limit:
            raise NestingTooDeep()
        below: list = []
        push = below.append
        refs_here = add_ref is not None and depth > 1
        for node in level:
            if type(node) is dict:
                if refs_here and "reference" in node and type(node["reference"]) is str:
                    add_ref(node)
                for key, value in node.items():
                    t = type(value)
                    if t is str:
                        if key in text_keys:
                            add_word(strip_tags(" ", value) if key == "div" else value)
                    elif t is dict:
                        push(value)
                    elif t is list:
                        if key in word_lists:
                            add_words(v for v in value if type(v) is str)
                        push(value)
                    elif t is float and not -huge < value < huge:
                        raise_huge_number("The file")
            else:  # a list
                for v in node:
                    t = type(v)
                    if t is dict or t is list:
                        push(v)
                    elif t is float and not -huge < v < huge:
                        raise_huge_number("The file")
        level = below
        depth += 1


def path_to(resource: dict, holder: dict) -> str:
    """Where in ``resource`` the object ``holder`` is, as an element path ("participant.individual"); walked
    again only to name a reference in an error message."""
    stack: list[tuple[object, str]] = [(resource, "")]
    while stack:
        node, path = stack.pop()
        if node is holder:
            return path
        if type(node) is dict:
            stack.extend((v, f"{path}.{k}" if path else k) for k, v in node.items()
                         if type(v) is dict or type(v) is list)
        elif type(node) is list:
            stack.extend((v, path) for v in node if type(v) is dict or type(v) is list)
    return ""


def index_fields(resource: dict, text: str | None = None) -> IndexFields:
    rtype = resource.get("resourceType", "")
    date = None
    for path in _DATE_PATHS.get(rtype, _FALLBACK_DATES):
        date = normalize_date(_get(resource, path))
        if date:
            break
    _, category, _ = _first_coding(resource.get("category"))
    if category is None and rtype == "AllergyIntolerance":
        cats = resource.get("category")
        category = cats[0] if isinstance(cats, list) and cats and isinstance(cats[0], str) else None
    system, code, display = _first_coding(resource.get(_CODE_KEYS.get(rtype, "code")))
    value_num = unit = None
    vq = resource.get("valueQuantity")
    if isinstance(vq, dict) and isinstance(vq.get("value"), (int, float)) and not isinstance(vq.get("value"), bool):
        value_num = float(vq["value"])
        unit = vq.get("unit") or vq.get("code")
    return IndexFields(date=date, category=category, code_system=system, code=code, display=display,
                       status=_status(resource), value_num=value_num, unit=unit if isinstance(unit, str) else None,
                       text=text if text is not None else _search_text(resource))


def identifiers(resource: dict) -> list[tuple[str, str]]:
    out = []
    ids = resource.get("identifier")
    if isinstance(ids, dict):
        ids = [ids]
    if isinstance(ids, list):
        for ident in ids:
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                out.append((system, ident["value"]))
    return out

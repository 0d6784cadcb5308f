"""Which FHIR version a parsed file is in, and turning an STU3 or DSTU2 file into R4 before it is checked.

Detection reads, never guesses: each resource's elements are compared with a table of *tells*, elements whose
presence or shape only some versions allow (STU3's ``Condition.clinicalStatus`` is a code, R4's a CodeableConcept;
``MedicationOrder`` exists only in DSTU2; ``Immunization.notGiven`` only in STU3, ``wasNotGiven`` only in DSTU2).
Each tell narrows the set of versions the file can be in, as do version-specific profile URLs and a ``fhirVersion``
element. What remains decides: R4 (or nothing said otherwise) goes on untouched, the same object, not even copied;
exactly STU3 or exactly DSTU2 is converted; anything else (STU3 and R4 records in one file, a file that is older than
R4 but could be either) is refused with one sentence, because a wrong guess would silently change what records mean.

Conversion follows HL7's published version maps, one version at a time (DSTU2 -> STU3 -> R4): ``convert_dstu2``
and ``convert_stu3`` hold them as tables. Resource types with no map are left out and counted, so a Synthea STU3
file's billing Claims do not stop its Conditions from being imported; a file with nothing convertible is refused.
Each converted record carries a ``meta.tag`` naming the version it came from, and the report and the source say
what was converted, left out and lost. The original bytes are kept as the source, as for every import.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from vault.records import convert_dstu2, convert_stu3, jsonutil
from vault.records.errors import VersionNotConvertible
from vault.records.version_map import Conversion, apply

DSTU2, STU3, R4 = "DSTU2", "STU3", "R4"
_ALL = frozenset({DSTU2, STU3, R4})
_D, _S, _R = frozenset({DSTU2}), frozenset({STU3}), frozenset({R4})
_PRE = frozenset({DSTU2, STU3})          # older than R4, either of the two
_NOT_D = frozenset({STU3, R4})
VERSION_NUMBER = {DSTU2: "1.0.2", STU3: "3.0.1"}
FHIR_VERSION_SYSTEM = "http://hl7.org/fhir/FHIR-version"
CONVERTIBLE = ("Patient", "AllergyIntolerance", "Condition", "Observation", "MedicationRequest", "Immunization",
               "Procedure", "Encounter", "DiagnosticReport", "CarePlan", "Organization", "Practitioner", "Medication")


def _any(v: object) -> bool:
    return True


def _str(v: object) -> bool:
    return type(v) is str


def _obj(v: object) -> bool:
    return type(v) is dict


def _agent(v: object) -> bool:
    return type(v) is dict and "agent" in v


def _actors(v: object) -> bool:
    return type(v) is list and any(type(p) is dict and "actor" in p for p in v)


def _detail_category(v: object) -> bool:
    return type(v) is list and any(type(a) is dict and type(a.get("detail")) is dict and "category" in a["detail"]
                                   for a in v)


Tell = tuple[str, Callable[[object], bool], frozenset]

# element, shape it must have, versions that allow it in that shape (for that resource type)
TELLS: dict[str, tuple[Tell, ...]] = {
    "Patient": (("careProvider", _any, _D), ("animal", _any, _PRE)),
    "AllergyIntolerance": (
        ("status", _any, _D), ("substance", _any, _D), ("reporter", _any, _D), ("lastOccurence", _any, _D),
        ("category", _str, _D), ("clinicalStatus", _str, _S), ("verificationStatus", _str, _S),
        ("assertedDate", _any, _S), ("clinicalStatus", _obj, _R), ("verificationStatus", _obj, _R)),
    "Condition": (
        ("patient", _any, _D), ("dateRecorded", _any, _D), ("notes", _any, _D), ("category", _obj, _D),
        ("subject", _any, _NOT_D), ("context", _any, _S), ("assertedDate", _any, _S),
        ("clinicalStatus", _str, _PRE), ("verificationStatus", _str, _PRE), ("abatementBoolean", _any, _PRE),
        ("clinicalStatus", _obj, _R), ("verificationStatus", _obj, _R), ("recordedDate", _any, _R)),
    "Observation": (
        ("comments", _any, _D), ("category", _obj, _D), ("comment", _any, _S), ("context", _any, _S),
        ("related", _any, _PRE), ("interpretation", _obj, _PRE), ("hasMember", _any, _R),
        ("derivedFrom", _any, _R), ("note", _any, _R)),
    "MedicationRequest": (
        ("context", _any, _S), ("definition", _any, _S), ("requester", _agent, _S), ("category", _obj, _S),
        ("encounter", _any, _R), ("doseAndRate", _any, _R)),
    "Immunization": (
        ("wasNotGiven", _any, _D), ("reported", _any, _D), ("performer", _obj, _D), ("requester", _any, _D),
        ("notGiven", _any, _S), ("practitioner", _any, _S), ("date", _any, _PRE), ("explanation", _any, _PRE),
        ("vaccinationProtocol", _any, _PRE), ("occurrenceDateTime", _any, _R), ("occurrenceString", _any, _R),
        ("statusReason", _any, _R), ("protocolApplied", _any, _R)),
    "Procedure": (
        ("notPerformed", _any, _D), ("reasonNotPerformed", _any, _D), ("notes", _any, _D), ("request", _any, _D),
        ("reasonCodeableConcept", _any, _D), ("notDone", _any, _S), ("notDoneReason", _any, _S),
        ("context", _any, _S), ("definition", _any, _S), ("statusReason", _any, _R),
        ("instantiatesCanonical", _any, _R)),
    "Encounter": (
        ("class", _str, _D), ("patient", _any, _D), ("indication", _any, _D), ("fulfills", _any, _D),
        ("subject", _any, _NOT_D),
        ("reason", _any, _PRE), ("incomingReferral", _any, _PRE), ("reasonCode", _any, _R),
        ("basedOn", _any, _R)),
    "DiagnosticReport": (
        ("performer", _obj, _D), ("request", _any, _D), ("performer", _actors, _S), ("context", _any, _S),
        ("image", _any, _PRE), ("codedDiagnosis", _any, _PRE), ("category", _obj, _PRE),
        ("conclusionCode", _any, _R), ("media", _any, _R)),
    "CarePlan": (
        ("support", _any, _D), ("modified", _any, _D), ("participant", _any, _D), ("relatedPlan", _any, _D),
        ("definition", _any, _S), ("context", _any, _PRE), ("activity", _detail_category, _PRE),
        ("encounter", _any, _R),
        ("instantiatesCanonical", _any, _R)),
    "Practitioner": (("practitionerRole", _any, _D), ("name", _obj, _D)),
    "Goal": (("status", _any, _PRE), ("lifecycleStatus", _any, _R)),
    "Medication": (("product", _any, _D), ("package", _any, _PRE), ("isBrand", _any, _PRE)),
}
# resource types that exist only in some versions
TYPE_TELLS: dict[str, frozenset] = {
    "MedicationOrder": _D, "DiagnosticOrder": _D, "Order": _D, "OrderResponse": _D, "DeviceUseRequest": _D,
    "Conformance": _D, "MedicationRequest": _NOT_D, "ProcedureRequest": _PRE, "ReferralRequest": _PRE,
    "ServiceRequest": _R, "MedicationKnowledge": _R, "ImmunizationEvaluation": _R,
}
_PROFILE = re.compile(r"^https?://hl7\.org/fhir/(DSTU2|STU3|R4|1\.0|3\.0|4\.0)/")
_BY_NAME = {"DSTU2": _D, "1.0": _D, "STU3": _S, "3.0": _S, "R4": _R, "4.0": _R}


def _number_version(value: object) -> frozenset:
    if type(value) is str:
        return _BY_NAME.get(value[:3], _BY_NAME.get(value, _ALL))
    return _ALL


def versions_of(resource: dict, nested: int = 0) -> frozenset:
    """The FHIR versions one resource's form allows (all three when nothing tells), its contained resources and a
    Bundle's entries included."""
    rtype = resource.get("resourceType")
    allowed = TYPE_TELLS.get(rtype, _ALL) if type(rtype) is str else _ALL
    for element, shape, versions in TELLS.get(rtype, ()) if type(rtype) is str else ():
        if element in resource and shape(resource[element]):
            allowed = allowed & versions
    meta = resource.get("meta")
    if type(meta) is dict and type(meta.get("profile")) is list:
        for profile in meta["profile"]:
            m = _PROFILE.match(profile) if type(profile) is str else None
            if m:
                allowed = allowed & _BY_NAME[m.group(1)]
    if "fhirVersion" in resource:
        allowed = allowed & _number_version(resource["fhirVersion"])
    inner = resource.get("contained") if rtype != "Bundle" else _resources(resource)
    if type(inner) is list and nested < 4:
        for r in inner:
            if type(r) is dict:
                found = versions_of(r, nested + 1)
                if found:               # a part malformed in every version does not vote (see detect)
                    allowed = allowed & found
    return allowed


def _resources(doc: dict) -> list[dict]:
    if doc.get("resourceType") != "Bundle":
        return [doc]
    entries = doc.get("entry")
    if type(entries) is not list:
        return []
    return [e["resource"] for e in entries if type(e) is dict and type(e.get("resource")) is dict]


def detect(doc: object) -> str | None:
    """R4, STU3 or DSTU2 for a parsed FHIR document; None when it is not one (``bundle.entries_of`` says why).
    Raises ``VersionNotConvertible`` for mixed versions or an older file whose version cannot be told."""
    if type(doc) is not dict or type(doc.get("resourceType")) is not str:
        return None
    possible = versions_of(doc) if doc.get("resourceType") != "Bundle" else _ALL
    told: set[str] = set()
    for resource in _resources(doc) if doc.get("resourceType") == "Bundle" else ():
        allowed = versions_of(resource)
        if not allowed:
            continue        # malformed in every version (an R4 record with a one-off slip): validation words it
        if len(allowed) == 1:
            told |= allowed
        possible = possible & allowed
    if len(possible) == 1:
        return next(iter(possible))
    if possible == _ALL or possible == _NOT_D or possible == frozenset({DSTU2, R4}):
        return R4           # nothing says it is older than R4: taken as it is, and validated as R4
    if possible == _PRE:
        raise VersionNotConvertible(
            "This file is in an older FHIR version, but whether it is STU3 or DSTU2 cannot be told from it, and "
            "converting it as the wrong one would change what the records say. Nothing was imported.")
    seen = sorted(told, key=("DSTU2", "STU3", "R4").index)
    if len(seen) >= 2:
        raise VersionNotConvertible(
            f"This file mixes records in the form of FHIR {' and '.join(seen)}, so it is not one version medvault "
            "can read or convert. Nothing was imported.")
    raise VersionNotConvertible(
        "This file's records are in the forms of different FHIR versions, so it is not one version medvault can "
        "read or convert. Nothing was imported.")


@dataclass
class Converted:
    """What converting a file did, for the report and the source (no record content: types and counts)."""
    version: str
    converted: Counter = field(default_factory=Counter)       # R4 type -> records
    left_out: Counter = field(default_factory=Counter)        # type -> records without a map
    lost: Counter = field(default_factory=Counter)            # "Type.element" -> records it was dropped from

    def provenance(self) -> dict:
        return {"fhir_version": self.version, "converted_to": R4, "converted": dict(sorted(self.converted.items())),
                "left_out": dict(sorted(self.left_out.items())), "lost": dict(sorted(self.lost.items()))}

    def warnings(self) -> list[str]:
        out = []
        if self.left_out:
            out.append(f"This file is FHIR {self.version}; medvault does not convert {_counted(self.left_out)} from "
                       f"{self.version}, so they were left out (the original file is kept).")
        if self.lost:
            parts = ", ".join(f"{k} ({n})" for k, n in sorted(self.lost.items()))
            out.append(f"Not carried over to FHIR R4, which has no equivalent: {parts}; the original file keeps them.")
        return out


def _counted(counts: Counter) -> str:
    return ", ".join(f"{t} ({n} record{'s' if n != 1 else ''})" for t, n in sorted(counts.items()))


def _convert(resource: dict, version: str, conv: Conversion, left_out: Counter, gone: set[str]) -> dict:
    """Converts in place. Contained records of a type without a map are taken out (counted in ``left_out``; their
    local ``#id`` added to ``gone``), like entries of such a type."""
    contained = resource.get("contained")
    if type(contained) is list:
        kept = []
        for c in contained:
            if type(c) is dict and type(c.get("resourceType")) is str and c["resourceType"] in _maps(version):
                kept.append(_convert(c, version, conv, left_out, gone))
                continue
            name = c.get("resourceType") if type(c) is dict else None
            left_out[name[:40] if type(name) is str else "(not a resource)"] += 1
            if type(c) is dict and type(c.get("id")) is str:
                gone.add("#" + c["id"])
        if kept:
            resource["contained"] = kept
        else:
            del resource["contained"]
    rtype = resource["resourceType"]
    if version == DSTU2:
        apply(convert_dstu2.MAPS[rtype], resource, conv)
        rtype = resource["resourceType"]
    apply(convert_stu3.MAPS[rtype], resource, conv)
    return resource


def _maps(version: str) -> dict:
    return convert_dstu2.MAPS if version == DSTU2 else convert_stu3.MAPS


_RENAMED_TYPE = re.compile(r"(^|/)MedicationOrder/")


def _rewrite(node: object, left_out: set[str], version: str) -> None:
    """References to records left out keep only their words; DSTU2's MedicationOrder references name the
    MedicationRequest it became; HL7 code systems get their R4 addresses."""
    if type(node) is dict:
        ref = node.get("reference")
        if type(ref) is str:
            if ref in left_out:
                del node["reference"]
                node.setdefault("display", f"a record not imported (FHIR {version})")
            elif "MedicationOrder/" in ref:
                node["reference"] = _RENAMED_TYPE.sub(r"\1MedicationRequest/", ref)
        system = node.get("system")
        if type(system) is str and system.startswith("http://hl7.org/fhir/"):
            node["system"] = convert_stu3.system_r4(system)
        for value in node.values():
            if type(value) in (dict, list):
                _rewrite(value, left_out, version)
    elif type(node) is list:
        for value in node:
            if type(value) in (dict, list):
                _rewrite(value, left_out, version)


def _tag(resource: dict, version: str) -> None:
    meta = resource.get("meta")
    meta = dict(meta) if type(meta) is dict else {}
    # a profile of the old version no longer describes the converted record
    meta.pop("profile", None)
    tags = meta.get("tag")
    meta["tag"] = [t for t in (tags if type(tags) is list else []) if type(t) is dict] + [
        {"system": FHIR_VERSION_SYSTEM, "code": VERSION_NUMBER[version],
         "display": f"converted by medvault from FHIR {version}"}]
    resource["meta"] = meta


def to_r4(doc: object) -> tuple[object, Converted | None]:
    """``(doc, None)``, the very same object, for R4 (and anything ``bundle.entries_of`` will refuse); for STU3 or
    DSTU2, a new R4 document of the records that convert and what was done. Raises ``VersionNotConvertible``."""
    version = detect(doc)
    if version is None or version == R4:
        return doc, None
    assert isinstance(doc, dict)
    jsonutil.check_depth(doc)          # the walks below recurse; bounded here as every later walk is
    maps = _maps(version)
    result = Converted(version)
    is_bundle = doc["resourceType"] == "Bundle"
    raw = doc.get("entry") if is_bundle else [{"resource": doc}]
    kept: list[tuple[int, dict]] = []
    gone: set[str] = set()
    for i, e in enumerate(raw if type(raw) is list else [], 1):
        r = e.get("resource") if type(e) is dict else None
        if type(r) is not dict or type(r.get("resourceType")) is not str \
                or (type(e.get("search")) is dict and e["search"].get("mode") == "outcome"):
            kept.append((i, e))             # left for entries_of to skip or refuse, as for R4
            continue
        if r["resourceType"] not in maps:
            result.left_out[r["resourceType"][:40]] += 1
            if type(e.get("fullUrl")) is str:
                gone.add(e["fullUrl"])
            if type(r.get("id")) is str:
                gone.add(f"{r['resourceType']}/{r['id']}")
            continue
        kept.append((i, e))
    if not any(type(e) is dict and type(e.get("resource")) is dict for _i, e in kept):
        raise VersionNotConvertible(
            f"This file is FHIR {version}; medvault converts {', '.join(_names(version))} from {version}, but not "
            f"{_counted(result.left_out)}. Nothing was imported.")
    conv = Conversion(version)
    entries = []
    for i, e in kept:
        r = e.get("resource") if type(e) is dict else None
        if type(r) is dict and type(r.get("resourceType")) is str and r["resourceType"] in maps:
            conv.where = f"entry {i}" if is_bundle else "the record"
            local: set[str] = set()
            rtype = r["resourceType"]
            try:
                r = _convert(r, version, conv, result.left_out, local)
                _rewrite(r, gone | local if local else gone, version)
            except (TypeError, AttributeError, KeyError, ValueError):
                # an element of a shape its version never gives it (a list where a code belongs): the maps read
                # the old form as the specification defines it, so such a record cannot be converted faithfully
                raise conv.fail(f"{_article(rtype)} {rtype} record does not have the form FHIR {version} defines, "
                                "so it cannot be converted.") from None
            _tag(r, version)
            result.converted[r["resourceType"]] += 1
            e = dict(e, resource=r)
            if type(e.get("fullUrl")) is str and "MedicationOrder/" in e["fullUrl"]:
                e["fullUrl"] = _RENAMED_TYPE.sub(r"\1MedicationRequest/", e["fullUrl"])
        entries.append(e)
    result.lost = conv.lost_elements
    if not is_bundle:
        return entries[0]["resource"], result
    out = {k: v for k, v in doc.items() if k not in ("entry", "meta")}
    out["entry"] = entries
    return out, result


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"


def _names(version: str) -> list[str]:
    names = list(CONVERTIBLE)
    if version == DSTU2:
        names[names.index("MedicationRequest")] = "MedicationOrder"
    return names

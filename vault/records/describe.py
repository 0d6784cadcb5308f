"""Records in a patient's words: which category a record belongs to, and what it says, as a title and lines of
(label, value) that read like a letter ("Given: 12 March 2021", "Result: 182 mg/dL").

Nothing here touches the database or Qt: the caller hands over a resource and, for its references, the names of
what they point at (``names``: "Practitioner/123" -> "Dr. Keeley Yundt"), found with ``references()`` and
``name_of()``. Unknown or malformed parts are left out rather than shown half-understood.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vault.records import ranges, trust as trust_levels
from vault.records.extract import index_fields
from vault.records.query import Kind

# --- categories -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    label: str
    kinds: tuple[Kind, ...]

    def matches(self, rtype: str, category: str | None) -> bool:
        return any(k.matches(rtype, category) for k in self.kinds)


_LAB = ("laboratory", "LAB", "CH", "HM", "MB", "CP", "SP", "LP29693-6")
_VITALS = ("vital-signs", "vital-sign")

CATEGORIES: tuple[Category, ...] = (
    Category("conditions", "Conditions", (Kind("Condition"),)),
    Category("medications", "Medications", (Kind("MedicationRequest"), Kind("MedicationStatement"),
                                            Kind("MedicationAdministration"), Kind("MedicationDispense"))),
    Category("allergies", "Allergies", (Kind("AllergyIntolerance"),)),
    Category("immunizations", "Immunizations", (Kind("Immunization"),)),
    Category("procedures", "Procedures", (Kind("Procedure"),)),
    Category("labs", "Lab results", (Kind("Observation", only=_LAB), Kind("DiagnosticReport", only=_LAB))),
    Category("vitals", "Vital signs", (Kind("Observation", only=_VITALS),)),
    Category("encounters", "Encounters", (Kind("Encounter"),)),
    Category("careplans", "Care plans", (Kind("CarePlan"), Kind("Goal"), Kind("CareTeam"))),
    Category("documents", "Documents", (Kind("DocumentReference"), Kind("DiagnosticReport", without=_LAB),
                                        Kind("Media"), Kind("Composition"))),
)
INSURANCE = Category("insurance", "Insurance & billing",
                     (Kind("Claim"), Kind("ExplanationOfBenefit"), Kind("Coverage")))
# Who and where rather than what happened: shown as names inside other records, never as records of their own.
DIRECTORY_TYPES = frozenset({"Patient", "Practitioner", "PractitionerRole", "Organization", "Location",
                             "Medication", "Questionnaire", "Library", "Endpoint", "HealthcareService",
                             "Provenance", "Binary", "Bundle"})
OTHER_KEY, OTHER_LABEL = "other", "Other records"


def category_key(rtype: str, category: str | None) -> str | None:
    """The key of the category a record is listed under; None for directory entries (people, places)."""
    for cat in (*CATEGORIES, INSURANCE):
        if cat.matches(rtype, category):
            return cat.key
    return None if rtype in DIRECTORY_TYPES else OTHER_KEY


def other_category(groups: Iterable[tuple[str, str | None]]) -> Category:
    """'Other records': the (type, category) groups a vault holds that no named category takes, as exact kinds,
    so listing them uses the same type-and-date index as every other category."""
    kinds = sorted({(t, c) for t, c in groups if category_key(t, c) == OTHER_KEY}, key=lambda k: (k[0], k[1] or ""))
    by_type: dict[str, list[str | None]] = {}
    for t, c in kinds:
        by_type.setdefault(t, []).append(c)
    out = []
    for t, cats in by_type.items():
        named = tuple(c for c in cats if c is not None)
        # records of the type with no category at all can only be matched by "not any named category"
        taken = tuple(sorted({c for cat in (*CATEGORIES, INSURANCE) for k in cat.kinds if k.rtype == t
                              for c in (k.only or ())}))
        if None in cats:
            out.append(Kind(t, None, taken) if taken else Kind(t))
        elif named:
            out.append(Kind(t, named))
    return Category(OTHER_KEY, OTHER_LABEL, tuple(out))


# --- words ----------------------------------------------------------------------------------------------------

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
# SNOMED CT's semantic tags ("Hypertension (disorder)") mean nothing to a patient
_SEMANTIC_TAG = re.compile(
    r"\s*\((?:procedure|disorder|finding|situation|regime/therapy|observable entity|qualifier value|substance|"
    r"body structure|event|environment|person|product|physical object|record artifact|morphologic abnormality|"
    r"assessment scale|social concept|medicinal product|clinical drug|occupation|specimen|navigational concept|"
    r"attribute|organism|life style|ethnic group|cell structure)\)\s*$", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")     # zero-width spaces in Synthea's LOINC names
# LOINC's trailing method notes ("... in last 2 weeks [Reported.PHQ]")
_TRAILING_NOTE = re.compile(r"\s*\[[A-Za-z.]+\]$")

_STATUS = {
    "entered-in-error": "Entered in error", "in-progress": "In progress", "not-done": "Not done",
    "on-hold": "On hold", "draft": "Draft", "unknown": "Unknown", "final": "Final", "amended": "Amended",
    "corrected": "Corrected", "preliminary": "Preliminary", "registered": "Registered", "cancelled": "Cancelled",
    "active": "Active", "inactive": "Inactive", "resolved": "Resolved", "remission": "In remission",
    "recurrence": "Came back", "relapse": "Came back", "completed": "Completed", "stopped": "Stopped",
    "finished": "Finished", "planned": "Planned", "arrived": "Arrived", "triaged": "Triaged",
    "onleave": "On leave", "revoked": "Revoked", "current": "Current", "superseded": "Replaced by a newer version",
    "available": "Available", "accepted": "Accepted", "proposed": "Proposed", "achieved": "Achieved",
    "confirmed": "Confirmed", "unconfirmed": "Not confirmed", "provisional": "Provisional",
    "differential": "One of several possibilities", "refuted": "Ruled out", "intended": "Intended",
    "not-taken": "Not taken", "rejected": "Rejected", "suspended": "Suspended", "partial": "Partial",
}
_TRUST = {
    "issuer-verified": "Verified: the issuer's signature was checked",
    "clinician-signed": "Verified: signed by a clinician",
    "unknown-signer": "Not verified: signed by an unknown key (not a clinician medvault can vouch for)",
    "patient-entered": "Entered by you",
    "unverified": "Not verified (imported from a file)",
}
TRUST_SHORT = {"issuer-verified": "Verified", "clinician-signed": "Signed by a clinician",
               "unknown-signer": "Signed by an unknown key", "patient-entered": "Entered by you",
               "unverified": "Not verified"}
_KIND = {
    "Condition": "Condition", "AllergyIntolerance": "Allergy", "Immunization": "Vaccination",
    "Procedure": "Procedure", "Encounter": "Visit", "CarePlan": "Care plan", "Goal": "Health goal",
    "CareTeam": "Care team", "MedicationRequest": "Prescription", "MedicationStatement": "Medication",
    "MedicationAdministration": "Medicine given", "MedicationDispense": "Medicine handed out",
    "DocumentReference": "Document", "Media": "Image", "Composition": "Document", "ImagingStudy": "Imaging study",
    "Claim": "Insurance claim", "ExplanationOfBenefit": "Insurance statement", "Coverage": "Insurance cover",
    "Patient": "Person", "Practitioner": "Clinician", "PractitionerRole": "Clinician",
    "Organization": "Organisation", "Location": "Place", "Device": "Device", "FamilyMemberHistory": "Family history",
    "QuestionnaireResponse": "Questionnaire answers", "Specimen": "Sample", "ServiceRequest": "Referral or order",
    "Provenance": "Record of origin", "DiagnosticReport": "Report",
}
_OBSERVATION_KIND = {
    "laboratory": "Lab result", "vital-signs": "Vital sign", "vital-sign": "Vital sign", "survey": "Questionnaire answer",
    "social-history": "Social history", "exam": "Examination finding", "imaging": "Imaging result",
    "procedure": "Procedure result", "therapy": "Therapy result", "activity": "Activity",
    "sdoh": "Social circumstances", "functional-status": "Functional status", "disability-status": "Disability status",
    "cognitive-status": "Cognitive status",
}
_ENCOUNTER_CLASS = {
    "AMB": "Outpatient visit", "EMER": "Emergency visit", "IMP": "Hospital stay", "ACUTE": "Hospital stay",
    "NONAC": "Hospital stay", "OBSENC": "Hospital observation", "PRENC": "Pre-admission visit",
    "SS": "Day surgery", "VR": "Virtual visit", "HH": "Home visit", "FLD": "Visit outside a clinic",
    "wellness": "Check-up", "ambulatory": "Outpatient visit", "emergency": "Emergency visit",
    "inpatient": "Hospital stay", "urgentcare": "Urgent care visit", "outpatient": "Outpatient visit",
}
_CRITICALITY = {"low": "Low risk", "high": "High risk", "unable-to-assess": "Risk not assessed"}
_ALLERGY_CATEGORY = {"food": "Food", "medication": "Medicine", "environment": "Something in the environment",
                     "biologic": "A biological product"}
_CONTENT_TYPES = {"application/pdf": "PDF document", "image/png": "PNG image", "image/jpeg": "JPEG image",
                  "image/gif": "GIF image", "image/tiff": "TIFF image", "image/webp": "WebP image",
                  "text/plain": "Text", "text/html": "Web page", "application/xml": "XML document"}
_SOURCE_KIND = {"fhir-json": "A FHIR file you imported", "fhir-ndjson": "A bulk FHIR file (NDJSON) you imported",
                "smart-health-card": "A SMART Health Card", "document": "A document you imported",
                "generated": "Created by medvault", "received-share": "A share you received",
                "clinician-note": "A note a clinician handed you"}
# how a clinician's signature on a note was tied to a person (the write-back's "checked")
_SIGNER_CHECKED = {"registry": "a practitioner registered on the consent network",
                   "confirmed-card": "a clinician whose card you confirmed"}


def plain(text: Any) -> str:
    """A display text as a patient would write it: no SNOMED semantic tag, no stray spaces."""
    if not isinstance(text, str):
        return ""
    return _TRAILING_NOTE.sub("", _SEMANTIC_TAG.sub("", " ".join(_INVISIBLE.sub("", text).split())))


def plain_status(code: Any) -> str:
    if not isinstance(code, str) or not code:
        return ""
    return _STATUS.get(code) or code.replace("-", " ").capitalize()


def status_words(rtype: str, code: Any) -> str:
    """A record's status as the patient would say it for that kind of record (a vaccine "completed" was given)."""
    if rtype == "Immunization" and code in ("completed", "not-done"):
        return "Given" if code == "completed" else "Not given"
    return plain_status(code)


def plain_trust(trust: Any) -> str:
    return _TRUST.get(trust, "Not verified") if isinstance(trust, str) else ""


def kind_label(rtype: str, category: str | None = None) -> str:
    """One record's kind in plain words: "Lab result", "Vaccination", "Visit"."""
    if rtype == "Observation":
        return _OBSERVATION_KIND.get(category or "", "Observation")
    if rtype == "DiagnosticReport" and category in _LAB:
        return "Lab report"
    return _KIND.get(rtype) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", rtype).capitalize()


def local_date(value: Any, with_time: bool = False) -> str:
    """'12 March 2021' (or 'March 2021', '2021' for partial dates). Instants are shown in the local time zone,
    with the time when asked; a malformed date is shown as written rather than hidden."""
    if not isinstance(value, str) or len(value) < 4:
        return ""
    try:
        if len(value) == 4:
            return str(int(value))
        if len(value) == 7:
            return f"{_MONTHS[int(value[5:7]) - 1]} {int(value[:4])}"
        if len(value) == 10:
            d = datetime.strptime(value, "%Y-%m-%d")
            return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, IndexError):
        return value
    if dt.tzinfo is not None:
        try:
            dt = dt.astimezone()
        except (OverflowError, OSError, ValueError):  # outside what the platform's clock can convert
            pass
    text = f"{dt.day} {_MONTHS[dt.month - 1]} {dt.year}"
    return f"{text}, {dt:%H:%M}" if with_time else text


def period(p: Any, with_time: bool = True) -> str:
    if not isinstance(p, dict):
        return ""
    start, end = local_date(p.get("start"), with_time), local_date(p.get("end"), with_time)
    if start and end:
        if start == end:
            return start
        same_day = start.split(",")[0] == end.split(",")[0]
        return f"{start} to {end.split(', ')[1]}" if same_day and ", " in end else f"{start} to {end}"
    if start:
        return f"Since {start}"
    return f"Until {end}" if end else ""


_UNITS = (("{1.73_m2}", "1.73 m²"), ("mm[Hg]", "mmHg"), ("[lb_av]", "lb"), ("[in_i]", "in"), ("[degF]", "°F"), ("Cel", "°C"),
          ("kg/m2", "kg/m²"), ("10*3", "×10³"), ("10*6", "×10⁶"), ("10*9", "×10⁹"), ("10*12", "×10¹²"), ("uL", "µL"),
          ("ug", "µg"), ("umol", "µmol"))


def unit_text(unit: Any) -> str:
    """UCUM codes as people write units: mm[Hg] -> mmHg, {beats}/min -> beats/min, {score} -> nothing."""
    if not isinstance(unit, str):
        return ""
    for code, shown in _UNITS:
        unit = unit.replace(code, shown)
    unit = re.sub(r"\{([^}]*)\}", lambda m: m.group(1) if m.start() or m.end() < len(unit) else "", unit)
    return unit.strip()


def quantity(q: Any) -> str:
    if not isinstance(q, dict):
        return ""
    v = q.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return ""
    comparator = q.get("comparator") if isinstance(q.get("comparator"), str) else ""
    unit = unit_text(q.get("unit") or q.get("code"))
    return (comparator + " " if comparator else "") + ranges.format_value(float(v), unit or None)


def concept(cc: Any) -> str:
    """A CodeableConcept (or a list of them, or a Coding) as words."""
    if isinstance(cc, list):
        return ", ".join(t for t in (concept(c) for c in cc) if t)
    if not isinstance(cc, dict):
        return ""
    if isinstance(cc.get("text"), str) and cc["text"].strip():
        return plain(cc["text"])
    codings = cc.get("coding") if isinstance(cc.get("coding"), list) else [cc]
    for c in codings:
        if isinstance(c, dict) and isinstance(c.get("display"), str) and c["display"].strip():
            return plain(c["display"])
    for c in codings:
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            return plain_status(c["code"]) if c["code"].islower() else c["code"]
    return ""


def _code(cc: Any) -> str | None:
    if isinstance(cc, dict):
        for c in cc.get("coding") or []:
            if isinstance(c, dict) and isinstance(c.get("code"), str):
                return c["code"]
    return None


def _money(m: Any) -> str:
    if not isinstance(m, dict) or isinstance(m.get("value"), bool) or not isinstance(m.get("value"), (int, float)):
        return ""
    cur = m.get("currency") if isinstance(m.get("currency"), str) else ""
    return f"{m['value']:,.2f} {cur}".strip()


def _size(n: Any) -> str:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return ""
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"


def human_name(names: Any) -> str:
    if isinstance(names, dict):
        names = [names]
    if not isinstance(names, list):
        return ""
    best = next((n for n in names if isinstance(n, dict) and n.get("use") in ("usual", "official")), None)
    best = best or next((n for n in names if isinstance(n, dict)), None)
    if best is None:
        return ""
    if isinstance(best.get("text"), str) and best["text"].strip():
        return best["text"].strip()
    parts = [p for key in ("prefix", "given") for p in (best.get(key) or []) if isinstance(p, str)]
    if isinstance(best.get("family"), str):
        parts.append(best["family"])
    # Synthea appends digits to names to keep them unique ("Keeley94 Yundt"): noise to a reader
    return " ".join(re.sub(r"(?<=[A-Za-z])\d+$", "", p) for p in parts).strip()


def _address(addresses: Any) -> str:
    if isinstance(addresses, dict):
        addresses = [addresses]
    for a in addresses if isinstance(addresses, list) else []:
        if not isinstance(a, dict):
            continue
        if isinstance(a.get("text"), str):
            return a["text"]
        parts = [ln for ln in a.get("line") or [] if isinstance(ln, str)]
        parts += [a[k] for k in ("city", "state", "postalCode", "country") if isinstance(a.get(k), str)]
        if parts:
            return ", ".join(parts)
    return ""


def _phone(telecom: Any) -> str:
    for t in telecom if isinstance(telecom, list) else []:
        if isinstance(t, dict) and t.get("system") == "phone" and isinstance(t.get("value"), str):
            return t["value"]
    return ""


def name_of(resource: Any) -> str:
    """How a record is named when another one points at it: a person's or place's name, a visit's kind and day."""
    if not isinstance(resource, dict):
        return ""
    rtype = resource.get("resourceType")
    if rtype in ("Patient", "Practitioner", "RelatedPerson"):
        return human_name(resource.get("name"))
    if rtype in ("Organization", "Location", "HealthcareService", "Device"):
        name = resource.get("name") or resource.get("deviceName")
        if isinstance(name, list):
            name = next((n.get("name") for n in name if isinstance(n, dict)), None)
        return name.title() if isinstance(name, str) and name.isupper() else (name if isinstance(name, str) else "")
    if rtype == "Encounter":
        what = _title(resource) or _ENCOUNTER_CLASS.get(_class_code(resource) or "", "Visit")
        when = local_date(index_fields(resource, "").date)
        return f"{what}, {when}" if when else what
    if rtype == "CareTeam" and isinstance(resource.get("name"), str):
        return resource["name"]
    if rtype == "Goal":
        return concept(resource.get("description"))
    return _title(resource)


def references(resource: dict) -> list[str]:
    """The literal references ("Type/id") whose names a description of ``resource`` may show."""
    out: list[str] = []

    def visit(node: Any, depth: int) -> None:
        if depth > 12:
            return
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", ref):
                out.append(ref)
            for key, value in node.items():
                if key not in ("contained", "text", "subject", "patient", "beneficiary"):
                    visit(value, depth + 1)
        elif isinstance(node, list):
            for v in node:
                visit(v, depth + 1)
    visit(resource, 0)
    return list(dict.fromkeys(out))


# --- descriptions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Description:
    title: str
    kind: str                                    # "Lab result", "Vaccination"
    when: str                                    # the record's date as the timeline places it
    lines: tuple[tuple[str, str], ...]

    def text(self) -> str:
        head = f"{self.title}\n{self.kind}" + (f", {self.when}" if self.when else "")
        return head + "".join(f"\n{label}: {value}" for label, value in self.lines)

    def value(self, label: str) -> str | None:
        return next((v for k, v in self.lines if k == label), None)


class _Lines:
    def __init__(self, names: Mapping[str, str]) -> None:
        self.items: list[tuple[str, str]] = []
        self.names = names

    def add(self, label: str, value: Any) -> None:
        if isinstance(value, str) and value.strip():
            self.items.append((label, value.strip()))

    def ref(self, ref: Any) -> str:
        """A reference's name: the one the source wrote beside it, else the one the vault knows."""
        if isinstance(ref, list):
            return ", ".join(dict.fromkeys(t for t in (self.ref(r) for r in ref) if t))
        if not isinstance(ref, dict):
            return ""
        if isinstance(ref.get("display"), str) and ref["display"].strip():
            return plain(ref["display"])
        target = ref.get("reference")
        return plain(self.names.get(target, "")) if isinstance(target, str) else ""

    def notes(self, resource: dict) -> None:
        texts = [n["text"] for n in resource.get("note") or [] if isinstance(n, dict) and isinstance(n.get("text"), str)]
        self.add("Note", "\n".join(texts))


def _first(*values: str) -> str:
    return next((v for v in values if v), "")


def _class_code(resource: dict) -> str | None:
    cls = resource.get("class")
    if isinstance(cls, list):
        cls = cls[0] if cls else None
    if isinstance(cls, dict):
        return cls.get("code") if isinstance(cls.get("code"), str) else _code(cls)
    return None


def _category(resource: dict) -> str | None:
    return index_fields(resource, "").category


def _title(resource: dict) -> str:
    rtype = resource.get("resourceType", "")
    key = {"Immunization": "vaccineCode", "MedicationRequest": "medicationCodeableConcept",
           "MedicationStatement": "medicationCodeableConcept", "MedicationAdministration": "medicationCodeableConcept",
           "MedicationDispense": "medicationCodeableConcept", "Encounter": "type", "DocumentReference": "type",
           "Goal": "description", "ImagingStudy": "procedureCode", "Device": "type", "Media": "modality",
           "Specimen": "type"}.get(rtype, "code")
    title = concept(resource.get(key))
    return _visit_words(title) if rtype == "Encounter" else title


def _visit_words(text: str) -> str:
    # Synthea names visits "Encounter for check up": a word of the trade, not the patient's
    return re.sub(r"^Encounter for\b", "Visit for", text)


def _value(element: dict) -> str:
    """An Observation's (or component's) value[x] as words."""
    for key, fmt in (("valueQuantity", quantity), ("valueCodeableConcept", concept)):
        if isinstance(element.get(key), dict):
            return fmt(element[key])
    if isinstance(element.get("valueString"), str):
        return element["valueString"]
    if isinstance(element.get("valueBoolean"), bool):
        return "Yes" if element["valueBoolean"] else "No"
    if isinstance(element.get("valueInteger"), int) and not isinstance(element.get("valueInteger"), bool):
        return str(element["valueInteger"])
    if isinstance(element.get("valueRange"), dict):
        low, high = quantity(element["valueRange"].get("low")), quantity(element["valueRange"].get("high"))
        return f"{low} to {high}" if low and high else low or high
    if isinstance(element.get("valueRatio"), dict):
        n, d = quantity(element["valueRatio"].get("numerator")), quantity(element["valueRatio"].get("denominator"))
        return f"{n} per {d}" if n and d else ""
    if isinstance(element.get("valueDateTime"), str):
        return local_date(element["valueDateTime"], True)
    if isinstance(element.get("valuePeriod"), dict):
        return period(element["valuePeriod"])
    if isinstance(element.get("dataAbsentReason"), dict):
        return "Not recorded (" + concept(element["dataAbsentReason"]).lower() + ")"
    return ""


def _flag(element: dict) -> str:
    """'High', 'In range', ... from the source's interpretation, else from the value against the range."""
    rng = ranges.reference_range(element)
    interp = ranges.interpretation_flag(element)
    q = element.get("valueQuantity") if isinstance(element.get("valueQuantity"), dict) else {}
    v = q.get("value")
    if interp is None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        return ""
    unit = q.get("unit") or q.get("code")
    flag = ranges.flag_for(float(v) if isinstance(v, (int, float)) else 0.0, unit if isinstance(unit, str) else None,
                           rng, interp)
    if flag:
        return ranges.FLAG_LABELS[flag]
    if interp == "normal" or (rng is not None and rng.numeric):
        return "In range"
    return ""


def _range(element: dict) -> str:
    rng = ranges.reference_range(element)
    if rng is None:
        return ""
    text = rng.describe()
    for code, shown in _UNITS:
        text = text.replace(code, shown)
    return text


def _observation(r: dict, out: _Lines) -> None:
    value = _value(r)
    flag = _flag(r)
    out.add("Result", f"{value} ({flag.lower()})" if value and flag and flag != "In range" else value)
    for comp in r.get("component") or []:
        if isinstance(comp, dict):
            v = _value(comp)
            f = _flag(comp)
            out.add(concept(comp.get("code")) or "Part", f"{v} ({f.lower()})" if v and f and f != "In range" else v)
            out.add(f"{concept(comp.get('code'))}: normal range", _range(comp))
    out.add("Normal range", _range(r))
    if flag:
        out.add("Compared with the normal range", flag)
    taken = _first(local_date(r.get("effectiveDateTime"), True), period(r.get("effectivePeriod")),
                   local_date(r.get("effectiveInstant"), True))
    out.add("Taken", taken)
    issued = local_date(r.get("issued"), True)
    if issued != taken:
        out.add("Reported", issued)
    out.add("Method", concept(r.get("method")))
    out.add("Where on the body", concept(r.get("bodySite")))
    out.add("Measured by", out.ref(r.get("performer")))
    out.add("Results", out.ref(r.get("hasMember")))


def _condition(r: dict, out: _Lines) -> None:
    clinical = concept(r.get("clinicalStatus"))
    verification = _code(r.get("verificationStatus"))
    status = clinical
    if verification and verification != "confirmed":
        status = f"{clinical} ({plain_status(verification).lower()})" if clinical else plain_status(verification)
    out.add("Status", status)
    out.add("Started", _first(local_date(r.get("onsetDateTime")), period(r.get("onsetPeriod"), False),
                              r.get("onsetString") if isinstance(r.get("onsetString"), str) else "",
                              quantity(r.get("onsetAge"))))
    out.add("Ended", _first(local_date(r.get("abatementDateTime")), period(r.get("abatementPeriod"), False),
                            r.get("abatementString") if isinstance(r.get("abatementString"), str) else "",
                            quantity(r.get("abatementAge"))))
    out.add("Recorded", local_date(r.get("recordedDate")))
    out.add("Severity", concept(r.get("severity")))
    out.add("Where on the body", concept(r.get("bodySite")))
    cats = {_code(c) for c in r.get("category") or []}
    out.add("Listed as", "A diagnosis made at a visit" if "encounter-diagnosis" in cats else
            "On the problem list" if "problem-list-item" in cats else "A health concern" if "health-concern" in cats
            else "")
    out.add("Recorded by", _first(out.ref(r.get("recorder")), out.ref(r.get("asserter"))))


def _dosage(dosages: Any) -> str:
    out = []
    for d in dosages if isinstance(dosages, list) else []:
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("text"), str) and d["text"].strip():
            out.append(d["text"].strip())
            continue
        parts = []
        for dr in d.get("doseAndRate") or []:
            if isinstance(dr, dict):
                parts.append(quantity(dr.get("doseQuantity")))
        rep = ((d.get("timing") or {}).get("repeat") or {}) if isinstance(d.get("timing"), dict) else {}
        freq, per, unit = rep.get("frequency"), rep.get("period"), rep.get("periodUnit")
        units = {"h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year", "min": "minute"}
        if isinstance(freq, int) and isinstance(per, (int, float)) and unit in units:
            times = "once" if freq == 1 else "twice" if freq == 2 else f"{freq} times"
            every = units[unit] if per == 1 else f"{per:g} {units[unit]}s"
            parts.append(f"{times} every {every}" if per != 1 else f"{times} a {every}")
        if d.get("asNeededBoolean") is True:
            parts.append("as needed")
        parts.append(concept(d.get("route")).lower())
        text = ", ".join(p for p in parts if p)
        if text:
            out.append(text[0].upper() + text[1:])
    return "\n".join(out)


def _medication(r: dict, out: _Lines) -> None:
    rtype = r["resourceType"]
    out.add("Status", plain_status(r.get("status")))
    if rtype == "MedicationRequest":
        out.add("Prescribed", local_date(r.get("authoredOn")))
        out.add("Prescribed by", out.ref(r.get("requester")))
        intent = r.get("intent")
        if isinstance(intent, str) and intent not in ("order", "original-order"):
            out.add("Kind of request", plain_status(intent))
        out.add("How to take it", _dosage(r.get("dosageInstruction")))
        disp = r.get("dispenseRequest") if isinstance(r.get("dispenseRequest"), dict) else {}
        out.add("Quantity", quantity(disp.get("quantity")))
        repeats = disp.get("numberOfRepeatsAllowed")
        if isinstance(repeats, int) and not isinstance(repeats, bool):
            out.add("Refills", str(repeats))
    else:
        out.add("When", _first(local_date(r.get("effectiveDateTime"), True), period(r.get("effectivePeriod")),
                               local_date(r.get("whenHandedOver"), True), local_date(r.get("dateAsserted"))))
        out.add("How to take it", _dosage(r.get("dosage") or r.get("dosageInstruction")))
        out.add("Given by", out.ref([p.get("actor") for p in r.get("performer") or [] if isinstance(p, dict)]))
        out.add("Quantity", quantity(r.get("quantity")))
    out.add("Reason", _first(", ".join(filter(None, [concept(r.get("reasonCode")), out.ref(r.get("reasonReference"))]))))


def _immunization(r: dict, out: _Lines) -> None:
    out.add("Status", status_words("Immunization", r.get("status")))
    out.add("Why not", concept(r.get("statusReason")))
    out.add("Given", _first(local_date(r.get("occurrenceDateTime"), True),
                            r.get("occurrenceString") if isinstance(r.get("occurrenceString"), str) else ""))
    doses = []
    for p in r.get("protocolApplied") or []:
        if isinstance(p, dict):
            n = p.get("doseNumberPositiveInt") or p.get("doseNumberString")
            total = p.get("seriesDosesPositiveInt") or p.get("seriesDosesString")
            if n:
                doses.append(f"Dose {n}" + (f" of {total}" if total else ""))
    out.add("Dose", ", ".join(doses) or quantity(r.get("doseQuantity")))
    out.add("Where on the body", concept(r.get("site")))
    out.add("How it was given", concept(r.get("route")))
    out.add("Manufacturer", out.ref(r.get("manufacturer")))
    out.add("Lot number", r.get("lotNumber") if isinstance(r.get("lotNumber"), str) else "")
    out.add("Expires", local_date(r.get("expirationDate")))
    out.add("Given by", out.ref([p.get("actor") for p in r.get("performer") or [] if isinstance(p, dict)]))
    out.add("Where", out.ref(r.get("location")))
    if r.get("primarySource") is False:
        out.add("Recorded from", _first(concept(r.get("reportOrigin")), "Someone else's report"))


def _encounter(r: dict, out: _Lines) -> None:
    out.add("Kind of visit", visit_kind(r))
    out.add("When", period(r.get("period")))
    out.add("Status", plain_status(r.get("status")))
    out.add("Seen by", out.ref([p.get("individual") for p in r.get("participant") or [] if isinstance(p, dict)]))
    out.add("Where", out.ref([loc.get("location") for loc in r.get("location") or [] if isinstance(loc, dict)]))
    out.add("Organisation", out.ref(r.get("serviceProvider")))
    out.add("Reason", ", ".join(filter(None, [concept(r.get("reasonCode")), out.ref(r.get("reasonReference"))])))
    hosp = r.get("hospitalization") if isinstance(r.get("hospitalization"), dict) else {}
    out.add("Left hospital", concept(hosp.get("dischargeDisposition")))


def _procedure(r: dict, out: _Lines) -> None:
    out.add("Done", _first(local_date(r.get("performedDateTime"), True), period(r.get("performedPeriod")),
                           r.get("performedString") if isinstance(r.get("performedString"), str) else ""))
    out.add("Status", plain_status(r.get("status")))
    out.add("Reason", ", ".join(filter(None, [concept(r.get("reasonCode")), out.ref(r.get("reasonReference"))])))
    out.add("Where on the body", concept(r.get("bodySite")))
    out.add("Outcome", concept(r.get("outcome")))
    out.add("Done by", out.ref([p.get("actor") for p in r.get("performer") or [] if isinstance(p, dict)]))
    out.add("Where", out.ref(r.get("location")))


def _allergy(r: dict, out: _Lines) -> None:
    kind = r.get("type")
    out.add("Type", {"allergy": "Allergy", "intolerance": "Intolerance"}.get(kind, "") if isinstance(kind, str) else "")
    cats = [_ALLERGY_CATEGORY.get(c, c) for c in r.get("category") or [] if isinstance(c, str)]
    out.add("Caused by", ", ".join(cats))
    out.add("How serious", _CRITICALITY.get(r.get("criticality"), "") if isinstance(r.get("criticality"), str) else "")
    clinical = concept(r.get("clinicalStatus"))
    verification = _code(r.get("verificationStatus"))
    if verification and verification != "confirmed":
        clinical = f"{clinical} ({plain_status(verification).lower()})" if clinical else plain_status(verification)
    out.add("Status", clinical)
    reactions = []
    for rx in r.get("reaction") or []:
        if isinstance(rx, dict):
            what = concept(rx.get("manifestation"))
            sev = rx.get("severity") if isinstance(rx.get("severity"), str) else ""
            if what:
                reactions.append(f"{what} ({sev})" if sev else what)
    out.add("Reactions", ", ".join(reactions))
    out.add("First noticed", _first(local_date(r.get("onsetDateTime")),
                                    r.get("onsetString") if isinstance(r.get("onsetString"), str) else ""))
    out.add("Last reaction", local_date(r.get("lastOccurrence")))
    out.add("Recorded", local_date(r.get("recordedDate")))
    out.add("Recorded by", _first(out.ref(r.get("recorder")), out.ref(r.get("asserter"))))


def _attachments(r: dict) -> str:
    files = []
    for c in r.get("content") or r.get("presentedForm") or []:
        a = c.get("attachment", c) if isinstance(c, dict) else None
        if not isinstance(a, dict):
            continue
        ctype = a.get("contentType") if isinstance(a.get("contentType"), str) else ""
        what = _CONTENT_TYPES.get(ctype.split(";")[0].strip(), ctype or "File")
        bits = [a["title"]] if isinstance(a.get("title"), str) else []
        bits.append(what)
        if _size(a.get("size")):
            bits.append(_size(a.get("size")))
        files.append(", ".join(bits))
    return "\n".join(files)


def _report(r: dict, out: _Lines) -> None:
    out.add("Date", _first(local_date(r.get("effectiveDateTime"), True), period(r.get("effectivePeriod"))))
    out.add("Reported", local_date(r.get("issued"), True))
    out.add("Status", plain_status(r.get("status")))
    out.add("Results", out.ref(r.get("result")))
    out.add("Conclusion", _first(r.get("conclusion") if isinstance(r.get("conclusion"), str) else "",
                                 concept(r.get("conclusionCode"))))
    out.add("By", out.ref((r.get("performer") or []) + (r.get("resultsInterpreter") or [])
                          if isinstance(r.get("performer") or [], list) else []))
    out.add("Attached", _attachments(r))


def _document(r: dict, out: _Lines) -> None:
    out.add("Date", local_date(r.get("date"), True))
    out.add("Kind", concept(r.get("category")))
    out.add("Status", plain_status(r.get("docStatus") or r.get("status")))
    out.add("Written by", out.ref(r.get("author")))
    out.add("Kept by", out.ref(r.get("custodian")))
    ctx = r.get("context") if isinstance(r.get("context"), dict) else {}
    out.add("Covers", period(ctx.get("period"), False))
    out.add("Files", _attachments(r))


def _careplan(r: dict, out: _Lines) -> None:
    out.add("Status", plain_status(r.get("status")))
    out.add("When", period(r.get("period"), False))
    out.add("About", out.ref(r.get("addresses")))
    acts = []
    for a in r.get("activity") or []:
        d = a.get("detail") if isinstance(a, dict) and isinstance(a.get("detail"), dict) else None
        if d:
            what = concept(d.get("code"))
            st = d.get("status")
            if what:
                acts.append(f"{what} ({plain_status(st).lower()})" if isinstance(st, str) else what)
    out.add("Activities", "\n".join(dict.fromkeys(acts)))
    out.add("Description", r.get("description") if isinstance(r.get("description"), str) else "")
    out.add("Care team", out.ref(r.get("careTeam")))


def _goal(r: dict, out: _Lines) -> None:
    out.add("Status", plain_status(r.get("lifecycleStatus")))
    out.add("Progress", concept(r.get("achievementStatus")))
    out.add("Started", local_date(r.get("startDate")))
    targets = []
    for t in r.get("target") or []:
        if isinstance(t, dict):
            what = concept(t.get("measure"))
            value = quantity(t.get("detailQuantity"))
            if isinstance(t.get("detailRange"), dict):
                lo, hi = quantity(t["detailRange"].get("low")), quantity(t["detailRange"].get("high"))
                value = f"{lo} to {hi}" if lo and hi else lo or hi
            due = local_date(t.get("dueDate"))
            text = ": ".join(filter(None, [what, value]))
            if text or due:
                targets.append(text + (f" by {due}" if due else ""))
    out.add("Target", "\n".join(targets))
    out.add("About", out.ref(r.get("addresses")))


def _careteam(r: dict, out: _Lines) -> None:
    out.add("Status", plain_status(r.get("status")))
    out.add("When", period(r.get("period"), False))
    members = []
    for p in r.get("participant") or []:
        if isinstance(p, dict):
            who = out.ref(p.get("member"))
            role = concept(p.get("role"))
            if who or role:
                members.append(f"{who} ({role})" if who and role else who or role)
    out.add("Members", "\n".join(members))
    out.add("About", ", ".join(filter(None, [concept(r.get("reasonCode")), out.ref(r.get("reasonReference"))])))


def _imaging(r: dict, out: _Lines) -> None:
    out.add("Started", local_date(r.get("started"), True))
    out.add("What was imaged", _imaged(r))
    n = r.get("numberOfInstances")
    out.add("Images", str(n) if isinstance(n, int) and not isinstance(n, bool) else "")
    out.add("Status", plain_status(r.get("status")))
    out.add("Where", out.ref(r.get("location")))


def _claim(r: dict, out: _Lines) -> None:
    out.add("Billed period", period(r.get("billablePeriod"), False))
    out.add("Status", plain_status(r.get("status")))
    total = r.get("total")
    if isinstance(total, list):    # ExplanationOfBenefit: amounts by category
        for t in total:
            if isinstance(t, dict):
                out.add(concept(t.get("category")) or "Amount", _money(t.get("amount")))
    else:
        out.add("Total", _money(total))
    payment = r.get("payment") if isinstance(r.get("payment"), dict) else {}
    out.add("Paid", _money(payment.get("amount")))
    out.add("Provider", out.ref(r.get("provider")))
    out.add("Insurer", out.ref(r.get("insurer")))
    out.add("Covered by", out.ref([i.get("coverage") for i in r.get("insurance") or [] if isinstance(i, dict)]))
    items = [_visit_words(concept(i.get("productOrService"))) for i in r.get("item") or [] if isinstance(i, dict)]
    out.add("Items", "\n".join(dict.fromkeys(filter(None, items))))
    out.add("Outcome", plain_status(r.get("outcome")))


def _coverage(r: dict, out: _Lines) -> None:
    out.add("Status", plain_status(r.get("status")))
    out.add("When", period(r.get("period"), False))
    out.add("Paid by", out.ref(r.get("payor")))
    out.add("Relationship", concept(r.get("relationship")))


def _person(r: dict, out: _Lines) -> None:
    out.add("Born", local_date(r.get("birthDate")))
    if isinstance(r.get("deceasedDateTime"), str):
        out.add("Died", local_date(r["deceasedDateTime"]))
    gender = r.get("gender")
    out.add("Gender", gender.capitalize() if isinstance(gender, str) else "")
    out.add("Address", _address(r.get("address")))
    out.add("Phone", _phone(r.get("telecom")))


def _place(r: dict, out: _Lines) -> None:
    out.add("Kind", concept(r.get("type")))
    out.add("Address", _address(r.get("address")))
    out.add("Phone", _phone(r.get("telecom")))


def _device(r: dict, out: _Lines) -> None:
    out.add("Kind", concept(r.get("type")))
    out.add("Name", name_of(r))
    out.add("Made by", r.get("manufacturer") if isinstance(r.get("manufacturer"), str) else "")
    out.add("Made", local_date(r.get("manufactureDate")))
    out.add("Expires", local_date(r.get("expirationDate")))
    out.add("Status", plain_status(r.get("status")))


def _family(r: dict, out: _Lines) -> None:
    out.add("Family member", concept(r.get("relationship")).capitalize())
    conditions = [concept(c.get("code")) for c in r.get("condition") or [] if isinstance(c, dict)]
    out.add("Conditions", "\n".join(filter(None, conditions)))
    out.add("Recorded", local_date(r.get("date")))


def _media(r: dict, out: _Lines) -> None:
    out.add("Kind", _first(concept(r.get("modality")), concept(r.get("type"))))
    out.add("Taken", _first(local_date(r.get("createdDateTime"), True), period(r.get("createdPeriod"))))
    out.add("Where on the body", concept(r.get("bodySite")))
    content = r.get("content")
    out.add("File", _attachments({"content": [content]}) if isinstance(content, dict) else "")


def _specimen(r: dict, out: _Lines) -> None:
    out.add("Kind", concept(r.get("type")))
    coll = r.get("collection") if isinstance(r.get("collection"), dict) else {}
    out.add("Collected", _first(local_date(coll.get("collectedDateTime"), True), period(coll.get("collectedPeriod"))))
    out.add("Condition of the sample", concept(r.get("condition")))


def _answers(items: Any, out: _Lines, depth: int = 0) -> None:
    for item in items if isinstance(items, list) and depth < 8 else []:
        if not isinstance(item, dict):
            continue
        values = []
        for a in item.get("answer") or []:
            if isinstance(a, dict):
                for key, v in a.items():
                    if key.startswith("value"):
                        values.append(concept(v) if isinstance(v, dict) and key != "valueQuantity" else
                                      quantity(v) if key == "valueQuantity" else
                                      ("Yes" if v else "No") if isinstance(v, bool) else str(v))
                _answers(a.get("item"), out, depth + 1)
        if values and isinstance(item.get("text"), str):
            out.add(item["text"], ", ".join(values))
        _answers(item.get("item"), out, depth + 1)


def _questionnaire(r: dict, out: _Lines) -> None:
    out.add("Answered", local_date(r.get("authored"), True))
    out.add("Status", plain_status(r.get("status")))
    out.add("Answered by", out.ref(r.get("author")))
    _answers(r.get("item"), out)


def _request(r: dict, out: _Lines) -> None:
    out.add("Status", plain_status(r.get("status")))
    out.add("Asked for", local_date(r.get("authoredOn")))
    out.add("When", _first(local_date(r.get("occurrenceDateTime"), True), period(r.get("occurrencePeriod"))))
    out.add("Asked by", out.ref(r.get("requester")))
    out.add("Reason", ", ".join(filter(None, [concept(r.get("reasonCode")), out.ref(r.get("reasonReference"))])))


_DESCRIBERS = {
    "Device": _device, "FamilyMemberHistory": _family, "Media": _media, "Specimen": _specimen,
    "QuestionnaireResponse": _questionnaire, "ServiceRequest": _request,
    "Observation": _observation, "Condition": _condition, "MedicationRequest": _medication,
    "MedicationStatement": _medication, "MedicationAdministration": _medication, "MedicationDispense": _medication,
    "Immunization": _immunization, "Encounter": _encounter, "Procedure": _procedure, "AllergyIntolerance": _allergy,
    "DiagnosticReport": _report, "DocumentReference": _document, "CarePlan": _careplan, "Goal": _goal,
    "CareTeam": _careteam, "ImagingStudy": _imaging, "Claim": _claim, "ExplanationOfBenefit": _claim,
    "Coverage": _coverage, "Patient": _person, "Practitioner": _person, "RelatedPerson": _person,
    "Organization": _place, "Location": _place,
}


def _strip_html(div: Any) -> str:
    if not isinstance(div, str):
        return ""
    text = re.sub(r"<br\s*/?>|</(?:p|li|div|tr)>", "\n", div, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]*>", " ", text)
    text = text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _imaged(resource: dict) -> str:
    series = [s for s in resource.get("series") or [] if isinstance(s, dict)]
    return ", ".join(dict.fromkeys(filter(None, (
        " of the ".join(filter(None, [concept(s.get("modality")), concept(s.get("bodySite")).lower()]))
        for s in series))))


def headline(resource: dict, category: str | None = None) -> tuple[str, str]:
    """(title, kind) of a record, without the rest of its description: what a list row shows. ``category``: the
    index category when the caller has it (saves reading it from the record again)."""
    rtype = resource.get("resourceType") if isinstance(resource.get("resourceType"), str) else ""
    if category is None:
        category = _category(resource)
    kind = kind_label(rtype, category)
    if rtype == "Claim" or rtype == "ExplanationOfBenefit":
        what = _visit_words(next((concept(i.get("productOrService")) for i in resource.get("item") or []
                                  if isinstance(i, dict)), ""))
        title = f"{kind} for {what[0].lower() + what[1:]}" if what else kind
    elif rtype in ("Patient", "Practitioner", "RelatedPerson", "Organization", "Location"):
        title = name_of(resource)
    elif rtype == "CarePlan":
        title = _first(resource.get("title") if isinstance(resource.get("title"), str) else "",
                       concept([c for c in resource.get("category") or [] if _code(c) != "assess-plan"]))
    elif rtype == "ImagingStudy":
        title = _first(_title(resource), _imaged(resource))
    elif rtype == "DocumentReference":
        title = _first(resource.get("description") if isinstance(resource.get("description"), str) else "",
                       _title(resource))
    else:
        title = _title(resource)
    title = title or kind
    # a medicine's name keeps its lettering ("diphenhydrAMINE" tells it apart from a similar name)
    return (title if rtype.startswith("Medication") else title[0].upper() + title[1:]), kind


def visit_kind(resource: dict) -> str:
    """A visit's kind in plain words ("Outpatient visit", "Hospital stay"); "" when the record does not say."""
    return _ENCOUNTER_CLASS.get(_class_code(resource) or "", concept(resource.get("class")))


def describe(resource: dict, names: Mapping[str, str] | None = None) -> Description:
    """A record as a title, its kind and date, and lines of (label, value) in plain words."""
    if not isinstance(resource, dict):
        return Description("Unreadable record", "Record", "", ())
    rtype = resource.get("resourceType") if isinstance(resource.get("resourceType"), str) else ""
    out = _Lines(names or {})
    fields = index_fields(resource, "")
    title, kind = headline(resource, fields.category)
    describer = _DESCRIBERS.get(rtype)
    if describer is not None:
        describer(resource, out)
    else:
        out.add("Date", local_date(fields.date, True))
        out.add("Status", plain_status(fields.status))
    if rtype != "Encounter":
        out.add("During the visit", out.ref(resource.get("encounter")) or out.ref(
            (resource.get("context") or {}).get("encounter") if isinstance(resource.get("context"), dict) else None))
    out.notes(resource)
    if not out.items:
        out.add("Summary", _strip_html((resource.get("text") or {}).get("div")
                                       if isinstance(resource.get("text"), dict) else None))
    return Description(title, kind, local_date(fields.date), tuple(out.items))


def describe_sources(sources: list[dict]) -> list[tuple[str, str]]:
    """Where a record came from, for its detail: the source, whether it was verified, and when it was imported.
    ``sources`` as ``query.provenance`` returns them, oldest first."""
    if not sources:
        return [("Came from", "Unknown")]
    out: list[tuple[str, str]] = []
    first = sources[0]
    cards = ((first.get("verification") or {}).get("cards") or []) if isinstance(first.get("verification"), dict) else []
    what = _SOURCE_KIND.get(first.get("kind"), "A file you imported")
    issuers = sorted({c.get("issuer") for c in cards if isinstance(c, dict) and isinstance(c.get("issuer"), str)})
    if issuers:
        what += " issued by " + ", ".join(issuers)
    out.append(("Came from", what))
    older = next((v.get("fhir_version") for v in (s.get("verification") for s in sources)
                  if isinstance(v, dict) and isinstance(v.get("fhir_version"), str)), None)
    if older:
        out.append(("Format", f"FHIR {older}, converted to R4 when imported (the original file is kept)"))
    best = max(sources, key=lambda s: trust_levels.rank(s.get("trust")))
    verified = plain_trust(best.get("trust"))
    note = ((best.get("verification") or {}).get("received") or {}) if isinstance(best.get("verification"), dict) \
        else {}
    signer = note.get("signer_name") if isinstance(note, dict) else None
    if best.get("trust") == "clinician-signed" and isinstance(signer, str) and note.get("checked") in _SIGNER_CHECKED:
        verified = f"Verified: signed by {signer}, {_SIGNER_CHECKED[note['checked']]}"
    flags = sorted({f for c in cards if isinstance(c, dict) for f in c.get("flags") or [] if isinstance(f, str)})
    notes = {"unknown-issuer": "the issuer is not one you trust", "expired": "the card has expired",
             "revoked": "the issuer revoked the card", "not-yet-valid": "the card is dated in the future"}
    if flags and best.get("trust") == "unverified":
        verified = "Not verified: " + "; ".join(notes.get(f, f) for f in flags)
    out.append(("Verified", verified))
    out.append(("Imported", local_date(first.get("imported_at"), True)))
    if len(sources) > 1:
        out.append(("Also found in", f"{len(sources) - 1} other file{'s' if len(sources) > 2 else ''}, "
                                     f"last imported {local_date(sources[-1].get('imported_at'), True)}"))
    return out


def result_text(resource: dict) -> str:
    """A measurement's value in a few words, for a table cell: "182 mg/dL (high)", "128/84 mmHg"."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        return ""
    value = _value(resource)
    if value:
        flag = _flag(resource)
        return f"{value} ({flag.lower()})" if flag and flag != "In range" else value
    comps = [c for c in resource.get("component") or [] if isinstance(c, dict)]
    quantities = [c.get("valueQuantity") for c in comps if isinstance(c.get("valueQuantity"), dict)]
    units = {unit_text(q.get("unit") or q.get("code")) for q in quantities}
    if quantities and len(quantities) == len(comps) and len(units) == 1:
        # systolic before diastolic, as blood pressure is written
        ordered = sorted(comps, key=lambda c: {"8480-6": 0, "8462-4": 1}.get(_code(c.get("code")) or "", 2))
        numbers = "/".join(quantity(dict(c["valueQuantity"], unit=None, code=None)) for c in ordered)
        return f"{numbers} {units.pop()}".strip()
    return ", ".join(t for t in (_value(c) for c in comps) if t)

"""The International Patient Summary: a FHIR ``document`` Bundle built from one patient's records.

Composition LOINC 60591-5 with Problems (11450-4), Allergies (48765-2) and Medications (10160-0) always present,
each with entries or an ``emptyReason``; Immunizations, Results, Vital signs and Procedures when there is data.
Active sections leave out resolved, inactive and entered-in-error items; Results and Vital signs keep the latest
observation per code. Every section carries a generated narrative. The Bundle is checked against the R4B models
before it is returned, so an export never writes an invalid document.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Collection
from datetime import datetime

from vault import jsonsafe
from vault.records.errors import ExportFailed
from vault.records.bundle import full_url
from vault.records.fhir_models import model_of
from vault.records.persons import EVERYONE
from vault.records.persons import where as person_where

LOINC = "http://loinc.org"
_EMPTY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown",
                      "display": "Nil Known"}], "text": "No information in this vault"}
_INACTIVE = {"inactive", "resolved", "remission", "refuted", "entered-in-error"}

SECTIONS = (
    # key, LOINC, title, always present
    ("problems", "11450-4", "Problem list", True),
    ("allergies", "48765-2", "Allergies and intolerances", True),
    ("medications", "10160-0", "Medication summary", True),
    ("immunizations", "11369-6", "History of immunizations", False),
    ("results", "30954-2", "Relevant diagnostic tests/laboratory data", False),
    ("vitals", "8716-3", "Vital signs", False),
    ("procedures", "47519-4", "History of procedures", False),
)


def _code(resource: dict, key: str = "code") -> str | None:
    c = resource.get(key)
    if isinstance(c, dict):
        for coding in c.get("coding", []):
            if isinstance(coding, dict) and coding.get("code"):
                return coding["code"]
    return None


def _label(resource: dict) -> str:
    for key in ("code", "medicationCodeableConcept", "vaccineCode"):
        c = resource.get(key)
        if isinstance(c, dict):
            if c.get("text"):
                return str(c["text"])
            for coding in c.get("coding", []):
                if isinstance(coding, dict) and coding.get("display"):
                    return str(coding["display"])
    return resource.get("resourceType", "")


def _status_code(resource: dict, key: str) -> str | None:
    return _code(resource, key)


def _refers_to(resource: dict, patient_ref: str) -> bool:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and ref.get("reference") == patient_ref:
            return True
    return False


def _active_condition(r: dict) -> bool:
    return (_status_code(r, "clinicalStatus") or "active") not in _INACTIVE and \
        (_status_code(r, "verificationStatus") or "") not in _INACTIVE


def _active_med(r: dict) -> bool:
    return r.get("status") in ("active", "on-hold", "intended") if r["resourceType"] != "MedicationStatement" \
        else r.get("status") in ("active", "intended", "on-hold")


def _when(r: dict) -> str:
    for key in ("effectiveDateTime", "occurrenceDateTime", "performedDateTime", "onsetDateTime", "authoredOn",
                "recordedDate", "issued"):
        if isinstance(r.get(key), str):
            return r[key]
    for key in ("effectivePeriod", "performedPeriod", "onsetPeriod"):
        if isinstance(r.get(key), dict) and isinstance(r[key].get("start"), str):
            return r[key]["start"]
    return ""


def _category(r: dict) -> set[str]:
    out = set()
    for cat in r.get("category", []) if isinstance(r.get("category"), list) else []:
        for coding in cat.get("coding", []) if isinstance(cat, dict) else []:
            if isinstance(coding, dict) and coding.get("code"):
                out.add(coding["code"])
    return out


def _latest_per_code(observations: list[dict]) -> list[dict]:
    latest: dict[str, dict] = {}
    for o in observations:
        key = _code(o) or o["id"]
        if key not in latest or _when(o) > _when(latest[key]):
            latest[key] = o
    return sorted(latest.values(), key=_when, reverse=True)


def _pick_patient(conn, patient: str | None, person: int | None) -> dict:
    if patient:
        pid = patient.split("/", 1)[1] if patient.startswith("Patient/") else patient
        row = conn.execute("SELECT json FROM rec_resources WHERE rtype = 'Patient' AND id = ?", (pid,)).fetchone()
        if not row:
            raise ExportFailed("There is no patient with that id in the vault; no summary was written.")
        return jsonsafe.loads_stored(row[0])
    mine, args = person_where(conn, person)
    # a person met in several sources may have several Patient records: the first one imported speaks for them
    rows = conn.execute(f"SELECT json FROM rec_resources WHERE rtype = 'Patient' AND {mine} ORDER BY rid LIMIT 2",
                        args).fetchall()
    if not rows:
        raise ExportFailed("The vault holds no Patient record, so there is no one to summarise; "
                           "no summary was written.")
    if len(rows) > 1 and person == EVERYONE:
        raise ExportFailed("The vault holds records of more than one patient; say which one (--patient ID). "
                           "No summary was written.")
    return jsonsafe.loads_stored(rows[0][0])


def _narrative(items: list[dict], empty: bool) -> dict:
    if empty:
        body = "<p>No information in this vault.</p>"
    else:
        lis = "".join(f"<li>{html.escape(_label(r))}"
                      + (f" ({html.escape(_when(r)[:10])})" if _when(r) else "") + _value(r) + "</li>" for r in items)
        body = f"<ul>{lis}</ul>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _value(r: dict) -> str:
    vq = r.get("valueQuantity")
    if isinstance(vq, dict) and "value" in vq:
        return f": {html.escape(str(vq['value']))} {html.escape(str(vq.get('unit', '')))}".rstrip()
    return ""


def build_ips(conn, *, patient: str | None = None, person: int | None = None, now: datetime,
              exclude: Collection[str] = ()) -> dict:
    """The summary of ``person`` (None: the vault's own; see ``vault.records.persons``), or of one Patient record
    named by ``patient``. ``exclude`` ("Type/id") leaves records out before anything is chosen, so they appear
    nowhere in the document, not even in a section's narrative."""
    pat = _pick_patient(conn, patient, person)
    pref = f"Patient/{pat['id']}"
    types = ("Condition", "AllergyIntolerance", "MedicationRequest", "MedicationStatement", "Immunization",
             "Observation", "Procedure")
    mine: dict[str, list[dict]] = {t: [] for t in types}
    if patient or person == EVERYONE:
        cond, args = "1", []
        ours = lambda r: _refers_to(r, pref)  # noqa: E731
    else:
        # the person's records, whichever of their Patient records each names
        cond, args = person_where(conn, person, use_index=False)
        ours = lambda r: True  # noqa: E731
    for rtype, raw in conn.execute(f"SELECT rtype, json FROM rec_resources WHERE rtype IN ({','.join('?' * len(types))})"
                                   f" AND {cond} ORDER BY rid", (*types, *args)):
        r = jsonsafe.loads_stored(raw)
        if ours(r) and f"{rtype}/{r.get('id')}" not in exclude:
            mine[rtype].append(r)
    chosen = {
        "problems": [r for r in mine["Condition"] if _active_condition(r)],
        "allergies": [r for r in mine["AllergyIntolerance"] if _active_condition(r)],
        "medications": [r for r in mine["MedicationRequest"] + mine["MedicationStatement"] if _active_med(r)],
        "immunizations": sorted((r for r in mine["Immunization"] if r.get("status") == "completed"), key=_when,
                                reverse=True),
        "results": _latest_per_code([r for r in mine["Observation"] if "laboratory" in _category(r)
                                     and r.get("status") not in ("entered-in-error", "cancelled")]),
        "vitals": _latest_per_code([r for r in mine["Observation"] if "vital-signs" in _category(r)
                                    and r.get("status") not in ("entered-in-error", "cancelled")]),
        "procedures": sorted((r for r in mine["Procedure"] if r.get("status") == "completed"), key=_when,
                             reverse=True),
    }
    # medications given by reference travel with the summary
    extra: list[dict] = []
    for m in chosen["medications"]:
        ref = (m.get("medicationReference") or {}).get("reference", "")
        if ref.startswith("Medication/"):
            row = conn.execute("SELECT json FROM rec_resources WHERE rtype = 'Medication' AND id = ?",
                               (ref.split("/", 1)[1],)).fetchone()
            if row:
                extra.append(jsonsafe.loads_stored(row[0]))

    device = {"resourceType": "Device", "id": "medvault-ips-generator",
              "deviceName": [{"name": "medvault", "type": "user-friendly-name"}]}
    sections = []
    included: list[dict] = [pat, device]
    for key, loinc, title, always in SECTIONS:
        items = chosen[key]
        if not items and not always:
            continue
        section: dict = {"title": title, "code": {"coding": [{"system": LOINC, "code": loinc, "display": title}]},
                         "text": _narrative(items, not items)}
        if items:
            section["entry"] = [{"reference": full_url(r["resourceType"], r["id"])} for r in items]
            included.extend(items)
        else:
            section["emptyReason"] = _EMPTY
        sections.append(section)
    included.extend(extra)

    stamp = now.isoformat(timespec="seconds")
    composition_id = str(uuid.uuid4())
    composition = {
        "resourceType": "Composition", "id": composition_id, "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}]},
        "subject": {"reference": full_url("Patient", pat["id"])},
        "date": stamp,
        "author": [{"reference": full_url("Device", device["id"])}],
        "title": "International Patient Summary",
        "confidentiality": "N",
        "section": sections,
    }
    # references between included records point at their fullUrls, as a document's references must
    urls = {f"{r['resourceType']}/{r['id']}": full_url(r["resourceType"], r["id"]) for r in included}
    seen, entries = set(), [{"fullUrl": f"urn:uuid:{composition_id}", "resource": composition}]
    for r in included:
        key = f"{r['resourceType']}/{r['id']}"
        if key in seen:
            continue
        seen.add(key)
        entries.append({"fullUrl": urls[key], "resource": _rewrite(r, urls)})
    doc = {"resourceType": "Bundle", "id": str(uuid.uuid4()),
           "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
           "type": "document", "timestamp": stamp, "entry": entries}
    model_of(doc)   # raises rather than hand out an invalid document
    return doc


def _rewrite(resource: dict, urls: dict[str, str]) -> dict:
    r = jsonsafe.loads(jsonsafe.dumps(resource))
    stack: list = [r]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref in urls:
                node["reference"] = urls[ref]
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return r

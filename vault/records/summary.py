"""The summary a patient sees first: the International Patient Summary's sections, read for a person, not a machine.

Active problems, allergies with how serious a reaction could be, current medications with how they are taken,
immunizations (one line per vaccine), the latest vital signs and lab results with the value before them and a flag
when a value lies outside the range its source gave, and the most recent visits. The lists are chosen with the
index columns; only the records that end up on screen are parsed, and they are worded by ``describe`` so the
summary says things the way the record views do. Dates stay ISO 8601 for the GUI to show. No Qt here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from vault.records import describe, persons, ranges

# Clinical statuses that mean "not a current concern" (ips.py applies the same rule to exported summaries).
_INACTIVE = frozenset({"inactive", "resolved", "remission", "refuted", "entered-in-error"})
_VITAL_CATEGORIES = ("vital-signs", "vital-sign")   # Synthea 2.4 spells it both ways
RECENT_ENCOUNTERS = 5

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")     # Synthea's LOINC names carry zero-width spaces
# LOINC long names carry the measured property in brackets and the method at the end; a patient needs neither
_LOINC_PROPERTY = re.compile(r"\s*\[[^\]]*\]\s*")
_LOINC_METHOD = re.compile(r"\s+by (?:automated|manual) count$|\s+by calculation$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the summary, enough to draw it and to open the record behind it."""

    rtype: str
    id: str
    label: str
    date: str | None = None             # ISO 8601 as stored; the GUI shows it as a local date
    value: str | None = None            # "120/80 mmHg", "High risk; reactions: Hives", "Once a day"
    flag: str | None = None             # a ranges.FLAG_LABELS key, from the record's own range or interpretation
    previous: str | None = None         # the value measured on an earlier day, for "how has it changed"
    previous_date: str | None = None
    count: int = 1                      # immunizations: doses of this vaccine

    @property
    def flag_label(self) -> str:
        return ranges.FLAG_LABELS.get(self.flag, "") if self.flag else ""


@dataclass(slots=True)
class Summary:
    problems: list[Item] = field(default_factory=list)
    allergies: list[Item] = field(default_factory=list)
    medications: list[Item] = field(default_factory=list)
    immunizations: list[Item] = field(default_factory=list)
    vitals: list[Item] = field(default_factory=list)
    results: list[Item] = field(default_factory=list)
    encounters: list[Item] = field(default_factory=list)
    records: int = 0                    # how many records the person has in all, so an empty vault can say so

    def is_empty(self) -> bool:
        return self.records == 0


SECTIONS = ("problems", "allergies", "medications", "immunizations", "vitals", "results", "encounters")


def list_label(rtype: str, text: str | None) -> str:
    """A coded display as a list shows it: ``describe.plain``, and for a test also without LOINC's bracketed
    property and counting method ("Hemoglobin [Mass/volume] in Blood by Automated count" -> "Hemoglobin in
    Blood"). A medicine's name stays as written: "[Toprol]" is its brand, and "diphenhydrAMINE" is lettered so
    it is not mistaken for a similar name."""
    text = " ".join(_INVISIBLE.sub("", text or "").split())
    if rtype.startswith("Medication"):
        return text
    text = describe.plain(text)
    if rtype == "Observation":
        text = _LOINC_METHOD.sub("", " ".join(_LOINC_PROPERTY.sub(" ", text).split())) or text
    return text[:1].upper() + text[1:]


def _words(concept: Any) -> str | None:
    """A CodeableConcept's own words, unaltered: its text, else its first coding's display."""
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"]
    return next((c["display"] for c in concept.get("coding") or []
                 if isinstance(c, dict) and isinstance(c.get("display"), str) and c["display"].strip()), None)


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {c["code"] for c in concept.get("coding") or [] if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _components(resource: dict) -> list[dict]:
    comps = [c for c in resource.get("component") or [] if isinstance(c, dict)]
    # systolic before diastolic, as blood pressure is written; Synthea stores them the other way round
    order = ranges._COMPONENT_ORDER
    return sorted(comps, key=lambda c: min((order.get(code, 2) for code in _codes(c.get("code"))), default=2))


def value_text(resource: dict) -> str | None:
    """An observation's value in words; a pair of components sharing a unit reads as blood pressure is written
    (120/80 mmHg)."""
    text = describe.quantity(resource.get("valueQuantity")) or describe.concept(resource.get("valueCodeableConcept"))
    if text:
        return text
    for key in ("valueString", "valueInteger"):
        v = resource.get(key)
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            return str(v)
    if isinstance(resource.get("valueBoolean"), bool):
        return "Yes" if resource["valueBoolean"] else "No"
    components = _components(resource)
    quantities = [c.get("valueQuantity") for c in components]
    if len(components) == 2 and all(describe.quantity(q) for q in quantities):
        units = {describe.unit_text(q.get("unit") or q.get("code")) for q in quantities}
        if len(units) == 1:
            unit = units.pop()
            return "/".join(ranges.format_value(float(q["value"])) for q in quantities) + (f" {unit}" if unit else "")
    parts = []
    for comp in components:
        v = describe.quantity(comp.get("valueQuantity")) or describe.concept(comp.get("valueCodeableConcept"))
        if v:
            parts.append(f"{list_label('Observation', describe.concept(comp.get('code')))} {v}".strip())
    return "; ".join(parts) or None


def _flag(element: dict) -> str | None:
    said = ranges.interpretation_flag(element)
    if said is not None:
        return None if said == "normal" else said
    q = element.get("valueQuantity")
    if not isinstance(q, dict) or not isinstance(q.get("value"), (int, float)) or isinstance(q.get("value"), bool):
        return None
    unit = q.get("unit") or q.get("code")
    return ranges.flag_for(float(q["value"]), unit if isinstance(unit, str) else None, ranges.reference_range(element))


def out_of_range(resource: dict) -> str | None:
    """A ``ranges.FLAG_LABELS`` key when the observation, or one of its components (a blood pressure can be high
    in one of them), lies outside the range its source gave; None when in range or when nothing is known."""
    flag = _flag(resource)
    if flag:
        return flag
    for comp in _components(resource):
        if flag := _flag(comp):
            return flag
    return None


# --- reading the vault ------------------------------------------------------------------------------------------
_ROW = "rid, rtype, id, date, display, status, category, person, code"
_VOID = "(status IS NULL OR status NOT IN ('entered-in-error', 'cancelled'))"
_MEDICATIONS = ("MedicationRequest", "MedicationStatement")


@dataclass(frozen=True, slots=True)
class _Row:
    rid: int
    rtype: str
    id: str
    date: str | None
    display: str | None
    status: str | None
    category: str | None
    person: int | None
    code: str | None


class _Reader:
    """Reads for one person. The index columns sit behind each record's JSON in its row, so reading them costs a
    walk through the record; what is current is therefore found from the code index (which holds each code's
    dates) plus one row per code, never by reading every record of a kind."""

    def __init__(self, conn: Any, person: Any) -> None:
        self.conn = conn
        self.person = persons.resolve(conn, person)
        condition, self.args = persons.where(conn, person, use_index=False)
        self.where = f" AND {condition}"
        self._newest: list[_Row] | None = None

    def rows(self, sql: str, *args: Any, after: tuple = ()) -> list[tuple]:
        """``{person}`` in ``sql`` becomes the person condition; ``args`` bind before it, ``after`` behind it."""
        return self.conn.execute(sql.replace("{person}", self.where), [*args, *self.args, *after]).fetchall()

    def mine(self, row: _Row) -> bool:
        return self.person == persons.EVERYONE or row.person == self.person

    def _fetch(self, rids: list[int]) -> list[_Row]:
        out: list[_Row] = []
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            out += [_Row(*r) for r in self.conn.execute(
                f"SELECT {_ROW} FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})", chunk)]
        return out

    def newest_per_code(self) -> list[_Row]:
        """The newest record of every code in the vault (SQLite takes the bare ``rid`` from the row holding the
        ``max``), read from the code index alone, then one row each."""
        if self._newest is None:
            rids = [r[1] for r in self.conn.execute(
                "SELECT max(date), rid FROM rec_resources INDEXED BY rec_resources_code WHERE code IS NOT NULL"
                " GROUP BY code")]
            self._newest = self._fetch(rids)
        return self._newest

    def current(self, rtypes: tuple[str, ...], *, usable: str = "1", looked_past: tuple[str, ...] = ()) -> list[_Row]:
        """Per code, the person's newest record of one of ``rtypes`` that meets the SQL condition ``usable``.

        Coding systems give conditions, medicines, tests and visit kinds codes of their own, so a code whose
        newest record is of another kind is left alone; ``looked_past`` names kinds that do share codes with
        ``rtypes`` (a lab report and its tests share LOINC codes). Records without a code come from the code
        index's NULL entries."""
        out, further = [], []
        for row in self.newest_per_code():
            if row.rtype not in rtypes and row.rtype not in looked_past:
                continue
            if row.rtype in rtypes and self.mine(row) and self._meets(row, usable):
                out.append(row)
            else:
                further.append(row.code)
        out += self._newest_of(further, rtypes, usable)
        uncoded = self.uncoded(rtypes)
        for start in range(0, len(uncoded), 500):
            chunk = uncoded[start:start + 500]
            out += [_Row(*r) for r in self.rows(f"SELECT {_ROW} FROM rec_resources WHERE rid IN"
                                                f" ({','.join('?' * len(chunk))}) AND {usable}{{person}}", *chunk)]
        return out

    def _newest_of(self, codes: list[str], rtypes: tuple[str, ...], usable: str) -> list[_Row]:
        """Per code, the person's newest record of one of ``rtypes`` that meets ``usable``. Which records of a code
        are of those types comes from the code and type indexes alone: asking the rows would walk through each
        record of the code, and a lab panel's code is on thousands of reports and often on no test at all. Only
        those candidates are read, newest first, until one will do."""
        out = []
        kinds = ",".join("?" * len(rtypes))
        for start in range(0, len(codes), 500):
            chunk = codes[start:start + 500]
            candidates = self.conn.execute(
                "SELECT code, rid FROM rec_resources INDEXED BY rec_resources_code"
                f" WHERE code IN ({','.join('?' * len(chunk))}) AND rid IN (SELECT rid FROM rec_resources"
                f" INDEXED BY rec_resources_type_date WHERE rtype IN ({kinds})) ORDER BY code, date DESC, rid DESC",
                [*chunk, *rtypes]).fetchall()
            found: set[str] = set()
            for code, rid in candidates:
                if code in found:
                    continue
                row = self.rows(f"SELECT {_ROW} FROM rec_resources WHERE rid = ? AND {usable}{{person}}", rid)
                if row:
                    found.add(code)
                    out.append(_Row(*row[0]))
        return out

    def uncoded(self, rtypes: tuple[str, ...]) -> list[int]:
        """The records of ``rtypes`` without a code, from the code and type indexes alone (reading each uncoded
        record's type from its row would read the record)."""
        kinds = ",".join("?" * len(rtypes))
        return [rid for (rid,) in self.conn.execute(
            f"SELECT rid FROM rec_resources INDEXED BY rec_resources_type_date WHERE rtype IN ({kinds}) AND rid IN"
            " (SELECT rid FROM rec_resources INDEXED BY rec_resources_code WHERE code IS NULL)", rtypes)]

    def _meets(self, row: _Row, usable: str) -> bool:
        if usable == "1":
            return True
        return self.conn.execute(f"SELECT 1 FROM rec_resources WHERE rid = ? AND {usable}", (row.rid,)).fetchone() \
            is not None

    def docs(self, rids: list[int]) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            for rid, raw in self.conn.execute(
                    f"SELECT rid, json FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})", chunk):
                out[rid] = json.loads(raw)
        return out

    def names(self, resource: dict) -> dict[str, str]:
        """The names ``describe`` shows for what a record points at (a clinic, a medication)."""
        out = {}
        for ref in describe.references(resource):
            rtype, rid = ref.split("/", 1)
            row = self.conn.execute("SELECT json FROM rec_resources WHERE rtype = ? AND id = ?",
                                    (rtype, rid)).fetchone()
            if row:
                out[ref] = describe.name_of(json.loads(row[0]))
        return out

    def label(self, doc: dict, fallback: str | None) -> str:
        rtype = doc.get("resourceType", "")
        if rtype.startswith("Medication"):
            title = _words(doc.get("medicationCodeableConcept"))
            ref = (doc.get("medicationReference") or {}).get("reference") \
                if isinstance(doc.get("medicationReference"), dict) else None
            if not title and isinstance(ref, str):
                title = self.names(doc).get(ref)
        else:
            title = describe.describe(doc).title
        return list_label(rtype, title or fallback)


def _newest_first(rows: list[_Row]) -> list[_Row]:
    return sorted(rows, key=lambda row: (row.date or "", row.rid), reverse=True)


def _problems(r: _Reader) -> list[Item]:
    """Conditions whose newest record says they are current: a problem recorded at every visit is one problem,
    and one recorded as resolved later is no longer a problem."""
    rows = _newest_first(r.current(("Condition",)))
    docs = r.docs([row.rid for row in rows if (row.status or "active") not in _INACTIVE])
    out, seen = [], set()
    for row in rows:
        doc = docs.get(row.rid)
        if doc is None or (_codes(doc.get("clinicalStatus")) | _codes(doc.get("verificationStatus"))) & _INACTIVE:
            continue
        label = r.label(doc, row.display)
        if label.casefold() in seen:
            continue
        seen.add(label.casefold())
        out.append(Item("Condition", row.id, label, row.date))
    return out


def _allergies(r: _Reader) -> list[Item]:
    rows = r.rows("SELECT rid, id, date, display FROM rec_resources WHERE rtype = 'AllergyIntolerance'{person}"
                  " ORDER BY date IS NULL, date DESC, rid DESC")
    docs = r.docs([row[0] for row in rows])
    out = []
    for rid, rec_id, date, display in rows:
        doc = docs[rid]
        if (_codes(doc.get("clinicalStatus")) | _codes(doc.get("verificationStatus"))) & _INACTIVE:
            continue
        said = describe.describe(doc)
        serious, reactions = said.value("How serious"), said.value("Reactions")
        value = "; ".join(filter(None, [serious, f"reactions: {reactions}" if reactions else None])) or None
        out.append(Item("AllergyIntolerance", rec_id, r.label(doc, display), date, value,
                        "high" if doc.get("criticality") == "high" else None))
    return out


def _medications(r: _Reader) -> list[Item]:
    """Medicines whose newest prescription or statement is current (a renewed prescription speaks for the
    medicine; one stopped since is no longer taken)."""
    rows = [row for row in _newest_first(r.current(_MEDICATIONS))
            if row.status in (("active", "on-hold") if row.rtype == "MedicationRequest"
                              else ("active", "intended", "on-hold"))]
    docs = r.docs([row.rid for row in rows])
    out, seen = [], set()
    for row in rows:
        doc = docs[row.rid]
        label = r.label(doc, row.display)
        if label.casefold() in seen:
            continue
        seen.add(label.casefold())
        how = describe.describe(doc).value("How to take it")
        value = how.splitlines()[0] if how else None
        if doc.get("status") == "on-hold":
            value = f"{value}; paused" if value else "Paused"
        out.append(Item(row.rtype, row.id, label, row.date, value))
    return out


def _immunizations(r: _Reader) -> list[Item]:
    rows = r.rows("SELECT id, date, code, display, doses FROM (SELECT id, date, code, display, count(*) OVER w AS"
                  " doses, row_number() OVER (w ORDER BY date DESC, rid DESC) AS n FROM rec_resources WHERE"
                  " rtype = 'Immunization' AND (status IS NULL OR status = 'completed'){person}"
                  " WINDOW w AS (PARTITION BY coalesce(code, display, id))) WHERE n = 1")
    items = [Item("Immunization", rec_id, list_label("Immunization", display or code) or "Vaccine", date, count=doses)
             for rec_id, date, code, display, doses in rows]
    items.sort(key=lambda i: i.label.casefold())
    return sorted(items, key=lambda i: i.date or "", reverse=True)


def _latest_observations(r: _Reader, categories: tuple[str, ...]) -> list[Item]:
    """Per code, the newest observation and the newest one from an earlier day (the same test entered twice at
    one visit is no change), newest first."""
    latest = [row for row in r.current(("Observation",), usable=_VOID, looked_past=("DiagnosticReport",))
              if row.category in categories and row.date]
    before: dict[int, _Row] = {}
    for row in latest:
        if row.code is None:
            continue
        found = r.rows(f"SELECT {_ROW} FROM rec_resources WHERE code = ? AND rtype = 'Observation' AND date < ?"
                       f" AND {_VOID}{{person}} ORDER BY date DESC, rid DESC LIMIT 1", row.code, row.date[:10])
        if found:
            before[row.rid] = _Row(*found[0])
    docs = r.docs([row.rid for row in latest] + [row.rid for row in before.values()])
    out = []
    for row in latest:
        doc = docs[row.rid]
        prev = before.get(row.rid)
        prev_value = value_text(docs[prev.rid]) if prev else None
        out.append(Item("Observation", row.id, r.label(doc, row.display), row.date, value_text(doc),
                        out_of_range(doc), prev_value, prev.date if prev and prev_value else None))
    out.sort(key=lambda i: i.label.casefold())
    return sorted(out, key=lambda i: (i.date or "")[:10], reverse=True)


def _encounters(r: _Reader, limit: int) -> list[Item]:
    rows = r.rows("SELECT rid, id, date, display FROM rec_resources WHERE rtype = 'Encounter' AND date IS NOT NULL"
                  "{person} ORDER BY date DESC, rid DESC LIMIT ?", after=(limit,))
    docs = r.docs([row[0] for row in rows])
    out = []
    for rid, rec_id, date, display in rows:
        doc = docs[rid]
        said = describe.describe(doc, r.names(doc))
        where = said.value("Organisation") or said.value("Where")
        reason = said.value("Reason")
        value = " ".join(filter(None, [said.value("Kind of visit"), f"for {reason[:1].lower()}{reason[1:]}"
                                        if reason else None, f"at {where}" if where else None]))
        out.append(Item("Encounter", rec_id, list_label("Encounter", said.title or display), date, value or None))
    return out


def summary(conn, *, person: int | None = None, encounters: int = RECENT_ENCOUNTERS) -> Summary:
    """The summary of ``person``'s records (the vault's own person when None)."""
    r = _Reader(conn, person)
    mine, args = persons.where(conn, person)        # on the person index: a count that reads no record
    records = conn.execute(f"SELECT count(*) FROM rec_resources WHERE {mine}", args).fetchone()[0]
    if records == 0:
        return Summary()
    return Summary(problems=_problems(r), allergies=_allergies(r), medications=_medications(r),
                   immunizations=_immunizations(r), vitals=_latest_observations(r, _VITAL_CATEGORIES),
                   results=_latest_observations(r, ("laboratory",)), encounters=_encounters(r, encounters),
                   records=records)

"""Measurements over time with their reference ranges and flags, for the Labs & vitals charts and the Summary.

A reading is flagged from what the source said first (``Observation.interpretation``: the lab knows its own
method), and only when the source said nothing, from the value against ``referenceRange``. A range in another unit
than the value is not compared: a wrong flag is worse than none.

A measurement is either one code with numeric values (cholesterol) or a panel whose numbers live in components
(blood pressure: systolic 8480-6 and diastolic 8462-4 under 85354-9, or 55284-4 in Synthea); a panel charts one
series per component.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from vault.records import persons, query

VITAL_SIGNS = "vital-signs"
LABORATORY = "laboratory"

# v3-ObservationInterpretation (and HL7 v2 table 0078, which shares these letters)
_INTERPRETATION = {
    "H": "high", "HU": "high", ">": "high", "HX": "high",
    "L": "low", "LU": "low", "<": "low", "LX": "low",
    "HH": "critical-high", "LL": "critical-low",
    "A": "abnormal", "AA": "critical-abnormal", "POS": "abnormal", "DET": "abnormal", "R": "abnormal",
    "N": "normal", "NEG": "normal", "ND": "normal", "S": "normal",
}
FLAG_LABELS = {"high": "High", "low": "Low", "critical-high": "Very high", "critical-low": "Very low",
               "abnormal": "Outside range", "critical-abnormal": "Critically outside range"}
# systolic before diastolic, as blood pressure is written (120/80)
_COMPONENT_ORDER = {"8480-6": 0, "8462-4": 1}


@dataclass(frozen=True, slots=True)
class Range:
    low: float | None
    high: float | None
    unit: str | None
    text: str | None

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)}–{_num(self.high)}{unit}"
        if self.high is not None:
            return f"up to {_num(self.high)}{unit}"
        if self.low is not None:
            return f"from {_num(self.low)}{unit}"
        return self.text or ""

    @property
    def numeric(self) -> bool:
        return self.low is not None or self.high is not None


@dataclass(frozen=True, slots=True)
class Reading:
    date: str
    value: float
    unit: str | None
    rid: int
    range: Range | None
    flag: str | None            # a FLAG_LABELS key, or None when in range or nothing is known

    @property
    def flag_label(self) -> str:
        if self.flag:
            return FLAG_LABELS[self.flag]
        return "In range" if self.range is not None and self.range.numeric else ""


@dataclass(frozen=True, slots=True)
class Line:
    """One charted series: a code's readings, oldest first."""
    code: str
    system: str | None
    name: str
    unit: str | None
    readings: list[Reading]
    digits: int = 2                 # one precision for the whole series, set by its largest value: 92 beside 152


def _line(code: str, system: str | None, name: str, unit: str | None, readings: list[Reading]) -> Line:
    return Line(code, system, name, unit, readings, decimals(max((abs(r.value) for r in readings), default=0.0)))


@dataclass(frozen=True, slots=True)
class Measurement:
    code: str
    system: str | None
    name: str
    category: str | None
    count: int
    latest_date: str | None
    latest: tuple[tuple[float, str | None], ...]     # the latest value and unit, one per series (systolic, diastolic)
    latest_flag: str | None
    components: tuple[tuple[str, str | None, str], ...] = ()   # (code, system, name) of a panel's series
    full_name: str = ""         # the source's display, for search and a tooltip

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.code, self.system)

    @property
    def group(self) -> str:
        if self.category in (VITAL_SIGNS, "vital-sign"):
            return "Vital signs"
        if self.category == LABORATORY:
            return "Lab results"
        return "Other measurements"


_LOINC_PROPERTY = re.compile(r"\s*\[[^\]]*\]")
_METHOD = re.compile(r"\s+by (automated count|calculation|manual count|automated)$", re.IGNORECASE)
_PANEL = re.compile(r"\s+panel( with all children optional)?$", re.IGNORECASE)


def plain_name(display: str) -> str:
    """A LOINC long name as a patient reads it: "Hemoglobin [Mass/volume] in Blood by Automated count" ->
    "Hemoglobin in Blood", "Blood pressure panel with all children optional" -> "Blood pressure". The property
    in brackets, the counting method and the word panel say nothing to them."""
    text = display.replace("\u200b", "")
    text = _PANEL.sub("", _METHOD.sub("", _LOINC_PROPERTY.sub("", text)))
    return " ".join(text.split()) or display


def component_name(name: str, panel: str) -> str:
    """A component named after its panel, shortened beneath it: "Systolic Blood Pressure" -> "Systolic"."""
    if name.casefold().endswith(" " + panel.casefold()):
        return name[:-len(panel)].strip()
    return name


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.0f}"


def decimals(value: float) -> int:
    """How many decimals a value is shown with: three significant figures are as much as a reader uses."""
    return 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2


def format_value(value: float, unit: str | None = None, digits: int | None = None) -> str:
    """Values rounded for reading (Synthea stores 111.07691078690335 mm[Hg]); the unit as given."""
    digits = decimals(value) if digits is None else digits
    text = f"{round(value, digits):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}" if unit else text


def _quantity(q: Any) -> tuple[float | None, str | None]:
    if not isinstance(q, dict):
        return None, None
    v = q.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None, None
    unit = q.get("unit") or q.get("code")
    return float(v), unit if isinstance(unit, str) else None


def reference_range(element: dict) -> Range | None:
    """The normal range of an Observation or component: the first one that is not some other kind of range
    (treatment, therapeutic) and says something."""
    ranges = element.get("referenceRange")
    if not isinstance(ranges, list):
        return None
    for r in ranges:
        if not isinstance(r, dict):
            continue
        kinds = {c.get("code") for c in ((r.get("type") or {}).get("coding") or []) if isinstance(c, dict)}
        if kinds and "normal" not in kinds:
            continue
        low, low_unit = _quantity(r.get("low"))
        high, high_unit = _quantity(r.get("high"))
        text = r.get("text") if isinstance(r.get("text"), str) else None
        if low is None and high is None and not text:
            continue
        return Range(low, high, low_unit or high_unit, text)
    return None


def interpretation_flag(element: dict) -> str | None:
    """The source's own interpretation: a FLAG_LABELS key, "normal", or None when it gave none we know."""
    concepts = element.get("interpretation")
    if isinstance(concepts, dict):
        concepts = [concepts]
    if not isinstance(concepts, list):
        return None
    for concept in concepts:
        for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("code") in _INTERPRETATION:
                return _INTERPRETATION[coding["code"]]
    return None


def flag_for(value: float, unit: str | None, rng: Range | None, interpretation: str | None = None) -> str | None:
    if interpretation is not None:
        return None if interpretation == "normal" else interpretation
    if rng is None or not rng.numeric:
        return None
    if rng.unit and unit and rng.unit != unit:
        return None
    if rng.high is not None and value > rng.high:
        return "high"
    if rng.low is not None and value < rng.low:
        return "low"
    return None


def _element_for(resource: dict, code: str, system: str | None) -> dict:
    """The part of the Observation that holds ``code``'s value: the resource itself or one of its components."""
    if _has_code(resource.get("code"), code, system):
        return resource
    for comp in resource.get("component") or []:
        if isinstance(comp, dict) and _has_code(comp.get("code"), code, system):
            return comp
    return resource


def _has_code(concept: Any, code: str, system: str | None) -> bool:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("code") == code and (system is None or c.get("system") == system)
        for c in codings)


def _resources(conn, rids: list[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for start in range(0, len(rids), 500):
        chunk = rids[start:start + 500]
        for rid, raw in conn.execute(f"SELECT rid, json FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})",
                                     chunk):
            out[rid] = json.loads(raw)
    return out


_FHIR_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")


def placeable(date: str) -> bool:
    """Whether a stored date can be put on a time axis. Stored dates are normalised, but a record imported with
    structural checks only may carry "2020-13-45"; a chart leaves such a reading out rather than fail."""
    if not _FHIR_DATE.fullmatch(date):
        return False
    try:
        if len(date) > 10:
            datetime.fromisoformat(date.replace("Z", "+00:00"))
        else:
            parts = [int(x) for x in date.split("-")] + [1, 1]
            datetime(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


def line(conn, code: str, system: str | None = None, name: str | None = None, *,
         person: int | None = None, panel: str | None = None) -> Line:
    """``query.series`` with each point's reference range and flag. Without a ``name``, the readings' own
    display names it; under a ``panel`` it is shortened ("Systolic" beneath "Blood pressure")."""
    s = query.series(conn, code, system, person=person)
    resources = _resources(conn, sorted({p.rid for p in s.points}))
    readings = []
    for p in s.points:
        if not placeable(p.date):
            continue
        element = _element_for(resources.get(p.rid, {}), code, system)
        rng = reference_range(element)
        readings.append(Reading(p.date, p.value, p.unit, p.rid, rng,
                                flag_for(p.value, p.unit, rng, interpretation_flag(element))))
    name = name or plain_name(s.display or code)
    return _line(code, system, component_name(name, panel) if panel else name, s.unit, readings)


def lines(conn, measurement: Measurement, *, person: int | None = None) -> list[Line]:
    if measurement.components:
        # a component without a display of its own (only its code) takes the one its readings carry elsewhere
        return [line(conn, code, system, None if name == code else name, person=person, panel=measurement.name)
                for code, system, name in measurement.components]
    return [line(conn, measurement.code, measurement.system, measurement.name, person=person)]


def band(readings: list[Reading]) -> Range | None:
    """The range to draw behind a chart: the one most readings carry (labs change theirs rarely; each point is
    still flagged against its own)."""
    counts = Counter((r.range.low, r.range.high, r.range.unit) for r in readings
                     if r.range is not None and r.range.numeric)
    if not counts:
        return None
    (low, high, unit), _ = counts.most_common(1)[0]
    return Range(low, high, unit, None)


def _display(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for c in concept.get("coding") or []:
        if isinstance(c, dict) and isinstance(c.get("display"), str):
            return c["display"]
    return None


def _numeric_components(resource: dict) -> list[tuple[str, str | None, str, float, str | None, dict]]:
    out = []
    for comp in resource.get("component") or []:
        if not isinstance(comp, dict):
            continue
        value, unit = _quantity(comp.get("valueQuantity"))
        codings = (comp.get("code") or {}).get("coding") if isinstance(comp.get("code"), dict) else None
        coding = next((c for c in codings or [] if isinstance(c, dict) and isinstance(c.get("code"), str)), None)
        if value is None or coding is None:
            continue
        system = coding.get("system") if isinstance(coding.get("system"), str) else None
        out.append((coding["code"], system, _display(comp.get("code")) or coding["code"], value, unit, comp))
    out.sort(key=lambda c: _COMPONENT_ORDER.get(c[0], 2))
    return out


def measurements(conn, *, person: int | None = None) -> list[Measurement]:
    """Every code with numeric readings for ``person`` (as in ``query``), with its latest value and flag and how
    many readings there are. Vital signs first, then lab results, then the rest; alphabetical within each, so a
    list is easy to scan."""
    mine, args = persons.where(conn, person, use_index=False)
    extra = f" AND {mine}"
    # SQLite takes the bare columns of a max() aggregate from the row holding the maximum: the latest reading.
    plain = conn.execute(
        "SELECT code, code_system, max(date), value_num, unit, display, category, rid, count(*) FROM rec_resources"
        " WHERE rtype = 'Observation' AND code IS NOT NULL AND date IS NOT NULL AND value_num IS NOT NULL"
        f"{extra} GROUP BY code, code_system", args).fetchall()
    panels = conn.execute(
        "SELECT code, code_system, max(date), display, category, rid, count(*) FROM rec_resources"
        " WHERE rtype = 'Observation' AND code IS NOT NULL AND date IS NOT NULL AND value_num IS NULL"
        f" AND json LIKE '%\"component\"%'{extra} GROUP BY code, code_system", args).fetchall()
    latest = _resources(conn, [r[7] for r in plain] + [r[5] for r in panels])
    # Panels measuring the same things are one measurement: a blood pressure is 85354-9 from one source and
    # 55284-4 from Synthea, and its chart (series by component) holds the readings of both. Newest panel first,
    # so the merged one carries the latest reading.
    merged: dict[tuple, Measurement] = {}
    for code, system, date, display, category, rid, n in sorted(panels, key=lambda r: r[2], reverse=True):
        comps = _numeric_components(latest.get(rid, {}))
        if not comps:
            continue
        key = tuple(sorted((c[0], c[1]) for c in comps))
        if key in merged:
            merged[key] = replace(merged[key], count=merged[key].count + n)
            continue
        flags = [flag_for(c[3], c[4], reference_range(c[5]), interpretation_flag(c[5])) for c in comps]
        merged[key] = Measurement(code, system, plain_name(display or code), category, n, date,
                                  tuple((c[3], c[4]) for c in comps), next((f for f in flags if f), None),
                                  tuple((c[0], c[1], plain_name(c[2])) for c in comps), full_name=display or code)
    # A code measured alone and inside a panel (a systolic pressure on its own) charts with the panel too, so it
    # is listed once, under the panel, whose count takes its readings in.
    in_panels = {part: key for key in merged for part in key}
    alone: dict[tuple, int] = {}
    out = []
    for code, system, date, value, unit, display, category, rid, n in plain:
        if (code, system) in in_panels:
            key = in_panels[(code, system)]
            alone[key] = max(alone.get(key, 0), n)
            continue
        element = _element_for(latest.get(rid, {}), code, system)
        flag = flag_for(value, unit, reference_range(element), interpretation_flag(element))
        out.append(Measurement(code, system, plain_name(display or code), category, n, date, ((value, unit),), flag,
                               full_name=display or code))
    out.extend(replace(m, count=m.count + alone.get(key, 0)) for key, m in merged.items())
    order = {"Vital signs": 0, "Lab results": 1}
    return sorted(out, key=lambda m: (order.get(m.group, 2), m.name.casefold(), m.code))

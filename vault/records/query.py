"""Reads for the CLI and the GUI: lists by type/category/code/date, full-text search, a paged timeline and
observation series for charts. All of them use the index columns; only ``get``/``series`` parse stored JSON.

Every read that returns many records takes ``person``: None is the vault's own person, an id another person kept
in the vault, ``persons.EVERYONE`` all of them (see ``vault.records.persons``). Reads by a record's own id
(``get``, ``get_by_rid``, ``provenance``) are not filtered: the caller already holds that record."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from vault import jsonsafe
from vault.records.persons import where as _person_where

_COLUMNS = "rid, rtype, id, date, category, code_system, code, display, status, trust"


@dataclass(frozen=True, slots=True)
class RecordRow:
    rid: int
    rtype: str
    id: str
    date: str | None
    category: str | None
    code_system: str | None
    code: str | None
    display: str | None
    status: str | None
    trust: str

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TimelinePage:
    rows: list[RecordRow]
    next_cursor: tuple[str, int] | None     # pass back as ``before`` for the next (older) page


@dataclass(frozen=True, slots=True)
class Point:
    date: str
    value: float
    unit: str | None
    rid: int


@dataclass(frozen=True, slots=True)
class Series:
    code: str
    display: str | None
    unit: str | None                        # the most common unit; points keep their own
    points: list[Point]


def _rows(cur) -> list[RecordRow]:
    return [RecordRow(*r) for r in cur.fetchall()]


def _date_range(where: list[str], args: list[Any], date_from: str | None, date_to: str | None) -> None:
    if date_from:
        where.append("date >= ?")
        args.append(date_from)
    if date_to:
        # an upper bound given as a day or year includes that whole day or year
        where.append("date < ?")
        args.append(date_to + "\uffff")


def list_records(conn, *, rtype: str | None = None, category: str | None = None, code: str | None = None,
                 date_from: str | None = None, date_to: str | None = None, limit: int = 100,
                 offset: int = 0, person: int | None = None) -> list[RecordRow]:
    """Newest first. Dates compare as stored (ISO 8601, instants in UTC), so '2020' or '2020-05-01' work."""
    mine, args = _person_where(conn, person, use_index=rtype is None and code is None)
    where = [mine]
    for column, value in (("rtype", rtype), ("category", category), ("code", code)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    _date_range(where, args, date_from, date_to)
    sql = f"SELECT {_COLUMNS} FROM rec_resources WHERE " + " AND ".join(where)
    sql += " ORDER BY date IS NULL, date DESC, rid DESC LIMIT ? OFFSET ?"
    return _rows(conn.execute(sql, (*args, max(0, int(limit)), max(0, int(offset)))))


def get(conn, rtype: str, rid: str) -> dict | None:
    row = conn.execute("SELECT json FROM rec_resources WHERE rtype = ? AND id = ?", (rtype, rid)).fetchone()
    if row is None:
        row = conn.execute("SELECT r.json FROM rec_aliases a JOIN rec_resources r ON r.rid = a.rid"
                           " WHERE a.rtype = ? AND a.id = ?", (rtype, rid)).fetchone()
    return jsonsafe.loads_stored(row[0]) if row else None


def get_by_rid(conn, rid: int) -> dict | None:
    """The resource behind a row id: list views hold only ids and load the decrypted JSON when shown."""
    row = conn.execute("SELECT json FROM rec_resources WHERE rid = ?", (int(rid),)).fetchone()
    return jsonsafe.loads_stored(row[0]) if row else None


def rows_by_rid(conn, rids: list[int], *, person: int | None = None) -> list[RecordRow]:
    """The rows of these ids that belong to ``person``, in the order given."""
    if not rids:
        return []
    mine, args = _person_where(conn, person, use_index=False)
    got = {r.rid: r for r in _rows(conn.execute(
        f"SELECT {_COLUMNS} FROM rec_resources WHERE rid IN ({','.join('?' * len(rids))}) AND {mine}",
        [*(int(r) for r in rids), *args]))}
    return [got[r] for r in rids if r in got]


def provenance(conn, rtype: str, rid: str) -> list[dict]:
    """Every source a record was seen in: when, what kind, payload hash, trust. No file names: only their hash."""
    rows = conn.execute(
        "SELECT s.id, s.kind, s.name_sha256, s.payload_sha256, s.imported_at, s.trust, s.verification"
        " FROM rec_resources r JOIN rec_resource_sources rs ON rs.rid = r.rid JOIN rec_sources s ON s.id = rs.source_id"
        " WHERE r.rtype = ? AND r.id = ? ORDER BY s.id", (rtype, rid)).fetchall()
    return [{"source": r[0], "kind": r[1], "name_sha256": r[2], "payload_sha256": r[3], "imported_at": r[4],
             "trust": r[5], "verification": jsonsafe.loads_stored(r[6]) if r[6] else None} for r in rows]


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """User text -> an FTS5 query of quoted prefix terms, so no input can be FTS5 syntax (or an error)."""
    words = _WORD.findall(text)[:16]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


RANKED_MATCHES_MAX = 5000


def search(conn, text: str, *, rtype: str | None = None, limit: int = 50,
           person: int | None = None) -> list[RecordRow]:
    """Best matches first (BM25). When a query matches more than ``RANKED_MATCHES_MAX`` records (a word on
    half the vault, like 'observation'), ranking them all would cost more than it tells, so the newest records
    come first instead, and the answer stays fast however large the vault."""
    q = fts_query(text)
    if q is None:
        return []
    many = conn.execute("SELECT count(*) FROM (SELECT rowid FROM rec_fts WHERE rec_fts MATCH ? LIMIT ?)",
                        (q, RANKED_MATCHES_MAX + 1)).fetchone()[0] > RANKED_MATCHES_MAX
    cols = ", ".join("r." + c.strip() for c in _COLUMNS.split(","))
    mine, mine_args = _person_where(conn, person, "r.person", use_index=False)
    args: list[Any] = [q, *mine_args]
    type_filter = f" AND {mine}"
    if rtype:
        type_filter += " AND r.rtype = ?"
        args.append(rtype)
    args.append(max(1, int(limit)))
    if many:
        sql = (f"SELECT {cols} FROM rec_resources r INDEXED BY rec_resources_date WHERE r.date IS NOT NULL"
               f" AND r.rid IN (SELECT rowid FROM rec_fts WHERE rec_fts MATCH ?){type_filter}"
               " ORDER BY r.date DESC, r.rid DESC LIMIT ?")
    else:
        sql = (f"SELECT {cols} FROM rec_fts f JOIN rec_resources r ON r.rid = f.rowid WHERE rec_fts MATCH ?"
               f"{type_filter} ORDER BY f.rank LIMIT ?")
    return _rows(conn.execute(sql, args))


TIMELINE_EXCLUDED = ("Patient", "Practitioner", "Organization", "Location", "Medication", "PractitionerRole",
                     "Device", "Questionnaire", "Library")


def timeline(conn, *, before: tuple[str, int] | None = None, limit: int = 50,
             types: list[str] | None = None, person: int | None = None) -> TimelinePage:
    """Newest first, keyset-paged: constant cost per page however deep the user scrolls."""
    mine, args = _person_where(conn, person)
    where = ["date IS NOT NULL", mine]
    if types:
        where.append(f"rtype IN ({','.join('?' * len(types))})")
        args.extend(types)
    else:
        where.append(f"rtype NOT IN ({','.join('?' * len(TIMELINE_EXCLUDED))})")
        args.extend(TIMELINE_EXCLUDED)
    if before is not None:
        # one range on the date index; an OR of two ranges would make SQLite collect and sort everything older
        where.append("date <= ? AND NOT (date = ? AND rid >= ?)")
        args.extend([before[0], before[0], int(before[1])])
    limit = max(1, int(limit))
    rows = _rows(conn.execute(f"SELECT {_COLUMNS} FROM rec_resources WHERE {' AND '.join(where)}"
                              " ORDER BY date DESC, rid DESC LIMIT ?", (*args, limit)))
    cursor = (rows[-1].date, rows[-1].rid) if len(rows) == limit else None
    return TimelinePage(rows, cursor)


def _most_common(counts: dict) -> str | None:
    named = {u: n for u, n in counts.items() if u}
    return min(named, key=lambda u: (-named[u], u)) if named else None


def series(conn, code: str, system: str | None = None, *, person: int | None = None) -> Series:
    """Values over time for one code, oldest first. Also finds the code inside Observation components
    (blood pressure's systolic and diastolic live there, under a panel code)."""
    mine, mine_args = _person_where(conn, person, use_index=False)
    args: list[Any] = [code, *mine_args]
    sql = ("SELECT date, value_num, unit, rid, display FROM rec_resources WHERE rtype = 'Observation' AND code = ?"
           f" AND value_num IS NOT NULL AND date IS NOT NULL AND {mine}")
    if system:
        sql += " AND code_system = ?"
        args.append(system)
    points = []
    display = None
    for date, value, unit, rid, disp in conn.execute(sql, args):
        points.append(Point(date, value, unit, rid))
        display = display or disp
    needle = f'%"code":"{code}"%'
    for rid, date, raw in conn.execute("SELECT rid, date, json FROM rec_resources WHERE rtype = 'Observation'"
                                       " AND date IS NOT NULL AND code IS NOT ? AND json LIKE ? AND json LIKE"
                                       f" '%\"component\"%' AND {mine}", (code, needle, *mine_args)):
        for comp in jsonsafe.loads_stored(raw).get("component", []):
            codings = (comp.get("code") or {}).get("coding", [])
            if any(c.get("code") == code and (system is None or c.get("system") == system) for c in codings):
                vq = comp.get("valueQuantity") or {}
                if isinstance(vq.get("value"), (int, float)):
                    points.append(Point(date, float(vq["value"]), vq.get("unit") or vq.get("code"), rid))
                    display = display or next((c.get("display") for c in codings if c.get("display")), None)
    points.sort(key=lambda p: (p.date, p.rid))
    units: dict[str, int] = {}
    for p in points:
        if p.unit:
            units[p.unit] = units.get(p.unit, 0) + 1
    unit = _most_common(units)
    return Series(code, display, unit, points)


def category_counts(conn, rtype: str | None = None, *, person: int | None = None) -> dict[str, int]:
    mine, args = _person_where(conn, person, use_index=False)
    if rtype:
        cur = conn.execute("SELECT category, count(*) FROM rec_resources WHERE rtype = ? AND category IS NOT NULL"
                           f" AND {mine} GROUP BY category ORDER BY category", (rtype, *args))
    else:
        cur = conn.execute(f"SELECT category, count(*) FROM rec_resources WHERE category IS NOT NULL AND {mine}"
                           " GROUP BY category ORDER BY category", args)
    return dict(cur.fetchall())


# --- pages of a category, for the lazy tables and the timeline of the GUI ------------------------------------------

@dataclass(frozen=True, slots=True)
class Kind:
    """Records of one type, narrowed to some index categories (``only``) or away from some (``without``)."""
    rtype: str
    only: tuple[str, ...] | None = None
    without: tuple[str, ...] = ()

    def matches(self, rtype: str, category: str | None) -> bool:
        if rtype != self.rtype or (self.only is not None and category not in self.only):
            return False
        return category is None or category not in self.without


Cursor = tuple["str | None", int]       # (date, rid) of the last row shown; date None once in the undated tail


def kind_counts(conn, *, person: int | None = None) -> dict[tuple[str, str | None], int]:
    """How many records there are of each (type, category): what category counts are added up from."""
    mine, args = _person_where(conn, person, use_index=False)
    return {(t, c): n for t, c, n in conn.execute(
        f"SELECT rtype, category, count(*) FROM rec_resources WHERE {mine} GROUP BY rtype, category", args)}


def _kind_where(kind: Kind) -> tuple[list[str], list[Any]]:
    where, args = ["rtype = ?"], [kind.rtype]
    if kind.only is not None:
        where.append(f"category IN ({','.join('?' * len(kind.only))})")
        args.extend(kind.only)
    if kind.without:
        where.append(f"(category IS NULL OR category NOT IN ({','.join('?' * len(kind.without))}))")
        args.extend(kind.without)
    return where, args


def records_page(conn, kinds: list[Kind] | None, *, after: Cursor | None = None, ascending: bool = False,
                 date_from: str | None = None, date_to: str | None = None, dated_only: bool = False,
                 exclude_types: tuple[str, ...] = TIMELINE_EXCLUDED, limit: int = 100,
                 person: int | None = None) -> TimelinePage:
    """One keyset page of the records of ``kinds`` (None: every type but ``exclude_types``), by date, newest
    first unless ``ascending``; undated records follow the dated ones (left out with ``dated_only`` or a date
    range). A page costs the same however deep it is: each type is read along its own (type, date) index range
    and the few rows merged here, instead of one query that would collect and sort every match."""
    limit = max(1, int(limit))
    desc = not ascending
    if kinds is None:
        mine, margs = _person_where(conn, person)
        where = [mine, f"rtype NOT IN ({','.join('?' * len(exclude_types))})"] if exclude_types else [mine]
        parts = [(where, [*margs, *exclude_types], "")]
    else:
        mine, margs = _person_where(conn, person, use_index=False)
        parts = []
        for kind in kinds:
            w, a = _kind_where(kind)
            parts.append(([*w, mine], [*a, *margs], " INDEXED BY rec_resources_type_date"))
    ranged = bool(date_from or date_to)
    dated: list[RecordRow] = []
    undated: list[RecordRow] = []
    for where, args, hint in parts:
        if after is None or after[0] is not None:
            w, a = list(where), list(args)
            w.append("date IS NOT NULL")
            if after is not None:
                # one index range, as in ``timeline``: an OR of two ranges would sort everything beyond the cursor
                w.append("date <= ? AND NOT (date = ? AND rid >= ?)" if desc else
                         "date >= ? AND NOT (date = ? AND rid <= ?)")
                a.extend([after[0], after[0], int(after[1])])
            _date_range(w, a, date_from, date_to)
            order = "DESC" if desc else "ASC"
            dated.extend(_rows(conn.execute(
                f"SELECT {_COLUMNS} FROM rec_resources{hint} WHERE {' AND '.join(w)}"
                f" ORDER BY date {order}, rid {order} LIMIT ?", (*a, limit))))
        if not (dated_only or ranged):
            w, a = list(where), list(args)
            w.append("date IS NULL")
            if after is not None and after[0] is None:
                w.append("rid < ?" if desc else "rid > ?")
                a.append(int(after[1]))
            undated.extend(_rows(conn.execute(
                f"SELECT {_COLUMNS} FROM rec_resources{hint or ' INDEXED BY rec_resources_date'}"
                f" WHERE {' AND '.join(w)}"
                f" ORDER BY rid {'DESC' if desc else 'ASC'} LIMIT ?", (*a, limit))))
    dated.sort(key=lambda r: (r.date, r.rid), reverse=desc)
    undated.sort(key=lambda r: r.rid, reverse=desc)
    rows = (dated + undated)[:limit]
    cursor = (rows[-1].date, rows[-1].rid) if len(rows) == limit else None
    return TimelinePage(rows, cursor)


def encounter_refs(conn, rids: list[int]) -> dict[int, str]:
    """The visit each record belongs to ("Encounter/<id>"), read from its JSON for just these rows, so grouping a
    page by visit costs a page's worth of work whatever the vault's size."""
    out: dict[int, str] = {}
    for start in range(0, len(rids), 500):
        chunk = [int(r) for r in rids[start:start + 500]]
        for rid, rtype, rid_str, ref in conn.execute(
                "SELECT rid, rtype, id, coalesce(json_extract(json, '$.encounter.reference'),"
                " json_extract(json, '$.context.encounter[0].reference'),"
                " json_extract(json, '$.context.reference'), json_extract(json, '$.item[0].encounter[0].reference'))"
                f" FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})", chunk):
            if rtype == "Encounter":
                out[rid] = f"Encounter/{rid_str}"
            elif isinstance(ref, str) and ref.startswith("Encounter/"):
                out[rid] = ref
    return out


def rows_by_reference(conn, refs: list[str]) -> dict[str, RecordRow]:
    """The index rows of records named "Type/id" (aliases included); references to records not in the vault are
    simply absent."""
    out: dict[str, RecordRow] = {}
    pairs = [tuple(r.split("/", 1)) for r in dict.fromkeys(refs) if isinstance(r, str) and r.count("/") == 1]
    cols = ", ".join("r." + c.strip() for c in _COLUMNS.split(","))
    for rtype, rid in pairs:
        row = conn.execute(f"SELECT {_COLUMNS} FROM rec_resources WHERE rtype = ? AND id = ?", (rtype, rid)).fetchone()
        if row is None:
            row = conn.execute(f"SELECT {cols} FROM rec_aliases a JOIN rec_resources r ON r.rid = a.rid"
                               " WHERE a.rtype = ? AND a.id = ?", (rtype, rid)).fetchone()
        if row is not None:
            out[f"{rtype}/{rid}"] = RecordRow(*row)
    return out


def date_bounds(conn, *, person: int | None = None) -> tuple[str | None, str | None]:
    """The earliest and latest record dates of ``person``: where a date-range picker starts and ends."""
    mine, args = _person_where(conn, person)
    # two queries: SQLite answers a lone min() or max() from the end of the index, but not both at once
    first, last = (conn.execute(f"SELECT {fn}(date) FROM rec_resources WHERE date IS NOT NULL AND {mine}",
                                args).fetchone()[0] for fn in ("min", "max"))
    return first, last

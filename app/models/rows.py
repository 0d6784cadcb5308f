"""What a list row shows of a record, computed on a worker from one page of rows (Qt-free).

A model keeps each row as a plain tuple of strings and numbers (the field order of ``Row``), not as a ``Row``:
Python's garbage collector stops tracking a plain tuple of such values, but never an instance of a tuple subclass,
so a timeline holding tens of thousands of rows adds nothing to each collection's work (a pause on the GUI
thread). ``Row`` names the fields for whoever reads one row."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from vault import jsonsafe
from vault.records import describe, query
from vault.records.summary import list_label

Plain = tuple          # a Row's fields as a plain tuple
RID, RTYPE, ID, DATE, KIND, TITLE, RESULT, STATUS, TRUST = range(9)


class Row(NamedTuple):
    rid: int
    rtype: str
    id: str
    date: str | None
    kind: str               # "Lab result"
    title: str              # "Total cholesterol"
    result: str             # "182 mg/dL (high)" for measurements, else ""
    status: str             # "Active"
    trust: str              # "Verified"

    @property
    def ref(self) -> str:
        return f"{self.rtype}/{self.id}"


def labelled(conn: Any, rows: list[query.RecordRow]) -> list[Plain]:
    """The page's rows in words, as plain tuples. Titles come from the record itself (a claim or a care plan has no
    coded display in the index), so this reads the JSON of just these rows, one record parsed at a time."""
    raw: dict[int, str] = {}
    rids = [r.rid for r in rows]
    for start in range(0, len(rids), 500):
        chunk = rids[start:start + 500]
        raw.update(conn.execute(f"SELECT rid, json FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})",
                                chunk))
    out = []
    for n, r in enumerate(rows):
        if n % 8 == 7:
            # let the GUI thread, which needs the interpreter for every cell it paints, in between rows
            time.sleep(0)
        text = raw.pop(r.rid, None)
        if text is None:
            kind = describe.kind_label(r.rtype, r.category)
            title, result = describe.plain(r.display) or kind, ""
        else:
            doc = jsonsafe.loads_stored(text)
            # the index's category, even when it has none: None would make headline work it out from the record
            # again, a quarter of a page's time, only to find the same
            title, kind = describe.headline(doc, r.category or "")
            title = list_label(r.rtype, title)
            result = describe.result_text(doc)
            if r.rtype == "Encounter":
                kind = describe.visit_kind(doc) or kind
        out.append((r.rid, r.rtype, r.id, r.date, kind, title, result, describe.status_words(r.rtype, r.status),
                    describe.TRUST_SHORT.get(r.trust, "Not verified")))
    return out

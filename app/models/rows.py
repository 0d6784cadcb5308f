"""What a list row shows of a record, computed on a worker from one page of rows (Qt-free)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vault.records import describe, query


@dataclass(frozen=True, slots=True)
class Row:
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


def labelled(conn: Any, rows: list[query.RecordRow]) -> list[Row]:
    """The page's rows in words. Titles come from the record itself (a claim or a care plan has no coded display
    in the index), so this reads the JSON of just these rows."""
    docs: dict[int, dict] = {}
    rids = [r.rid for r in rows]
    for start in range(0, len(rids), 500):
        chunk = rids[start:start + 500]
        for rid, raw in conn.execute(f"SELECT rid, json FROM rec_resources WHERE rid IN ({','.join('?' * len(chunk))})",
                                     chunk):
            docs[rid] = json.loads(raw)
    out = []
    for r in rows:
        kind = describe.kind_label(r.rtype, r.category)
        title, result = describe.plain(r.display) or kind, ""
        doc = docs.get(r.rid)
        if doc is not None:
            said = describe.describe(doc)
            title, result = said.title, describe.result_text(doc)
            if r.rtype == "Encounter":
                kind = said.value("Kind of visit") or kind
        out.append(Row(r.rid, r.rtype, r.id, r.date, kind, title, result, describe.plain_status(r.status),
                       describe.TRUST_SHORT.get(r.trust, "Not verified")))
    return out

"""What a share would send, before anything leaves: every record in words, counted per category, with the
sensitive ones left out and flagged, each of which the patient may put back.

The preview holds the prepared bundle itself (``sync.shares.Prepared``), and creating the share sends that very
bundle: what the patient saw is what leaves, even if an import changes the vault meanwhile. For the summary (IPS)
the sensitive records are judged over every record the summary could pick from, not only those it picked, since
leaving out the latest of a test brings the one before it forward. No Qt here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from vault.records import sensitive

YOUR_DETAILS = "Your details"
ABOUT_SUMMARY = "About this summary"
PEOPLE_AND_PLACES = "People and places"
SUMMARY_WHAT = "Your health summary"
# The records the summary picks from (``vault.records.ips``).
IPS_POOL = ("Condition", "AllergyIntolerance", "MedicationRequest", "MedicationStatement", "Immunization",
            "Observation", "Procedure")
# Far beyond any one consulting-room share; a date range over a whole large vault is refused, not sent.
MAX_RECORDS = 20_000


@dataclass(frozen=True)
class PreviewRecord:
    key: str                        # "Type/id"
    title: str
    kind: str
    date: str                       # the record's date in words, or ""
    group: str                      # the category a patient knows it by
    flag: sensitive.Flag | None = None

    @property
    def sensitive(self) -> bool:
        return self.flag is not None


@dataclass(frozen=True)
class SharePreview:
    selection: Any                  # sync.shares.Selection, without exclusions
    person: int | None
    what: str                       # what the share holds, in words, for the list of shares
    records: list[PreviewRecord]    # exactly what the share would send (sensitive ones put back included)
    left_out: list[PreviewRecord]   # sensitive records the share would otherwise hold, left out
    prepared: Any                   # sync.shares.Prepared: the bundle creating the share sends as it is
    full: Any                       # the same with nothing left out: where the left-out records are described
    sensitive_keys: frozenset[str]  # every sensitive record the selection could reach
    flags: dict[str, sensitive.Flag] = field(default_factory=dict)
    put_back: frozenset[str] = frozenset()

    def counts(self) -> list[tuple[str, int]]:
        """(category, how many) of what leaves, in the order the records screen lists categories."""
        counts = Counter(r.group for r in self.records)
        return sorted(counts.items(), key=lambda gc: group_order(gc[0]))

    def groups(self) -> list[tuple[str, list[PreviewRecord]]]:
        """What leaves, by category, in that same order."""
        out: dict[str, list[PreviewRecord]] = {}
        for r in self.records:
            out.setdefault(r.group, []).append(r)
        return sorted(out.items(), key=lambda g: group_order(g[0]))

    def flagged(self) -> list[PreviewRecord]:
        """The sensitive records, left out or put back, in the order the share would hold them."""
        return [r for r in self.records if r.sensitive] + self.left_out

    @property
    def shared_keys(self) -> list[str]:
        return [r.key for r in self.records]


def group_order(group: str) -> int:
    from vault.records import describe
    order = [c.label for c in describe.CATEGORIES] + [describe.INSURANCE.label, describe.OTHER_LABEL,
                                                        PEOPLE_AND_PLACES, YOUR_DETAILS, ABOUT_SUMMARY]
    return order.index(group) if group in order else len(order)


def _group(rtype: str, resource: dict) -> str:
    from vault.records import describe
    from vault.records.extract import index_fields
    if rtype == "Patient":
        return YOUR_DETAILS
    if rtype in ("Composition", "Device"):
        return ABOUT_SUMMARY
    key = describe.category_key(rtype, index_fields(resource, "").category)
    if key is None:
        return PEOPLE_AND_PLACES
    labels = {c.key: c.label for c in (*describe.CATEGORIES, describe.INSURANCE)}
    return labels.get(key, describe.OTHER_LABEL)


def describe_record(key: str, resource: dict, flag: sensitive.Flag | None = None) -> PreviewRecord:
    from vault.records import describe
    from vault.records.extract import index_fields
    rtype = key.split("/", 1)[0]
    if rtype == "Composition":
        title, kind = "Table of contents of the summary", "Summary"
    elif rtype == "Device" and resource.get("id") == "medvault-ips-generator":
        title, kind = "Made by medvault", "Summary"
    else:
        title, kind = describe.headline(resource)
    date = describe.local_date(index_fields(resource, "").date)
    return PreviewRecord(key, title, kind, date, _group(rtype, resource), flag)


def _entries(bundle: dict) -> list[tuple[str, dict]]:
    out = []
    for e in bundle.get("entry", []):
        r = e.get("resource") or {}
        out.append((f"{r.get('resourceType')}/{r.get('id')}", r))
    return out


def _resolver(conn: Any):
    from vault.records.query import get

    def resolve(key: str) -> dict | None:
        rtype, _, rid = key.partition("/")
        return get(conn, rtype, rid) if rtype and rid else None
    return resolve


def _pool_flags(conn: Any, person: int | None) -> dict[str, sensitive.Flag]:
    """Flags over every record the summary could pick from, so nothing sensitive slips in behind a left-out one."""
    from vault.records.persons import where
    mine, args = where(conn, person, use_index=False)
    records = {f"{t}/{i}": json.loads(raw) for t, i, raw in conn.execute(
        f"SELECT rtype, id, json FROM rec_resources WHERE rtype IN ({','.join('?' * len(IPS_POOL))}) AND {mine}",
        (*IPS_POOL, *args))}
    return sensitive.flag_records(records, resolve=_resolver(conn))


def build(vault: Any, selection: Any, *, person: int | None = None, what: str | None = None,
          put_back: Iterable[str] = ()) -> SharePreview:
    """The preview of sharing ``selection`` (a ``sync.shares.Selection``) of ``person``'s records, sensitive
    records left out except those in ``put_back``. Runs on a worker: it reads and may build the summary twice."""
    from sync import shares
    put_back = frozenset(put_back)
    full = shares.prepare(vault, selection, person)
    if len(full.resource_ids) > MAX_RECORDS:
        raise shares.ShareError(f"That is more than {MAX_RECORDS:,} records, too many for one share; choose fewer "
                                "categories or a shorter time.")
    entries = _entries(full.bundle)
    with vault.read() as conn:
        if selection.ips:
            flags = _pool_flags(conn, person)
        else:
            urls = {e.get("fullUrl"): k for e, (k, _r) in zip(full.bundle.get("entry", []), entries)}
            flags = sensitive.flag_records(dict(entries), aliases=urls, resolve=_resolver(conn))
    preview = SharePreview(selection, person, what or (SUMMARY_WHAT if selection.ips else "Chosen records"),
                           [], [], full, full, frozenset(flags), flags, frozenset())
    return _finish(vault, preview, put_back)


def with_put_back(vault: Any, preview: SharePreview, put_back: Iterable[str]) -> SharePreview:
    """The same preview with another choice of sensitive records put back (the summary is built again)."""
    return _finish(vault, preview, frozenset(put_back))


def _finish(vault: Any, preview: SharePreview, put_back: frozenset[str]) -> SharePreview:
    from sync import shares
    full = preview.full
    entries = _entries(full.bundle)
    leave_out = frozenset(k for k in preview.sensitive_keys if k not in put_back)
    if preview.selection.ips and leave_out:
        prepared = shares.prepare(vault, replace(preview.selection, exclude=leave_out), preview.person)
    else:
        prepared = _without(full, leave_out)
    flags = preview.flags
    records = [describe_record(k, r, flags.get(k)) for k, r in _entries(prepared.bundle)]
    left_out = [describe_record(k, r, flags.get(k)) for k, r in entries if k in leave_out]
    return replace(preview, records=records, left_out=left_out, prepared=prepared, put_back=put_back)


def _without(prepared: Any, leave_out: frozenset[str]) -> Any:
    """The chosen records minus the left-out ones (records chosen one by one do not bring others forward)."""
    from sync.shares import Prepared
    keep = [(e, k) for e, (k, _r) in zip(prepared.bundle.get("entry", []), _entries(prepared.bundle))
            if k not in leave_out]
    bundle = dict(prepared.bundle, entry=[e for e, _k in keep])
    ids = [k for _e, k in keep]
    return Prepared(bundle, ids, ids)

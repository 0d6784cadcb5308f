"""Exports that re-import as the same records: a FHIR ``collection`` Bundle and NDJSON (one resource per line).

Records are written as stored (current versions, original ids and literal ``Type/id`` references), so importing an
export into an empty vault gives the same (type, id, content) set. An export is plaintext the user asked for: it is
written with ``fsutil.write_atomically`` (a 0600 file beside the target, fsynced and renamed, so a crash never
leaves half a file behind), and a target that is a link, folder or pipe is refused rather than replaced.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from typing import Iterable, Iterator

from vault import jsonsafe
from vault.fsutil import NotARegularFile, write_atomically
from vault.records import documents, store
from vault.records.bundle import full_url
from vault.records.errors import ExportFailed
from vault.records.persons import EVERYONE, where as person_where

FORMATS = ("bundle", "ndjson", "ips")


def _select(conn, types: Iterable[str] | None, ids: Iterable[str] | None,
            person: int | None = None) -> Iterator[tuple[str, str, str]]:
    """(type, id, json) of ``person``'s records (None: the vault's own), by type and/or id, in import order."""
    mine, args = person_where(conn, person, use_index=False)
    where = [mine]
    types, ids = list(types or []), list(ids or [])
    if types:
        where.append(f"rtype IN ({','.join('?' * len(types))})")
        args += types
    if ids:
        # "Type/id" or bare id
        clauses = []
        for i in ids:
            if "/" in i:
                t, _, r = i.partition("/")
                clauses.append("(rtype = ? AND id = ?)")
                args += [t, r]
            else:
                clauses.append("id = ?")
                args.append(i)
        where.append("(" + " OR ".join(clauses) + ")")
    sql = "SELECT rtype, id, json FROM rec_resources WHERE " + " AND ".join(where) + " ORDER BY rid"
    yield from conn.execute(sql, args)


# Records about no one in particular: a person's records point at them, but they may have been stored (and so
# owned) with someone else's file first.
SHARED_TYPES = ("Organization", "Practitioner", "PractitionerRole", "Location", "Medication", "Device",
                "Substance", "HealthcareService", "Endpoint")
_SHARED_REF = re.compile(r'"reference":"(' + "|".join(SHARED_TYPES) + r')/([^"/]+)"')


def _with_shared_references(conn, rows, person: int | None):
    """``person``'s records followed by the shared records they refer to that belong to someone else, so one
    person's export is as complete as their own files were."""
    wanted: dict[tuple[str, str], None] = {}
    for rtype, rid, raw in rows:
        for ref in _SHARED_REF.findall(raw):
            wanted[ref] = None
        yield rtype, rid, raw
    mine, args = person_where(conn, person, use_index=False)
    for rtype, rid in wanted:
        row = conn.execute(f"SELECT rtype, id, json FROM rec_resources WHERE rtype = ? AND id = ? AND NOT ({mine})",
                           (rtype, rid, *args)).fetchone()
        if row is not None:
            yield row


def _with_documents(conn, rows):
    """DocumentReferences carry their stored bytes inline, so an export is a complete copy."""
    for rtype, rid, raw in rows:
        if rtype == "DocumentReference" and documents.ATTACHMENT_URL in raw:
            raw = jsonsafe.dumps_text(documents.inline_for_export(
                jsonsafe.loads_stored(raw), lambda sha: store.attachment_by_sha256(conn, sha)))
        yield rtype, rid, raw


def atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Write text chunks (UTF-8), streamed, privately and atomically."""
    try:
        write_atomically(path, (c.encode("utf-8") for c in chunks), only_over_regular=True)
    except NotARegularFile:
        raise ExportFailed(f"{path} is a link, folder or device rather than a regular file; medvault does not "
                           "replace it, so no file was written.") from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR):
            raise ExportFailed("The export could not be written there (check the folder exists and is writable); "
                               "no file was created.") from None
        raise ExportFailed("The export could not be written (is the disk full?); no file was created.") from None


def bundle_chunks(rows: Iterable[tuple[str, str, str]], counter: dict) -> Iterator[str]:
    yield '{"resourceType":"Bundle","type":"collection","entry":['
    first = True
    for rtype, rid, raw in rows:
        yield ("" if first else ",") + '{"fullUrl":' + jsonsafe.dumps_text(full_url(rtype, rid)) + ',"resource":' + raw + "}"
        first = False
        counter[rtype] = counter.get(rtype, 0) + 1
    yield "]}\n"


def ndjson_chunks(rows: Iterable[tuple[str, str, str]], counter: dict) -> Iterator[str]:
    for rtype, _rid, raw in rows:
        counter[rtype] = counter.get(rtype, 0) + 1
        yield raw + "\n"


def export(vault, fmt: str, out: str | Path, *, types: Iterable[str] | None = None,
           ids: Iterable[str] | None = None, patient: str | None = None,
           person: int | None = None) -> dict[str, int]:
    """Write an export of ``person``'s records (None: the vault's own; ``persons.EVERYONE``: the whole vault);
    returns the count per resource type. Audited (counts only)."""
    if fmt not in FORMATS:
        raise ExportFailed(f"Unknown export format; use one of: {', '.join(FORMATS)}.")
    counter: dict[str, int] = {}
    with vault.read() as conn:
        if fmt == "ips":
            from vault.records.ips import build_ips
            doc = build_ips(conn, patient=patient, person=person, now=vault.now())
            for e in doc["entry"]:
                t = e["resource"]["resourceType"]
                counter[t] = counter.get(t, 0) + 1
            atomic_write(Path(out), [json.dumps(doc, ensure_ascii=False, indent=1), "\n"])
        else:
            rows = _select(conn, types, ids, person)
            if not types and not ids and person != EVERYONE:
                rows = _with_shared_references(conn, rows, person)
            rows = _with_documents(conn, rows)
            chunks = bundle_chunks(rows, counter) if fmt == "bundle" else ndjson_chunks(rows, counter)
            atomic_write(Path(out), chunks)
    vault.audit("export", format=fmt, resources=sum(counter.values()), types=dict(sorted(counter.items())))
    return counter

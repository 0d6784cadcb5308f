"""Exports that re-import as the same records: a FHIR ``collection`` Bundle and NDJSON (one resource per line).

Records are written as stored (current versions, original ids and literal ``Type/id`` references), so importing an
export into an empty vault gives the same (type, id, content) set. An export is plaintext the user asked for: it is
written with ``vault.private_files`` (a 0600 file beside the target, fsynced and renamed, so a crash never leaves
half a file behind), and a target that is a link, folder or pipe is refused rather than replaced.
"""

from __future__ import annotations

import errno
import json
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from vault.private_files import NotARegularFile, write_private
from vault.records.errors import ExportFailed

NAMESPACE = uuid.UUID("3c1c3f4e-9a57-4c5e-8a3c-6d1f0f6b9e21")   # fixed: the same record always gets the same urn
FORMATS = ("bundle", "ndjson", "ips")


def full_url(rtype: str, rid: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{rtype}/{rid}')}"


def _select(conn, types: Iterable[str] | None, ids: Iterable[str] | None) -> Iterator[tuple[str, str, str]]:
    where, args = [], []
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
    sql = "SELECT rtype, id, json FROM rec_resources"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY rid"
    yield from conn.execute(sql, args)


def _with_documents(conn, rows):
    """DocumentReferences carry their stored bytes inline, so an export is a complete copy."""
    from vault.records import documents, store
    for rtype, rid, raw in rows:
        if rtype == "DocumentReference" and documents.ATTACHMENT_URL in raw:
            raw = json.dumps(documents.inline_for_export(json.loads(raw),
                                                         lambda sha: store.attachment_by_sha256(conn, sha)),
                             ensure_ascii=False, separators=(",", ":"))
        yield rtype, rid, raw


def atomic_write(path: Path, chunks: Iterable[str]) -> int:
    """Write text chunks (UTF-8) privately and atomically; returns the bytes written."""
    try:
        return write_private(path, (c.encode("utf-8") for c in chunks))
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
        yield ("" if first else ",") + '{"fullUrl":' + json.dumps(full_url(rtype, rid)) + ',"resource":' + raw + "}"
        first = False
        counter[rtype] = counter.get(rtype, 0) + 1
    yield "]}\n"


def ndjson_chunks(rows: Iterable[tuple[str, str, str]], counter: dict) -> Iterator[str]:
    for rtype, _rid, raw in rows:
        counter[rtype] = counter.get(rtype, 0) + 1
        yield raw + "\n"


def export(vault, fmt: str, out: str | Path, *, types: Iterable[str] | None = None,
           ids: Iterable[str] | None = None, patient: str | None = None) -> dict[str, int]:
    """Write an export; returns the count per resource type. Audited (counts only)."""
    if fmt not in FORMATS:
        raise ExportFailed(f"Unknown export format; use one of: {', '.join(FORMATS)}.")
    counter: dict[str, int] = {}
    with vault.read() as conn:
        if fmt == "ips":
            from vault.records.ips import build_ips
            doc = build_ips(conn, patient=patient, now=vault.now())
            for e in doc["entry"]:
                t = e["resource"]["resourceType"]
                counter[t] = counter.get(t, 0) + 1
            atomic_write(Path(out), [json.dumps(doc, ensure_ascii=False, indent=1), "\n"])
        else:
            rows = _with_documents(conn, _select(conn, types, ids))
            chunks = bundle_chunks(rows, counter) if fmt == "bundle" else ndjson_chunks(rows, counter)
            atomic_write(Path(out), chunks)
    vault.audit("export", format=fmt, resources=sum(counter.values()), types=dict(sorted(counter.items())))
    return counter

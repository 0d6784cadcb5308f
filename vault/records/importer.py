"""The import service the CLI and the GUI share: one file (or pasted text) in, one atomic change to the vault.

Every file goes through: size limit -> kind from magic bytes -> SHA-256 of the original bytes (on another core while
this one parses; an identical file imported before adds nothing) -> parse with bounded nesting -> ids and references
-> validation -> one transaction that stores the source, the original payload (compressed on another thread
meanwhile), the resources and an audit entry. Any error before the commit leaves the vault as it was. Progress is reported and cancellation
honoured between resources.

Validation: the official FHIR R4 JSON Schema first (``fhir_schema``, compiled Rust, about fifty times faster),
and the R4B models (``fhir_models``) for whatever it does not accept; they decide, and word the refusal.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vault.records import bundle, documents, fhir_versions, jsonutil, persons, shc, sources, store, writer
from vault.records.errors import (DanglingReference, FileTooLarge, ImportCancelled, ImportRejected, MalformedJson,
                                  NotFhir, RecordsError, ResourceInvalid, UnknownResourceType)
from vault.records import fhir_schema
from vault.records.fhir_models import validate_resource

MiB = 1 << 20
RECEIVED_KIND = "received-share"
ProgressFn = Callable[[int, int], None]


class CancelToken:
    """Set from any thread (the GUI's cancel button); the import stops before its next resource."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class ImportOptions:
    skip_invalid: bool = False
    validation: str = "full"                  # "full": R4B models; "structural": type, id and shape only
    max_json_bytes: int = 64 * MiB            # parsed whole, so bounded tighter than streamed NDJSON
    max_ndjson_bytes: int = 1024 * MiB
    max_ndjson_line_bytes: int = 16 * MiB
    max_document_bytes: int = 64 * MiB
    trust: str | None = None                  # e.g. "clinician-signed" when the sharing receiver checked a signature
    received: dict | None = None              # records from a share someone handed over: the source is kept as
                                              # RECEIVED_KIND with what the receiver verified (no PHI)
    source_kind: str | None = None            # the source's kind instead ("clinician-note" for a write-back)
    adds_only: bool = False                   # a write-back: refuse (WouldReplace) rather than replace a record
    # processes for the R4B models' share of full validation: 0 decides by the amount of work (parallel.py),
    # 1 keeps it in this process, N uses N - 1 workers beside this process
    workers: int = 0
    other_person: bool = False                # a file about someone else: keep it as a separate person (True)
                                              # or refuse it whole with OtherPerson (False)


@dataclass
class Skipped:
    where: str                                # "entry 12" or "line 40": a position, never content
    reason: str


@dataclass
class ImportReport:
    kind: str
    source_id: int | None = None
    added: int = 0
    duplicates: int = 0
    updated: int = 0
    already_imported: bool = False
    trust: str = "unverified"
    by_type: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)   # per SMART Health Card: status, flags, issuer
    converted_from: str | None = None         # "STU3" or "DSTU2": the file was converted to R4 (fhir_versions)
    left_out: dict[str, int] = field(default_factory=dict)   # types an older-version file had without a map

    def sentence(self) -> str:
        if self.already_imported:
            return "This file was imported before; nothing new was added."
        parts = [f"Imported {self.added} new record(s)"
                 + (f" converted from FHIR {self.converted_from}" if self.converted_from else "")]
        if self.updated:
            parts.append(f"{self.updated} updated")
        if self.duplicates:
            parts.append(f"{self.duplicates} already in the vault")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped as invalid")
        if self.left_out:
            parts.append(f"{sum(self.left_out.values())} left out as types medvault does not convert from "
                         f"{self.converted_from} ({', '.join(f'{t} {n}' for t, n in sorted(self.left_out.items()))})")
        text = ", ".join(parts) + "."
        for card in self.cards:
            text += " " + card["sentence"]
        return text

    def as_json(self) -> dict:
        return {"kind": self.kind, "source_id": self.source_id, "added": self.added, "duplicates": self.duplicates,
                "updated": self.updated, "already_imported": self.already_imported, "trust": self.trust,
                "by_type": dict(sorted(self.by_type.items())),
                "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
                "warnings": list(self.warnings),
                "cards": [{k: v for k, v in c.items()} for c in self.cards],
                "converted_from": self.converted_from, "left_out": dict(sorted(self.left_out.items()))}


def _mb(n: int) -> str:
    return f"{n / MiB:.0f} MB" if n >= MiB else f"{n} bytes"


class ImportService:
    def __init__(self, vault, options: ImportOptions | None = None) -> None:
        self.vault = vault
        self.options = options or ImportOptions()

    # --- entry points ---------------------------------------------------------------------------------------
    def import_file(self, path: str | Path, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> ImportReport:
        path = Path(path)
        try:
            st = path.stat()
            if not path.is_file():
                raise ImportRejected("That is not a regular file; nothing was imported.")
            with path.open("rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            raise ImportRejected("The file could not be read (check that it exists and you may open it); "
                                 "nothing was imported.") from None
        kind, ctype = sources.detect(head, path.name)
        limit = {sources.Kind.FHIR_NDJSON: self.options.max_ndjson_bytes,
                 sources.Kind.DOCUMENT: self.options.max_document_bytes}.get(kind, self.options.max_json_bytes)
        if st.st_size > limit:
            raise FileTooLarge(f"The file is {_mb(st.st_size)}, more than the {_mb(limit)} medvault imports "
                               f"for this kind of file; nothing was imported.")
        name_sha = store.name_hash(path.name)
        if kind is sources.Kind.FHIR_NDJSON:
            payload_sha = _sha256_file(path, cancel)
            return self._import_ndjson(path, st.st_size, name_sha, payload_sha, progress, cancel)
        data = _read(path)
        _tick(cancel)
        return self._import_bytes(data, kind, ctype, name_sha, progress, cancel, path.name)

    def import_data(self, data: bytes, name: str = "", progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> ImportReport:
        """Bytes from somewhere other than a file: pasted shc:/ text, a decrypted SMART Health Link payload."""
        if len(data) > self.options.max_json_bytes:
            raise FileTooLarge(f"The data is {_mb(len(data))}, more than the {_mb(self.options.max_json_bytes)} "
                               "medvault imports at once; nothing was imported.")
        kind, ctype = sources.detect(data[:64 * 1024], name)
        if kind is sources.Kind.FHIR_NDJSON:
            raise NotFhir("Bulk NDJSON can only be imported from a file; nothing was imported.")
        return self._import_bytes(data, kind, ctype, store.name_hash(name), progress, cancel, name)

    def import_paths(self, paths: list[str | Path], progress: Callable[[int, int, int, int], None] | None = None,
                     cancel: CancelToken | None = None) -> list[tuple[Path, ImportReport | RecordsError]]:
        """Several files, each atomic on its own. A file whose references point into another file of the same
        batch (Synthea's patients -> its organisations) is retried after the others, so argument order does not
        matter."""
        ordered = [Path(p) for p in paths]
        position = {p: i for i, p in enumerate(ordered)}
        pending = list(dict.fromkeys(ordered))
        results: dict[Path, ImportReport | RecordsError] = {}
        while pending:
            retry: list[Path] = []
            for p in pending:
                if cancel is not None and cancel.cancelled:
                    results[p] = ImportCancelled()
                    continue
                per_file = (lambda d, t, i=position[p]: progress(i, len(ordered), d, t)) if progress else None
                try:
                    results[p] = self.import_file(p, per_file, cancel)
                except DanglingReference as err:
                    retry.append(p)
                    results[p] = err
                except RecordsError as err:
                    results[p] = err
            if len(retry) == len(pending):
                break
            pending = retry
        return [(p, results[p]) for p in ordered]

    # --- parsing ----------------------------------------------------------------------------------------------
    def _import_bytes(self, data: bytes, kind: sources.Kind, ctype: str | None, name_sha: str, progress, cancel,
                      name: str) -> ImportReport:
        # hashed, then compressed, on another core while this one parses: the hash says whether the file was
        # imported before, and the parse need not wait for it
        stored = store.CompressedPayload(data)
        try:
            with _no_cycle_collection():
                return self._import_parsed(data, stored, kind, ctype, name_sha, progress, cancel, name)
        finally:
            stored.discard()        # stored by now, or not to be: either way the thread has nothing left to do

    def _import_parsed(self, data: bytes, stored: store.CompressedPayload, kind: sources.Kind, ctype: str | None,
                       name_sha: str, progress, cancel, name: str) -> ImportReport:
        doc: object = None
        refusal: RecordsError | None = None
        if kind not in (sources.Kind.DOCUMENT, sources.Kind.SHC_TEXT):
            try:
                # resolve_references walks every resource and bounds nesting there, saving a second walk
                doc = jsonutil.loads(data, bound_depth=False)
            except RecordsError as err:
                refusal = err       # a file imported before is "already imported" rather than refused
        payload_sha = stored.sha256()
        existing = self._existing_source(payload_sha)
        if existing is not None:
            return self._already(kind.value, existing)
        conversion_notes: list[str] = []
        if kind is sources.Kind.DOCUMENT:
            prepared = documents.prepare(data, ctype or "", name, payload_sha, self.vault.now())
        elif kind is sources.Kind.SHC_TEXT:
            prepared = shc.prepare_text(data, self._issuers(), self.vault.now(), payload_sha)
        else:
            if refusal is not None:
                if isinstance(refusal, MalformedJson) and _is_ndjson_bytes(data):
                    stored.discard()        # the NDJSON path stores the payload as it streams
                    return self._import_ndjson(io.BytesIO(data), len(data), name_sha, payload_sha, progress, cancel)
                raise refusal
            if shc.is_card_json(doc):
                prepared = shc.prepare_card_file(doc, self._issuers(), self.vault.now(), payload_sha)
            else:
                # STU3 and DSTU2 become R4 here, before anything checks them; R4 passes through untouched
                doc, older = fhir_versions.to_r4(doc)
                entries, _btype = bundle.entries_of(doc)
                prepared = bundle.Prepared(kind.value, entries, self.options.trust or "unverified")
                if older is not None:
                    prepared.verification = older.provenance()
                    conversion_notes = older.warnings()
        if self.options.trust and prepared.trust == "unverified":
            prepared.trust = self.options.trust
        if self.options.received is not None:
            prepared.kind = RECEIVED_KIND
            prepared.verification = {**(prepared.verification or {}), "received": self.options.received}
        if self.options.source_kind:
            prepared.kind = self.options.source_kind
        report = self._store_prepared(prepared, stored, len(data), name_sha, payload_sha, progress, cancel)
        older_version = (prepared.verification or {}).get("fhir_version")
        if older_version and not report.already_imported:
            report.converted_from = older_version
            report.left_out = dict(prepared.verification.get("left_out") or {})
            report.warnings[:0] = conversion_notes
        return report

    def _existing_source(self, payload_sha: str) -> int | None:
        with self.vault.read() as conn:
            return store.find_source(conn, payload_sha)

    def _already(self, kind: str, source_id: int) -> ImportReport:
        with self.vault.transaction() as conn:
            return self._already_in(conn, kind, source_id)

    def _already_in(self, conn, kind: str, source_id: int) -> ImportReport:
        self.vault.audit("import", conn=conn, source=source_id, kind=kind, added=0, already_imported=True)
        return ImportReport(kind=kind, source_id=source_id, already_imported=True)

    def _issuers(self):
        return shc.TrustStore(self.vault)

    # --- checking -------------------------------------------------------------------------------------------
    def _validate_entries(self, entries, kind: str, report: ImportReport, bad_refs: dict[int, str],
                          cancel) -> list[tuple[str, ImportRejected | None]]:
        """(position, error or None) per entry, in order. What the schema does not accept goes to the models
        together at the end, so a big share of them can use the other core."""
        out: list[tuple[str, ImportRejected | None]] = []
        pending: list[int] = []
        for e in entries:
            _tick(cancel)
            where = f"entry {e.index}" if kind != "document" else "the document"
            try:
                if e.index in bad_refs:
                    raise DanglingReference(bad_refs[e.index])
                report.warnings.extend(self._check(e.resource, where, models=False))
                out.append((where, None))
                if self.options.validation == "full" and fhir_schema.accepts(e.resource) is not True:
                    pending.append(len(out) - 1)
            except ImportRejected as err:
                out.append((where, err))
        if pending:
            from vault.records.parallel import validate_all
            verdicts = validate_all([entries[i].resource for i in pending], self.options.workers)
            _tick(cancel)
            for i, err in zip(pending, verdicts):
                if err is not None:
                    where = out[i][0]
                    out[i] = (where, type(err)(f"{where.capitalize()}: {err.user_message}"))
        return out

    def _check(self, resource: object, where: str, models: bool = True) -> list[str]:
        """Raises ImportRejected naming the position; returns warnings for repairs made. ``models=False`` leaves
        full validation to the caller (``_validate_entries``)."""
        warnings: list[str] = []
        if not isinstance(resource, dict):
            raise ResourceInvalid(f"{where.capitalize()} is not a FHIR resource (a JSON object was expected).")
        text = resource.get("text")
        if isinstance(text, dict) and "div" not in text and text.get("status") in ("generated", "extensions"):
            # A generated narrative without its XHTML is invalid but carries nothing the data does not;
            # dropping it keeps real provider files importable. The original payload keeps it.
            del resource["text"]
            warnings.append(f"{where}: an empty generated narrative was left out")
        try:
            if self.options.validation == "full" and models:
                if fhir_schema.accepts(resource) is not True:
                    validate_resource(resource)
            else:
                rtype = resource.get("resourceType")
                if not fhir_schema.is_resource_type(rtype):
                    raise UnknownResourceType()
        except ImportRejected as err:
            raise type(err)(f"{where.capitalize()}: {err.user_message}") from None
        return warnings

    # --- writing --------------------------------------------------------------------------------------------
    def _write(self, source: writer.NewSource, report: ImportReport, fill: Callable[[writer.SourceWriter], None]
               ) -> ImportReport:
        """One transaction for one source: ``fill`` adds the records through the one writer there is; then the
        counts go into ``report`` and the import is audited. A source stored meanwhile (the same file imported on
        another thread) makes this one 'already imported'."""
        with self.vault.transaction() as conn:
            existing = store.find_source(conn, source.payload_sha256)
            if existing is not None:
                return self._already_in(conn, report.kind, existing)
            w = writer.SourceWriter(conn, source, keep_other=self.options.other_person,
                                    adds_only=self.options.adds_only)
            fill(w)
            counts = w.finish()
            report.added, report.duplicates, report.updated = counts.added, counts.duplicates, counts.updated
            report.by_type = counts.by_type
            self._audit(conn, w.source_id, report)
        report.source_id = w.source_id
        return report

    def _store_prepared(self, prepared: bundle.Prepared, payload: store.CompressedPayload, payload_size: int,
                        name_sha: str, payload_sha: str, progress: ProgressFn | None,
                        cancel: CancelToken | None) -> ImportReport:
        report = ImportReport(kind=prepared.kind, trust=prepared.trust, cards=prepared.cards)
        entries = prepared.entries
        total = 2 * len(entries) or 1
        bundle.assign_ids(entries, payload_sha)
        with self.vault.read() as conn:
            bad_refs = bundle.resolve_references(
                entries, lambda u: store.lookup_fullurl(conn, u),
                lambda t, v, s: store.lookup_identifier(conn, t, v, s), collect=self.options.skip_invalid)
            # someone else's file is refused before the cost of validating it
            persons.Assigner(conn, keep_other=self.options.other_person, dry_run=True).check(
                [e.resource for e in entries])
        verdicts = self._validate_entries(entries, prepared.kind, report, bad_refs, cancel)
        kept: list[bundle.Entry] = []
        for n, (e, (where, err)) in enumerate(zip(entries, verdicts), 1):
            if err is None:
                kept.append(e)
            elif not self.options.skip_invalid:
                raise err
            else:
                report.skipped.append(Skipped(where, err.user_message))
            if progress and (n % 50 == 0 or n == len(entries)):
                progress(n, total)
        if not kept and entries:
            raise ImportRejected(_nothing_valid(report.skipped))
        inline = {e.index: docs for e in kept
                  if e.resource["resourceType"] == "DocumentReference" and (docs := documents.extract_inline(e.resource))}

        def fill(w: writer.SourceWriter) -> None:
            w.expect([e.resource for e in kept])   # the file's Patients first: they own what comes before them
            for n, e in enumerate(kept, 1):
                _tick(cancel)
                w.add(e.resource, full_url=e.full_url, text=e.text,
                      documents=prepared.attachments.get(e.index, []) + inline.get(e.index, []))
                if progress and (n % 50 == 0 or n == len(kept)):
                    progress(len(entries) + n, total)
            w.add_payload(payload.chunks())
            w.add_cards(prepared.cards)

        source = writer.NewSource(kind=prepared.kind, name_sha256=name_sha, payload_sha256=payload_sha,
                                  payload_size=payload_size, trust=prepared.trust,
                                  verification=prepared.verification, imported_at=store.utc_now())
        return self._write(source, report, fill)

    def _import_ndjson(self, src, size: int, name_sha: str, payload_sha: str, progress, cancel) -> ImportReport:
        """Streams: memory stays bounded by the longest line (and what the writer holds), whatever the file size."""
        existing = self._existing_source(payload_sha)
        if existing is not None:
            return self._already(sources.Kind.FHIR_NDJSON.value, existing)
        trust = self.options.trust or "unverified"
        report = ImportReport(kind=sources.Kind.FHIR_NDJSON.value, trust=trust)
        limit = self.options.max_ndjson_line_bytes
        with _open(src) as f:
            _check_line_lengths(f, limit, cancel)

        def fill(w: writer.SourceWriter) -> None:
            with _open(src) as f:
                w.add_payload(store.compress_chunks(iter(lambda: f.read(store.CHUNK), b"")))
                f.seek(0)
                self._add_lines(f, w, report, payload_sha, limit, size, progress, cancel)
            if not w.finish().stored:
                raise ImportRejected(_nothing_valid(report.skipped))

        source = writer.NewSource(kind=report.kind, name_sha256=name_sha, payload_sha256=payload_sha,
                                  payload_size=size, trust=trust, imported_at=store.utc_now())
        self._write(source, report, fill)
        if progress:
            progress(size, size)
        return report

    def _add_lines(self, f, w: writer.SourceWriter, report: ImportReport, payload_sha: str, limit: int, size: int,
                   progress, cancel) -> None:
        lineno = done = 0
        while True:
            line = f.readline(limit + 1)
            if not line:
                break
            lineno += 1
            done += len(line)
            if len(line) > limit and not line.endswith(b"\n"):
                raise _line_too_long(lineno, limit)  # checked before storing; here if the file changed since
            if not line.strip():
                continue
            _tick(cancel)
            where = f"line {lineno}"
            try:
                # depth is bounded by the reference walk below, which sees every node anyway
                resource = jsonutil.loads(line, what=f"Line {lineno}", bound_depth=False)
                entry = bundle.Entry(lineno, resource, None)
                if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                    raise NotFhir(f"Line {lineno} is not a FHIR resource; nothing was imported.")
                bundle.assign_ids([entry], payload_sha)
                bad = bundle.resolve_references([entry], w.lookup_fullurl, w.lookup_identifier, collect=True)
                if bad:
                    raise DanglingReference(f"Line {lineno}: {bad[lineno]}")
                report.warnings.extend(self._check(resource, where))
            except ImportRejected as err:
                if not self.options.skip_invalid:
                    raise
                report.skipped.append(Skipped(where, err.user_message))
                continue
            try:
                docs = documents.extract_inline(resource)
            except ImportRejected as err:
                if not self.options.skip_invalid:
                    raise type(err)(f"Line {lineno}: {err.user_message}") from None
                report.skipped.append(Skipped(where, err.user_message))
                continue
            w.add(resource, text=entry.text, documents=docs, size=len(line))
            if progress and lineno % 200 == 0:
                progress(done, size)

    def _audit(self, conn, source_id: int, report: ImportReport) -> None:
        self.vault.audit("import", conn=conn, source=source_id, kind=report.kind, added=report.added,
                         duplicates=report.duplicates, updated=report.updated, skipped=len(report.skipped),
                         types=dict(sorted(report.by_type.items())), trust=report.trust)


def _nothing_valid(skipped: list[Skipped]) -> str:
    if not skipped:
        return "The file holds no records; nothing was imported."
    first = skipped[0]
    reason = first.reason.rstrip(".")
    if reason.lower().startswith(first.where.lower() + ": "):
        reason = reason[len(first.where) + 2:]
    return f"No record in the file is valid, so nothing was imported (first problem, {first.where}: {reason})."


@contextlib.contextmanager
def _no_cycle_collection():
    """A parsed file is a tree of many thousands of containers, none in a cycle: reference counting frees all of it.
    The cyclic collector would still be set off by the allocations and walk every object in the process, over and
    over, for nothing (a third of an import's time on a large file), so it is paused while one file is imported
    (a file is at most 64 MB; NDJSON streams and is not paused)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _tick(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise ImportCancelled()


def _sha256_file(path: Path, cancel: CancelToken | None) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(store.CHUNK), b""):
                _tick(cancel)
                h.update(block)
    except OSError:
        raise ImportRejected("The file could not be read; nothing was imported.") from None
    return h.hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        raise ImportRejected("The file could not be read; nothing was imported.") from None


def _line_too_long(lineno: int, limit: int) -> ImportRejected:
    return ImportRejected(f"Line {lineno} of the file is longer than {_mb(limit)}, so it is not a bulk FHIR record; "
                          "nothing was imported.")


def _check_line_lengths(f, limit: int, cancel: CancelToken | None) -> None:
    """Refuse a file with a line longer than ``limit`` before any of it is copied into the database.

    Reads in blocks and only counts newlines (memory stays one block whatever the line lengths); the stream is left
    at its start."""
    lineno, run = 1, 0  # run: bytes of the current line seen so far, its newline not counted
    for block in iter(lambda: f.read(store.CHUNK), b""):
        _tick(cancel)
        start = 0
        while True:
            nl = block.find(b"\n", start)
            if nl < 0:
                run += len(block) - start
                break
            if run + nl - start > limit:
                raise _line_too_long(lineno, limit)
            lineno, run, start = lineno + 1, 0, nl + 1
        if run > limit:
            raise _line_too_long(lineno, limit)
    f.seek(0)


def _is_ndjson_bytes(data: bytes) -> bool:
    first, _, rest = data.lstrip(b"\xef\xbb\xbf").partition(b"\n")
    try:
        return isinstance(jsonutil.loads(first), dict) and rest.lstrip()[:1] == b"{"
    except ImportRejected:
        return False


class _open:
    """Open a path, or use an in-memory stream as it is."""

    def __init__(self, src) -> None:
        self._src = src
        self._f = None

    def __enter__(self):
        if isinstance(self._src, (str, Path)):
            try:
                self._f = open(self._src, "rb")
            except OSError:
                raise ImportRejected("The file could not be read; nothing was imported.") from None
            return self._f
        return self._src

    def __exit__(self, *exc) -> None:
        if self._f is not None:
            self._f.close()

"""Import, as the patient asks for it: files, pasted ``shc:/`` text (or a compact JWS), and share links.

Every source is all-or-nothing on its own; the result says per source what happened. A file about someone other
than the vault's person is refused with ``OtherPerson`` unless ``other_person`` says to keep it apart; the GUI asks
and imports the refused ones again with ``other_person=True``. Progress is one fraction for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault import eventlog
from vault.records.errors import OtherPerson, RecordsError
from vault.records.importer import CancelToken, ImportOptions, ImportReport, ImportService

Progress = Callable[[float], None]
LINK_PREFIXES = ("shlink:/", "medvault:/")
TEXT_SOURCE = "text"


@dataclass
class ImportOutcome:
    """What became of one source: a report, or the one-sentence error that left the vault unchanged by it."""

    source: str                         # the path as given, or "text" for pasted text and links
    report: ImportReport | None = None
    error: RecordsError | None = None
    note: str | None = None             # a clinician's note: how far its signature was believed, in words

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def other_person(self) -> bool:
        """Refused only because it is about someone else: importing it again with ``other_person=True`` keeps it."""
        return isinstance(self.error, OtherPerson)

    @property
    def name(self) -> str:
        """How to name the source to the user: the file's name (never its folder), or "text"."""
        return TEXT_SOURCE if self.source == TEXT_SOURCE else Path(self.source).name

    @property
    def sentence(self) -> str:
        if self.error is not None:
            return self.error.user_message
        assert self.report is not None
        return f"{self.report.sentence()} {self.note}" if self.note else self.report.sentence()

    def as_json(self) -> dict:
        if self.error is not None:
            return {"source": self.source, "error": self.error.user_message}
        assert self.report is not None
        out = {"source": self.source, **self.report.as_json(), "sentence": self.sentence}
        if self.note:
            out["signature"] = self.note
        return out


class PastedText(str):
    """Text the user pasted or piped in: imported as text whatever it looks like, never taken for a file name."""


def options(*, skip_invalid: bool = False, structural_only: bool = False, other_person: bool = False,
            trust: str | None = None) -> ImportOptions:
    return ImportOptions(skip_invalid=skip_invalid, validation="structural" if structural_only else "full",
                         other_person=other_person, trust=trust)


def is_link(text: str) -> bool:
    t = text.strip()
    return t.lower().startswith(LINK_PREFIXES) or ("#shlink:/" in t and t.lower().startswith("https://"))


def looks_like_card_text(text: str) -> bool:
    t = text.strip()
    return t.lower().startswith("shc:/") or (t.startswith("eyJ") and t.count(".") == 2 and " " not in t)


def is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):   # a 1 KB card is not a valid path on most systems
        return False


def is_text_source(source: str) -> bool:
    """Pasted text or a link rather than a file name (a file that happens to exist wins over card-like text)."""
    return is_link(source) or (looks_like_card_text(source) and not is_file(source))


def import_sources(vault: Any, sources: Sequence[str | Path], *, opts: ImportOptions,
                   progress: Progress | None = None, cancel: CancelToken | None = None,
                   allow_local_http: bool = False) -> list[ImportOutcome]:
    """Import the texts among ``sources`` (``PastedText``, links, card text), then the files, each all-or-nothing;
    one outcome per text (per bundle of a link) and per file, texts first. Files are imported as one batch, so a
    file referring into another file of the batch works whatever the order. ``allow_local_http``: a link may
    fetch over plain http from this computer or the local network (a clinic's embedded gateway)."""
    all_texts: list[str] = []
    files: list[Path] = []
    for s in sources:
        if isinstance(s, PastedText) or (isinstance(s, str) and is_text_source(s)):
            all_texts.append(s)
        else:
            files.append(Path(s))
    units = len(all_texts) + len(files) or 1
    outcomes: list[ImportOutcome] = []
    for n, text in enumerate(all_texts):
        outcomes.extend(import_text(vault, text, opts=opts, cancel=cancel, allow_local_http=allow_local_http,
                                    progress=_scaled(progress, n, units) if progress else None))
    if files:
        outcomes.extend(import_files(vault, files, opts=opts, cancel=cancel,
                                     progress=_scaled_files(progress, len(all_texts), units) if progress else None))
    if progress:
        progress(1.0)
    return outcomes


def import_files(vault: Any, paths: Sequence[str | Path], *, opts: ImportOptions, progress: Progress | None = None,
                 cancel: CancelToken | None = None) -> list[ImportOutcome]:
    per_file = None
    if progress:
        def per_file(index: int, count: int, done: int, total: int) -> None:
            progress((index + (done / total if total else 1.0)) / (count or 1))
    results = ImportService(vault, opts).import_paths([Path(p) for p in paths], per_file, cancel)
    return _noted([ImportOutcome(str(p), error=r) if isinstance(r, RecordsError) else ImportOutcome(str(p), report=r)
                   for p, r in results])


def import_text(vault: Any, text: str, *, opts: ImportOptions, progress: Progress | None = None,
                cancel: CancelToken | None = None, allow_local_http: bool = False) -> list[ImportOutcome]:
    """Pasted ``shc:/`` text or a share link (opened, verified and decrypted, then imported). A link may carry
    several bundles: one outcome each. A clinician's ``return`` link is a note: its outcome says how far its
    signature is believed (``app.services.writeback``)."""
    step = (lambda done, total: progress(done / total if total else 1.0)) if progress else None
    try:
        if _is_return(text):
            from app.services import writeback
            done = writeback.import_return(vault, text, opts=opts, allow_local_http=allow_local_http,
                                           progress=step, cancel=cancel)
            return _noted([ImportOutcome(TEXT_SOURCE, report=r, note=done.assessment.sentence)
                           for r in done.reports])
        reports = _import_text(vault, text, opts, step, cancel, allow_local_http)
    except RecordsError as err:
        return _noted([ImportOutcome(TEXT_SOURCE, error=err)])
    return _noted([ImportOutcome(TEXT_SOURCE, report=r) for r in reports])


def _noted(outcomes: list[ImportOutcome]) -> list[ImportOutcome]:
    """Each outcome in the log file: counts and the kind of source, or the refusal's class (``vault.eventlog``)."""
    for o in outcomes:
        if o.report is not None:
            eventlog.event("import", outcome="ok", kind=o.report.kind, added=o.report.added,
                           updated=o.report.updated, duplicates=o.report.duplicates, skipped=len(o.report.skipped))
        else:
            eventlog.event("import", outcome="refused", error=type(o.error).__name__)
    return outcomes


def _is_return(text: str) -> bool:
    """Whether ``text`` is a ``medvault:/`` return link (its signature is checked when it is opened)."""
    from sync import links
    from sync.errors import SyncError
    if not text.strip().startswith(links.MV_PREFIX):
        return False
    try:
        return links.parse_medvault(text).type == "return"
    except SyncError:
        return False        # opening it says what is wrong with it


def _import_text(vault: Any, text: str, opts: ImportOptions, step: Any, cancel: CancelToken | None,
                 allow_local_http: bool) -> list[ImportReport]:
    if not is_link(text):
        return [ImportService(vault, opts).import_data(text.encode("utf-8"), "pasted.txt", step, cancel)]
    from sync.receiver import open_link
    keys = vault.identity_keys
    result = open_link(text.strip(), recipient="medvault", x25519_private=keys.x25519_private,
                       my_did=vault.identity.did, allow_local_http=allow_local_http)
    # a share is only as good as its content: nothing in it is signed by anyone the vault knows
    linked = ImportService(vault, opts)
    # the decrypted bytes as they came: nothing encoded again, and the source's hash is of the sender's bytes
    return [linked.import_data(data, "shared.json", step, cancel) for data in result.payloads()]


def _scaled(progress: Progress, index: int, units: int) -> Progress:
    return lambda f: progress((index + f) / units)


def _scaled_files(progress: Progress, offset: int, units: int) -> Progress:
    files = units - offset
    return lambda f: progress((offset + f * files) / units)

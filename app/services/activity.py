"""The audit log in words, each consent's state on the chain, and the integrity check, for the Activity screen.

The audit log holds no health data: ids, counts, kinds. The words come from those plus what the encrypted
database knows about the same ids: a share's recipient (the name on the clinician's card), what it held and its
expiry; the consent network's answer to each consent change (the outbox: waiting, recorded in block N with its
transaction, refused with the reason). Read a page at a time, newest first, on the read-only connection. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PAGE = 200

WAITING = "waiting"
RECORDED = "recorded"
REFUSED = "refused"


@dataclass(frozen=True)
class ChainState:
    state: str                 # WAITING, RECORDED or REFUSED
    words: str                 # "Consent recorded on the consent network in block 12"
    block: int | None = None
    tx: str | None = None      # the transaction's hash, whole (the window shortens it)


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str                    # when, as the audit log has it (ISO 8601)
    event: str
    words: str
    share: str | None = None   # the share it is about, if any
    chain: ChainState | None = None


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    older: int | None = None   # pass as ``before`` for the next page; None when this page reaches the start


def page(conn: Any, *, before: int | None = None, limit: int = PAGE) -> Page:
    """``limit`` entries older than entry ``before`` (the newest when None), in words, from connection ``conn``."""
    from sync import outbox as ob
    from vault import audit, shares_store
    from vault.outbox_store import SqlOutboxStore
    raw = audit.entries(conn, limit + 1, before)
    more = len(raw) > limit
    raw = raw[:limit]
    shares = {d: shares_store.get(conn, d) for d in {e.details.get("share") for e in raw} if isinstance(d, str)}
    queued_all = SqlOutboxStore(conn).all()          # few: one per share, revoke and receipt
    by_id = {entry.id: entry for entry in queued_all}
    consents: dict[tuple[str, str], Any] = {}
    for entry in queued_all:
        consent = entry.payload.get("typed", {}).get("consent_id")
        if isinstance(consent, str):
            consents[(entry.kind, consent.removeprefix("0x").lower())] = entry
    out = []
    for e in raw:
        if e.event == "chain" and e.details.get("action") == "anchor":
            continue    # bookkeeping that follows each sync (sync/audit_anchor.py), not something the patient did
        row = shares.get(e.details.get("share"))
        kind = {"share": ob.GRANT, "revoke": ob.REVOKE, "access": ob.ACCESS}.get(e.event)
        consent = str(e.details.get("consent_id") or "").lower()
        if e.event == "access" and isinstance(e.details.get("outbox"), int):
            queued = by_id.get(e.details["outbox"])     # one receipt per opening, several per consent
        else:
            queued = consents.get((kind, consent)) if kind and consent and e.details.get("queued", True) else None
        out.append(Entry(e.seq, e.at, e.event, words(e.event, e.details, row), e.details.get("share"),
                         chain_state(kind, queued) if queued is not None else None))
    return Page(out, raw[-1].seq if more and raw else None)


# --- words ------------------------------------------------------------------------------------------------------

def _records(n: Any) -> str:
    n = int(n) if isinstance(n, int) else 0
    return f"{n:,} record{'' if n == 1 else 's'}"


def _day(epoch: int | None) -> str:
    from vault.records.describe import local_date
    if epoch is None:
        return ""
    return local_date(datetime.fromtimestamp(epoch, timezone.utc).isoformat())


def _recipient(row: Any, kind: str | None) -> str:
    if (row.kind if row is not None else kind) == "open":
        return "anyone holding the link"
    name = row.recipient_name if row is not None else None
    return name or "one clinician"


def _held(row: Any) -> str:
    what = getattr(row, "what", None)
    return f" ({what[0].lower() + what[1:] if what[1:2].islower() else what})" if what else ""


def _share_words(d: dict, row: Any) -> str:
    count = row.resources if row is not None else d.get("resources", 0)
    text = f"Shared {_records(count)}{_held(row)} with {_recipient(row, d.get('kind'))}"
    if row is not None and row.expires_at is not None:
        text += f", until {_day(row.expires_at)}"
    return text


def _revoke_words(d: dict, row: Any) -> str:
    if row is None:
        return "Revoked a share"
    return f"Revoked the share of {_records(row.resources)}{_held(row)} with {_recipient(row, None)}"


_IMPORTED_FROM = {"fhir-json": "from a file", "fhir-ndjson": "from a file", "shc-text": "from a SMART Health Card",
                  "document": "as a document", "clinician-note": "from a clinician's note"}


def _import_words(d: dict) -> str:
    source = _IMPORTED_FROM.get(str(d.get("kind")), "")
    if d.get("already_imported"):
        return f"Imported {source.removeprefix('from ').removeprefix('as ') or 'something'} again: it was " \
               "imported before, so nothing changed"
    added, updated, skipped = (int(d.get(k) or 0) for k in ("added", "updated", "skipped"))
    head = (f"Imported {_records(added)}" if added or not updated else f"Updated {_records(updated)}")
    extra = [f"{updated:,} updated"] if added and updated else []
    if skipped:
        extra.append(f"{skipped:,} left out as not valid")
    return f"{head} {source}".rstrip() + (f" ({', '.join(extra)})" if extra else "")


_EXPORTED_AS = {"bundle": "as a FHIR bundle", "ndjson": "as FHIR NDJSON", "ips": "as a health summary (IPS)"}

_SETTING_WORDS = {
    "sharing.gateway_base": "Changed the address shares kept on this computer are served from",
    "chain": "Set up the consent network",
    "app.autolock_minutes": "Changed when the vault locks itself",
    "app.serve_when_locked": "Changed whether shares are served while the app is locked",
    "profile": "Changed your profile (clinician mode, the name and organisation on your card)",
}


def _settings_words(d: dict) -> str:
    if d.get("action") == "issuer_add":
        return "Trusted a new issuer of SMART Health Cards"
    if d.get("setting") == "sharing.backend":
        return ("New shares are kept on an IPFS node" if d.get("kind") == "ipfs"
                else "New shares are kept on this computer")
    if d.get("setting") == "clinicians.confirmed":
        return ("Stopped trusting a clinician's card" if d.get("change") == "forget-card"
                else "Confirmed a clinician's card: notes signed with it show as signed by them")
    return _SETTING_WORDS.get(str(d.get("setting")), "Changed a setting")


# how a received note's signer was tied to a person (``app.services.writeback``'s "checked")
_NOTE_SIGNER = {"registry": "signed by a practitioner registered on the consent network",
                "confirmed-card": "signed by a clinician whose card you confirmed",
                "bad-signature": "its signature does not hold, so it is not verified",
                "no-signature": "it carries no signature, so it is not verified"}


def _writeback_words(event: str, d: dict) -> str:
    if event == "writeback":
        notes, measured = int(d.get("notes") or 0), int(d.get("measurements") or 0)
        what = [f"{notes} note{'' if notes == 1 else 's'}" if notes else "",
                f"{measured} measurement{'' if measured == 1 else 's'}" if measured else ""]
        return f"Wrote back to a patient, signed by you: {' and '.join(w for w in what if w) or 'a note'}"
    how = _NOTE_SIGNER.get(str(d.get("checked")), "signed by an unknown key, so it is not verified")
    if event == "writeback_recheck":
        return f"A clinician's note is now verified: {how}"
    return f"Received a clinician's note ({_records(d.get('added', 0))}): {how}"


_RECOVERY_KEY_WORDS = {"confirmed": "Confirmed that the recovery key was kept",
                       "rotating": "Began making a new recovery key",
                       "rotated": "Made a new recovery key; the old one no longer opens the vault"}

_PLAIN = {
    "init": "Created this vault",
    "unlock": "Unlocked",
    "unlock_failed": "Someone typed a wrong passphrase",
    "unlock_failed_rejected": "Notes of earlier wrong passphrases were damaged and could not be read",
    "lock": "Locked",
    "passwd": "Changed the passphrase",
    "recover": "Opened with the recovery key and chose a new passphrase",
    "access": "Opened a share sent to you; a receipt of the opening is kept for the consent network",
    "open": "Opened a share sent to you",
    "chain": "Changed the consent network",
    "migrate": "Updated the vault to a newer format",
}


def words(event: str, d: dict, row: Any = None) -> str:
    """One entry in words; ``row`` is the share it names (``vault.shares_store.ShareRow``), when it does."""
    if event == "share":
        return _share_words(d, row)
    if event == "revoke":
        return _revoke_words(d, row)
    if event == "import":
        return _import_words(d)
    if event == "export":
        return f"Exported {_records(d.get('resources', 0))} {_EXPORTED_AS.get(str(d.get('format')), '')}".rstrip()
    if event == "settings":
        return _settings_words(d)
    if event == "recovery_key":
        return _RECOVERY_KEY_WORDS.get(str(d.get("action")), "Changed the recovery key")
    if event in ("writeback", "writeback_received", "writeback_recheck"):
        return _writeback_words(event, d)
    if event == "restore":
        return "Opened an older copy of this vault on purpose (a restored backup); later changes are not in it"
    return _PLAIN.get(event, "Something was recorded")


def chain_state(kind: str | None, entry: Any) -> ChainState:
    from vault.outbox_store import ANCHORED, FAILED
    what = {"revoke": "Withdrawal", "access": "Receipt"}.get(kind or "", "Consent")
    if entry.state == ANCHORED:
        return ChainState(RECORDED, f"{what} recorded in block {entry.block_number:,}", entry.block_number,
                          entry.tx_hash)
    if entry.state == FAILED:
        return ChainState(REFUSED, f"{what} refused: {entry.message or entry.reason}")
    return ChainState(WAITING, f"{what} waiting to be sent")


def opened_words(log: Any, shares: list[dict]) -> list[str]:
    """Who opened which share (``sharing.AccessLog``), newest first, in words; ``shares`` from ``list_shares``."""
    from vault.records.describe import local_date
    rows = {s["id"]: s for s in shares}
    opens = []
    for share_id, seen in log.opened.items():
        row = rows.get(share_id)
        what = "a share of yours"
        if row is not None:
            held = f" ({row['what']})" if row.get("what") else ""
            what = f"your share of {_records(row['resources'])}{held} from {_day(row['created_at'])}"
        for o in seen:
            when = local_date(datetime.fromtimestamp(o.at, timezone.utc).isoformat(), with_time=True)
            opens.append((o.at, f"{when}: {o.who} opened {what} (recorded in block {o.block:,})"))
    return [text for _at, text in sorted(opens, key=lambda pair: pair[0], reverse=True)]


# --- the integrity check ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Integrity:
    intact: bool
    sentence: str
    broken_pages: tuple[int, ...] = ()
    broken_entry: int | None = None     # the first audit entry that does not hold


def check_integrity(vault: Any, progress: Callable[[int, int, str], None] | None = None) -> Integrity:
    """The full check (every page, the database's structure, the audit chain); ``progress(step, steps, words)``
    as each step starts."""
    steps = vault.VERIFY_STEPS
    report = vault.verify(lambda n: progress(n, len(steps), f"Checking {steps[n]}…") if progress else None)
    if report.intact:
        return Integrity(True, f"Intact: every page of the database and all {report.audit.entries:,} entries of "
                               "the audit log were checked.")
    return Integrity(False, report.sentence(), tuple(report.broken_pages), report.audit.first_broken)

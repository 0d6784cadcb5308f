"""A share as the clinician receives it: what was scanned, the opening step by step with every check said in words,
and the records held in memory only until the clinician chooses to keep a copy. No Qt here.

``ScanCollector`` turns decoded QR texts into something to open (a SMART Health Card split over several codes is
collected until every part is in). ``open_scanned`` fetches, decrypts and verifies on the caller's thread (the task
runner), reports each step as it starts and ends, and returns a ``Received`` whether the share opened or was
refused: its ``verdicts`` say for every check what was found, and a check that was not made says so and why, never
passing by default. The records go into a ``vault.records.memory.MemoryRecords`` through the importer, so the
patient's screens read them unchanged and nothing of them reaches the disk. ``send_receipt`` then tries to put the
access receipt on the chain; offline it waits in the vault's outbox. ``keep_copy`` imports them into the vault,
marked as received, when the clinician asks for it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PASSED, FAILED, NOT_CHECKED, WAITING = "passed", "failed", "not_checked", "waiting"
# Not checked because there was nothing of the kind to check (no card inside, no link around a card): shown as
# "not checked" all the same, with a calmer icon, and it does not make the outcome "some checks could not be made".
NOT_APPLICABLE = "not_applicable"
SHC_PREFIX = "shc:/"
_CHUNK = re.compile(r"^shc:/(\d+)/(\d+)/(\d+)$")

# (key, what the panel calls the check), in the order the checks are made
CHECKS = (
    ("signature", "Sender's signature"),
    ("expiry", "Link still valid"),
    ("recipient", "Sealed to you"),
    ("consent", "Consent on the chain"),
    ("cid", "File's content identifier (CID)"),
    ("encryption", "Encryption integrity"),
    ("card_issuer", "Health card issuer"),
    ("receipt", "Access receipt"),
)
TITLES = dict(CHECKS)

# (key, what the progress display says while it runs), in order; "decode" is the scan's own step
STEPS = (
    ("decode", "Reading the code"),
    ("link", "Checking the link and its signature"),
    ("chain", "Checking the consent on the chain"),
    ("fetch", "Fetching the shared file"),
    ("verify", "Checking the file's content identifier"),
    ("decrypt", "Decrypting and checking its integrity"),
    ("records", "Reading the records into memory (nothing is saved)"),
    ("receipt", "Logging your access on the chain"),
)
STARTED, DONE, SKIPPED, STOPPED = "started", "done", "skipped", "stopped"


@dataclass(frozen=True)
class Scanned:
    kind: str           # "link" (shlink:/, viewer link or medvault:/) or "card" (shc:/, every chunk joined)
    text: str


@dataclass(frozen=True)
class Step:
    key: str
    state: str          # STARTED, DONE, SKIPPED or STOPPED (the opening stopped there)


@dataclass(frozen=True)
class Verdict:
    key: str
    status: str         # PASSED, FAILED, NOT_CHECKED, NOT_APPLICABLE or WAITING
    detail: str         # one sentence, in words

    @property
    def title(self) -> str:
        return TITLES[self.key]


@dataclass
class Received:
    """What opening a scanned share gave: the checks, and (unless refused) the records in memory."""

    kind: str                                   # "shlink", "medvault-share", "medvault-return" or "card"
    verdicts: list[Verdict]
    refusal: BaseException | None = None        # why it was not opened (its ``user_message`` is the sentence)
    records: Any = None                         # MemoryRecords, None when refused
    label: str | None = None
    sender: str | None = None
    exp: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    skipped: int = 0                            # records that could not be read and are not shown
    timings: dict[str, float] = field(default_factory=dict)   # seconds per step key
    receipt_entry: int | None = None            # the access receipt's outbox entry, to send and follow
    bundles: list[dict] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list, repr=False)   # each FHIR file as decrypted: what is kept
    cards: list[str] = field(default_factory=list)            # compact JWS of the health cards received
    provenance: dict = field(default_factory=dict)            # what "Keep a copy" marks the source with (no PHI)

    @property
    def opened(self) -> bool:
        return self.refusal is None

    def verdict(self, key: str) -> Verdict:
        return next(v for v in self.verdicts if v.key == key)

    def set_verdict(self, verdict: Verdict) -> None:
        self.verdicts = [verdict if v.key == verdict.key else v for v in self.verdicts]

    @property
    def headline(self) -> str:
        """The panel's first sentence: opened or refused, and whether anything could not be checked."""
        if not self.opened:
            return "Refused: " + _sentence(self.refusal)
        failed = [v for v in self.verdicts if v.status == FAILED]
        unchecked = [v for v in self.verdicts if v.status == NOT_CHECKED and v.key != "receipt"]
        if failed:
            return "Opened, but a check failed: read the checks below before relying on these records."
        if unchecked:
            return ("Opened. Some checks could not be made; they are marked \"not checked\" below with the "
                    "reason.")
        return "Opened. Every check passed."

    def close(self) -> None:
        """Forget the records: the memory they held is freed."""
        if self.records is not None:
            self.records.close()


# --- scanning ---------------------------------------------------------------------------------------------------

class ScanCollector:
    """Decoded QR texts in, something to open out. A card split over several codes (``shc:/2/3/…``) is collected
    part by part, in any order, the same part seen again (a camera sees it many times) ignored."""

    def __init__(self) -> None:
        self._parts: dict[int, str] = {}
        self._total = 0

    @property
    def progress(self) -> tuple[int, int] | None:
        """(parts scanned, parts in all) while a split card is being collected, else None."""
        return (len(self._parts), self._total) if self._total else None

    def reset(self) -> None:
        self._parts, self._total = {}, 0

    def add(self, text: str) -> Scanned | None:
        """``Scanned`` when ``text`` completes something to open; None when a part of a card is still missing.
        Text that is neither a share link nor a health card is refused with one sentence."""
        from app.services.importing import is_link
        from sync.errors import LinkUnsupported
        text = text.strip()
        if is_link(text) or "#shlink:/" in text:
            return Scanned("link", text)
        if text[:len(SHC_PREFIX)].lower() != SHC_PREFIX:
            raise LinkUnsupported("This code is not a share link (shlink:/, medvault:/) or a SMART Health Card "
                                  "(shc:/).")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 or not _CHUNK.match(lines[0]):
            return Scanned("card", "\n".join(lines))
        index, total, _digits = _CHUNK.match(lines[0]).groups()     # type: ignore[union-attr]
        index, total = int(index), int(total)
        if total < 2 or not 1 <= index <= total:
            raise LinkUnsupported("This health card code is numbered wrongly (like part 4 of 3), so it cannot "
                                  "be read.")
        if total != self._total:                    # the first part of another card: start again
            self.reset()
            self._total = total
        self._parts[index] = lines[0]
        if len(self._parts) < total:
            return None
        whole = "\n".join(self._parts[i] for i in range(1, total + 1))
        self.reset()
        return Scanned("card", whole)


# --- opening ----------------------------------------------------------------------------------------------------

Report = Callable[[Step], None]


class _Steps:
    """Reports steps and times them; ``stop`` marks where a refusal happened."""

    def __init__(self, report: Report | None, timings: dict[str, float]) -> None:
        self._report = report or (lambda _s: None)
        self.timings = timings
        self.current: str | None = None
        self._since = 0.0

    def start(self, key: str) -> None:
        self.finish()
        self.current, self._since = key, time.perf_counter()
        self._report(Step(key, STARTED))

    def finish(self, state: str = DONE) -> None:
        if self.current is not None:
            self.timings[self.current] = self.timings.get(self.current, 0.0) + time.perf_counter() - self._since
            self._report(Step(self.current, state))
            self.current = None

    def skip(self, key: str) -> None:
        self._report(Step(key, SKIPPED))


class _Verdicts:
    """The rows of the panel, in their fixed order; whatever is not set at the end is "not checked" with a reason."""

    def __init__(self) -> None:
        self.rows: dict[str, Verdict] = {}

    def set(self, key: str, status: str, detail: str) -> None:
        self.rows[key] = Verdict(key, status, detail)

    def unset(self, key: str) -> bool:
        return key not in self.rows

    def done(self, reason: str) -> list[Verdict]:
        return [self.rows.get(k) or Verdict(k, NOT_CHECKED, reason) for k, _t in CHECKS]


def _when(epoch: int | float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%d %b %Y %H:%M UTC").lstrip("0")


def _short(text: str, keep: int = 10) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def _clock_now(clock: Callable[[], float] | None) -> float:
    return clock() if clock is not None else time.time()


def open_scanned(scanned: Scanned, *, vault: Any = None, allow_local_http: bool = False,
                 clock: Callable[[], float] | None = None, passcode: str | None = None,
                 progress: Report | None = None, connect: Callable[[Any], Any] | None = None,
                 timings: dict[str, float] | None = None) -> Received:
    """Open what was scanned as ``vault``'s identity (None: open links and cards only, nothing checked on chain).

    ``clock`` (epoch seconds) decides expiry; ``connect(settings)`` reaches the consent registry (default: the
    settings' JSON-RPC node). Refusals come back as ``Received.refusal`` with the verdicts made so far; only a bug
    raises."""
    steps = _Steps(progress, {} if timings is None else timings)
    if scanned.kind == "card":
        received = _open_card(scanned.text, vault, clock, steps)
    else:
        received = _open_link(scanned.text, vault, allow_local_http, clock, passcode, steps, connect)
    received.timings = steps.timings
    return received


def _memory(vault: Any, clock: Callable[[], float] | None) -> Any:
    """An empty in-memory records database trusting the health card issuers the vault trusts."""
    from vault.records.memory import MemoryRecords
    records = MemoryRecords(clock=lambda: datetime.fromtimestamp(_clock_now(clock), timezone.utc))
    if vault is not None:
        with vault.read() as conn:
            records.trust_issuers(conn.execute("SELECT iss, jwks, crls, added_at FROM rec_issuers").fetchall())
    return records


def _open_card(text: str, vault: Any, clock: Callable[[], float] | None, steps: _Steps) -> Received:
    from vault.errors import VaultError
    from vault.records.errors import CardSignatureInvalid
    rows = _Verdicts()
    na = NOT_APPLICABLE
    rows.set("signature", na, "Not checked: a SMART Health Card is not a share link, so there is no sender's "
                              "signature on a link; the card's own signature is checked below.")
    rows.set("expiry", na, "Not checked: a health card carries no link, so there is no link expiry.")
    rows.set("recipient", na, "Not checked: a health card is not sealed to anyone; anyone holding it can read "
                              "it.")
    rows.set("consent", na, "Not checked: a health card is not shared through the consent network.")
    rows.set("cid", na, "Not checked: nothing was fetched; the card came whole in the QR code.")
    rows.set("encryption", na, "Not checked: a health card is signed, not encrypted.")
    rows.set("receipt", na, "Not logged: a health card is not shared through the consent network.")
    received = Received(kind="card", verdicts=[], provenance={"kind": "card"})
    steps.start("records")
    records = _memory(vault, clock)
    try:
        report = _import_into(records, [], [text], received)
    except CardSignatureInvalid as exc:
        steps.finish(STOPPED)
        records.close()
        rows.set("card_issuer", FAILED, exc.user_message)
        received.refusal, received.verdicts = exc, rows.done("")
        return received
    except VaultError as exc:
        steps.finish(STOPPED)
        records.close()
        received.refusal = exc
        received.verdicts = rows.done("Not checked: the card could not be read.")
        return received
    steps.finish()
    _card_verdict(rows, report)
    received.records, received.verdicts = records, rows.done("")
    return received


def _card_verdict(rows: _Verdicts, cards: list[dict]) -> None:
    """One row for every health card received: the worst of them decides its status."""
    if not cards:
        rows.set("card_issuer", NOT_APPLICABLE, "Not checked: there is no SMART Health Card in what was received.")
        return
    sentences, statuses = [], []
    for card in cards:
        flags, issuer = set(card.get("flags") or ()), card.get("issuer") or "an unnamed issuer"
        if "revoked" in flags:
            statuses.append(FAILED)
            sentences.append(f"Revoked: the issuer {issuer} has revoked this card.")
        elif "unknown-issuer" in flags:
            statuses.append(NOT_CHECKED)
            sentences.append(f"Issuer unknown: {issuer} is not one of your trusted issuers, so the card's "
                             "signature could not be checked.")
        elif card.get("status") == "verified":
            late = "expired" in flags or "not-yet-valid" in flags
            statuses.append(FAILED if late else PASSED)
            sentences.append(f"Trusted issuer {issuer}: the card's signature verifies with its key"
                             + ("; but the card has expired." if "expired" in flags else
                                "; but the card is dated in the future." if late else "."))
        else:
            statuses.append(NOT_CHECKED)
            sentences.append(f"Not verified: the card from {issuer} could not be checked.")
    worst = FAILED if FAILED in statuses else NOT_CHECKED if NOT_CHECKED in statuses else PASSED
    prefix = f"{len(cards)} health cards. " if len(cards) > 1 else ""
    rows.set("card_issuer", worst, prefix + " ".join(sentences))


def _import_into(records: Any, payloads: list[bytes], card_texts: list[str], received: Received) -> list[dict]:
    """The records into memory through the importer (the one write path); returns what it found of each card.
    ``payloads`` are the FHIR files as they were decrypted: imported as they are, never encoded again, so the
    source's hash is of the sender's bytes. A record that cannot be read is left out and counted rather than
    hiding the whole share."""
    from vault.records.importer import ImportOptions, ImportService
    service = ImportService(records, ImportOptions(skip_invalid=True, validation="structural", other_person=True,
                                                   received=received.provenance))
    cards: list[dict] = []
    for text in card_texts:
        report = service.import_data(text.encode("utf-8"), "card.txt")
        cards.extend(report.cards)
        _count(received, report)
    for data in payloads:
        _count(received, service.import_data(data, "shared.json"))
    received.payloads, received.cards = payloads, card_texts
    return cards


def _count(received: Received, report: Any) -> None:
    received.skipped += len(report.skipped)
    for rtype, n in report.by_type.items():
        received.counts[rtype] = received.counts.get(rtype, 0) + n


def _open_link(text: str, vault: Any, allow_local_http: bool, clock: Callable[[], float] | None,
               passcode: str | None, steps: _Steps, connect: Callable[[Any], Any] | None) -> Received:
    from app.services.receiving import RECEIVER_NAME
    from sync import links, receiver
    from sync.errors import LinkInvalid, LinkSignatureInvalid, SyncError
    from vault.errors import VaultError
    from vault.records.errors import CardInvalid, CardSignatureInvalid
    rows = _Verdicts()
    received = Received(kind="shlink", verdicts=[])
    steps.start("link")
    try:
        parsed = links.parse_link(text)
    except LinkSignatureInvalid as exc:
        steps.finish(STOPPED)
        rows.set("signature", FAILED, "Failed: " + exc.user_message)
        received.refusal = exc
        received.verdicts = rows.done("Not checked: the link's signature does not verify, so nothing in it "
                                      "was trusted or fetched.")
        return received
    except SyncError as exc:
        steps.finish(STOPPED)
        received.refusal = exc
        received.verdicts = rows.done("Not checked: the link could not be read.")
        return received
    if isinstance(parsed, links.MedvaultLink) and parsed.type == "card":
        steps.finish(STOPPED)
        received.refusal = LinkInvalid("This is a person's identity card, not a share; there are no records in it.")
        received.verdicts = rows.done("Not checked: an identity card holds no records.")
        return received
    directed = isinstance(parsed, links.MedvaultLink)
    share = parsed.body if directed else parsed
    received.kind = f"medvault-{parsed.type}" if directed else "shlink"
    received.label, received.exp = share.label, share.exp
    received.sender = parsed.sender if directed else None
    my_did = vault.identity.did if vault is not None else None
    _link_verdicts(rows, parsed, share, my_did, _clock_now(clock))
    chain = _Chain(vault, connect, clock, steps, patient=share.patient)
    if received.kind == "medvault-return":
        chain.not_for_notes()
    received.provenance = {"kind": received.kind, "sender": received.sender, "host": _host(share.url)}

    def cid_matches(data: bytes, cid_text: str) -> bool:
        from sync.cid import cid_matches as matches
        steps.start("verify")
        ok = matches(data, cid_text)
        steps.finish()
        steps.start("decrypt")
        return ok

    keys = dict(x25519_private=vault.identity_keys.x25519_private, my_did=my_did) \
        if directed and vault is not None else {}
    early = _refused_early(rows, share, keys)
    if early is not None:
        # refused on the link alone: nothing was asked of the chain or fetched
        steps.finish(STOPPED)
        received.refusal = early
        received.verdicts = rows.done(f"Not checked: the link was refused before anything was fetched "
                                      f"({_reason(early)}).")
        return received
    steps.finish()
    result = None
    try:
        if chain.settings is None:
            steps.skip("chain")
            steps.start("fetch")
        else:
            steps.start("chain")
        result = receiver.open_link(text, recipient=RECEIVER_NAME, allow_local_http=allow_local_http,
                                    now=clock, passcode_provider=_once(passcode),
                                    consent_checker=chain.check if chain.settings is not None else None,
                                    cid_matches=cid_matches, **keys)
        steps.finish()
        chain.check_scope(result)
    except (SyncError, VaultError) as exc:
        stopped_at = steps.current
        steps.finish(STOPPED)
        received.refusal = exc
        chain.verdict(rows)
        _failure_verdict(rows, exc, stopped_at, share.url)
        if result is not None:
            _file_verdicts(rows, result)
        received.verdicts = rows.done(f"Not checked: the opening stopped before this check ({_reason(exc)}).")
        return received

    _file_verdicts(rows, result)
    chain.verdict(rows)
    steps.start("records")
    records = _memory(vault, clock)
    try:
        received.bundles = [b for f in result.files if not f.health_cards for b in f.bundles]
        cards = _import_into(records, [f.plaintext for f in result.files if f.plaintext is not None],
                             [j for f in result.files for j in f.health_cards], received)
    except VaultError as exc:
        steps.finish(STOPPED)
        records.close()
        received.refusal = exc
        if isinstance(exc, (CardInvalid, CardSignatureInvalid)):
            rows.set("card_issuer", FAILED, "Failed: " + exc.user_message)
        received.verdicts = rows.done(f"Not checked: the records could not be read ({_reason(exc)}).")
        return received
    steps.finish()
    _card_verdict(rows, cards)
    received.records = records
    received.provenance.update(consent_id=result.consent_id, cid=next((f.cid for f in result.files if f.cid), None),
                               checks={v.key: v.status for v in rows.done("")})
    chain.queue_receipt(result, received, rows)
    received.verdicts = rows.done("")
    return received


def _link_verdicts(rows: _Verdicts, parsed: Any, share: Any, my_did: str | None, now: float) -> None:
    """What the link alone says: who signed it, until when it is valid, to whom it is sealed."""
    from sync import links
    directed = isinstance(parsed, links.MedvaultLink)
    if directed:
        rows.set("signature", PASSED, f"Passed: the link is signed by its sender, {_short(parsed.sender, 14)}.")
    else:
        rows.set("signature", NOT_CHECKED, "Not checked: SMART Health Links carry no sender's signature, so who "
                                           "made this link cannot be told from the link.")
    if share.exp is None:
        rows.set("expiry", NOT_CHECKED, "Not checked: the link has no expiry time.")
    elif now >= share.exp:
        rows.set("expiry", FAILED, f"Failed: the link expired on {_when(share.exp)}.")
    else:
        rows.set("expiry", PASSED, f"Passed: the link is valid until {_when(share.exp)}.")
    if not directed:
        rows.set("recipient", NOT_CHECKED, "Not checked: this is an open link, not sealed to one person; anyone "
                                           "holding it can open it.")
    elif my_did is None:
        rows.set("recipient", FAILED, "Failed: this share is sealed to one person; open it with your vault.")
    elif share.to != my_did:
        rows.set("recipient", FAILED, f"Failed: this share is sealed to someone else ({_short(share.to, 14)}), "
                                      f"not to you ({_short(my_did, 14)}).")
    else:
        rows.set("recipient", PASSED, f"Passed: the share key is sealed to you ({_short(my_did, 14)}) and "
                                      "opened with your key.")


def _failure_verdict(rows: _Verdicts, exc: BaseException, stopped_at: str | None, url: str) -> None:
    """The check a refusal from the receiver failed, when the rows do not say it already."""
    from sync.errors import CidMismatch, ContentInvalid, DecryptionFailed, LinkExpired, ShareNotForYou, ShareRevoked
    from sync.receiver import cid_named_by

    def said(key: str) -> bool:
        return not rows.unset(key) and rows.rows[key].status == FAILED

    if isinstance(exc, LinkExpired) and not said("expiry"):
        rows.set("expiry", FAILED, "Failed: " + exc.user_message)
    elif isinstance(exc, ShareNotForYou) and not said("recipient"):
        rows.set("recipient", FAILED, "Failed: " + exc.user_message)
    elif isinstance(exc, ShareRevoked) and not said("consent"):
        rows.set("consent", FAILED, "Failed: " + exc.user_message)
    elif isinstance(exc, CidMismatch):
        rows.set("cid", FAILED, "Failed: the file received does not match the content identifier in its address "
                                f"({_short(cid_named_by(url) or '', 12)}): it was altered on the way or on the "
                                "server.")
    elif isinstance(exc, DecryptionFailed):
        rows.set("encryption", FAILED, "Failed: " + exc.user_message)
    elif isinstance(exc, ContentInvalid) and stopped_at == "decrypt":
        rows.set("encryption", PASSED, "Passed: the file decrypted with the link's key and its authentication tag "
                                       "verified; but what it holds is not health records.")


def _sentence(exc: BaseException | None) -> str:
    return getattr(exc, "user_message", None) or "Something unexpected went wrong; nothing was opened."


def _refused_early(rows: _Verdicts, share: Any, keys: dict) -> BaseException | None:
    """The refusal the link itself already earns (expired, not for this vault), before the receiver fetches; the
    receiver checks the same again, in the same order."""
    from sync import links
    from sync.errors import LinkExpired, ShareNotForYou
    if rows.rows["expiry"].status == FAILED:
        return LinkExpired()
    if rows.rows["recipient"].status == FAILED:
        return ShareNotForYou()
    if keys:
        try:
            links.unseal_share_key(share, keys["x25519_private"], my_did=keys["my_did"])
        except ShareNotForYou as exc:
            rows.set("recipient", FAILED, "Failed: the share names you, but its key does not open with your key; "
                                          "it was sealed for someone else.")
            return exc
    return None


def _reason(exc: BaseException) -> str:
    """The refusal's sentence inside another one: "(the patient has revoked this share)"."""
    text = _sentence(exc).rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _host(url: str) -> str | None:
    from urllib.parse import urlsplit
    return urlsplit(url).hostname


def _once(passcode: str | None) -> Callable[[int | None], str | None] | None:
    if passcode is None:
        return None
    tried: list[bool] = []

    def provide(_remaining: int | None) -> str | None:
        # asked again means the server refused it: the user types a new one rather than burn an attempt
        if tried:
            return None
        tried.append(True)
        return passcode
    return provide


def _file_verdicts(rows: _Verdicts, result: Any) -> None:
    from sync.receiver import PASSED as RECEIVER_PASSED
    cid = result.check("cid")
    if cid.status == RECEIVER_PASSED:
        named = [f.cid for f in result.files if f.cid]
        rows.set("cid", PASSED, f"Passed: the file's content identifier was recomputed on the bytes received and "
                                f"matches its address ({_short(named[0], 12) if named else 'given'}).")
    else:
        rows.set("cid", NOT_CHECKED, f"Not checked: {cid.detail[0].lower()}{cid.detail[1:]}")
    rows.set("encryption", PASSED, f"Passed: {len(result.files)} file{'s' if len(result.files) != 1 else ''} "
                                   "decrypted with the link's key (AES-256-GCM), and the authentication tag "
                                   "verified, so nothing was altered since it was encrypted.")


class _Chain:
    """The consent network as one opening uses it: the consent check (with what the chain says of the consent,
    for the panel), the scope check after decryption, and the access receipt."""

    def __init__(self, vault: Any, connect: Callable[[Any], Any] | None, clock: Callable[[], float] | None,
                 steps: _Steps, patient: str | None = None) -> None:
        from sync import consent_service
        from sync.errors import ChainError
        self.vault, self.steps, self.clock = vault, steps, clock
        self.connect = connect or consent_service.connect
        self.registry: Any = None
        self.record: Any = None
        self.unreachable: str | None = None
        self.found: bool | None = None          # what the consent check answered
        self.scope: str | None = None           # the scope check's sentence, or None when not made
        self.scope_failed = False
        self.settings = None
        self.problem: str | None = None
        # Whose consent the link says covers it: any link holder can register its id under their own key, so the
        # network is only ever asked about this patient's consent.
        self.patient = patient
        self.receipt_problem: str | None = None
        if vault is None:
            self.problem = "Not checked: you opened this without a vault, so the consent network was not asked."
            return
        try:
            self.settings = consent_service.load_settings(vault)
        except ChainError as exc:
            self.problem = "Not checked: " + exc.user_message
            return
        if self.settings is None:
            self.problem = ("Not checked: this vault has no consent network set up, so the consent could not be "
                            "checked.")
        elif patient is None:
            self.problem = ("Not checked: the link does not name the patient whose consent it carries, so the "
                            "consent network could not be asked about it.")

    def not_for_notes(self) -> None:
        """A clinician's note (a return link) is not shared under a consent: nothing on the chain to check (asking
        would find no consent and refuse it as revoked) and no access to log. Its signer is judged at import."""
        self.settings = None
        self.problem = ("Not checked: a clinician's note is not shared under a consent, so there is nothing on the "
                        "consent network to check; who signed it is checked when you import it.")
        self.receipt_problem = "Not logged: a clinician's note is not shared under a consent."

    def check(self, consent_id: bytes, patient: str) -> bool:
        from sync.errors import ChainError, ChainUnavailable
        try:
            self.registry = self.connect(self.settings)
            self.record = self.registry.get_consent(consent_id, patient=patient)
            active = self.registry.is_active(consent_id, self.vault.identity.eth_address, patient=patient)
        except ChainError as exc:
            # unreachable, or settings that do not match the node: either way the consent was not checked, which
            # the panel says, rather than refusing a share the patient may well have granted
            self.registry, self.unreachable = None, exc.user_message
            self.steps.finish()
            self.steps.start("fetch")
            raise ChainUnavailable(exc.user_message) from None
        self.found = active
        if active:
            self.steps.finish()
            self.steps.start("fetch")
        return active

    def check_scope(self, result: Any) -> None:
        from sync import consent_service
        from sync.errors import ShareRevoked
        if self.registry is None or not result.chain_checked:
            return
        try:
            self.scope = consent_service.check_scope(self.registry, bytes.fromhex(result.consent_id), result.patient,
                                                     result.bundles)
        except ShareRevoked as exc:
            self.scope_failed = True
            self.scope = exc.user_message
            raise

    def _grant_words(self) -> str:
        r, me = self.record, self.vault.identity.eth_address.lower()
        from sync.consent_service import ZERO_ADDRESS
        whom = ("anyone holding this link" if r.grantee.lower() == ZERO_ADDRESS else
                f"you ({_short(r.grantee, 6)})" if r.grantee.lower() == me else
                f"someone else ({_short(r.grantee, 6)}), not you")
        return (f"granted by the patient's account {_short(r.patient, 6)} on {_when(r.granted_at)} to {whom}, "
                f"until {_when(r.expires_at)}")

    def verdict(self, rows: _Verdicts) -> None:
        if self.problem is not None:
            rows.set("consent", NOT_CHECKED, self.problem)
            return
        if self.unreachable is not None:
            rows.set("consent", NOT_CHECKED, "Not checked: the consent network could not be reached "
                                             f"({self.unreachable.rstrip('.')}).")
            return
        if self.found is None:
            return                              # the opening stopped before the chain was asked
        r = self.record
        if self.found and not self.scope_failed:
            scope = (" The records match what the patient consented to." if self.scope else "")
            rows.set("consent", PASSED, f"Passed: active, {self._grant_words()}; not revoked.{scope}")
            return
        if self.scope_failed:
            rows.set("consent", FAILED, f"Failed: {self.scope}")
        elif r is None:
            rows.set("consent", FAILED, "Failed: the consent network has no record of this share's consent.")
        elif r.revoked:
            rows.set("consent", FAILED, f"Failed: revoked by the patient. It was {self._grant_words()}.")
        elif _clock_now(self.clock) >= r.expires_at or self._chain_time() >= r.expires_at:
            rows.set("consent", FAILED, f"Failed: the consent has expired; it was {self._grant_words()}.")
        elif r.grantee.lower() == self.vault.identity.eth_address.lower():
            # a directed consent counts only for a practitioner the network lists as active
            rows.set("consent", FAILED, "Failed: the consent was granted to you, but the consent network does not "
                                        "list you as an active practitioner; ask your organisation to register "
                                        f"you. It was {self._grant_words()}.")
        else:
            rows.set("consent", FAILED, f"Failed: this consent was not granted to you; it was "
                                        f"{self._grant_words()}.")

    def _chain_time(self) -> int:
        try:
            return self.registry.chain.block_timestamp()
        except Exception:   # only refines the sentence; the refusal stands whatever the chain says now
            return 0

    def queue_receipt(self, result: Any, received: Received, rows: _Verdicts) -> None:
        """Queue the signed access receipt in the vault's outbox (local, fast); ``send_receipt`` sends it."""
        from sync import consent_service
        if self.problem is not None:
            rows.set("receipt", NOT_CHECKED, self.receipt_problem or "Not logged: " + (
                "you opened this without a vault." if self.vault is None
                else "this vault has no consent network set up." if self.settings is None
                else "the link names no patient whose consent it would be about." if self.patient is None
                else "the consent network settings are damaged."))
            return
        self.steps.start("receipt")
        received.receipt_entry = consent_service.queue_access_receipt(self.vault, self.settings,
                                                                      bytes.fromhex(result.consent_id),
                                                                      patient=self.patient)
        self.steps.finish()
        rows.set("receipt", WAITING, "Waiting: your signed access receipt is queued in your vault and is being "
                                     "sent to the consent network.")


def send_receipt(vault: Any, entry_id: int) -> Verdict:
    """Send what the outbox holds (the receipt among it) and say how the receipt fared: recorded, still waiting
    (offline: it is sent when the network is back) or refused."""
    from app.services import chain
    from sync import consent_service
    chain.sync_now(vault)
    with vault.read():
        entry = consent_service.outbox(vault).store.get(entry_id)
    if entry.state == "anchored":
        return Verdict("receipt", PASSED, f"Recorded: your access was logged on the consent network (block "
                                          f"{entry.block_number}); the patient can see who opened the share and "
                                          "when.")
    if entry.state == "failed":
        return Verdict("receipt", FAILED, f"Refused by the consent network: {entry.message or entry.reason}")
    why = f" ({entry.last_error.rstrip('.')})" if entry.last_error else ""
    return Verdict("receipt", WAITING, f"Waiting: the consent network could not be reached{why}; your signed "
                                       "receipt stays queued in your vault and is sent when it can be reached.")


# --- keeping a copy ---------------------------------------------------------------------------------------------

def keep_copy(vault: Any, received: Received) -> list[Any]:
    """Import what was received into ``vault``, each source marked as a received share with what was verified;
    kept apart as another person's records. Returns the import reports."""
    from vault.records.importer import ImportOptions, ImportService
    if not received.opened:
        from sync.errors import ShareRevoked
        raise ShareRevoked("A refused share cannot be kept.")
    trust = None
    if received.kind == "medvault-return":
        # a signed note is only as good as who holds the key (issue 12): registered or confirmed, else unknown
        from app.services.writeback import assess
        trust = assess(vault, received.bundles, received.sender).trust
    service = ImportService(vault, ImportOptions(other_person=True, received=received.provenance, trust=trust))
    reports = [service.import_data(text.encode("utf-8"), "card.txt") for text in received.cards]
    reports += [service.import_data(data, "shared.json") for data in received.payloads]
    return reports

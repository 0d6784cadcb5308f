"""The offline outbox: signed consent operations wait here until the chain is reachable.

Operations are signed when the user acts (offline is fine) and queued with their signatures. ``Outbox.sync``
submits them in queue order. It is idempotent: before sending, it asks the chain whether the operation already
landed (a previous run may have sent it and lost the answer), and if so records where instead of sending again.
A node that is down stops the run and leaves everything pending; a refusal by the contract marks that one entry
failed with the reason and moves on. Entries are never deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync import consent_sign as cs
from sync.errors import ChainMismatch, ChainUnavailable, ConsentRejected
from vault.outbox_store import OutboxEntry

GRANT = "grant"
REVOKE = "revoke"
ACCESS = "access"
BATCH = "batch"
CANCEL = "cancel"
ANCHOR = "anchor"   # the vault's audit-head marker (sync/audit_anchor.py): sent as a one-entry batch root


class OutboxStore(Protocol):
    """Persistence for outbox entries (``vault.outbox_store.SqlOutboxStore`` in the app)."""

    def add(self, kind: str, payload: dict[str, Any], created_at: int) -> int: ...

    def get(self, entry_id: int) -> OutboxEntry: ...

    def pending(self) -> list[OutboxEntry]: ...

    def all(self) -> list[OutboxEntry]: ...

    def mark_anchored(self, entry_id: int, block_number: int, tx_hash: str) -> None: ...

    def mark_failed(self, entry_id: int, reason: str, message: str) -> None: ...

    def note_attempt(self, entry_id: int, error: str | None) -> None: ...


@dataclass
class SyncReport:
    anchored: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    already_on_chain: list[int] = field(default_factory=list)  # subset of anchored: found, not re-sent
    remaining: int = 0
    unavailable: ChainUnavailable | None = None  # why the run stopped early, if it did


class Outbox:
    def __init__(self, store: OutboxStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # ---- queueing (works offline) ----------------------------------------------------------------------------

    def queue_grant(self, domain: cs.Domain, grant: cs.Grant, sig: cs.Signature) -> int:
        cs.verify(domain, grant, sig, grant.patient)
        return self._add(GRANT, domain, grant, sig)

    def queue_revoke(self, domain: cs.Domain, revoke: cs.Revoke, sig: cs.Signature) -> int:
        cs.verify(domain, revoke, sig, revoke.patient)
        return self._add(REVOKE, domain, revoke, sig)

    def queue_access(self, domain: cs.Domain, receipt: cs.AccessReceipt, sig: cs.Signature) -> int:
        cs.verify(domain, receipt, sig, receipt.accessor)
        return self._add(ACCESS, domain, receipt, sig)

    def queue_cancel(self, domain: cs.Domain, cancel: cs.CancelNonces, sig: cs.Signature) -> int:
        cs.verify(domain, cancel, sig, cancel.patient)
        return self._add(CANCEL, domain, cancel, sig)

    def _add(self, kind: str, domain: cs.Domain, typed: cs.Typed, sig: cs.Signature) -> int:
        payload = {
            "domain": _domain_json(domain),
            "typed": cs.to_jsonable(typed),
            "signature": "0x" + sig.to_bytes().hex(),
        }
        return self.store.add(kind, payload, int(self.clock()))

    # ---- state ---------------------------------------------------------------------------------------------

    def entries(self) -> list[OutboxEntry]:
        return self.store.all()

    # ---- submission ----------------------------------------------------------------------------------------

    def sync(self, registry: Any, sender: Any) -> SyncReport:
        """Submit every pending entry in order through ``registry`` (a ``sync.chain.ConsentRegistry``).

        Raises ChainMismatch (nothing changed) when the entries were signed for another chain or contract than
        ``registry``: that is a settings problem, and failing the entries would throw away valid signatures.
        """
        report = SyncReport()
        pending = self.store.pending()
        if not pending:
            return report
        try:
            want = _domain_json(registry.domain)
        except ChainUnavailable as exc:
            report.unavailable, report.remaining = exc, len(pending)
            return report
        for entry in pending:
            if _norm(entry.payload["domain"]) != _norm(want):
                raise ChainMismatch(
                    "Some consent changes were signed for a different consent network than the one configured; "
                    "check the chain settings."
                )
        for index, entry in enumerate(pending):
            try:
                found = self._already_on_chain(registry, entry)
                if found is not None:
                    self.store.mark_anchored(entry.id, found.block_number, "0x" + found.tx_hash.hex())
                    report.anchored.append(entry.id)
                    report.already_on_chain.append(entry.id)
                    continue
                try:
                    result = self._submit(registry, sender, entry)
                except ConsentRejected as exc:
                    # The refusal may be a race with another submitter of the same signed operation.
                    found = self._already_on_chain(registry, entry)
                    if found is None:
                        self.store.mark_failed(entry.id, exc.reason or type(exc).__name__, exc.user_message)
                        report.failed.append(entry.id)
                        continue
                    self.store.mark_anchored(entry.id, found.block_number, "0x" + found.tx_hash.hex())
                    report.anchored.append(entry.id)
                    report.already_on_chain.append(entry.id)
                    continue
                self.store.mark_anchored(entry.id, result.block_number, "0x" + result.tx_hash.hex())
                report.anchored.append(entry.id)
            except ChainUnavailable as exc:
                self.store.note_attempt(entry.id, exc.user_message)
                report.unavailable = exc
                report.remaining = len(pending) - index
                return report
        return report

    def _submit(self, registry: Any, sender: Any, entry: OutboxEntry) -> Any:
        p = entry.payload
        if entry.kind in (BATCH, ANCHOR):
            return registry.anchor_batch(sender, _b(p["root"]), p["count"])
        typed = cs.from_jsonable(p["typed"])
        sig = cs.Signature.from_bytes(_b(p["signature"]))
        if entry.kind == GRANT:
            return registry.grant(sender, typed, sig)
        if entry.kind == REVOKE:
            return registry.revoke(sender, typed, sig)
        if entry.kind == ACCESS:
            return registry.log_access(sender, typed, sig)
        if entry.kind == CANCEL:
            return registry.cancel_nonces(sender, typed, sig)
        raise ValueError(f"unknown outbox entry kind {entry.kind!r}")

    def _already_on_chain(self, registry: Any, entry: OutboxEntry) -> Any:
        p = entry.payload
        if entry.kind in (BATCH, ANCHOR):
            return registry.find_batch(_b(p["root"])) if registry.anchored_at(_b(p["root"])) else None
        typed = cs.from_jsonable(p["typed"])
        if entry.kind == GRANT:
            record = registry.get_consent(typed.consent_id, patient=typed.patient)
            if record is None or not _same_grant(record, typed):
                # A different consent under the same id is not ours: submitting gets the contract's refusal.
                return None
            return registry.find_grant(typed.consent_id, patient=typed.patient)
        if entry.kind == REVOKE:
            record = registry.get_consent(typed.consent_id, patient=typed.patient)
            if record is None or not record.revoked:
                return None
            return registry.find_revoke(typed.consent_id, patient=typed.patient)
        if entry.kind == ACCESS:
            return registry.find_access(typed.consent_id, cs.digest(registry.domain, typed))
        if entry.kind == CANCEL:
            if registry.nonce_floor(typed.patient) < typed.nonce_floor:
                return None
            return registry.find_cancel(typed.patient, typed.nonce_floor)
        raise ValueError(f"unknown outbox entry kind {entry.kind!r}")


def _same_grant(record: Any, g: cs.Grant) -> bool:
    return (
        record.patient.lower() == g.patient.lower()
        and record.grantee.lower() == g.grantee.lower()
        and record.expires_at == min(g.expires_at, cs.NO_EXPIRY)
        and record.scope_matches(g.scope_hash)
    )


def _domain_json(domain: cs.Domain) -> dict[str, Any]:
    return {"chain_id": domain.chain_id, "verifying_contract": domain.verifying_contract}


def _norm(d: dict[str, Any]) -> tuple[int, str]:
    return int(d["chain_id"]), str(d["verifying_contract"]).lower()


def _b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text[2:] if hex_text.startswith("0x") else hex_text)

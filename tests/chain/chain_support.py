"""Helpers the consent-chain tests share that the product itself has no use for.

They read the contract through its public view functions, or build signed operations the way a share would, so a
test can check the contract and the outbox without going through a vault. The product's own reads are in
``sync.chain.ConsentRegistry``; the receiver's consent check is ``app.services.received``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from sync import consent_sign as cs
from sync import links
from sync import merkle
from sync.chain import ConsentRecord, ConsentRegistry
from sync.errors import ChainUnavailable
from sync.outbox import BATCH, Outbox
from vault.outbox_store import ANCHORED, FAILED, PENDING, OutboxEntry

# ---- signed operations for a share, keyed by the share's key as share creation keys them ---------------------


def grant_for_share(patient_key: bytes, domain: cs.Domain, *, share_key: bytes, fhir_consent: dict[str, Any],
                    expires_at: int, nonce: int, deadline: int,
                    grantee: str = cs.ZERO_ADDRESS) -> tuple[cs.Grant, cs.Signature]:
    grant = cs.Grant(consent_id=links.consent_id(share_key), patient=cs.address_of(patient_key), grantee=grantee,
                     expires_at=expires_at, scope_hash=cs.scope_hash(fhir_consent), nonce=nonce, deadline=deadline)
    return grant, cs.sign(patient_key, domain, grant)


def revoke_for_share(patient_key: bytes, domain: cs.Domain, *, share_key: bytes, nonce: int,
                     deadline: int) -> tuple[cs.Revoke, cs.Signature]:
    revoke = cs.Revoke(links.consent_id(share_key), cs.address_of(patient_key), nonce, deadline)
    return revoke, cs.sign(patient_key, domain, revoke)


def receipt_for_share(accessor_key: bytes, domain: cs.Domain, *, share_key: bytes, patient: str, accessed_at: int,
                      nonce: int) -> tuple[cs.AccessReceipt, cs.Signature]:
    receipt = cs.AccessReceipt(links.consent_id(share_key), patient, cs.address_of(accessor_key), accessed_at, nonce)
    return receipt, cs.sign(accessor_key, domain, receipt)


# ---- contract reads the product does not make ------------------------------------------------------------------


def receipt_anchored_at(registry: ConsentRegistry, root: bytes, receipt_digest: bytes,
                        proof: Sequence[bytes]) -> int:
    return registry.contract.functions.receiptAnchoredAt(root, receipt_digest, list(proof)).call()


def receipt_digest_onchain(registry: ConsentRegistry, rc: cs.AccessReceipt) -> bytes:
    fn = registry.contract.functions.receiptDigest(
        rc.consent_id, to_checksum_address(rc.patient), to_checksum_address(rc.accessor), rc.accessed_at, rc.nonce)
    return bytes(fn.call())


def history(registry: ConsentRegistry) -> list[dict[str, Any]]:
    """Every event of the registry in chain order: what an auditor rebuilds the history from."""
    names = [i["name"] for i in registry.chain.artifact["abi"] if i["type"] == "event"]
    out = [e for n in names for e in registry.events(n)]
    return sorted(out, key=lambda e: (e["block_number"], e["log_index"]))


# ---- a receiver's verdict on a share's consent, straight from the registry --------------------------------------


@dataclass(frozen=True)
class ConsentStatus:
    state: str  # "active", "revoked", "expired", "not-for-you", "unknown", "scope-mismatch", "unchecked"
    verified: bool
    sentence: str
    record: ConsentRecord | None = None

    @property
    def allows_access(self) -> bool:
        return self.state == "active"


def check_consent(registry: ConsentRegistry | None, *, share_key: bytes, patient: str, accessor: str,
                  fhir_consent: dict[str, Any]) -> ConsentStatus:
    if registry is None:
        return ConsentStatus("unchecked", False, "No consent network is configured, so this consent was not checked.")
    cid = links.consent_id(share_key)
    try:
        record = registry.get_consent(cid, patient=patient)
        active = registry.is_active(cid, accessor, patient=patient) if record is not None else False
        now = registry.chain.block_timestamp()
    except ChainUnavailable:
        return ConsentStatus("unchecked", False, "The consent network could not be reached, so this consent was not "
                             "checked.")
    if record is None:
        return ConsentStatus("unknown", True, "The consent network has no record of this share's consent.")
    if not record.scope_matches(cs.scope_hash(fhir_consent)):
        return ConsentStatus("scope-mismatch", True, "The records in this share are not the ones the patient "
                             "consented to.", record)
    if record.revoked:
        return ConsentStatus("revoked", True, "The patient has revoked this share.", record)
    if now >= record.expires_at:
        return ConsentStatus("expired", True, "This share's consent has expired.", record)
    if not active:
        return ConsentStatus("not-for-you", True, "This share was not granted to you.", record)
    return ConsentStatus("active", True, "The patient's consent is on record and active.", record)


# ---- the outbox without a vault ---------------------------------------------------------------------------------


class MemoryOutboxStore:
    """``sync.outbox.OutboxStore`` in memory (the product keeps its outbox in the vault: SqlOutboxStore)."""

    def __init__(self) -> None:
        self._entries: dict[int, OutboxEntry] = {}

    def add(self, kind: str, payload: dict[str, Any], created_at: int) -> int:
        entry_id = len(self._entries) + 1
        self._entries[entry_id] = OutboxEntry(entry_id, kind, payload, created_at)
        return entry_id

    def get(self, entry_id: int) -> OutboxEntry:
        return self._entries[entry_id]

    def pending(self) -> list[OutboxEntry]:
        return [e for e in self._entries.values() if e.state == PENDING]

    def all(self) -> list[OutboxEntry]:
        return list(self._entries.values())

    def mark_anchored(self, entry_id: int, block_number: int, tx_hash: str) -> None:
        e = self._entries[entry_id]
        e.state, e.block_number, e.tx_hash = ANCHORED, block_number, tx_hash
        e.reason = e.message = e.last_error = None

    def mark_failed(self, entry_id: int, reason: str, message: str) -> None:
        e = self._entries[entry_id]
        e.state, e.reason, e.message = FAILED, reason, message

    def note_attempt(self, entry_id: int, error: str | None) -> None:
        e = self._entries[entry_id]
        e.attempts += 1
        e.last_error = error


def queue_batch(outbox: Outbox, domain: cs.Domain,
                receipts: Sequence[tuple[cs.AccessReceipt, cs.Signature]]) -> int:
    """Queue many receipts under one Merkle root (docs/chain.md, "Receipt batches"): the entry keeps each receipt's
    signature, digest and proof, so each can later be proven against the anchored root."""
    digests = []
    for receipt, sig in receipts:
        cs.verify(domain, receipt, sig, receipt.accessor)
        digests.append(cs.digest(domain, receipt))
    tree = merkle.MerkleTree.from_digests(digests)
    payload = {
        "domain": {"chain_id": domain.chain_id, "verifying_contract": domain.verifying_contract},
        "root": "0x" + tree.root.hex(),
        "count": len(digests),
        "receipts": [
            {
                "receipt": cs.to_jsonable(r),
                "signature": "0x" + s.to_bytes().hex(),
                "digest": "0x" + d.hex(),
                "proof": ["0x" + p.hex() for p in tree.proof(i)],
            }
            for i, ((r, s), d) in enumerate(zip(receipts, digests, strict=True))
        ],
    }
    return outbox.store.add(BATCH, payload, int(outbox.clock()))


def proofs_of(entry: OutboxEntry) -> list[dict[str, Any]]:
    """The receipts of a batch entry with their Merkle proofs."""
    assert entry.kind == BATCH
    return entry.payload["receipts"]

"""A share's signed grant, revoke and receipt through the outbox, and what a receiver reads from the registry about
its consent (the app's own check, through the same registry reads, is app.services.received)."""

from __future__ import annotations

import os

from web3 import HTTPProvider, Web3

from sync import consent_sign as cs
from sync import links
from sync.chain import Chain, ConsentRegistry
from sync.outbox import Outbox
from vault.outbox_store import ANCHORED

from conftest import advance
from tests.chain.chain_support import (
    MemoryOutboxStore,
    check_consent,
    grant_for_share,
    receipt_for_share,
    revoke_for_share,
)

CONSENT = {
    "resourceType": "Consent",
    "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "provision": {"type": "permit", "period": {"end": "2030-01-01"}},
}


def _share(registry, admin, patient, *, grantee=cs.ZERO_ADDRESS, expires_in=3600):
    share_key = os.urandom(32)
    now = registry.chain.block_timestamp()
    outbox = Outbox(MemoryOutboxStore())
    grant, sig = grant_for_share(patient.key, registry.domain, share_key=share_key, fhir_consent=CONSENT,
                                    expires_at=now + expires_in, nonce=1, deadline=now + 86_400, grantee=grantee)
    outbox.queue_grant(registry.domain, grant, sig)
    assert outbox.sync(registry, admin).anchored == [1]
    return share_key, outbox


def test_share_grant_puts_only_hmac_and_hash_on_chain(registry, admin, patient, clinician):
    share_key, _ = _share(registry, admin, patient)
    granted = registry.events("ConsentGranted")[0]["args"]
    assert bytes(granted["consentId"]) == links.consent_id(share_key) != share_key
    assert bytes(granted["scopeHash"]) == cs.scope_hash(CONSENT)
    status = check_consent(registry, patient=patient.address, share_key=share_key, accessor=clinician.address, fhir_consent=CONSENT)
    assert status.state == "active" and status.verified and status.allows_access


def test_receiver_refuses_other_records_than_consented(registry, admin, patient, clinician):
    share_key, _ = _share(registry, admin, patient)
    other = {**CONSENT, "provision": {"type": "permit"}}
    status = check_consent(registry, patient=patient.address, share_key=share_key, accessor=clinician.address, fhir_consent=other)
    assert status.state == "scope-mismatch" and not status.allows_access


def test_receiver_sees_revocation_and_expiry(evm, registry, admin, patient, clinician):
    share_key, outbox = _share(registry, admin, patient)
    now = registry.chain.block_timestamp()
    outbox.queue_revoke(registry.domain, *revoke_for_share(patient.key, registry.domain, share_key=share_key,
                                                              nonce=2, deadline=now + 600))
    outbox.sync(registry, admin)
    status = check_consent(registry, patient=patient.address, share_key=share_key, accessor=clinician.address, fhir_consent=CONSENT)
    assert status.state == "revoked" and not status.allows_access

    short_key, _ = _share(registry, admin, patient, expires_in=100)
    advance(evm, 200)
    status = check_consent(registry, patient=patient.address, share_key=short_key, accessor=clinician.address, fhir_consent=CONSENT)
    assert status.state == "expired" and not status.allows_access


def test_directed_share_is_not_for_someone_else(registry, admin, patient, clinician):
    registry.register_practitioner(admin, clinician.address, "did:key:zDr")
    share_key, _ = _share(registry, admin, patient, grantee=clinician.address)
    mine = check_consent(registry, patient=patient.address, share_key=share_key, accessor=clinician.address, fhir_consent=CONSENT)
    other = check_consent(registry, patient=patient.address, share_key=share_key, accessor=cs.address_of(os.urandom(32)),
                          fhir_consent=CONSENT)
    assert mine.allows_access and other.state == "not-for-you" and not other.allows_access


def test_unknown_share_and_unconfigured_or_unreachable_chain_are_said_plainly(registry, patient, clinician,
                                                                               closed_port_url):
    key = os.urandom(32)
    unknown = check_consent(registry, patient=patient.address, share_key=key, accessor=clinician.address, fhir_consent=CONSENT)
    assert unknown.state == "unknown" and unknown.verified and not unknown.allows_access
    none = check_consent(None, patient=patient.address, share_key=key, accessor=clinician.address, fhir_consent=CONSENT)
    assert none.state == "unchecked" and not none.verified and "not checked" in none.sentence
    dead = ConsentRegistry(Chain(Web3(HTTPProvider(closed_port_url, request_kwargs={"timeout": 2},
                                                   exception_retry_configuration=None))), registry.address)
    down = check_consent(dead, patient=patient.address, share_key=key, accessor=clinician.address, fhir_consent=CONSENT)
    assert down.state == "unchecked" and not down.verified and "could not be reached" in down.sentence


def test_receipt_for_share_is_logged(registry, admin, patient, clinician):
    share_key, outbox = _share(registry, admin, patient)
    receipt, sig = receipt_for_share(clinician.key, registry.domain, share_key=share_key,
                                        patient=patient.address, accessed_at=registry.chain.block_timestamp(), nonce=1)
    outbox.queue_access(registry.domain, receipt, sig)
    outbox.sync(registry, admin)
    assert outbox.entries()[-1].state == ANCHORED
    assert registry.find_access(links.consent_id(share_key), cs.digest(registry.domain, receipt)) is not None

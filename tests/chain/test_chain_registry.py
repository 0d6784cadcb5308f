"""The contract's rules on the in-process EVM, driven through the client, with every refusal typed."""

from __future__ import annotations

import os

import pytest

from sync import consent_sign as cs
from sync import merkle
from sync.chain import Sender
from sync.errors import ChainMismatch, ConsentRejected, ConsentSignatureInvalid, NotAMember

from conftest import advance, new_party, signed_grant, signed_receipt, signed_revoke
from tests.chain.chain_support import history, receipt_anchored_at


@pytest.fixture
def outsider(evm):
    return Sender(node_account=evm.node_accounts()[3])


def test_grant_then_active_then_revoke(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient)
    result = registry.grant(admin, grant, sig)
    assert result.block_number > 0
    record = registry.get_consent(grant.consent_id, patient=patient.address)
    assert record.patient == patient.address and not record.revoked
    assert record.expires_at == grant.expires_at and record.scope_matches(grant.scope_hash)
    assert not record.scope_matches(os.urandom(32))
    # bearer link: anyone holding it
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)

    revoke, rsig = signed_revoke(registry, patient, grant.consent_id)
    registry.revoke(admin, revoke, rsig)
    assert registry.get_consent(grant.consent_id, patient=patient.address).revoked
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)


def test_unknown_consent_is_not_active(registry, patient, clinician):
    assert registry.get_consent(os.urandom(32), patient=patient.address) is None
    assert not registry.is_active(os.urandom(32), clinician.address, patient=patient.address)


def test_consent_expires(evm, registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient, expires_in=100)
    registry.grant(admin, grant, sig)
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    advance(evm, 200)
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)


def test_no_expiry_is_stored_as_the_uint40_maximum(registry, admin, patient, clinician):
    now = registry.chain.block_timestamp()
    grant = cs.Grant(os.urandom(32), patient.address, cs.ZERO_ADDRESS, 2**64 - 1, os.urandom(32), 1, now + 600)
    registry.grant(admin, grant, cs.sign(patient.key, registry.domain, grant))
    assert registry.get_consent(grant.consent_id, patient=patient.address).expires_at == cs.NO_EXPIRY
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)


def test_directed_consent_only_for_its_active_practitioner(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient, grantee=clinician.address)
    registry.grant(admin, grant, sig)
    # Not yet registered: a directed consent needs a registered, active practitioner.
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    registry.register_practitioner(admin, clinician.address, "did:key:z6MkClinician")
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    assert not registry.is_active(grant.consent_id, new_party().address, patient=patient.address)
    registry.deactivate_practitioner(admin, clinician.address)
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    did_hash, active = registry.practitioner(clinician.address)
    assert not active and did_hash != bytes(32)


def test_members_managed_by_admin_only(registry, admin, outsider):
    assert registry.is_member(admin.address) and registry.admin() == admin.address
    with pytest.raises(ConsentRejected) as err:
        registry.add_member(outsider, outsider.address)
    assert err.value.reason == "NotAdmin"
    registry.add_member(admin, outsider.address)
    assert registry.is_member(outsider.address)
    registry.remove_member(admin, outsider.address)
    assert not registry.is_member(outsider.address)


# ---- bad input ---------------------------------------------------------------------------------------------------


def _assert_sentence(exc: BaseException) -> None:
    msg = exc.user_message
    assert msg and "\n" not in msg and "Traceback" not in msg and msg.endswith(".")


def test_non_member_sender_is_refused(registry, outsider, patient):
    grant, sig = signed_grant(registry, patient)
    with pytest.raises(NotAMember) as err:
        registry.grant(outsider, grant, sig)
    assert err.value.reason == "NotMember"
    _assert_sentence(err.value)
    with pytest.raises(NotAMember):
        registry.register_practitioner(outsider, outsider.address, "did:key:x")
    assert registry.get_consent(grant.consent_id, patient=patient.address) is None


def test_forged_grant_signature_is_refused(registry, admin, patient):
    mallory = new_party()
    grant, _ = signed_grant(registry, patient)
    forged = cs.sign(mallory.key, registry.domain, grant)  # signed by someone who is not the named patient
    with pytest.raises(ConsentSignatureInvalid) as err:
        registry.grant(admin, grant, forged)
    assert err.value.reason == "InvalidSignature"
    _assert_sentence(err.value)
    assert registry.get_consent(grant.consent_id, patient=patient.address) is None


def test_signature_bound_to_message(registry, admin, patient):
    grant, sig = signed_grant(registry, patient)
    other_scope = cs.Grant(**{**grant.__dict__, "scope_hash": os.urandom(32)})
    with pytest.raises(ConsentSignatureInvalid):
        registry.grant(admin, other_scope, sig)


def test_replayed_grant_is_refused(registry, admin, patient):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    with pytest.raises(ConsentRejected) as err:
        registry.grant(admin, grant, sig)
    assert err.value.reason == "ConsentExists"
    _assert_sentence(err.value)


def test_replayed_grant_after_revoke_cannot_revive(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    registry.revoke(admin, *signed_revoke(registry, patient, grant.consent_id))
    with pytest.raises(ConsentRejected):
        registry.grant(admin, grant, sig)
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)


def test_replayed_revoke_is_refused(registry, admin, patient):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    revoke, rsig = signed_revoke(registry, patient, grant.consent_id)
    registry.revoke(admin, revoke, rsig)
    with pytest.raises(ConsentRejected) as err:
        registry.revoke(admin, revoke, rsig)
    assert err.value.reason == "AlreadyRevoked"


def test_revoke_by_someone_else_is_refused(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    # The clinician signs a revoke naming the patient: not the patient's key.
    revoke, rsig = signed_revoke(registry, clinician, grant.consent_id, patient=patient.address)
    with pytest.raises(ConsentSignatureInvalid) as err:
        registry.revoke(admin, revoke, rsig)
    assert err.value.reason == "NotPatient"
    _assert_sentence(err.value)
    # One naming themself revokes nothing: the clinician has no consent under that id, and the patient's is theirs.
    revoke, rsig = signed_revoke(registry, clinician, grant.consent_id)
    with pytest.raises(ConsentRejected) as err:
        registry.revoke(admin, revoke, rsig)
    assert err.value.reason == "UnknownConsent"
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)


def test_expired_deadline_is_refused(evm, registry, admin, patient):
    grant, sig = signed_grant(registry, patient, deadline_in=50, expires_in=10_000)
    advance(evm, 100)
    with pytest.raises(ConsentSignatureInvalid) as err:
        registry.grant(admin, grant, sig)
    assert err.value.reason == "SignatureExpired"
    _assert_sentence(err.value)


def test_expiry_in_the_past_is_refused(evm, registry, admin, patient):
    grant, sig = signed_grant(registry, patient, expires_in=50, deadline_in=10_000)
    advance(evm, 100)
    with pytest.raises(ConsentRejected) as err:
        registry.grant(admin, grant, sig)
    assert err.value.reason == "ExpiryInPast"


def test_revoke_of_unknown_consent_is_refused(registry, admin, patient):
    with pytest.raises(ConsentRejected) as err:
        registry.revoke(admin, *signed_revoke(registry, patient, os.urandom(32)))
    assert err.value.reason == "UnknownConsent"


def test_cancelled_nonces_void_unsent_signatures(registry, admin, patient):
    grant, sig = signed_grant(registry, patient, nonce=5)
    now = registry.chain.block_timestamp()
    cancel = cs.CancelNonces(patient.address, 10, now + 600)
    registry.cancel_nonces(admin, cancel, cs.sign(patient.key, registry.domain, cancel))
    assert registry.nonce_floor(patient.address) == 10
    with pytest.raises(ConsentRejected) as err:
        registry.grant(admin, grant, sig)
    assert err.value.reason == "NonceCancelled"
    fresh, fsig = signed_grant(registry, patient, nonce=10)
    registry.grant(admin, fresh, fsig)
    # A cancellation signed by someone else is refused.
    forged = cs.CancelNonces(patient.address, 20, now + 600)
    with pytest.raises(ConsentSignatureInvalid):
        registry.cancel_nonces(admin, forged, cs.sign(new_party().key, registry.domain, forged))


def test_no_contract_at_address(evm):
    with pytest.raises(ChainMismatch) as err:
        evm.registry("0x" + "42" * 20)
    _assert_sentence(err.value)
    with pytest.raises(ChainMismatch):
        evm.registry("not an address")


def test_other_contract_at_address_is_refused(evm, admin):
    # A contract whose runtime is a single STOP: code exists but is not a ConsentRegistry.
    tx = {"from": admin.address, "data": "0x600a600c600039600a6000f3" + "00" * 10}
    tx_hash = evm.w3.eth.send_transaction(tx)
    address = evm.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
    assert evm.w3.eth.get_code(address)
    with pytest.raises(ChainMismatch):
        evm.registry(address)


# ---- access receipts ---------------------------------------------------------------------------------------------


def test_single_access_receipt_is_logged_with_its_digest(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    receipt, rsig = signed_receipt(registry, clinician, grant.consent_id, patient=patient.address)
    registry.log_access(admin, receipt, rsig)
    found = registry.find_access(grant.consent_id, cs.digest(registry.domain, receipt))
    assert found is not None
    logs = registry.events("AccessLogged", consentId=grant.consent_id)
    assert logs[0]["args"]["accessor"] == clinician.address


def test_access_receipt_signed_by_another_is_refused(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    receipt, _ = signed_receipt(registry, clinician, grant.consent_id, patient=patient.address)
    forged = cs.sign(new_party().key, registry.domain, receipt)
    with pytest.raises(ConsentSignatureInvalid):
        registry.log_access(admin, receipt, forged)
    with pytest.raises(ConsentRejected) as err:
        registry.log_access(admin, *signed_receipt(registry, clinician, os.urandom(32), patient=patient.address))
    assert err.value.reason == "UnknownConsent"


def test_batch_anchor_and_on_chain_proofs(registry, admin, patient):
    grant, sig = signed_grant(registry, patient)
    registry.grant(admin, grant, sig)
    receipts = [signed_receipt(registry, new_party(), grant.consent_id, nonce=i, patient=patient.address)
                for i in range(10)]
    digests = [cs.digest(registry.domain, r) for r, _ in receipts]
    tree = merkle.MerkleTree.from_digests(digests)
    registry.anchor_batch(admin, tree.root, len(digests))
    anchored = registry.anchored_at(tree.root)
    assert anchored > 0
    for i, d in enumerate(digests):
        assert receipt_anchored_at(registry, tree.root, d, tree.proof(i)) == anchored
    assert receipt_anchored_at(registry, tree.root, os.urandom(32), tree.proof(0)) == 0
    with pytest.raises(ConsentRejected) as err:
        registry.anchor_batch(admin, tree.root, len(digests))
    assert err.value.reason == "RootAlreadyAnchored"
    with pytest.raises(ConsentRejected):
        registry.anchor_batch(admin, os.urandom(32), 0)


def test_history_rebuilds_from_events_alone(registry, admin, patient, clinician):
    grant, sig = signed_grant(registry, patient, grantee=clinician.address)
    registry.register_practitioner(admin, clinician.address, "did:key:zDr")
    registry.grant(admin, grant, sig)
    registry.log_access(admin, *signed_receipt(registry, clinician, grant.consent_id, patient=patient.address))
    registry.revoke(admin, *signed_revoke(registry, patient, grant.consent_id))
    names = [e["event"] for e in history(registry)]
    assert names == ["AdminTransferred", "MemberAdded", "PractitionerRegistered", "ConsentGranted",
                     "AccessLogged", "ConsentRevoked"]
    granted = registry.events("ConsentGranted")[0]["args"]
    assert bytes(granted["scopeHash"]) == grant.scope_hash and granted["grantee"] == clinician.address

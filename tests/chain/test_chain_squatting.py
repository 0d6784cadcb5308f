"""Consent squatting: whoever sees a link (and so its consent id) must not be able to block, shadow or revoke the
patient's own consent by registering the same id first under another key."""

from __future__ import annotations

from conftest import new_party, signed_grant, signed_revoke


def test_squatter_cannot_block_the_patients_grant_or_revoke(registry, admin, patient, clinician):
    squatter = new_party()
    grant, sig = signed_grant(registry, patient)
    # The squatter saw the link (or the pending grant) and registers the same id first, under their own key.
    squat, squat_sig = signed_grant(registry, squatter, consent_id=grant.consent_id, expires_in=7200)
    registry.grant(admin, squat, squat_sig)

    registry.grant(admin, grant, sig)  # the patient's grant still lands
    assert registry.get_consent(grant.consent_id, patient=patient.address).patient == patient.address
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)

    # The squatter revoking "their" consent leaves the patient's alone, and the patient's revoke works.
    registry.revoke(admin, *signed_revoke(registry, squatter, grant.consent_id))
    assert registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    registry.revoke(admin, *signed_revoke(registry, patient, grant.consent_id))
    assert not registry.is_active(grant.consent_id, clinician.address, patient=patient.address)
    # The squatter's entry is its own: it never made the patient's consent look active or revoked.
    assert registry.get_consent(grant.consent_id, patient=squatter.address).patient == squatter.address

"""The write-back's pieces on their own: the card's organisation, the resources and their validation as FHIR R4, the
signature's bytes, what is refused before anything is published, and who a share names as its patient."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from app.services import writeback
from sync import links
from vault import crypto

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=timezone.utc)


def _author(seed: bytes) -> writeback.Author:
    did = links.did_key_from_ed25519(crypto.ed25519_public(seed))
    return writeback.Author(did, "0x" + "ab" * 20, "Dr Ada Sample", "Riverside Practice")


def _recipient(seed: bytes) -> writeback.Recipient:
    did = links.did_key_from_ed25519(crypto.ed25519_public(seed))
    return writeback.Recipient(did, {"reference": "Patient/p1"}, "card")


def test_a_card_carries_an_organisation_and_older_cards_still_read():
    seed = crypto.ed25519_new_seed()
    card = links.card_from_link(links.build_card(seed, name="Dr A", organisation="Clinic", address=None, iat=1))
    assert (card.name, card.organisation) == ("Dr A", "Clinic")
    plain = links.build_card(seed, name="Dr A", address=None, iat=1)
    assert links.card_from_link(plain).organisation is None
    assert "org" not in json.loads(links.b64u_decode(plain[len(links.MV_PREFIX):]))["body"]
    with pytest.raises(ValueError):
        links.build_card(seed, name="Dr A", organisation="x" * 81, address=None, iat=1)


def test_an_organisation_too_long_is_refused_even_when_signed():
    """A card built by other software with an 81-character organisation: the signature holds, the card does not."""
    seed = crypto.ed25519_new_seed()
    body = {"name": "Dr A", "address": None, "org": "x" * 81,
            "x25519": links.b64u_encode(crypto.x25519_public_from_ed25519(crypto.ed25519_public(seed)))}
    text = links._sign(seed, "card", body, 1)
    from sync.errors import LinkInvalid
    with pytest.raises(LinkInvalid, match="organisation is empty or too long"):
        links.card_from_link(text)


def test_the_resources_are_valid_fhir_r4_and_name_the_patient_and_the_clinician():
    from vault.records.fhir_models import validate_resource
    author_seed, patient_seed = crypto.ed25519_new_seed(), crypto.ed25519_new_seed()
    items = [writeback.Note("Seen today."), writeback.Measurement("blood-pressure", (128, 82.456)),
             writeback.Measurement("oxygen-saturation", (97.0,))]
    resources = writeback.build_resources(_author(author_seed), _recipient(patient_seed), items, NOW)
    bundle = writeback.sign(author_seed, _author(author_seed), resources, NOW)
    for e in bundle["entry"]:
        validate_resource(e["resource"])
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Practitioner", "Organization", "DocumentReference", "Observation", "Observation", "Provenance"]
    bp = bundle["entry"][3]["resource"]
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [128, 82.46]
    assert {c["valueQuantity"]["code"] for c in bp["component"]} == {"mm[Hg]"}
    spo2 = bundle["entry"][4]["resource"]
    assert spo2["valueQuantity"] == {"value": 97, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    assert [c["code"] for c in spo2["code"]["coding"]] == ["59408-5", "2708-6"]
    for r in (bundle["entry"][2]["resource"], bp, spo2):
        assert r["subject"] == {"reference": "Patient/p1"}
    prov = bundle["entry"][5]["resource"]
    assert {t["reference"].split("/")[0] for t in prov["target"]} == {"DocumentReference", "Observation"}
    assert prov["signature"][0]["who"]["identifier"]["value"] == _author(author_seed).did


def test_the_signature_covers_every_resource_and_the_provenance():
    seed = crypto.ed25519_new_seed()
    author = _author(seed)
    bundle = writeback.sign(seed, author, writeback.build_resources(author, _recipient(seed), [writeback.Note("x")],
                                                                    NOW), NOW)
    assert writeback.check_signature([bundle], author.did).status == "valid"
    # the signed bytes are the documented ones
    resources = [e["resource"] for e in bundle["entry"]]
    prov = resources[-1]
    message = writeback.SIGNATURE_CONTEXT + links.canonical_json(
        {"signer": author.did, "resources": resources[:-1], "provenance": {k: v for k, v in prov.items()
                                                                          if k != "signature"}})
    import base64
    assert crypto.ed25519_verify(crypto.ed25519_public(seed), message,
                                 base64.b64decode(prov["signature"][0]["data"]))
    for path, value in ((("entry", 0, "resource", "name", 0, "text"), "Dr Someone Else"),
                        (("entry", -1, "resource", "recorded"), "2026-03-05T00:00:00+00:00"),
                        (("entry", -1, "resource", "target", 0, "reference"), "Observation/other")):
        changed = json.loads(json.dumps(bundle))
        node = changed
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert writeback.check_signature([changed], author.did).status == writeback.BAD_SIGNATURE, path
    assert writeback.check_signature([bundle], _author(crypto.ed25519_new_seed()).did).status == \
        writeback.BAD_SIGNATURE
    stripped = {**bundle, "entry": bundle["entry"][:-1]}
    assert writeback.check_signature([stripped], author.did).status == writeback.NO_SIGNATURE


@pytest.mark.parametrize("items, sentence", [
    ([], "Write a note or add a measurement first"),
    ([writeback.Note("   ")], "The note is empty"),
    ([writeback.Note("x" * 20_001)], "longer than 20,000 characters"),
    ([writeback.Measurement("pulse", (70,))], "not one medvault knows"),
    ([writeback.Measurement("blood-pressure", (120,))], "needs 2 value(s)"),
    ([writeback.Measurement("heart-rate", (float("nan"),))], "between 20 and 300"),
    ([writeback.Measurement("body-temperature", (98.6,))], "between 25 and 45 \u00b0C"),
    ([writeback.Note("x")] * 21, "at most 20"),
])
def test_what_cannot_be_sent_is_refused_in_one_sentence(items, sentence):
    with pytest.raises(writeback.WriteBackError) as caught:
        writeback.check_items(items)
    assert sentence in caught.value.user_message and "nothing was sent" in caught.value.user_message


def test_who_a_share_names_as_its_patient():
    patient = links.did_key_from_ed25519(crypto.ed25519_public(crypto.ed25519_new_seed()))

    class Opened:
        def __init__(self, kind, sender, entries):
            self.kind, self.sender = kind, sender
            self.bundles = [{"resourceType": "Bundle", "type": "collection",
                             "entry": [{"resource": r} for r in entries]}]

    consent = {"resourceType": "Consent", "performer": [{"identifier": {"system": writeback.DID_SYSTEM,
                                                                        "value": patient}}],
               "patient": {"reference": "Patient/p9"}}
    conditions = [{"resourceType": "Condition", "subject": {"reference": "Patient/p9"}}] * 2
    signed = writeback.Recipient.from_opened(Opened("medvault-share", patient, conditions + [consent]))
    assert (signed.did, signed.how, signed.subject) == (patient, "signed share", {"reference": "Patient/p9"})
    open_link = writeback.Recipient.from_opened(Opened("shlink", None, conditions + [consent]))
    assert (open_link.did, open_link.how) == (patient, "share's consent record")
    named = writeback.Recipient.from_opened(Opened("shlink", None, [
        {"resourceType": "Patient", "id": "p9", "name": [{"given": ["Ada"], "family": "Lovelace"}]}, consent]))
    assert named.subject == {"reference": "Patient/p9"} and named.display == "Ada Lovelace"
    from sync.errors import LinkInvalid
    with pytest.raises(LinkInvalid, match="ask the patient for their medvault card"):
        writeback.Recipient.from_opened(Opened("shlink", None, conditions))

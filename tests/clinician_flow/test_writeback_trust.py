"""Issue 12, finding 2: a "clinician-signed" record must name who signed, and nothing a note repeats gains trust.

A return link signed by a fresh key used to import as clinician-signed, and through de-duplication it raised the
trust of the patient's existing records it copied. Here the forger is a real medvault vault of its own (a key
nobody registered or confirmed); its write-back is published on its embedded gateway and fetched by the patient's
import over the wire.
"""

from __future__ import annotations

import json

import pytest

from tests.clinician_flow.conftest import first_record, trust_of
from tests.records.records_support import row_counts


def _local_fetch(monkeypatch):
    """The import fetches from this computer's gateways (the receiver refuses plain http to loopback otherwise)."""
    import sync.receiver as receiver
    real = receiver.open_link
    monkeypatch.setattr(receiver, "open_link", lambda *a, **k: real(*a, **{**k, "allow_local_http": True}))


def _publish(author, bundle: dict | bytes, recipient) -> str:
    """Encrypt ``bundle`` (or JSON bytes, as another program might have written them) for ``recipient``, serve it
    from ``author``'s vault and return the signed return link, exactly as ``writeback.create`` does, but with
    whatever the bundle holds."""
    from sync import jwe, links, shares
    from vault import shares_store
    vault = author.vault
    if isinstance(bundle, bytes):
        token, key = jwe.encrypt(bundle, cty=jwe.CTY_FHIR, key=jwe.new_key())
        data = token.encode("ascii")
    else:
        data, key = jwe.encrypt_bundle(bundle, key=jwe.new_key())
    store, kind = shares.store_for(vault)
    cid = store.add(data)
    now = int(vault.now().timestamp())
    link = links.build_return(vault.identity_keys.ed25519_seed, recipient.card, url=store.gateway_url(cid), key=key,
                              exp=now + 3600, label="Note", iat=now)
    with vault.transaction() as conn:
        shares_store.insert(conn, shares_store.ShareRow(
            id=cid[-12:], created_at=now, expires_at=now + 3600, kind="directed", recipient=recipient.did,
            recipient_name=None, label="Note", cid=cid, backend=kind, url=store.gateway_url(cid),
            consent_id=links.consent_id(key).hex(), resources=1, state="active", revoked_at=None, link=link))
    author.serve()
    return link


def _forged(author, recipient, extra: list[dict], *, note: str = "All fine, carry on."):
    """A write-back signed (validly) by ``author``'s own key, carrying ``extra`` resources besides its note."""
    from app.services import writeback
    from app.services.clinician import save
    save(author.vault, clinician=True, name="Dr Impostor", organisation="Nowhere Clinic")
    who = writeback.author_of(author.vault)
    now = author.vault.now()
    resources = writeback.build_resources(who, recipient, [writeback.Note(note)], now) + extra
    return writeback.sign(author.vault.identity_keys.ed25519_seed, who, resources, now)


def _recipient(patient):
    from app.services import writeback
    condition = first_record(patient.vault, "Patient")
    return writeback.Recipient(patient.vault.identity.did, {"reference": f"Patient/{condition['id']}"}, "card")


def _import(patient, link):
    from app.services import importing
    return importing.import_text(patient.vault, link, opts=importing.options())


def test_a_signed_copy_never_raises_the_trust_of_a_record_already_in_the_vault(party):
    """Store level: a later source claiming a clinician's signature repeats an existing record, under its own id
    and under a new one; the record keeps the trust it had. An issuer-verified copy still vouches (its signature
    covers exactly that content)."""
    from vault.records.importer import ImportOptions, ImportService
    patient = party("patient", synthea=True)
    condition = first_record(patient.vault, "Condition")
    assert trust_of(patient.vault, "Condition", condition["id"]) == "unverified"
    renamed = {**condition, "id": "copy-under-another-id"}
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": condition}, {"resource": renamed}]}
    report = ImportService(patient.vault, ImportOptions(trust="clinician-signed")).import_data(
        json.dumps(bundle).encode(), "copies.json")
    assert report.duplicates == 2 and report.added == 0
    assert trust_of(patient.vault, "Condition", condition["id"]) == "unverified"

    issuer = ImportService(patient.vault, ImportOptions(trust="issuer-verified")).import_data(
        json.dumps({**bundle, "id": "another-payload"}).encode(), "card-copies.json")
    assert issuer.duplicates == 2
    assert trust_of(patient.vault, "Condition", condition["id"]) == "issuer-verified"


def test_a_return_link_signed_by_an_unknown_key_is_not_clinician_signed(party, monkeypatch):
    """The full path: the forger's note (valid signature, unknown key) with a copy of the patient's own Condition
    is fetched from the forger's gateway and imported. The note is "signed by an unknown key"; the Condition keeps
    its trust; the outcome says so in words."""
    _local_fetch(monkeypatch)
    patient, forger = party("patient", synthea=True), party("forger")
    condition = first_record(patient.vault, "Condition")
    link = _publish(forger, _forged(forger, _recipient(patient), [condition]), _recipient(patient))

    outcomes = _import(patient, link)
    assert [o.ok for o in outcomes] == [True], [o.sentence for o in outcomes]
    report = outcomes[0].report
    assert report.trust == "unknown-signer"
    assert report.added >= 2 and report.duplicates == 1
    assert trust_of(patient.vault, "Condition", condition["id"]) == "unverified"
    with patient.vault.read() as conn:
        notes = conn.execute("SELECT trust FROM rec_resources WHERE rtype = 'DocumentReference' AND source_id = ?",
                             (report.source_id,)).fetchall()
        kind = conn.execute("SELECT kind FROM rec_sources WHERE id = ?", (report.source_id,)).fetchone()[0]
    assert notes == [("unknown-signer",)] and kind == "clinician-note"
    assert "unknown key" in outcomes[0].sentence and "Dr Impostor" in outcomes[0].sentence


def test_a_confirmed_card_makes_its_notes_clinician_signed_and_recheck_raises_only_the_notes_own_records(
        party, monkeypatch):
    """Offline, without any network: the patient confirms the clinician's card (after the note arrived); looking
    the signer up again raises the note's own records, not the copy it carried."""
    from app.services import writeback
    from sync import links
    _local_fetch(monkeypatch)
    patient, doctor = party("patient", synthea=True), party("doctor")
    condition = first_record(patient.vault, "Condition")
    link = _publish(doctor, _forged(doctor, _recipient(patient), [condition], note="Seen today."), _recipient(patient))
    report = _import(patient, link)[0].report
    assert report.trust == "unknown-signer"

    card = links.card_from_link(doctor.session.card())
    writeback.confirm_card(patient.vault, card)
    again = writeback.recheck(patient.vault)
    assert again.raised == [report.source_id] and not again.unreachable
    with patient.vault.read() as conn:
        own = conn.execute("SELECT DISTINCT trust FROM rec_resources WHERE source_id = ?",
                           (report.source_id,)).fetchall()
    assert own == [("clinician-signed",)]
    assert trust_of(patient.vault, "Condition", condition["id"]) == "unverified"

    # the next note from the same card is clinician-signed at once, and says whose card it was
    second = _publish(doctor, _forged(doctor, _recipient(patient), [], note="Follow-up booked."), _recipient(patient))
    outcome = _import(patient, second)[0]
    assert outcome.report.trust == "clinician-signed"
    assert "whose card you confirmed" in outcome.sentence

    # the patient's Activity tells it in words, newest first
    said = [e.words for e in patient.session.activity().entries][:5]
    assert said[0] == "Received a clinician's note (2 records): signed by a clinician whose card you confirmed"
    assert said[1].startswith("Imported 2 records from a clinician's note")   # the same clinician, known
    assert said[2] == "A clinician's note is now verified: signed by a clinician whose card you confirmed"
    assert said[3] == "Confirmed a clinician's card: notes signed with it show as signed by them"
    assert said[4].startswith("Received a clinician's note (4 records): signed by an unknown key")


def test_a_tampered_signature_imports_as_unverified_and_says_why(party, monkeypatch):
    from vault.records import describe, query
    _local_fetch(monkeypatch)
    patient, forger = party("patient", synthea=True), party("forger")
    bundle = _forged(forger, _recipient(patient), [])
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "DocumentReference":
            e["resource"]["description"] = "Altered after signing"
    outcome = _import(patient, _publish(forger, bundle, _recipient(patient)))[0]
    assert outcome.report.trust == "unverified"
    assert "does not match its content" in outcome.sentence
    doc = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference")
    with patient.vault.read() as conn:
        words = dict(describe.describe_sources(query.provenance(conn, "DocumentReference", doc["id"])))
    assert words["Came from"] == "A note a clinician handed you"
    assert words["Verified"].startswith("Not verified")


def test_a_note_signed_in_someone_elses_name_is_not_theirs(party, monkeypatch):
    """The link is signed by the forger but the note's Provenance claims the real doctor's did:key."""
    from app.services import writeback
    _local_fetch(monkeypatch)
    patient, forger, doctor = party("patient", synthea=True), party("forger"), party("doctor")
    bundle = _forged(forger, _recipient(patient), [])
    prov = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance")
    prov["signature"][0]["who"]["identifier"]["value"] = doctor.vault.identity.did
    writeback.confirm_card(patient.vault, __import__("sync.links", fromlist=["x"]).card_from_link(
        doctor.session.card()))
    outcome = _import(patient, _publish(forger, bundle, _recipient(patient)))[0]
    assert outcome.report.trust == "unverified"
    assert "not by the person who signed the link" in outcome.sentence


def test_a_note_may_add_records_but_never_replace_one(party, monkeypatch):
    """A write-back carrying a changed version of the patient's own record is refused whole; the vault is as it
    was."""
    _local_fetch(monkeypatch)
    patient, forger = party("patient", synthea=True), party("forger")
    condition = first_record(patient.vault, "Condition")
    changed = {**condition, "clinicalStatus": {"text": "resolved, says nobody"}}
    link = _publish(forger, _forged(forger, _recipient(patient), [changed]), _recipient(patient))
    with patient.vault.read() as conn:
        before = row_counts(conn)
    outcomes = _import(patient, link)
    assert not outcomes[0].ok and "would replace a record already in your vault" in outcomes[0].sentence
    with patient.vault.read() as conn:
        assert row_counts(conn) == before
    assert first_record(patient.vault, "Condition") == condition


@pytest.mark.parametrize("trust, words", [("unknown-signer", "Signed by an unknown key"),
                                          ("clinician-signed", "Signed by a clinician")])
def test_trust_words(trust, words):
    from vault.records import describe
    assert describe.TRUST_SHORT[trust] == words
    assert describe.plain_trust(trust).startswith("Verified" if trust == "clinician-signed" else "Not verified")


def test_keeping_a_copy_of_a_return_link_judges_its_signer_too(party):
    """The clinician window's "Keep a copy" (``received.keep_copy``) used the same shortcut: any signed return link
    was kept as clinician-signed."""
    from app.services import received as rc
    patient, forger = party("patient", synthea=True), party("forger")
    link = _publish(forger, _forged(forger, _recipient(patient), []), _recipient(patient))
    opened = rc.open_scanned(rc.Scanned("link", link), vault=patient.vault, allow_local_http=True)
    assert opened.opened, opened.refusal
    reports = rc.keep_copy(patient.vault, opened)
    assert [r.trust for r in reports] == ["unknown-signer"]


def test_what_a_forger_writes_as_their_name_is_printed_harmlessly(party, monkeypatch):
    """The signer's name in a note is the signer's own claim: terminal escapes and endless text never reach the
    sentence the CLI prints or the source's marks."""
    from app.services import writeback
    _local_fetch(monkeypatch)
    patient, forger = party("patient", synthea=True), party("forger")
    who = writeback.Author(forger.vault.identity.did, forger.vault.identity.eth_address,
                           "Dr \x1b[2J\x1b[1;1Hconsent passed\u202e", "x" * 500)
    now = forger.vault.now()
    resources = writeback.build_resources(who, _recipient(patient), [writeback.Note("hello")], now)
    bundle = writeback.sign(forger.vault.identity_keys.ed25519_seed, who, resources, now)
    outcome = _import(patient, _publish(forger, bundle, _recipient(patient)))[0]
    assert outcome.report.trust == "unknown-signer"
    assert not any(ch in outcome.sentence for ch in "\x1b\u202e")
    assert "Dr [2J [1;1Hconsent passed" in outcome.sentence and len(outcome.sentence) < 400


def test_a_withdrawn_write_back_is_no_longer_served(party):
    """The clinician takes a note back before the patient fetched it: the gateway stops serving it and the patient's
    import says so; nothing reaches the vault and no consent change is queued (a note has none)."""
    from app.services import writeback
    from sync.errors import LinkInactive
    patient, doctor = party("patient", synthea=True), party("doctor")
    doctor.session.set_profile(clinician_mode=True, name="Dr Ada Sample")
    back = doctor.session.write_back(_recipient(patient), [writeback.Note("Please call the practice.")])
    doctor.serve()
    assert "no longer served" in writeback.withdraw(doctor.vault, back.id)
    assert [r["state"] for r in doctor.session.list_shares()] == ["revoked"]
    assert doctor.session.chain_status().outbox == []
    with patient.vault.read() as conn:
        before = row_counts(conn)
    with pytest.raises(LinkInactive):
        patient.session.import_sources([back.link], allow_local_http=True)
    with patient.vault.read() as conn:
        assert row_counts(conn) == before

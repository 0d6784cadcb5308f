"""The clinician's half of the story end to end, on the real peers: a ganache node for the consent network and the
suite's js-ipfs node for files, two people's vaults (and their clinic's, the consortium member that deployed the
registry and registers its clinicians), real loopback gateways, and QR codes read back from PNG files.

Online: an open share (kept on the IPFS node) and a directed share (served by the patient's own gateway) are scanned
from their PNGs and opened with the consent checked on chain; the patient sees who opened them; the clinician
writes back to each, and the patient imports the notes as clinician-signed after asking the practitioner registry;
revoking makes the clinician's next open refused.

Offline (the chain node stopped after the set-up): sharing, opening, writing back and importing still work, with
what could not be checked said so; every consent change and receipt waits in its outbox; when the node is back the
outboxes drain, the patient sees the opening, the note's signer is looked up again, and the revoked share is refused.
"""

from __future__ import annotations

import pytest

from tests.clinician_flow.conftest import trust_of


def _status(result) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def _network(party, chain_node, ipfs_node):
    """A clinic deploys the registry and admits the patient and the clinician; the clinician's card (scanned from
    its QR) is registered as a practitioner by the clinic. Returns (clinic, patient, doctor, card)."""
    from app.services import chain, clinician
    from sync import links, qr
    clinic, patient, doctor = party("clinic"), party("patient", synthea=True), party("doctor")
    settings = chain.deploy(clinic.vault, chain_node.url)
    for p in (patient, doctor):
        chain.connect(p.vault, chain_node.url, settings.contract)
        chain.add_member(clinic.vault, p.vault.identity.eth_address)
    doctor.session.set_profile(clinician_mode=True, name="Dr Ada Sample", organisation="Riverside Practice")
    assert doctor.session.practitioner_registration().state == clinician.NOT_REGISTERED
    qr.write_png(doctor.session.card(), doctor.vault.folder.parent / "card.png")
    card = links.card_from_link(qr.decode_file(doctor.vault.folder.parent / "card.png"))
    assert (card.name, card.organisation) == ("Dr Ada Sample", "Riverside Practice")
    clinician.register(clinic.vault, card)
    assert doctor.session.practitioner_registration().state == clinician.REGISTERED
    patient.session.use_ipfs_backend(ipfs_node.api_url, ipfs_node.gateway_url)
    doctor.session.use_ipfs_backend(ipfs_node.api_url, ipfs_node.gateway_url)
    return clinic, patient, doctor, card


def _share_both(patient, card, tmp_path):
    """An open IPS share on the IPFS node and a directed share of conditions on the patient's gateway, as PNGs."""
    from app.services import sharing
    from sync import qr
    open_share = patient.session.create_share(sharing.selection(ips=True), expires="1d", backend="ipfs")
    directed = patient.session.create_share(sharing.selection(types=["Condition"]), expires="1d", recipient=card,
                                            backend="embedded")
    patient.serve()
    qr.write_png(open_share.link, tmp_path / "open.png")
    qr.write_png(directed.link, tmp_path / "directed.png")
    return open_share, directed


def _write_back(doctor, opened, *, backend, pulse=72):
    """A note and two measurements (two write-backs with the same content in the same second would be the same
    records to the patient's vault, so tests vary ``pulse``)."""
    from app.services import writeback
    recipient = writeback.Recipient.from_opened(opened)
    items = [writeback.Note(f"Reviewed today; no change to treatment. Pulse {pulse}."),
             writeback.Measurement("heart-rate", (pulse,)), writeback.Measurement("blood-pressure", (131, 84))]
    back = doctor.session.write_back(recipient, items, backend=backend)
    if backend == "embedded":
        doctor.serve()
    return recipient, back


def _import_note(patient, back, tmp_path, name):
    from sync import qr
    qr.write_png(back.link, tmp_path / name)
    outcomes = patient.session.import_sources([qr.decode_file(tmp_path / name)], allow_local_http=True)
    assert [o.ok for o in outcomes] == [True], [o.sentence for o in outcomes]
    return outcomes[0]


def _note_trusts(patient, source_id) -> set[str]:
    with patient.session.read() as conn:
        return {t for (t,) in conn.execute("SELECT trust FROM rec_resources WHERE source_id = ? AND rtype IN "
                                           "('DocumentReference', 'Observation')", (source_id,))}


def _opened_words(patient) -> list[str]:
    from app.services import activity
    return activity.opened_words(patient.session.share_accesses(), patient.session.list_shares())


def test_the_story_online(party, chain_node, ipfs_node, tmp_path):
    from sync.errors import ShareRevoked
    _clinic, patient, doctor, card = _network(party, chain_node, ipfs_node)
    open_share, directed = _share_both(patient, card, tmp_path)
    assert open_share.chain == "recorded" and directed.chain == "recorded"

    seen_open = doctor.session.open_link(str(tmp_path / "open.png"), allow_local_http=True, check_chain=True)
    seen_directed = doctor.session.open_link(str(tmp_path / "directed.png"), allow_local_http=True, check_chain=True)
    assert _status(seen_open)["consent"] == "passed" and _status(seen_open)["cid"] == "passed"
    for check in ("signature", "recipient", "consent", "consent-scope", "cid", "decryption"):
        assert _status(seen_directed)[check] == "passed", check
    received = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for b in seen_directed.bundles
                for e in b["entry"] if e["resource"]["resourceType"] != "Consent"}
    assert received == set(directed.created.resource_ids) and all(r.startswith("Condition/") for r in received)
    receipts = [r for r in doctor.session.chain_status().outbox if r["kind"] == "access"]
    assert [r["state"] for r in receipts] == ["anchored", "anchored"]

    words = _opened_words(patient)
    assert len(words) == 2
    assert sum("Dr Ada Sample opened" in w for w in words) == 1                 # the directed share names them
    assert sum("a registered practitioner" in w for w in words) == 1           # the open share: the registry

    _r1, back_directed = _write_back(doctor, seen_directed, backend="embedded")
    recipient_open, back_open = _write_back(doctor, seen_open, backend="ipfs", pulse=75)
    assert _r1.how == "signed share" and recipient_open.how == "share's consent record"
    assert _r1.did == recipient_open.did == patient.vault.identity.did
    for back, png in ((back_directed, "back1.png"), (back_open, "back2.png")):
        outcome = _import_note(patient, back, tmp_path, png)
        assert outcome.report.trust == "clinician-signed"
        assert "a practitioner registered on the consent network" in outcome.sentence
        assert _note_trusts(patient, outcome.report.source_id) == {"clinician-signed"}
    said = [e.words for e in patient.session.activity().entries if e.event == "writeback_received"]
    assert len(said) == 2 and all(w.endswith("signed by a practitioner registered on the consent network")
                                  for w in said)
    wrote = [e.words for e in doctor.session.activity().entries if e.event == "writeback"]
    assert wrote == ["Wrote back to a patient, signed by you: 1 note and 2 measurements"] * 2

    for share in (open_share, directed):
        assert patient.session.revoke_share(share.created.id).chain == "recorded"
    for png in ("open.png", "directed.png"):
        with pytest.raises(ShareRevoked):
            doctor.session.open_link(str(tmp_path / png), allow_local_http=True, check_chain=True)


def test_the_story_with_the_chain_node_stopped(party, chain_node, ipfs_node, tmp_path):
    from sync.errors import LinkInactive, ShareRevoked
    _clinic, patient, doctor, card = _network(party, chain_node, ipfs_node)
    chain_node.stop()

    open_share, directed = _share_both(patient, card, tmp_path)
    assert open_share.chain.startswith("queued") and directed.chain.startswith("queued")
    seen_directed = doctor.session.open_link(str(tmp_path / "directed.png"), allow_local_http=True,
                                             check_chain=True)
    seen_open = doctor.session.open_link(str(tmp_path / "open.png"), allow_local_http=True, check_chain=True)
    for seen in (seen_directed, seen_open):
        assert _status(seen)["consent"] == "not_checked" and _status(seen)["cid"] == "passed"
    assert _status(seen_directed)["signature"] == "passed" and _status(seen_directed)["recipient"] == "passed"
    assert [r["state"] for r in doctor.session.chain_status().outbox] == ["pending", "pending"]

    # writing back needs no network; the patient cannot ask the registry, so the note waits as "unknown key"
    _recipient, back = _write_back(doctor, seen_directed, backend="embedded")
    outcome = _import_note(patient, back, tmp_path, "back.png")
    assert outcome.report.trust == "unknown-signer"
    assert "could not be reached" in outcome.sentence
    assert _note_trusts(patient, outcome.report.source_id) == {"unknown-signer"}
    assert patient.session.recheck_clinician_notes().unreachable

    revoked = patient.session.revoke_share(directed.created.id)
    assert revoked.chain.startswith("queued")
    with pytest.raises(LinkInactive):      # the patient's gateway stopped serving it, chain or no chain
        doctor.session.open_link(str(tmp_path / "directed.png"), allow_local_http=True, check_chain=True)
    patient.session.revoke_share(open_share.created.id)
    assert [r["state"] for r in patient.session.chain_status().outbox] == ["pending"] * 4
    assert not patient.session.share_accesses().known

    chain_node.start()
    drained = patient.session.sync_chain()
    assert len(drained.anchored) == 4 and not drained.failed
    assert len(doctor.session.sync_chain().anchored) == 2
    assert {r["state"] for r in patient.session.chain_status().outbox} == {"anchored"}
    assert {r["state"] for r in doctor.session.chain_status().outbox} == {"anchored"}
    assert len(_opened_words(patient)) == 2

    again = patient.session.recheck_clinician_notes()
    assert again.raised == [outcome.report.source_id]
    assert _note_trusts(patient, outcome.report.source_id) == {"clinician-signed"}
    with pytest.raises(ShareRevoked):
        doctor.session.open_link(str(tmp_path / "open.png"), allow_local_http=True, check_chain=True)


def test_a_write_back_from_a_key_the_registry_does_not_know_stays_unverified(party, chain_node, ipfs_node, tmp_path,
                                                                             monkeypatch):
    """A second clinician vault, never registered, writes back to the patient (after opening the patient's open
    share, so it has everything a real note needs); and one claims the registered doctor's chain account. Both are
    imported as signed by an unknown key and shown so; the registered doctor's notes still verify."""
    from app.services import writeback
    from vault.records import describe, query
    _clinic, patient, doctor, card = _network(party, chain_node, ipfs_node)
    stranger = party("stranger")
    from app.services import chain
    chain.connect(stranger.vault, chain_node.url, patient.session.chain_status().contract)
    stranger.session.set_profile(clinician_mode=True, name="Dr Ada Sample", organisation="Riverside Practice")
    open_share, _directed = _share_both(patient, card, tmp_path)
    seen = stranger.session.open_link(str(tmp_path / "open.png"), allow_local_http=True)

    _r, back = _write_back(stranger, seen, backend="embedded")
    outcome = _import_note(patient, back, tmp_path, "stranger.png")
    assert outcome.report.trust == "unknown-signer"
    assert "no registered practitioner holds this key" in outcome.sentence

    # the same, claiming the registered doctor's account in the note: the key is still not theirs
    real = writeback.author_of

    def impostor(vault):
        who = real(vault)
        return writeback.Author(who.did, card.address, who.name, who.organisation) if vault is stranger.vault \
            else who
    monkeypatch.setattr(writeback, "author_of", impostor)
    _r, claimed = _write_back(stranger, seen, backend="embedded", pulse=80)
    monkeypatch.undo()
    second = _import_note(patient, claimed, tmp_path, "claimed.png")
    assert second.report.trust == "unknown-signer"

    doc = next(r.split("/", 1)[1] for r in claimed.resources if r.startswith("DocumentReference/"))
    assert trust_of(patient.vault, "DocumentReference", doc) == "unknown-signer"
    with patient.session.read() as conn:
        words = dict(describe.describe_sources(query.provenance(conn, "DocumentReference", doc)))
    assert words["Verified"].startswith("Not verified: signed by an unknown key")
    assert describe.TRUST_SHORT["unknown-signer"] == "Signed by an unknown key"

    seen_by_doctor = doctor.session.open_link(str(tmp_path / "open.png"), allow_local_http=True)
    _r, genuine = _write_back(doctor, seen_by_doctor, backend="ipfs", pulse=90)
    assert _import_note(patient, genuine, tmp_path, "genuine.png").report.trust == "clinician-signed"


def test_a_patient_reads_a_note_in_the_scan_window_with_the_chain_set_up(party, chain_node, ipfs_node, tmp_path):
    """Reading a clinician's note (a return link) in the window that opens shares: no consent exists for a note, so
    the chain is not asked (it would find none and refuse the note as revoked) and no access receipt is queued."""
    from app.services import received as rc
    _clinic, patient, doctor, card = _network(party, chain_node, ipfs_node)
    _open, directed = _share_both(patient, card, tmp_path)
    seen = doctor.session.open_link(str(tmp_path / "directed.png"), allow_local_http=True)
    _r, back = _write_back(doctor, seen, backend="embedded")
    before = len(patient.session.chain_status().outbox)
    got = rc.open_scanned(rc.Scanned("link", back.link), vault=patient.vault, allow_local_http=True)
    assert got.opened, got.refusal
    assert got.verdict("consent").status == rc.NOT_CHECKED and "not shared under a consent" in \
        got.verdict("consent").detail
    assert got.verdict("receipt").status == rc.NOT_CHECKED and got.receipt_entry is None
    assert len(patient.session.chain_status().outbox) == before
    opened = patient.session.open_link(back.link, allow_local_http=True, check_chain=True)
    assert opened.kind == "medvault-return" and _status(opened)["consent"] == "not_checked"
    got.close()

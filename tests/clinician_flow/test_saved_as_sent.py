"""Issue 11: "the save path imports the decrypted bytes as they are". Saving a received share or a clinician's
note stores the sender's bytes, exactly as they were decrypted, and names the source by their hash; nothing is
encoded again on the way (a second encoding cost time for nothing and made the stored original something the
sender never sent).

The sender here writes its JSON indented and with its own key order, as another program might, so bytes encoded
again by medvault could not match by accident."""

from __future__ import annotations

import hashlib
import json

from tests.clinician_flow.test_writeback_trust import _forged, _local_fetch, _publish, _recipient


def _as_another_program_writes_it(bundle: dict) -> bytes:
    return json.dumps(bundle, indent=2, sort_keys=True).encode("utf-8")


def _stored(vault, source_id: int) -> tuple[bytes, str]:
    from vault.records import store
    with vault.read() as conn:
        payload = b"".join(store.read_payload(conn, source_id))
        sha = conn.execute("SELECT payload_sha256 FROM rec_sources WHERE id = ?", (source_id,)).fetchone()[0]
    return payload, sha


def test_an_imported_note_stores_the_bytes_the_clinician_sent(party, monkeypatch):
    from app.services import importing
    _local_fetch(monkeypatch)
    patient, clinician = party("patient", synthea=True), party("clinician")
    sent = _as_another_program_writes_it(_forged(clinician, _recipient(patient), []))
    link = _publish(clinician, sent, _recipient(patient))
    outcomes = importing.import_text(patient.vault, link, opts=importing.options())
    assert [o.ok for o in outcomes] == [True], [o.sentence for o in outcomes]
    assert outcomes[0].report.added >= 1
    assert _stored(patient.vault, outcomes[0].report.source_id) == (sent, hashlib.sha256(sent).hexdigest())


def test_a_kept_copy_and_the_records_shown_before_it_are_of_the_bytes_received(party):
    from app.services import received as rc
    from vault.records import store
    patient, clinician = party("patient", synthea=True), party("clinician")
    sent = _as_another_program_writes_it(_forged(clinician, _recipient(patient), []))
    link = _publish(clinician, sent, _recipient(patient))
    opened = rc.open_scanned(rc.Scanned("link", link), vault=patient.vault, allow_local_http=True)
    assert opened.opened, opened.refusal
    with opened.records.read() as conn:
        shown = conn.execute("SELECT payload_sha256 FROM rec_sources").fetchall()
        assert shown == [(hashlib.sha256(sent).hexdigest(),)]
        assert b"".join(store.read_payload(conn, 1)) == sent
    reports = rc.keep_copy(patient.vault, opened)
    assert [r.added >= 1 for r in reports] == [True]
    assert _stored(patient.vault, reports[0].source_id) == (sent, hashlib.sha256(sent).hexdigest())

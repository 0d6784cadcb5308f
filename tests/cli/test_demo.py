"""``medvault demo`` tells the whole story headless on the embedded defaults, as a real process: every step happens
and comes out as it should, the QR images it hands around are real codes, the vaults it leaves are real vaults that
agree with what it printed, and no health data reaches the terminal."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, TEST_PROFILE, run_medvault


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "story"
    result = run_medvault(["demo", "--keep", str(folder), "--kdf-profile", TEST_PROFILE], env={}, timeout=300)
    assert result.code == 0, (result.out[-3000:], result.err[-3000:])
    return folder, result.out


def _step(out: str, n: int) -> str:
    """The text of step ``n``: its line and the indented lines under it."""
    m = re.search(rf"^{n}\. .*?(?=^\d+\. |\Z)", out, re.M | re.S)
    assert m, f"step {n} is missing:\n{out}"
    return m.group(0)


def test_every_step_is_told_in_order(demo):
    _folder, out = demo
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", out, re.M)]
    assert numbers == list(range(1, 12))


def test_the_patient_imports_the_synthea_patient_and_the_clinician_is_registered(demo):
    _folder, out = demo
    imported = int(re.search(r"Imported (\d+) records from 3 files", _step(out, 1)).group(1))
    assert imported > 400
    assert "Dr Demo (Demo Clinic)" in _step(out, 2)
    assert "Registered: the consent network lists you as an active practitioner" in _step(out, 3)


def test_the_share_is_verified_and_opened_from_the_scanned_qr(demo):
    _folder, out = demo
    assert "consent on the chain: recorded" in _step(out, 4)
    opened = _step(out, 5)
    for check in ("signature", "expiry", "recipient", "consent", "decryption", "cid", "consent-scope"):
        assert re.search(rf"^   {check}\s+passed\s", opened, re.M), f"{check} did not pass:\n{opened}"
    shared = int(re.search(r"(\d+) records encrypted", _step(out, 4)).group(1))
    seen = int(re.search(r"The clinician sees (\d+) records", opened).group(1))
    assert seen == shared - 1   # the summary's own Composition is not a record the clinician reads
    assert re.search(r"access receipt, signed by the clinician, is anchored on the chain in block \d+", opened)
    assert re.search(r"1 signed access receipt\(s\) on chain, from Dr Demo \(block \d+\)", _step(out, 6))


def test_the_write_back_is_imported_as_clinician_signed_after_the_registry_check(demo):
    _folder, out = demo
    assert "2 records signed for the patient named in their signed share" in _step(out, 7)
    back = _step(out, 8)
    assert "Signed by Dr Demo (Demo Clinic), a practitioner registered on the consent network." in back
    assert "Document \u201cClinical note\u201d \u2014 Signed by a clinician." in back
    assert "Vital sign \u201cBlood pressure\u201d \u2014 Signed by a clinician." in back
    assert "trust clinician-signed, checked by registry" in back


def test_revoking_stops_the_clinicians_next_open(demo):
    _folder, out = demo
    assert "cannot be recalled" in _step(out, 9) and "Revocation on the chain: recorded" in _step(out, 9)
    assert "refused: The patient has revoked this share." in _step(out, 10)
    assert _step(out, 11).count("Audit log intact") == 2


def test_the_qr_images_are_real_codes_and_the_vaults_agree_with_the_story(demo):
    """The kept folder holds the three QR images the story passed around and the two vaults; the patient's vault
    holds the note as clinician-signed and its audit log names the steps."""
    from sync import links, qr
    from vault.store import Vault
    folder, _out = demo
    card = links.card_from_link(qr.decode_file(folder / "card.png"))
    assert (card.name, card.organisation) == ("Dr Demo", "Demo Clinic")
    assert links.parse_medvault(qr.decode_file(folder / "share.png")).type == "share"
    assert links.parse_medvault(qr.decode_file(folder / "writeback.png")).type == "return"
    with Vault.unlock(folder / "patient", "demo passphrase for patient") as vault:
        with vault.read() as conn:
            kinds = dict(conn.execute("SELECT kind, trust FROM rec_sources WHERE kind = 'clinician-note'"))
            note = conn.execute("SELECT json FROM rec_resources WHERE rtype = 'DocumentReference' AND trust = "
                                "'clinician-signed'").fetchone()
        events = [e.event for e in vault.audit_entries(100)]
    assert kinds == {"clinician-note": "clinician-signed"} and note is not None
    assert json.loads(note[0])["subject"]["reference"].startswith("Patient/")
    assert {"import", "share", "writeback_received", "revoke"} <= set(events)


def test_no_health_data_is_printed(demo):
    _folder, out = demo
    patient = json.loads((ROOT / "medvault_resources" / "demo" / "synthea-patient.json").read_text())
    person = next(e["resource"] for e in patient["entry"] if e["resource"]["resourceType"] == "Patient")
    for name in person["name"]:
        for word in [name["family"], *name["given"]]:
            assert re.sub(r"\d", "", word) not in out
    assert person["birthDate"] not in out
    assert "128/82" not in out and "six months" not in out   # the note itself stays in the vaults

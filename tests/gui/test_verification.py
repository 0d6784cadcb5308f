"""The verification panel for every way a share can fail, against real shares of a real patient vault served on the
embedded gateway and consents on a real chain node (ganache): a file altered on the server, a directed link
re-signed by another key, a revoked consent, an expired link (the clinician's clock moved on), a directed share
opened by another clinician, health cards from an unknown or a revoked issuer; and the consent active with the
access receipt recorded, or waiting while the chain is down and recorded once it is back. Every check shows an icon
and a word; a check not made says "Not checked" and why, never a tick."""

from __future__ import annotations

import json
import os
import time

import pytest
from PySide6.QtCore import Qt

from app.clinician.verification import STATUS_WORDS
from app.clinician.window import ClinicianWindow
from app.services import Session
from app.services import chain as chain_service
from app.services import received as rc
from app.tasks import TaskRunner
from tests.gui.clinician_support import (ISSUER, ISSUER_FOLDER, SPEC, FeedSource, noise_frame, serving_patient,
                                         share)
from tests.peers.ganache import Ganache

OPEN_TIMEOUT = 30000


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    ganache = Ganache(tmp_path_factory.mktemp("chain") / "db", free_gas=True).start()
    yield ganache
    ganache.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory, node):
    """The patient's vault, serving its shares, with the consent registry it deployed on the chain node."""
    with serving_patient(tmp_path_factory.mktemp("patient") / "vault") as session:
        settings = chain_service.deploy(session.vault, node.url)
        session.contract = settings.contract            # type: ignore[attr-defined]
        yield session


@pytest.fixture
def make_clinician(vault_factory, patient, node):
    """A clinician vault; ``chain=True`` connects it to the patient's registry and makes it a member (as its clinic
    would be), so its access receipts are accepted."""
    def make(name: str = "clinician", chain: bool = False, registered: bool = True):
        from sync.links import card_from_link
        vault = vault_factory(name)
        if chain:
            chain_service.connect(vault, node.url, patient.contract)
            chain_service.add_member(patient.vault, vault.identity.eth_address)
            if registered:
                chain_service.register_practitioner(patient.vault, card_from_link(Session(vault).card(name)))
        return vault
    return make


@pytest.fixture
def open_in_window(qtbot):
    runner = TaskRunner()
    made: list[ClinicianWindow] = []

    def open_text(vault, text: str, **options) -> tuple[ClinicianWindow, rc.Received]:
        window = ClinicianWindow(Session(vault), runner, source=FeedSource([noise_frame()]), tell=lambda _s: None,
                                 **options)
        made.append(window)
        window.show()
        qtbot.waitExposed(window)
        with qtbot.waitSignal(window.opened, timeout=OPEN_TIMEOUT) as got:
            window.open_text(text)
        return window, got.args[0]

    yield open_text
    for window in made:
        window.close()
    runner.wait()


def _row(window: ClinicianWindow, key: str):
    return window.panel.rows[key]


def assert_said(window: ClinicianWindow, key: str, status: str, *words: str) -> None:
    """The row for ``key`` has the status's icon and word, and says ``words``."""
    row = _row(window, key)
    assert row.verdict.status == status, (key, row.verdict)
    spoken = row.text.accessibleName()
    assert spoken.startswith(f"{row.verdict.title}: {STATUS_WORDS[status]}."), spoken
    assert not row.icon.pixmap().isNull() and row.icon.accessibleName() == STATUS_WORDS[status]
    for word in words:
        assert word.lower() in spoken.lower(), (word, spoken)


def assert_refused(window: ClinicianWindow, received: rc.Received, *words: str) -> None:
    assert not received.opened and received.records is None
    assert window.right.currentWidget() is window.refusal and window.ctx is None
    assert window.panel.headline.text().startswith("Refused")
    for word in words:
        assert word.lower() in window.refusal_text.text().lower(), (word, window.refusal_text.text())
    assert not window.keep_button.isEnabled()


def test_a_directed_share_with_its_consent_on_chain_opens_and_the_receipt_is_recorded(
        qtbot, patient, make_clinician, open_in_window, screenshot):
    clinician = make_clinician(chain=True)
    out = share(patient, to=Session(clinician).card("Dr Chain"))
    assert out.chain == "recorded"
    window, received = open_in_window(clinician, out.link)
    assert received.opened
    assert_said(window, "consent", rc.PASSED, "active", "to you (", "until", "not revoked", "records match")
    assert_said(window, "cid", rc.PASSED, "matches")
    assert_said(window, "encryption", rc.PASSED, "authentication tag verified")
    assert_said(window, "expiry", rc.PASSED, "valid until")
    assert_said(window, "signature", rc.PASSED, "signed by its sender")
    assert_said(window, "recipient", rc.PASSED, "sealed to you")
    assert_said(window, "card_issuer", rc.NOT_APPLICABLE, "no SMART Health Card")
    assert_said(window, "receipt", rc.WAITING)
    assert window.panel.headline.text() == "Opened. Every check passed."
    with qtbot.waitSignal(window.receipt_updated, timeout=OPEN_TIMEOUT) as sent:
        pass
    assert sent.args[0].status == rc.PASSED
    assert_said(window, "receipt", rc.PASSED, "recorded", "block")
    status = chain_service.status(clinician)
    assert [(e["kind"], e["state"]) for e in status.outbox] == [("access", "anchored")]
    qtbot.waitUntil(lambda: "summary" in window.screens and window.screens["summary"].summary is not None)
    window.resize(1280, 800)
    qtbot.wait(200)                                 # the layout settles after the receipt's row grew
    screenshot(window, "53-clinician-opened")


def test_a_directed_consent_for_a_clinician_the_network_does_not_list_is_refused(qtbot, patient, make_clinician,
                                                                                open_in_window):
    clinician = make_clinician(chain=True, registered=False)
    out = share(patient, to=Session(clinician).card("Dr Unlisted"))
    window, received = open_in_window(clinician, out.link)
    assert_refused(window, received)
    assert_said(window, "consent", rc.FAILED, "granted to you", "not list you as an active practitioner")
    assert_said(window, "recipient", rc.PASSED)


def test_a_revoked_consent_is_refused_before_anything_is_fetched(qtbot, patient, make_clinician, open_in_window,
                                                                 screenshot):
    clinician = make_clinician(chain=True)
    out = share(patient)
    revoked = patient.revoke_share(out.created.id)
    assert revoked.chain == "recorded"
    window, received = open_in_window(clinician, out.link)
    assert_refused(window, received, "revoked")
    assert_said(window, "signature", rc.NOT_CHECKED, "carry no sender's signature")
    assert_said(window, "recipient", rc.NOT_CHECKED, "open link")
    assert_said(window, "consent", rc.FAILED, "revoked by the patient", "anyone holding this link")
    for key in ("cid", "encryption"):
        assert_said(window, key, rc.NOT_CHECKED, "stopped before this check")
    assert_said(window, "receipt", rc.NOT_CHECKED)
    assert window.steps.state_of("fetch") in ("waiting", "in progress…", "stopped here")
    window.resize(1280, 800)
    qtbot.wait(200)                                 # the layout settles after the receipt's row grew
    screenshot(window, "54-clinician-refused-revoked")


def test_a_file_altered_on_the_server_is_refused_by_its_content_identifier(qtbot, patient, make_clinician,
                                                                           open_in_window):
    from vault.shares_store import VaultBlobStorage
    clinician = make_clinician()
    out = share(patient)
    storage = VaultBlobStorage(patient.vault)
    data = bytearray(storage.get(out.created.cid))
    data[len(data) // 2] ^= 0x01                    # one bit of the served file
    storage.put(out.created.cid, bytes(data))
    window, received = open_in_window(clinician, out.link)
    assert_refused(window, received, "does not match")
    assert_said(window, "cid", rc.FAILED, "does not match", "altered")
    assert_said(window, "encryption", rc.NOT_CHECKED, "stopped before this check")
    assert_said(window, "expiry", rc.PASSED)


def test_a_directed_link_re_signed_by_another_key_is_refused(qtbot, patient, make_clinician, open_in_window):
    from sync.links import MV_PREFIX, SIGNATURE_CONTEXT, b64u_decode, b64u_encode, canonical_json
    from vault import crypto
    clinician = make_clinician()
    out = share(patient, to=Session(clinician).card("Dr Forged"))
    envelope = json.loads(b64u_decode(out.link[len(MV_PREFIX):]))
    unsigned = {k: envelope[k] for k in ("t", "v", "from", "iat", "body")}
    unsigned["body"]["exp"] = unsigned["body"]["exp"] + 365 * 86400     # what a forger would want: more time
    other_key = os.urandom(32)
    signature = crypto.ed25519_sign(other_key, SIGNATURE_CONTEXT + canonical_json(unsigned))
    forged = MV_PREFIX + b64u_encode(canonical_json({**unsigned, "sig": b64u_encode(signature)}))
    window, received = open_in_window(clinician, forged)
    assert_refused(window, received, "signature")
    assert_said(window, "signature", rc.FAILED, "does not match its sender")
    for key in ("expiry", "recipient", "consent", "cid", "encryption"):
        assert_said(window, key, rc.NOT_CHECKED, "signature does not verify")


def test_an_expired_link_is_refused_by_the_clinicians_clock(qtbot, patient, make_clinician, open_in_window):
    clinician = make_clinician()
    out = share(patient, expires="1d")
    window, received = open_in_window(clinician, out.link, clock=lambda: time.time() + 2 * 86400)
    assert_refused(window, received, "expired")
    assert_said(window, "expiry", rc.FAILED, "expired on")
    assert_said(window, "cid", rc.NOT_CHECKED, "refused before anything was fetched")
    assert window.steps.state_of("link") == "stopped here" and window.steps.state_of("fetch") == "waiting"
    # the same link on the clinician's real clock opens
    _window, fine = open_in_window(clinician, out.link)
    assert fine.opened


def test_a_directed_share_opened_by_another_clinician_is_refused(qtbot, patient, make_clinician, open_in_window):
    meant = make_clinician("meant")
    other = make_clinician("other")
    out = share(patient, to=Session(meant).card("Dr Meant"))
    window, received = open_in_window(other, out.link)
    assert_refused(window, received, "someone else")
    assert_said(window, "recipient", rc.FAILED, "sealed to someone else", meant.identity.did[:14],
                other.identity.did[:14])
    assert_said(window, "signature", rc.PASSED, "signed by its sender")
    assert_said(window, "cid", rc.NOT_CHECKED, "refused before anything was fetched")


def test_a_health_card_from_an_unknown_issuer_is_not_verified(qtbot, make_clinician, open_in_window):
    clinician = make_clinician()
    text = (SPEC / "example-00-f-qr-code-numeric-value-0.txt").read_text()
    window, received = open_in_window(clinician, text)
    assert received.opened                  # readable, but nothing says it is genuine
    assert_said(window, "card_issuer", rc.NOT_CHECKED, "issuer unknown", ISSUER, "could not be checked")
    assert "checks could not be made" in window.panel.headline.text()
    assert_said(window, "consent", rc.NOT_APPLICABLE, "not shared through the consent network")


def test_a_health_card_its_issuer_revoked_fails_the_issuer_check(qtbot, make_clinician, open_in_window):
    from vault.records.shc import TrustStore
    clinician = make_clinician()
    TrustStore(clinician).add_folder(ISSUER, ISSUER_FOLDER)
    window, received = open_in_window(clinician, (SPEC / "example-03-f-qr-code-numeric-value-0.txt").read_text())
    assert_said(window, "card_issuer", rc.FAILED, "revoked")
    assert "a check failed" in window.panel.headline.text()
    # a trusted, unrevoked card passes
    window, received = open_in_window(clinician, (SPEC / "example-00-f-qr-code-numeric-value-0.txt").read_text())
    assert_said(window, "card_issuer", rc.PASSED, "trusted issuer", "signature verifies")


def test_without_a_consent_network_the_consent_is_not_checked_never_ticked(qtbot, patient, make_clinician,
                                                                           open_in_window):
    clinician = make_clinician()
    window, received = open_in_window(clinician, share(patient).link)
    assert received.opened
    assert_said(window, "consent", rc.NOT_CHECKED, "no consent network set up")
    assert_said(window, "receipt", rc.NOT_CHECKED, "not logged")
    assert window.panel.headline.text().startswith("Opened. Some checks could not be made")


def test_offline_the_receipt_waits_and_is_recorded_when_the_chain_is_back(qtbot, patient, make_clinician,
                                                                          open_in_window, node):
    clinician = make_clinician(chain=True)
    out = share(patient)
    node.stop()
    try:
        window, received = open_in_window(clinician, out.link)
        assert received.opened
        assert_said(window, "consent", rc.NOT_CHECKED, "could not be reached")
        with qtbot.waitSignal(window.receipt_updated, timeout=OPEN_TIMEOUT) as sent:
            pass
        assert sent.args[0].status == rc.WAITING
        assert_said(window, "receipt", rc.WAITING, "could not be reached", "queued in your vault")
    finally:
        node.start()
    later = rc.send_receipt(clinician, received.receipt_entry)
    assert later.status == rc.PASSED and "Recorded" in later.detail


class _CardLink:
    """A SMART Health Link whose one file is a SMART Health Card (the HL7 example), served the ``U`` way: a GET
    of the file itself, on loopback."""

    def __init__(self, card_file) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from sync import jwe
        token, self.key = jwe.encrypt(card_file.read_bytes(), cty=jwe.CTY_SHC)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                data = token.encode("ascii")
                self.send_response(200)
                self.send_header("Content-Type", "application/jose")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def link(self) -> str:
        from sync.links import ShlPayload, build_shlink
        url = f"http://127.0.0.1:{self.httpd.server_address[1]}/card/1"
        return build_shlink(ShlPayload(url=url, key=self.key, flag="U", exp=int(time.time()) + 3600))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_health_card_inside_a_link_has_its_issuer_checked(qtbot, make_clinician, open_in_window):
    from vault.records.shc import TrustStore
    server = _CardLink(SPEC / "example-00-e-file.smart-health-card")
    try:
        clinician = make_clinician()
        window, received = open_in_window(clinician, server.link())
        assert received.opened and received.kind == "shlink"
        assert_said(window, "card_issuer", rc.NOT_CHECKED, "issuer unknown", ISSUER)
        assert_said(window, "encryption", rc.PASSED)
        assert_said(window, "cid", rc.NOT_CHECKED, "does not name a content identifier")
        TrustStore(clinician).add_folder(ISSUER, ISSUER_FOLDER)
        window, received = open_in_window(clinician, server.link())
        assert_said(window, "card_issuer", rc.PASSED, "trusted issuer", "signature verifies")
        with received.records.read_only() as conn:
            trust = {t for (t,) in conn.execute("SELECT DISTINCT trust FROM rec_resources")}
        assert trust == {"issuer-verified"}          # the records in the views carry the card's verification
    finally:
        server.close()


class _PasscodeManifest:
    """A SMART Health Link server as the specification describes one: POST for the file list, a passcode checked,
    wrong ones counted down in ``remainingAttempts``; its file holds a Synthea patient's records, embedded."""

    def __init__(self, bundle: dict, passcode: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from sync import jwe
        token, self.key = jwe.encrypt_bundle(bundle)
        owner, self.remaining, self.tries = self, 5, []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                owner.tries.append(body.get("passcode"))
                if body.get("passcode") != passcode:
                    owner.remaining -= 1
                    status, answer = 401, {"remainingAttempts": owner.remaining}
                else:
                    status, answer = 200, {"files": [{"contentType": "application/fhir+json",
                                                      "embedded": token.decode("ascii")}]}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/manifest/abc"

    def link(self) -> str:
        from sync.links import ShlPayload, build_shlink
        return build_shlink(ShlPayload(url=self.url, key=self.key, flag="P", exp=int(time.time()) + 3600,
                                       label="Passcode 1234"))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_passcode_link_asks_for_it_and_a_wrong_one_is_said(qtbot, make_clinician, open_in_window):
    from tests.gui.clinician_support import SYNTHEA_PATIENT_FILE
    server = _PasscodeManifest(json.loads(SYNTHEA_PATIENT_FILE.read_text()), "1234")
    try:
        window, received = open_in_window(make_clinician(), server.link())
        assert_refused(window, received, "passcode")
        assert window.passcode_row.isVisible() and server.tries == []     # nothing sent before it is typed
        for typed, said in (("0000", "attempts remain"), ("1234", None)):
            qtbot.keyClicks(window.passcode, typed)
            with qtbot.waitSignal(window.opened, timeout=OPEN_TIMEOUT) as got:
                qtbot.keyClick(window.passcode, Qt.Key.Key_Return)
            if said:
                assert_refused(window, got.args[0], said)
                assert window.passcode_row.isVisible() and window.passcode.text() == ""
        assert got.args[0].opened and server.tries == ["0000", "1234"]
        assert_said(window, "cid", rc.NOT_CHECKED, "no file was fetched by content identifier")
        assert_said(window, "encryption", rc.PASSED)
    finally:
        server.close()

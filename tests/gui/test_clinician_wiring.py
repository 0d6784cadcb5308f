"""The clinician window's write-back and profile, and the app opening a clinician's vault in that window.

Real parties throughout: a Synthea patient's vault serving a share sealed to the clinician's card on its embedded
gateway, the clinician's own vault and gateway serving the note, the QR codes read back from the screen by
zxing-cpp, and the note imported by the patient's vault over the wire. The app's controller unlocks a vault made by
``medvault init --clinician`` through its unlock window."""

from __future__ import annotations

import base64
import json

import pytest

from app.clinician.window import ClinicianWindow
from app.services import Session
from app.services import received as rc
from sync import shares
from tests.gui.clinician_support import qr_on_screen, share
from tests.gui.serving_support import controller_for, free_port, unlock_in_window  # noqa: F401
# the Synthea patient serving shares, and a clinician window on a real runner closed at the end
from tests.gui.test_scan import make_window, patient  # noqa: F401
from tests.gui.test_accessibility import offenders

OPEN_TIMEOUT = 30000
NOTE = "Reviewed the summary together; blood pressure is fine. See you in six months."


@pytest.fixture
def doctor(vault_factory):
    """A clinician's vault whose notes are served on its own gateway (a free loopback port)."""
    vault = vault_factory("doctor")
    port = free_port()
    shares.set_gateway_setting(vault, f"http://127.0.0.1:{port}")
    session = Session(vault)
    session.set_profile(clinician_mode=True, name="Dr Ada Sample", organisation="Riverside Practice")
    gateway = session.serve(port=port)
    yield session
    gateway.stop()


@pytest.fixture
def clinician(doctor):
    """The vault ``make_window`` (from the scan tests) opens its clinician windows on: the doctor's."""
    return doctor.vault


def _open(qtbot, window: ClinicianWindow, link: str) -> rc.Received:
    with qtbot.waitSignal(window.opened, timeout=OPEN_TIMEOUT) as got:
        window.open_text(link)
    return got.args[0]


def _write_back_controls(window: ClinicianWindow) -> list:
    return [window.write_back_action, window.write_back_button]


def test_a_directed_share_enables_write_back_and_the_note_reaches_the_patients_vault(qtbot, make_window, doctor,
                                                                                    patient, screenshot):
    from sync import links
    window = make_window()
    for control in _write_back_controls(window):
        assert not control.isEnabled() and "Open a patient's share first" in control.toolTip()
    window.write_back()                                  # disabled: nothing opens
    assert window.write_back_dialog is None

    card = links.card_from_link(doctor.card())
    received = _open(qtbot, window, share(patient, to=card).link)
    assert received.opened and received.kind == "medvault-share"
    assert received.verdict("signature").status == rc.PASSED
    assert all(c.isEnabled() for c in _write_back_controls(window))
    assert window.write_back_button.isVisible()
    assert window.write_back_action.shortcut().toString() == "Ctrl+Shift+N"

    window.write_back_action.trigger()
    dialog = window.write_back_dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "medvault"
    assert dialog.recipient.did == patient.vault.identity.did and dialog.recipient.how == "signed share"
    assert "For Juliette Padberg" in dialog.for_label.text()
    assert dialog.for_label.accessibleName() == "Writing back to Juliette Padberg"
    dialog.title_field.setText("Review of your summary")
    dialog.note_field.setPlainText(NOTE)
    dialog.vital_box.setCurrentIndex(dialog.vital_box.findData("blood-pressure"))
    dialog.value_boxes[0].setValue(124)
    dialog.value_boxes[1].setValue(79)
    dialog.add_measurement()
    qtbot.wait(100)
    screenshot(dialog, "clinician-writeback-window")
    assert offenders(dialog, "Write-back dialog") == []

    with qtbot.waitSignal(dialog.written, timeout=60000):
        dialog.sign()
    link = qr_on_screen(dialog.qr_panel.view)
    assert link == dialog.result.link and "1 note, 1 measurement" in dialog.done_label.text()

    patient.confirm_clinician(card)
    outcomes = patient.import_sources([link], allow_local_http=True)
    assert [o.ok for o in outcomes] == [True], [o.sentence for o in outcomes]
    report = outcomes[0].report
    assert report.trust == "clinician-signed"
    with patient.read() as conn:
        rows = [json.loads(j) for (j,) in conn.execute(
            "SELECT json FROM rec_resources WHERE source_id = ? AND rtype IN ('DocumentReference', 'Observation')",
            (report.source_id,))]
    notes = [r for r in rows if r["resourceType"] == "DocumentReference"]
    assert len(notes) == 1 and len(rows) == 2
    assert base64.b64decode(notes[0]["content"][0]["attachment"]["data"]).decode() == NOTE
    assert notes[0]["author"][0]["display"] == "Dr Ada Sample"

    dialog.close()
    qtbot.waitUntil(lambda: window.write_back_dialog is None, timeout=5000)
    window.scan_another()                                # the record is forgotten: nobody to write to
    for control in _write_back_controls(window):
        assert not control.isEnabled() and "Open a patient's share first" in control.toolTip()


def test_write_back_is_offered_only_when_the_patients_key_is_known(qtbot, make_window, patient, vault_factory):
    from app.services.writeback import Recipient
    from sync import links
    from tests.gui.clinician_support import SPEC
    window = make_window()
    # an open link is not signed, but the share's consent record names the patient's key (the link's key
    # authenticates it): write-back is offered, to that key
    received = _open(qtbot, window, share(patient).link)
    assert received.opened and received.kind == "shlink"
    assert Recipient.from_opened(received).did == patient.vault.identity.did
    assert all(c.isEnabled() for c in _write_back_controls(window))
    window.write_back()
    dialog = window.write_back_dialog
    assert dialog.recipient.how == "share's consent record" and dialog.recipient.did == patient.vault.identity.did
    dialog.close()

    # a SMART Health Card names its patient but not their medvault key: no write-back, and the tooltip says why
    received = _open(qtbot, window, (SPEC / "example-00-f-qr-code-numeric-value-0.txt").read_text())
    assert received.opened and received.kind == "card"
    for control in _write_back_controls(window):
        assert not control.isEnabled() and "ask the patient for their medvault card" in control.toolTip()

    # a share sealed to another clinician is refused: nothing to write back to
    other = links.card_from_link(Session(vault_factory("other")).card("Dr Someone Else"))
    received = _open(qtbot, window, share(patient, to=other).link)
    assert not received.opened
    for control in _write_back_controls(window):
        assert not control.isEnabled() and "was refused" in control.toolTip()


def test_profile_opens_from_the_menu_and_shows_the_card_as_a_qr(qtbot, make_window, doctor):
    from sync import links
    window = make_window()
    assert window.profile_action.isEnabled() and window.profile_action.shortcut().toString() == "Ctrl+Shift+P"
    window.profile_action.trigger()
    dialog = window.profile_dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "medvault"
    qtbot.waitUntil(lambda: (window._runner.wait(50), dialog.panel.qr_panel.view.has_code())[1], timeout=30000)
    card = links.card_from_link(qr_on_screen(dialog.panel.qr_panel.view))
    assert (card.did, card.name, card.organisation) == (doctor.vault.identity.did, "Dr Ada Sample",
                                                        "Riverside Practice")
    assert dialog.panel.name_field.text() == "Dr Ada Sample" and dialog.panel.clinician_box.isChecked()
    window.profile_action.trigger()                       # asked again: the same window comes forward
    assert window.profile_dialog is dialog
    assert offenders(dialog, "Profile dialog") == []
    assert offenders(window, "Clinician window") == []
    assert window.write_back_button.accessibleName() == "Write a signed note back to the patient"
    assert [a.text() for a in (window.write_back_action, window.profile_action)] == \
        ["&Write back to the patient…", "&Profile…"]


@pytest.mark.parametrize("clinician", [True, False])
def test_the_app_opens_a_clinicians_vault_in_the_clinician_window(qtbot, tmp_path, cli, controller_for, clinician):
    from app.main_window import MainWindow
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    folder = tmp_path / "vault"
    extra = ["--clinician", "--name", "Dr Ada Sample"] if clinician else []
    result = cli(["--vault", str(folder), "init", "--kdf-profile", "test-insecure", *extra])
    assert result.code == 0, result.err
    with Vault.unlock(folder, PASSPHRASE) as vault:       # served on a free port, as a clinic's app would be
        shares.set_gateway_setting(vault, f"http://127.0.0.1:{free_port()}")
    controller = controller_for(folder)
    unlock_in_window(qtbot, controller)
    window = controller.main_window
    assert isinstance(window, ClinicianWindow if clinician else MainWindow)
    assert not controller.unlock_window.isVisible() and window.windowTitle() == "medvault"
    if clinician:
        assert window.standalone and window.session.profile().name == "Dr Ada Sample"
        assert controller.serving.status.serving       # the gateway the notes are fetched from is up
        window.lock()
        qtbot.waitUntil(lambda: controller.unlock_window.isVisible() and controller.serving.status.locked,
                        timeout=30000)
        assert window.vault is None

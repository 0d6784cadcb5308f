"""The clinician's profile panel and write-back dialog as real Qt widgets (pytest-qt, offscreen), with the work on the
real task runner: the card drawn as a QR that zxing-cpp reads back, the registration asked of a consent registry on
an in-process EVM, and a note written in the dialog, signed, shown as a QR, read back from the screen and imported
by the patient's vault as clinician-signed."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtWidgets import QWidget

from app.tasks import TaskRunner
from tests.clinician_flow.conftest import first_record
from tests.gui.clinician_support import qr_on_screen as _qr_text
from tests.gui.conftest import screenshot  # noqa: F401  (the user guide's pictures)
from tests.gui.test_accessibility import offenders


@pytest.fixture
def in_process_chain():
    """A consent registry on an in-process EVM, reachable by the services as ``eth-tester:NAME``."""
    from sync.chain import IN_PROCESS_SCHEME, Chain
    name = f"gui-{uuid.uuid4().hex[:8]}"
    evm = Chain.in_process(publish_as=name)
    yield evm, IN_PROCESS_SCHEME + name
    Chain.withdraw_in_process(name)


def _wait(qtbot, runner, condition, timeout=30000):
    qtbot.waitUntil(lambda: (runner.wait(50), condition())[1], timeout=timeout)


def test_the_profile_panel_saves_the_card_shows_it_as_a_qr_and_says_the_registration(qtbot, party, in_process_chain,
                                                                                     screenshot):
    from app.clinician.profile import ProfilePanel
    from app.services import chain, clinician
    from sync import links
    from sync.chain import Sender
    evm, rpc = in_process_chain
    doctor = party("doctor")
    runner = TaskRunner()
    panel = ProfilePanel(doctor.session, runner)
    qtbot.addWidget(panel)
    panel.resize(1100, 600)
    panel.show()
    panel.refresh()
    _wait(qtbot, runner, lambda: panel.registration is not None and panel.qr_panel.view.has_code())
    assert panel.registration.state == clinician.NOT_CHECKED
    assert "no consent network is set up" in panel.state_label.text()
    assert links.card_from_link(_qr_text(panel.qr_panel.view)).name == "medvault user"

    panel.clinician_box.setChecked(True)
    panel.name_field.setText("")
    panel.save()
    _wait(qtbot, runner, lambda: panel.save_button.isEnabled())
    assert "needs a name" in panel.message.text()
    assert doctor.session.profile().clinician is False

    panel.name_field.setText("Dr Ada Sample")
    panel.organisation_field.setText("Riverside Practice")
    with qtbot.waitSignal(panel.saved, timeout=30000):
        panel.save()
    card = links.card_from_link(_qr_text(panel.qr_panel.view))
    assert (card.name, card.organisation, card.did) == ("Dr Ada Sample", "Riverside Practice",
                                                        doctor.vault.identity.did)
    assert "Dr Ada Sample, Riverside Practice" in panel.qr_panel.caption.text()

    operator = Sender(node_account=evm.node_accounts()[0])
    registry = evm.deploy(operator)
    chain.connect(doctor.vault, rpc, registry.address, pay_with_node_account=True)
    with qtbot.waitSignal(panel.registration_shown, timeout=30000):
        panel.check_registration()
    assert panel.registration.state == clinician.NOT_REGISTERED
    registry.register_practitioner(operator, card.address, card.did)
    with qtbot.waitSignal(panel.registration_shown, timeout=30000):
        panel.check_registration()
    assert panel.registration.state == clinician.REGISTERED
    assert panel.state_label.text().startswith("Registered")
    qtbot.wait(100)                                      # the wrapped sentence is laid out before the picture
    screenshot(panel, "clinician-profile")
    Chain = type(evm)
    Chain.withdraw_in_process(rpc.split(":", 1)[1])          # the node goes away: not checked, never a guess
    with qtbot.waitSignal(panel.registration_shown, timeout=30000):
        panel.check_registration()
    assert panel.registration.state == clinician.NOT_CHECKED and "cannot be reached" in panel.state_label.text()
    assert offenders(panel, "Profile panel") == []


def _opened_share(patient, doctor, tmp_path):
    """The patient shares conditions with the doctor's card; the doctor opens it as the clinician window does."""
    from app.services import received as rc
    from app.services import sharing
    from sync import links
    card = links.card_from_link(doctor.session.card())
    outcome = patient.session.create_share(sharing.selection(types=["Condition"]), recipient=card,
                                           backend="embedded")
    patient.serve()
    opened = rc.open_scanned(rc.Scanned("link", outcome.link), vault=doctor.vault, allow_local_http=True)
    assert opened.opened, opened.refusal
    return opened, card


def test_the_write_back_dialog_signs_a_note_and_vitals_and_the_patient_imports_it(qtbot, party, tmp_path,
                                                                                 screenshot):
    from app.clinician.writeback import WriteBackDialog
    patient, doctor = party("patient", synthea=True), party("doctor")
    doctor.session.set_profile(clinician_mode=True, name="Dr Ada Sample", organisation="Riverside Practice")
    opened, card = _opened_share(patient, doctor, tmp_path)
    runner = TaskRunner()
    dialog = WriteBackDialog(doctor.session, opened, runner)
    qtbot.addWidget(dialog)
    dialog.show()
    # a share of conditions carries no Patient record: the dialog names nobody, the note names the records' subject
    assert "For the patient" in dialog.for_label.text() and "signed share" in dialog.for_label.text()
    assert dialog.windowTitle() == "medvault"

    dialog.sign()                                        # nothing written yet
    assert "Write a note or add a measurement first" in dialog.message.text()
    dialog.vital_box.setCurrentIndex(dialog.vital_box.findData("blood-pressure"))
    dialog.add_measurement()                             # no value typed yet
    assert "Type the blood pressure first" in dialog.message.text() and dialog.list.count() == 0
    dialog.value_boxes[0].setValue(128)
    dialog.value_boxes[1].setValue(82)
    dialog.add_measurement()
    dialog.vital_box.setCurrentIndex(dialog.vital_box.findData("body-temperature"))
    assert not dialog.value_boxes[1].isVisible() and "°C" in dialog.value_boxes[0].suffix()
    dialog.value_boxes[0].setValue(37.2)
    dialog.add_measurement()
    assert [dialog.list.item(i).text() for i in range(dialog.list.count())] == \
        ["Blood pressure 128/82 mmHg", "Temperature 37.2 °C"]
    dialog.note_field.setPlainText("Reviewed the summary together. Blood pressure fine.")
    qtbot.wait(100)
    screenshot(dialog, "clinician-writeback-form")
    with qtbot.waitSignal(dialog.written, timeout=60000):
        dialog.sign()
    assert dialog.pages.currentIndex() == 1 and "1 note, 2 measurements" in dialog.done_label.text()
    qtbot.wait(100)
    screenshot(dialog, "clinician-writeback")
    scanned = _qr_text(dialog.qr_panel.view)
    assert scanned == dialog.result.link
    assert offenders(dialog, "Write-back dialog") == []
    doctor.serve()

    patient.session.confirm_clinician(card)
    outcomes = patient.session.import_sources([scanned], allow_local_http=True)
    assert [o.ok for o in outcomes] == [True], [o.sentence for o in outcomes]
    assert outcomes[0].report.trust == "clinician-signed" and "whose card you confirmed" in outcomes[0].sentence
    import json
    with patient.session.read() as conn:
        values = sorted(json.dumps(json.loads(j).get("component") or json.loads(j).get("valueQuantity"))
                        for (j,) in conn.execute("SELECT json FROM rec_resources WHERE rtype = 'Observation' AND "
                                                 "source_id = ?", (outcomes[0].report.source_id,)))
    assert len(values) == 2 and '"value": 37.2' in values[1] and '"value": 128' in values[0]
    patient_id = first_record(patient.vault, "Patient")["id"]
    with patient.session.read() as conn:
        subjects = {json.loads(j)["subject"]["reference"] for (j,) in conn.execute(
            "SELECT json FROM rec_resources WHERE source_id = ? AND rtype IN ('Observation', 'DocumentReference')",
            (outcomes[0].report.source_id,))}
    assert subjects == {f"Patient/{patient_id}"}


def test_a_share_that_names_no_patient_says_so_and_sends_nothing(qtbot, party):
    from app.clinician.writeback import WriteBackDialog

    class Nameless:                                       # an open link whose file carries no consent record
        kind, sender, bundles = "shlink", None, [{"resourceType": "Bundle", "type": "collection", "entry": []}]

    doctor = party("doctor")
    dialog = WriteBackDialog(doctor.session, Nameless(), TaskRunner())
    qtbot.addWidget(dialog)
    assert "ask the patient for their medvault card" in dialog.for_label.text()
    assert not dialog.sign_button.isEnabled()
    assert isinstance(dialog.pages.currentWidget(), QWidget) and dialog.pages.currentIndex() == 0

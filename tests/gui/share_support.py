"""Shared pieces of the sharing GUI tests: a Synthea vault with sensitive records added, the embedded gateway on a
free port, QR codes read back from what Qt drew, and the records a receiver got."""

from __future__ import annotations

import contextlib
import io
import json
import socket
from pathlib import Path
from typing import Iterator

import zxingcpp
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from tests.conftest import PASSPHRASE
from tests.gui.synthea_vault import JULIETTE, synthea_vault

JULIETTE_PATIENT = "Patient/10fe9427-a075-4d8c-8af7-1d4d24f72112"
DEPRESSION = "Condition/crafted-f32-9"
HIV_TEST = "Observation/crafted-hiv-test"
SERTRALINE = "MedicationRequest/crafted-sertraline"
CRAFTED = (DEPRESSION, HIV_TEST, SERTRALINE)


def crafted_bundle() -> dict:
    """Records shaped like Synthea's, with codes the Synthea fixtures lack: a mental health diagnosis in ICD-10-CM,
    an HIV screening result by LOINC, and a medicine prescribed for the diagnosis (sensitive only by that link
    and its ingredient)."""
    subject = {"reference": JULIETTE_PATIENT}
    condition = {
        "resourceType": "Condition", "id": "crafted-f32-9",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.9",
                             "display": "Major depressive disorder, single episode, unspecified"}],
                 "text": "Major depressive disorder, single episode, unspecified"},
        "subject": subject, "onsetDateTime": "2020-02-03T10:00:00+00:00",
        "recordedDate": "2020-02-03T10:00:00+00:00"}
    observation = {
        "resourceType": "Observation", "id": "crafted-hiv-test", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory", "display": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "75622-1",
                             "display": "HIV 1 and 2 Ag+Ab [Presence] in Serum or Plasma"}],
                 "text": "HIV 1 and 2 Ag+Ab [Presence] in Serum or Plasma"},
        "subject": subject, "effectiveDateTime": "2020-06-01T09:00:00+00:00",
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009",
                                             "display": "Negative"}], "text": "Negative"}}
    medication = {
        "resourceType": "MedicationRequest", "id": "crafted-sertraline", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "312938", "display": "sertraline 50 MG Oral Tablet"}],
                                      "text": "sertraline 50 MG Oral Tablet"},
        "subject": subject, "authoredOn": "2020-02-03T10:30:00+00:00",
        "reasonReference": [{"reference": DEPRESSION}]}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r}
                      for r in (condition, observation, medication)]}


def sensitive_vault(folder: Path):
    """Juliette Padberg's Synthea records (pregnancies, contraception, HIV and STI tests among them) plus the
    crafted ones, imported through the application layer like any file."""
    from app.services import Session
    vault = synthea_vault(folder, JULIETTE)
    extra = folder.parent / "crafted-sensitive.json"
    extra.write_text(json.dumps(crafted_bundle()))
    outcomes = Session(vault).import_sources([extra])
    assert all(o.ok for o in outcomes), [o.sentence for o in outcomes]
    extra.unlink()
    return vault


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving_session(folder: Path, **unlock: object) -> Iterator[object]:
    """The vault in ``folder`` unlocked for one test as a ``Session``, its embedded gateway serving on a free port
    (``session.port``) as the app does while it is open; locked again afterwards."""
    from app.services import Session
    from vault.store import Vault
    vault = Vault.unlock(folder, PASSPHRASE, **unlock)
    opened = Session(vault)
    try:
        with gateway(opened) as port:
            opened.port = port
            yield opened
    finally:
        if vault.is_open:
            vault.close()


@contextlib.contextmanager
def gateway(session) -> Iterator[int]:
    """This vault's embedded gateway on a free loopback port, and new links pointing at it."""
    from sync.shares import set_gateway_setting
    port = free_port()
    set_gateway_setting(session.vault, f"http://127.0.0.1:{port}")
    served = session.serve(port=port)
    try:
        yield port
    finally:
        served.stop()


def image_to_pil(image: QImage) -> Image.Image:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data().data())))


def decode(image: Image.Image) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode) if b.valid]


def drawn_link(view, small_note=None) -> str:
    """The link in the QR code as the view painted it (not the image it was given), after checking it is drawn
    whole, at a size a phone or webcam reads across a desk. Only a code too large for the screen may be smaller,
    and then ``small_note`` (the panel's note) must say so."""
    from app.share_qr import MIN_MODULE_PX, modules_of
    QApplication.processEvents()
    pixmap = view.pixmap()
    shown = pixmap.deviceIndependentSize().toSize()
    if view.px < MIN_MODULE_PX:
        screen = view.screen().availableGeometry()
        needed = modules_of(view._image) * MIN_MODULE_PX
        assert small_note is not None and small_note.text(), (view.px, view.size(), view.window().size())
        assert needed + 240 > screen.width() or needed + 120 > screen.height(), (view.px, screen, needed)
    assert shown.width() <= view.contentsRect().width() and shown.height() <= view.contentsRect().height(), \
        (shown, view.size())
    texts = decode(image_to_pil(view.grab().toImage()))
    assert len(texts) == 1, texts
    return texts[0]


def received(result) -> list[str]:
    """"Type/id" of every record a receiver got, in order, the share's own Consent left out."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for b in result.bundles
            for e in b.get("entry", []) if e["resource"]["resourceType"] != "Consent"]

"""Documents on a real vault: a PDF made here with QPdfWriter and imported through the importer is shown by QtPdf
from memory (its bytes never reach a file), a PNG is drawn, a text note is readable, and a kind of file the app
cannot show is named rather than hidden."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QBuffer, QIODevice, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageSize, QPainter, QPdfWriter
from PySide6.QtPdf import QPdfDocument
from PySide6.QtWidgets import QWidget

from app.screens import vault_context
from app.screens.documents import IMAGE_MAX_WIDTH, DocumentsScreen
from app.tasks import TaskRunner
from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE
from vault.records.importer import ImportService

FLETCHER = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
PDF_PAGES = 3
NOTE = "Follow-up in two weeks; keep taking the tablets with food."
REPORT = (b"<html><head><title>Report</title><script>alert('x')</script></head>"
          b"<body><h1>Chest X-ray</h1><p>Lungs clear.</p><p>No effusion.</p></body></html>")


def _pdf() -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setTitle("Discharge letter")
    painter = QPainter(writer)
    font = QFont()
    font.setPointSize(16)
    painter.setFont(font)
    for page in range(PDF_PAGES):
        if page:
            writer.newPage()
        painter.drawText(QRectF(500, 500, 8000, 3000), f"Discharge letter, page {page + 1} of {PDF_PAGES}")
        painter.fillRect(QRectF(500, 4000, 6000, 1500), QColor(40, 40, 40))
    painter.end()
    return bytes(buffer.data())


def _png(width: int = 320, height: int = 200) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(250, 250, 245))
    painter = QPainter(image)
    painter.fillRect(40, 40, 240, 120, QColor(20, 60, 120))
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


def _reference(i: int, patient: str, title: str, ctype: str, data: bytes, date: str) -> dict:
    return {"resourceType": "DocumentReference", "id": f"test-doc-{i}", "status": "current",
            "type": {"text": title}, "subject": {"reference": f"Patient/{patient}"}, "date": date,
            "content": [{"attachment": {"contentType": ctype, "title": title,
                                        "data": base64.b64encode(data).decode()}}]}


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from vault.store import Vault
    v, _ = Vault.create(tmp_path_factory.mktemp("docs") / "v", PASSPHRASE, kdf_profile=TEST_PROFILE)
    synthea = FIXTURES / "synthea"
    ImportService(v).import_paths(sorted(synthea.glob("*Information*.json")) + [synthea / FLETCHER])
    with v.read() as conn:
        patient = conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Patient'").fetchone()[0]
    pdf, png = _pdf(), _png()
    assert ImportService(v).import_data(pdf, "discharge-letter.pdf").added == 1
    assert ImportService(v).import_data(png, "wound-photo.png").added == 1
    assert ImportService(v).import_data(_png(3000, 400), "panorama.png").added == 1
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _reference(1, patient, "Clinic note", "text/plain", NOTE.encode(), "1995-03-01T10:00:00Z")},
        {"resource": _reference(2, patient, "Referral letter", "application/msword", b"\xd0\xcf\x11\xe0" * 300,
                                "1994-05-02T09:30:00Z")},
        {"resource": {"resourceType": "DiagnosticReport", "id": "test-report", "status": "final",
                      "code": {"text": "Chest X-ray report"}, "subject": {"reference": f"Patient/{patient}"},
                      "effectiveDateTime": "1996-02-03", "issued": "1996-02-03T12:00:00Z",
                      "presentedForm": [{"contentType": "text/html", "data": base64.b64encode(REPORT).decode()}]}}]}
    assert ImportService(v).import_data(json.dumps(bundle).encode(), "notes.json").added == 3
    yield v, pdf, png
    v.close()


@pytest.fixture
def screen(qtbot, docs):
    runner = TaskRunner()
    s = DocumentsScreen(vault_context(docs[0], runner))
    qtbot.addWidget(s)
    s.resize(1100, 700)
    s.show()
    s.refresh()
    qtbot.waitUntil(lambda: s.model.rowCount() == 6, timeout=20000)
    yield s
    runner.wait()


def _open(qtbot, s: DocumentsScreen, title: str) -> None:
    row = next(r for r in range(s.model.rowCount()) if title in s.model.item(r, 1).text())
    s.table.setFocus()
    s.table.selectRow(row)
    qtbot.waitUntil(lambda: s.opened is not None and title in s.opened.item.title, timeout=20000)


def _files_holding(roots: list[Path], needles: list[bytes], since: float) -> list[Path]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                try:
                    st = path.stat()
                    # a copy of a small document is small: big files made by others meanwhile are not read
                    if st.st_mtime < since or not path.is_file() or st.st_size > 32 << 20:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(n in data for n in needles):
                    found.append(path)
    return found


def test_a_pdf_is_shown_from_memory_and_never_written_to_disk(qtbot, screen, docs, tmp_path, monkeypatch,
                                                              screenshot):
    vault, pdf, _png_bytes = docs
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    shared_tmp = Path(tempfile.gettempdir())
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    started = time.time() - 1
    _open(qtbot, screen, "discharge-letter.pdf")
    assert screen.viewer.currentWidget() is screen.pdf_view
    qtbot.waitUntil(lambda: screen.pdf.status() == QPdfDocument.Status.Ready, timeout=10000)
    assert screen.pdf.pageCount() == PDF_PAGES
    assert "PDF document" in screen.about.text()

    def dark_pixels() -> int:
        rendered = screen.pdf_view.grab().toImage()
        return sum(1 for x in range(0, rendered.width(), 4) for y in range(0, rendered.height(), 4)
                   if QColor(rendered.pixel(x, y)).lightness() < 80)

    # pages are rendered on QtPdf's own thread: wait until page one's dark box is on screen
    qtbot.waitUntil(lambda: dark_pixels() > 100, timeout=10000)
    screenshot(screen, "documents-pdf")
    # Any copy of the document (a temp file for the viewer, a cache) would hold these slices of it.
    needles = [pdf[i:i + 256] for i in range(0, len(pdf) - 256, max(len(pdf) // 8, 256))]
    assert _files_holding([private_tmp, vault.folder], needles, 0) == []
    assert _files_holding([shared_tmp], needles, started) == []


def test_an_image_is_drawn(qtbot, screen, docs, screenshot):
    _open(qtbot, screen, "wound-photo.png")
    assert screen.viewer.currentWidget() is screen.image_view
    pixmap = screen.image_view.label.pixmap()
    assert not pixmap.isNull() and (pixmap.width(), pixmap.height()) == (320, 200)
    assert QColor(pixmap.toImage().pixel(160, 100)) == QColor(20, 60, 120)
    assert "PNG image" in screen.about.text()
    screenshot(screen, "documents-image")


def test_a_photo_wider_than_any_screen_is_shown_scaled_to_the_view(qtbot, screen):
    _open(qtbot, screen, "panorama.png")
    assert screen.opened.image.width() == IMAGE_MAX_WIDTH            # made smaller once, on the worker
    pixmap = screen.image_view.label.pixmap()
    assert pixmap.width() <= screen.image_view.viewport().width()
    assert abs(pixmap.width() / pixmap.height() - 3000 / 400) < 0.05   # not stretched


def test_a_text_note_is_readable_and_an_unknown_kind_is_named(qtbot, screen):
    _open(qtbot, screen, "Clinic note")
    assert screen.viewer.currentWidget() is screen.text_view
    assert screen.text_view.toPlainText() == NOTE and screen.text_view.isReadOnly()
    _open(qtbot, screen, "Referral letter")
    assert screen.viewer.currentWidget() is screen.message
    assert "Word document" in screen.message.text() and "application/msword" in screen.message.text()


def test_a_reports_presented_form_is_listed_and_read_as_text(qtbot, screen):
    _open(qtbot, screen, "Chest X-ray report")
    assert screen.opened.item.rtype == "DiagnosticReport"
    assert screen.viewer.currentWidget() is screen.text_view
    assert screen.text_view.toPlainText() == "Chest X-ray\nLungs clear.\nNo effusion."   # no script, no title


def test_list_is_newest_first_and_read_only(screen):
    titles = [screen.model.item(r, 1).text() for r in range(screen.model.rowCount())]
    assert titles[-2:] == ["Clinic note", "Referral letter"]           # 1995, then 1994
    assert not any(screen.model.item(r, c).flags() & Qt.ItemFlag.ItemIsEditable
                   for r in range(screen.model.rowCount()) for c in range(3))


def test_activating_a_document_opens_its_record(qtbot, screen):
    opened = []
    screen.open_record.connect(lambda rtype, rid: opened.append((rtype, rid)))
    _open(qtbot, screen, "Clinic note")
    qtbot.keyClick(screen.table, Qt.Key.Key_Return)
    assert opened == [("DocumentReference", "test-doc-1")]


def test_every_focusable_widget_has_an_accessible_name(qtbot, screen):
    _open(qtbot, screen, "discharge-letter.pdf")
    unnamed = [w for w in screen.findChildren(QWidget)
               if w.focusPolicy() != Qt.FocusPolicy.NoFocus and not w.accessibleName()]
    assert unnamed == []


def test_an_empty_vault_says_how_documents_arrive(qtbot, vault_factory):
    runner = TaskRunner()
    s = DocumentsScreen(vault_context(vault_factory("empty"), runner))
    qtbot.addWidget(s)
    s.refresh()
    qtbot.waitUntil(lambda: "No documents yet" in s.list_note.text(), timeout=20000)
    runner.wait()

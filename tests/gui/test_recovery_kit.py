"""The recovery kit as a user makes it: saved as a PDF or printed from the recovery-key page.

Each PDF is rendered back to pixels with poppler's ``pdftoppm`` and its QR code read with zxing-cpp: it must be the
recovery key, exactly. The vault holds a real Synthea patient, and nothing about them may reach the page.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import date
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtPrintSupport import QPrinter

from app import recovery_kit
from app.tasks import SyncRunner
from app.unlock_window import UnlockWindow
from tests.conftest import FIXTURES, PASSPHRASE
from vault.store import Vault

SYNTHEA = FIXTURES / "synthea" / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"


def _patient_words() -> list[str]:
    bundle = json.loads(SYNTHEA.read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    name = patient["name"][0]
    return [name["family"], *name["given"], patient["birthDate"]]


def _render(pdf: Path) -> tuple[list[str], str, str]:
    """(QR texts found on the rendered page, the page's text, the document's metadata) by poppler's tools."""
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(prefix)], check=True, timeout=60)
    pages = sorted(pdf.parent.glob(f"{prefix.name}-*.png"))
    assert len(pages) == 1, pages  # one sheet of paper
    codes = [c.text for c in zxingcpp.read_barcodes(Image.open(pages[0]))]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
    return codes, text, info


@pytest.fixture
def window_on_a_new_key(qtbot, tmp_path, vault_factory, cli):
    """A vault with a patient in it whose recovery key was never confirmed, unlocked to its new-key page."""
    vault_factory("v", recovery_key_confirmed=False).close()
    result = cli(["--vault", str(tmp_path / "v"), "import", str(SYNTHEA)])
    assert result.code == 0, result.err
    window = UnlockWindow(tmp_path / "v", SyncRunner())
    qtbot.addWidget(window)
    window.show()
    qtbot.keyClicks(window.pass_field, PASSPHRASE)
    qtbot.mouseClick(window.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.new_key_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.recovery_page and window._recovery_key
    yield window
    window.close()


def test_save_as_pdf_gives_one_page_whose_qr_is_the_key(qtbot, tmp_path, window_on_a_new_key):
    window = window_on_a_new_key
    key = window._recovery_key
    out = tmp_path / "kits"
    out.mkdir()
    old_umask = os.umask(0o022)
    try:
        qtbot.mouseClick(window.save_kit_button, Qt.MouseButton.LeftButton)
        dialog = window._save_dialog
        assert dialog is not None and dialog.isVisible()
        dialog.selectFile(str(out / "my kit"))
        dialog.accept()  # the dialog adds the .pdf
    finally:
        os.umask(old_umask)
    pdf = out / "my kit.pdf"
    assert "Saved as my kit.pdf" in window.kit_message.text()
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    assert [p.name for p in out.iterdir()] == ["my kit.pdf"]  # written whole: no temp file left beside it

    codes, text, info = _render(pdf)
    assert codes == [key]
    groups = key.split("-")
    for line in (groups[0:3], groups[3:6], groups[6:9]):
        assert " ".join(line) in text
    today = date.today()
    assert f"Made on {today.day} {today.strftime('%B %Y')}" in text
    assert "What to do with it" in text and "What it cannot do" in text
    assert recovery_kit.vault_hint(window._pending.vault_id) in text
    for word in _patient_words():  # no health data, not even whose vault this is
        assert word not in text and word not in info
    assert str(tmp_path) not in info and "medvault recovery kit" in info


def test_print_draws_the_same_kit(qtbot, tmp_path, window_on_a_new_key):
    window = window_on_a_new_key
    qtbot.mouseClick(window.print_kit_button, Qt.MouseButton.LeftButton)
    dialog = window._print_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.reject()
    assert window.kit_message.text() == ""  # cancelled: nothing printed, nothing said

    # "Print to file" in the dialog: the kit is saved like the Save button's, owner-only, not by Qt's writer
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed-to-file.pdf"))
    old_umask = os.umask(0o022)
    try:
        window.print_kit(printer)
    finally:
        os.umask(old_umask)
    assert "Saved as printed-to-file.pdf" in window.kit_message.text()
    assert stat.S_IMODE((tmp_path / "printed-to-file.pdf").stat().st_mode) == 0o600
    assert _render(tmp_path / "printed-to-file.pdf")[0] == [window._recovery_key]

    # What a real printer is sent: the painting itself, caught here by a PDF-writing printer standing in for paper.
    paper = QPrinter(QPrinter.PrinterMode.HighResolution)
    paper.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    paper.setOutputFileName(str(tmp_path / "paper.pdf"))
    recovery_kit.print_on(paper, window._recovery_key, date.today(), "ABCD 1234")
    codes, text, _info = _render(tmp_path / "paper.pdf")
    assert codes == [window._recovery_key]
    assert "What it cannot do" in text and "for vault ABCD 1234" in text


def test_the_kit_never_replaces_a_link_or_a_folder(qtbot, tmp_path, window_on_a_new_key):
    window = window_on_a_new_key
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "kit.pdf"
    os.symlink(victim, link)
    window.save_kit(str(link))
    assert "link or a folder" in window.kit_message.text()
    assert victim.read_text() == "keep me" and link.is_symlink()
    (tmp_path / "folder.pdf").mkdir()
    window.save_kit(str(tmp_path / "folder.pdf"))
    assert "link or a folder" in window.kit_message.text() and (tmp_path / "folder.pdf").is_dir()


def test_the_confirmed_new_key_is_the_one_on_the_kit(qtbot, tmp_path, window_on_a_new_key):
    window = window_on_a_new_key
    key = window._recovery_key
    window.save_kit(str(tmp_path / "kit.pdf"))
    assert _render(tmp_path / "kit.pdf")[0] == [key]
    window.confirm_box.setChecked(True)
    qtbot.keyClicks(window.confirm_group, key.rsplit("-", 1)[-1])
    with qtbot.waitSignal(window.unlocked) as signal:
        qtbot.mouseClick(window.continue_button, Qt.MouseButton.LeftButton)
    signal.args[0].close()
    Vault.recover(tmp_path / "v", _render(tmp_path / "kit.pdf")[0][0], "the passphrase after recovery").close()

"""The page helpers the recovery kit and a share's QR page share: an owner-only atomic save that says in one sentence,
naming what was saved, why it failed; the same page in a PDF and on a printer set to print to a file."""

from __future__ import annotations

import stat

import pytest
from PySide6.QtCore import QMarginsF, QRectF
from PySide6.QtGui import QPageLayout, QPageSize
from PySide6.QtPrintSupport import QPrinter

from app import paper
from app.recovery_kit import KitNotSaved
from app.share_qr import QrNotSaved


def _layout() -> QPageLayout:
    return QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                       QMarginsF(20, 20, 20, 20), QPageLayout.Unit.Millimeter)


def test_save_is_owner_only_and_names_what_failed(tmp_path):
    saved = paper.save(tmp_path / "page.pdf", b"%PDF-1.4 page", QrNotSaved, "The QR code")
    assert saved.read_bytes() == b"%PDF-1.4 page" and stat.S_IMODE(saved.stat().st_mode) == 0o600
    with pytest.raises(KitNotSaved) as missing:
        paper.save(tmp_path / "no such folder" / "kit.pdf", b"x", KitNotSaved, "The recovery kit")
    assert str(missing.value) == ("The recovery kit could not be saved there (No such file or directory); choose "
                                  "another folder.")
    (tmp_path / "folder.pdf").mkdir()
    with pytest.raises(QrNotSaved) as folder:
        paper.save(tmp_path / "folder.pdf", b"x", QrNotSaved, "The QR code")
    assert str(folder.value) == ("\u201cfolder.pdf\u201d is a link or a folder, not a file; medvault did not replace "
                                 "it. Choose another name.")
    assert (tmp_path / "folder.pdf").is_dir()


def test_the_same_page_in_a_pdf_and_on_a_printer(qtbot, tmp_path):
    drawn: list[int] = []

    def paint(painter) -> None:
        drawn.append(painter.device().width())
        painter.drawRect(QRectF(0, 0, 100, 100))

    data = paper.pdf_bytes("a page", 300, _layout(), paint)
    assert data.startswith(b"%PDF") and b"/Count 1" in data
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed.pdf"))
    assert paper.prints_to_file(printer)
    paper.print_page(printer, "a page", _layout(), paint, QrNotSaved("unreachable"))
    assert (tmp_path / "printed.pdf").read_bytes().startswith(b"%PDF") and len(drawn) == 2
    assert printer.docName() == "a page"
    assert not paper.prints_to_file(QPrinter(QPrinter.PrinterMode.HighResolution))

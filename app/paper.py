"""One page for paper: drawn into a PDF in memory or onto a printer, saved owner-only, and the dialogs that ask
where. The recovery kit and a share's QR page are such pages; each says in its own words what failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage, QPageLayout, QPainter, QPdfWriter
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QFileDialog, QWidget

from sync.qr import make_image
from vault.errors import StorageUnavailable
from vault.fsutil import NotARegularFile, write_atomically

Paint = Callable[[QPainter], None]


def qr_qimage(text: str) -> QImage:
    """``text``'s QR code (``sync.qr``: one block per module, quiet zone included) as a grayscale QImage."""
    pil = make_image(text)
    if pil.mode != "L":
        pil = pil.convert("L")
    data = pil.tobytes()
    # copy(): the QImage must own its pixels once ``data`` goes away
    return QImage(data, pil.width, pil.height, pil.width, QImage.Format.Format_Grayscale8).copy()


def pdf_bytes(title: str, dpi: int, layout: QPageLayout, paint: Paint) -> bytes:
    """The page as a one-page PDF, in memory: nothing touches the disk until it is saved."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(title)
    writer.setCreator("medvault")
    writer.setResolution(dpi)
    writer.setPageLayout(layout)
    painter = QPainter(writer)
    try:
        paint(painter)
    finally:
        painter.end()
    buffer.close()
    return bytes(data.data())


def print_page(printer: QPrinter, title: str, layout: QPageLayout, paint: Paint, unreachable: Exception) -> None:
    """Draw the page on ``printer``; ``unreachable`` is raised when the printer cannot be started."""
    printer.setDocName(title)
    printer.setPageLayout(layout)
    painter = QPainter()
    if not painter.begin(printer):
        raise unreachable
    try:
        paint(painter)
    finally:
        painter.end()


def prints_to_file(printer: QPrinter) -> bool:
    """"Print to file": Qt would write it as any document, readable by all; it goes through ``save`` instead."""
    return printer.outputFormat() == QPrinter.OutputFormat.PdfFormat and bool(printer.outputFileName())


def save(path: Path | str, data: bytes, error: type[StorageUnavailable], what: str) -> Path:
    """Write ``data`` atomically, owner-only, and never over a link or a folder; ``error`` says why not, naming
    ``what`` was saved ("The QR code", ...). Runs on a worker."""
    path = Path(path)
    try:
        write_atomically(path, data, only_over_regular=True)
    except NotARegularFile:
        raise error(f"\u201c{path.name}\u201d is a link or a folder, not a file; medvault did not replace it. "
                    "Choose another name.") from None
    except OSError as exc:
        raise error(f"{what} could not be saved there ({os.strerror(exc.errno or 0)}); choose another "
                    "folder.") from None
    return path


def save_dialog(parent: QWidget, title: str, suggested: Path, kind: str,
                on_path: Callable[[str], None]) -> QFileDialog:
    """The Save dialog, opened (not run: the window stays live), the same keyboard-reachable dialog on every
    desktop. ``kind``: "PDF documents (*.pdf)"; a bare name gets ``suggested``'s suffix."""
    dialog = QFileDialog(parent, title, str(suggested), kind)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setDefaultSuffix(suggested.suffix.lstrip("."))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
    dialog.fileSelected.connect(on_path)
    dialog.open()
    return dialog


def print_dialog(parent: QWidget, title: str, on_printer: Callable[[QPrinter], None]) -> QPrintDialog:
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    dialog = QPrintDialog(printer, parent)
    dialog.setWindowTitle(title)
    dialog.accepted.connect(lambda: on_printer(printer))
    dialog.setWindowModality(Qt.WindowModality.WindowModal)  # QPrintDialog.open() wants a slot to call
    dialog.show()
    return dialog

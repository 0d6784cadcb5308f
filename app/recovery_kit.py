"""The recovery kit: one page with the recovery key, its QR code, the date, and what to do with it.

The same drawing goes to a PDF (saved atomically, 0600, never over a link) and to a printer. It holds nothing
about the person or their records: only the key, the day it was made, and the first characters of the vault's
random id, so a family with several vaults can tell their kits apart. The page is drawn with the painter's
defaults (dark ink on paper) rather than screen colours: it is meant for paper, whatever the desktop theme.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from PySide6.QtCore import QLocale, QMarginsF, QRectF, QStandardPaths, Qt
from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import QFileDialog, QWidget

from app import paper
from vault.errors import StorageUnavailable

TITLE = "medvault recovery kit"
DPI = 300

WHAT_TO_DO = (
    "Keep this page somewhere safe and away from your computer: with your passport, in a locked drawer, or with "
    "someone you trust.",
    "If you forget your passphrase, open medvault, choose \u201cForgot your passphrase? Use your recovery key\u201d, "
    "and type the key above or scan the code. You then choose a new passphrase; your records stay as they are.",
    "Do not photograph it, email it, or keep it on the computer that holds your vault. If you saved this page as "
    "a file, print it and delete the file.",
    "If this page is lost, or someone else may have seen it, make a new recovery key in medvault: this one then "
    "stops working.",
)
WHAT_IT_CANNOT_DO = (
    "It cannot open your records on its own: it works only together with your vault folder. Keep backups of the "
    "folder; without it there is nothing to recover.",
    "It holds none of your records and nothing about you.",
    "Nobody, not even medvault, can reset your passphrase or send you a new key: this page and your passphrase "
    "are the only ways in.",
)
WARNING = ("Anyone who has this key and a copy of your vault folder can read your records. "
           "Look after it as you would the key to your home.")


class KitNotSaved(StorageUnavailable):
    """The recovery kit could not be written where the user asked."""


def _key_lines(key: str) -> list[str]:
    groups = key.split("-")
    return [" ".join(groups[i:i + 3]) for i in range(0, len(groups), 3)]


def _font(family: str, points: float, *, bold: bool = False, mono: bool = False) -> QFont:
    font = QFont(family)
    font.setStyleHint(QFont.StyleHint.Monospace if mono else QFont.StyleHint.SansSerif)
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


def paint(painter: QPainter, key: str, made_on: date, vault_hint: str) -> None:
    """Draw the kit on the painter's current page (a PDF writer or a printer), top to bottom."""
    device = painter.device()
    mm = device.logicalDpiX() / 25.4
    width = device.width()
    y = 0.0

    def text(body: str, font: QFont, *, gap_after: float = 2.5, indent: float = 0.0,
             flags: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft, right: float | None = None) -> None:
        nonlocal y
        painter.setFont(font)
        area = QRectF(indent * mm, y, (right if right is not None else width) - indent * mm, 1e6)
        wrap = int(flags) | int(Qt.TextFlag.TextWordWrap)
        used = painter.boundingRect(area, wrap, body)
        painter.drawText(area, wrap, body)
        y += used.height() + gap_after * mm

    def bullets(heading: str, items: tuple[str, ...]) -> None:
        nonlocal y
        text(heading, _font("DejaVu Sans", 13, bold=True), gap_after=1.5)
        for item in items:
            painter.setFont(_font("DejaVu Sans", 10.5))
            painter.drawText(QRectF(2 * mm, y, 5 * mm, 10 * mm), int(Qt.AlignmentFlag.AlignLeft), "\u2022")
            text(item, _font("DejaVu Sans", 10.5), gap_after=1.5, indent=7)
        y += 3 * mm

    text(TITLE, _font("DejaVu Sans", 22, bold=True), gap_after=1.5)
    text(f"Made on {made_on.day} {made_on.strftime('%B %Y')} for vault {vault_hint}",
         _font("DejaVu Sans", 11), gap_after=8)

    # The key and its code side by side, framed so the key reads as one thing to keep.
    qr_side = 50 * mm
    box_top = y
    box_height = qr_side + 8 * mm
    painter.drawRect(QRectF(0, box_top, width, box_height))
    y = box_top + 5 * mm
    text("Recovery key", _font("DejaVu Sans", 11, bold=True), gap_after=3, indent=6)
    text("\n".join(_key_lines(key)), _font("DejaVu Sans Mono", 20, bold=True, mono=True), gap_after=3, indent=6,
         right=width - qr_side - 10 * mm)
    text("9 groups of 4 letters and digits. Capitals or not, and O or 0, I or 1, make no difference.",
         _font("DejaVu Sans", 9), indent=6, right=width - qr_side - 10 * mm)
    qr_rect = QRectF(width - qr_side - 4 * mm, box_top + 4 * mm, qr_side, qr_side)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # sharp modules scan best
    painter.drawImage(qr_rect, paper.qr_qimage(key))
    y = box_top + box_height + 8 * mm

    bullets("What to do with it", WHAT_TO_DO)
    bullets("What it cannot do", WHAT_IT_CANNOT_DO)
    text(WARNING, _font("DejaVu Sans", 11, bold=True))


def _page_size() -> QPageSize:
    imperial = QLocale().measurementSystem() == QLocale.MeasurementSystem.ImperialUSSystem
    return QPageSize(QPageSize.PageSizeId.Letter if imperial else QPageSize.PageSizeId.A4)


def _layout() -> QPageLayout:
    return QPageLayout(_page_size(), QPageLayout.Orientation.Portrait, QMarginsF(20, 20, 20, 20),
                       QPageLayout.Unit.Millimeter)


def pdf_bytes(key: str, made_on: date, vault_hint: str) -> bytes:
    """The kit as a one-page PDF, in memory: nothing touches the disk until ``save_pdf``."""
    return paper.pdf_bytes(TITLE, DPI, _layout(), lambda painter: paint(painter, key, made_on, vault_hint))


def save_pdf(path: Path | str, data: bytes) -> Path:
    """Write the PDF atomically, owner-only, and never over a link or a folder. Runs on a worker."""
    return paper.save(path, data, KitNotSaved, "The recovery kit")


def print_on(printer: QPrinter, key: str, made_on: date, vault_hint: str) -> None:
    paper.print_page(printer, TITLE, _layout(), lambda painter: paint(painter, key, made_on, vault_hint),
                     KitNotSaved("The printer could not be reached; check that it is on, or save the kit as a PDF "
                                 "and print that."))


def vault_hint(vault_id: str) -> str:
    """The first 8 characters of the random vault id, grouped, to tell one family member's kit from another's."""
    head = vault_id[:8].upper()
    return f"{head[:4]} {head[4:]}"


# --- asking where it goes: the same dialogs wherever a recovery key is shown ----------------------------------------

SAVED = "Saved as {name}. Print it or move it off this computer, then delete the file here."
PRINTED = "Sent to the printer. Keep the page somewhere safe, away from this computer."


def save_dialog(parent: QWidget, on_path: Callable[[str], None]) -> QFileDialog:
    """The Save dialog (opened, not run: the window stays live), in the Documents folder, the same
    keyboard-reachable dialog on every desktop; ``on_path(path)`` when a file is chosen."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return paper.save_dialog(parent, "Save your recovery kit", Path(folder) / "medvault-recovery-kit.pdf",
                             "PDF documents (*.pdf)", on_path)


def print_dialog(parent: QWidget, on_printer: Callable[[QPrinter], None]) -> QPrintDialog:
    return paper.print_dialog(parent, "Print your recovery kit", on_printer)


def print_or_save(printer: QPrinter, key: str, made_on: date, hint: str, save: Callable[[str], None]) -> str | None:
    """Print the kit and return what to say, or, for "Print to file", hand the file name to ``save`` instead (Qt
    would write it readable by all; the kit goes through the owner-only atomic save) and return None."""
    if paper.prints_to_file(printer):
        save(printer.outputFileName())
        return None
    print_on(printer, key, made_on, hint)
    return PRINTED

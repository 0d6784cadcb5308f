"""A share's QR code on screen, on paper and in a file, and its link on the clipboard for one minute.

On screen every module is a whole number of pixels, at least ``MIN_MODULE_PX`` (1.6 mm on a 96 dpi screen: a
phone or a webcam reads it from across a desk) and up to ``MAX_MODULE_PX``, with the standard quiet zone, drawn
without smoothing. The PNG (0600, written atomically, never over a link) and the printed page carry the link and
nothing from the records: a QR is a key to them, so the page says so. The clipboard is cleared after
``CLEAR_AFTER_MS`` unless something else was copied meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMarginsF, QObject, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QClipboard, QFont, QGuiApplication, QImage, QPageLayout, QPageSize, QPainter, QPixmap
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from app import paper
from sync.qr import BOX_SIZE, png_bytes
from vault.errors import StorageUnavailable

MIN_MODULE_PX = 6
MAX_MODULE_PX = 10
CLEAR_AFTER_MS = 60_000
PRINT_DPI = 300
QR_ON_PAPER_MM = 90
PAGE_TITLE = "medvault share"


class QrNotSaved(StorageUnavailable):
    """The QR image or page could not be written where the user asked."""


def qr_image(link: str) -> QImage:
    """The link's QR code, one ``BOX_SIZE`` block per module, as a grayscale QImage that owns its pixels."""
    return paper.qr_qimage(link)


def modules_of(image: QImage) -> int:
    """How many modules wide the code is, quiet zone included."""
    return image.width() // BOX_SIZE


def module_px(image: QImage, room: QSize) -> int:
    """The whole number of pixels per module that fits ``room``, up to ``MAX_MODULE_PX``. The view asks for room
    for ``MIN_MODULE_PX``; should a window still be smaller, a smaller code beats one cut off at its edge."""
    fits = min(room.width(), room.height()) // max(1, modules_of(image))
    return max(1, min(MAX_MODULE_PX, fits))


SMALL_SCREEN = ("This window is small for this code: if a phone or webcam does not read it, make the window larger, "
                "or print the code or save it as an image.")


class QrView(QLabel):
    """The QR code, as large as the room allows in whole pixels per module, never blurred. ``drawn(px)`` says
    the size each time it changes."""

    drawn = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAccessibleName("QR code of the share link")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self.px = 0                      # pixels per module as last drawn

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.px = 0                      # another code of the same size must still be drawn
        self._redraw()

    def has_code(self) -> bool:
        return self._image is not None

    def minimumSizeHint(self) -> QSize:
        if self._image is None:
            return QSize(200, 200)
        side = modules_of(self._image) * MIN_MODULE_PX
        return QSize(side, side)

    def sizeHint(self) -> QSize:
        if self._image is None:
            return QSize(400, 400)
        side = modules_of(self._image) * 8
        return QSize(side, side)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._redraw()

    def _redraw(self) -> None:
        if self._image is None:
            self.px = 0
            self.clear()
            return
        px = module_px(self._image, self.contentsRect().size())
        if px == self.px and self.pixmap() is not None and not self.pixmap().isNull():
            return
        self.px = px
        ratio = self.devicePixelRatioF()
        side = modules_of(self._image) * px
        # nearest-neighbour scaling of whole modules keeps every edge sharp
        scaled = self._image.scaled(round(side * ratio), round(side * ratio), Qt.AspectRatioMode.IgnoreAspectRatio,
                                    Qt.TransformationMode.FastTransformation)
        pixmap = QPixmap.fromImage(scaled)
        pixmap.setDevicePixelRatio(ratio)
        self.setPixmap(pixmap)
        self.drawn.emit(px)


# --- files and paper ---------------------------------------------------------------------------------------------

def _save(path: str | Path, data: bytes) -> Path:
    """Owner-only and atomically, never over a link or a folder. Runs on a worker."""
    return paper.save(path, data, QrNotSaved, "The QR code")


def save_png(path: str | Path, link: str) -> Path:
    return _save(path, png_bytes(link))


def _font(points: float, *, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setStyleHint(QFont.StyleHint.SansSerif)
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


def paint_page(painter: QPainter, link: str, lines: list[str], warning: str) -> None:
    """The page: a title, the code large in the middle, who may open it and until when, and the warning. Dark
    ink on paper whatever the screen's theme."""
    device = painter.device()
    mm = device.logicalDpiX() / 25.4
    width = device.width()
    y = 0.0

    def text(body: str, font: QFont, gap: float) -> None:
        nonlocal y
        painter.setFont(font)
        area = QRectF(0, y, width, 1e6)
        flags = int(Qt.AlignmentFlag.AlignHCenter) | int(Qt.TextFlag.TextWordWrap)
        used = painter.boundingRect(area, flags, body)
        painter.drawText(area, flags, body)
        y += used.height() + gap * mm

    text(PAGE_TITLE, _font(20, bold=True), 6)
    side = QR_ON_PAPER_MM * mm
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)   # sharp modules scan best
    painter.drawImage(QRectF((width - side) / 2, y, side, side), qr_image(link))
    y += side + 6 * mm
    for line in lines:
        text(line, _font(12), 2)
    y += 4 * mm
    text(warning, _font(11, bold=True), 0)


def _layout() -> QPageLayout:
    return QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                       QMarginsF(20, 20, 20, 20), QPageLayout.Unit.Millimeter)


def pdf_bytes(link: str, lines: list[str], warning: str) -> bytes:
    """The page as a PDF, in memory: nothing touches the disk until it is saved."""
    return paper.pdf_bytes(PAGE_TITLE, PRINT_DPI, _layout(), lambda painter: paint_page(painter, link, lines, warning))


def save_pdf(path: str | Path, data: bytes) -> Path:
    return _save(path, data)


def print_on(printer: QPrinter, link: str, lines: list[str], warning: str) -> None:
    paper.print_page(printer, PAGE_TITLE, _layout(), lambda painter: paint_page(painter, link, lines, warning),
                     QrNotSaved("The printer could not be reached; check that it is on, or save the QR code as an "
                                "image and print that."))


# --- the clipboard -----------------------------------------------------------------------------------------------

Schedule = Callable[[int, Callable[[], None]], None]


class ClipboardGuard(QObject):
    """Copies a link and clears it again after ``CLEAR_AFTER_MS``, but only if the clipboard still holds it:
    whatever the user copied since is theirs. ``schedule(ms, fn)`` is injectable (tests fire it at once)."""

    cleared = Signal()

    def __init__(self, clipboard: QClipboard | None = None, schedule: Schedule | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent if parent is not None else QGuiApplication.instance())
        self._clipboard = clipboard
        self._schedule = schedule or (lambda ms, fn: QTimer.singleShot(ms, self, fn))
        self._copied: str | None = None
        self._generation = 0

    @property
    def clipboard(self) -> QClipboard:
        return self._clipboard or QGuiApplication.clipboard()

    def copy(self, text: str) -> None:
        self.clipboard.setText(text)
        self._copied = text
        self._generation += 1
        generation = self._generation
        self._schedule(CLEAR_AFTER_MS, lambda: self._expire(generation))

    def _expire(self, generation: int) -> None:
        if generation != self._generation or self._copied is None:
            return                          # copied again since: that copy's own timer clears it
        if self.clipboard.text() == self._copied:
            self.clipboard.clear()
            self.cleared.emit()
        self._copied = None


_shared_guard: ClipboardGuard | None = None


def clipboard_guard() -> ClipboardGuard:
    """One guard for the application, so a link copied from a dialog is cleared even after it closes."""
    global _shared_guard
    if _shared_guard is None:
        _shared_guard = ClipboardGuard()
    return _shared_guard


# --- the panel the wizard and "Show QR again" share ------------------------------------------------------------------

def _ask_save_path(parent: QWidget, callback: Callable[[str], None]) -> None:
    from PySide6.QtCore import QStandardPaths
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation) or str(Path.home())
    parent._save_dialog = paper.save_dialog(                    # type: ignore[attr-defined]
        parent, "Save the QR code", Path(folder) / "medvault-share.png", "PNG images (*.png)", callback)


def _ask_printer(parent: QWidget, callback: Callable[[QPrinter], None]) -> None:
    parent._print_dialog = paper.print_dialog(parent, "Print the QR code", callback)   # type: ignore[attr-defined]


class QrPanel(QWidget):
    """The code, what it opens and for whom, and what to do with it: copy the link, save the image, print it.
    Saving runs on the task runner; the dialogs that ask where are injectable for tests."""

    def __init__(self, runner: Any, *, guard: ClipboardGuard | None = None,
                 ask_save_path: Callable[[QWidget, Callable[[str], None]], None] | None = None,
                 ask_printer: Callable[[QWidget, Callable[[QPrinter], None]], None] | None = None) -> None:
        super().__init__()
        from app.unlock_window import InlineMessage
        self._runner = runner
        self._guard = guard
        self._ask_save_path = ask_save_path or _ask_save_path
        self._ask_printer = ask_printer or _ask_printer
        self.link: str | None = None
        self.lines: list[str] = []
        self.warning = ""
        self.view = QrView()
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice = InlineMessage("Warning about this link")
        self.small = InlineMessage("Warning about the size of the code")
        self.view.drawn.connect(self._size_drawn)
        self.message = InlineMessage("What happened")
        self.copy_button = QPushButton("&Copy link")
        self.copy_button.setAccessibleName("Copy the link")
        self.copy_button.setToolTip("The link is removed from the clipboard after a minute, unless you copied "
                                    "something else meanwhile.")
        self.save_button = QPushButton("&Save image\u2026")
        self.save_button.setAccessibleName("Save the QR code as an image")
        self.print_button = QPushButton("&Print\u2026")
        self.print_button.setAccessibleName("Print the QR code")
        self.copy_button.clicked.connect(self.copy_link)
        self.save_button.clicked.connect(lambda: self._ask_save_path(self, self.save_to))
        self.print_button.clicked.connect(lambda: self._ask_printer(self, self.print_to))
        self.caption.setAlignment(Qt.AlignmentFlag.AlignLeft)
        # The code on the left, the words and actions beside it: a laptop screen is wider than tall, and a long
        # directed link's code needs all the height there is.
        side = QVBoxLayout()
        side.addWidget(self.caption)
        side.addWidget(self.notice)
        side.addWidget(self.small)
        side.addSpacing(12)
        for b in (self.copy_button, self.save_button, self.print_button):
            side.addWidget(b)
        side.addWidget(self.message)
        side.addStretch(1)
        column = QWidget()
        column.setLayout(side)
        column.setMinimumWidth(240)
        column.setMaximumWidth(320)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(column)

    @property
    def guard(self) -> ClipboardGuard:
        return self._guard or clipboard_guard()

    def show_link(self, link: str, image: QImage | None, lines: list[str], warning: str,
                  notice: str = "") -> None:
        """Show ``link``'s code (``image`` when already drawn on a worker) with ``lines`` under it; ``warning``
        goes on the printed page, ``notice`` (a link that opens only on this computer) under the code."""
        self.link, self.lines, self.warning = link, list(lines), warning
        self.view.set_image(image if image is not None else qr_image(link))
        self.caption.setText("\n".join(lines))
        if notice:
            self.notice.say(notice)
        else:
            self.notice.clear()
        self.message.clear()

    def _size_drawn(self, px: int) -> None:
        if px < MIN_MODULE_PX:
            self.small.say(SMALL_SCREEN)
        else:
            self.small.clear()

    def copy_link(self) -> None:
        if self.link:
            self.guard.copy(self.link)
            self.message.say("Link copied. It is removed from the clipboard in a minute.", warning=False)

    def save_to(self, path: str) -> None:
        if not self.link or not path:
            return
        link = self.link
        self._runner.run(lambda: save_png(path, link),
                         lambda saved: self.message.say(f"Saved as {saved.name}. Anyone with this image can open "
                                                        "the share: delete it when it is no longer needed.",
                                                        warning=False),
                         self._failed)

    def print_to(self, printer: QPrinter) -> None:
        if not self.link:
            return
        if paper.prints_to_file(printer):
            data = pdf_bytes(self.link, self.lines, self.warning)     # painting stays on the GUI thread
            path = printer.outputFileName()
            self._runner.run(lambda: save_pdf(path, data),
                             lambda saved: self.message.say(f"Saved as {saved.name}.", warning=False), self._failed)
            return
        try:
            print_on(printer, self.link, self.lines, self.warning)
        except QrNotSaved as exc:
            self._failed(exc)
            return
        self.message.say("Sent to the printer. Anyone holding the page can open the share.", warning=False)

    def _failed(self, exc: BaseException) -> None:
        from app.errors import expected, user_message
        if not expected(exc):
            from app.crash import record
            record(exc)             # a bug: a report without health data for the developers
        self.message.say(user_message(exc))

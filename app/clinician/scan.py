"""Four ways to take in the patient's code: the camera, a picture or screenshot, a region of the screen, a pasted link.

Whatever the way, pictures are read by ``sync.qr`` on the task runner, never on the GUI thread, and every text found
goes through one ``ScanCollector``: a share link is ready at once, a SMART Health Card split over several codes is
collected part by part. ``ScanPanel.scanned`` then hands over what to open.

The camera is Qt Multimedia (camera, capture session, video sink; imported in this module only) behind a
``FrameSource``, so a test can feed real frames instead. Frames are decoded one at a time, at most every
``DECODE_EVERY_MS``, always the newest: a readable frame is decoded well within a second, and the GUI never queues
up stale work. A computer without a camera says so and points to the other ways.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QImageReader, QKeySequence, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy,
                               QTabWidget, QVBoxLayout, QWidget)

from app.services.received import ScanCollector, Scanned

DECODE_EVERY_MS = 150
PREVIEW_EVERY_MS = 60
MAX_PICTURE_BYTES = 64 << 20
PICTURE_FILTER = "Pictures (*.png *.jpg *.jpeg *.gif *.bmp *.webp);;All files (*)"
NO_CAMERA = ("No camera was found on this computer. Open a picture or screenshot of the code, pick it from the "
             "screen, or paste the link instead.")
NO_CAMERA_SUPPORT = ("Camera support is not available on this computer. Open a picture or screenshot of the code, "
                     "pick it from the screen, or paste the link instead.")


# --- reading pictures (on the task runner) ---------------------------------------------------------------------

def decode_image(image: QImage) -> list[str]:
    """Every QR code's text in a picture (none: an empty list)."""
    from sync import qr
    from sync.errors import QrUnreadable
    if image.isNull():
        raise QrUnreadable()
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    return qr.decode_all_gray(bytes(gray.constBits()), gray.width(), gray.height(), gray.bytesPerLine())


def decode_file(path: str) -> list[str]:
    """Every QR code's text in a picture file; refuses what is not a picture, or is far larger than a screenshot."""
    from sync.errors import QrNotFound, QrUnreadable
    try:
        size = Path(path).stat().st_size
    except OSError:
        raise QrUnreadable("The picture could not be read; check that it still exists.") from None
    if size > MAX_PICTURE_BYTES:
        raise QrUnreadable("This file is far larger than a picture of a code, so it was not read.")
    reader = QImageReader(path)
    image = reader.read()
    if image.isNull():
        raise QrUnreadable()
    texts = decode_image(image)
    if not texts:
        raise QrNotFound("No QR code was found in this picture; try a sharper or closer one.")
    return texts


# --- the camera ------------------------------------------------------------------------------------------------

class FrameSource(QObject):
    """Where frames come from. ``start()`` returns None when frames will come, else the sentence why not."""

    frame = Signal(QImage)
    stopped = Signal(str)                   # frames stopped on their own (the camera was unplugged): why

    def start(self) -> str | None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class CameraSource(FrameSource):
    """The first camera the system offers, through Qt Multimedia."""

    def __init__(self) -> None:
        super().__init__()
        self._camera: Any = None
        self._session: Any = None
        self._sink: Any = None

    def start(self) -> str | None:
        if self._camera is not None:
            return None
        try:
            from PySide6.QtMultimedia import QCamera, QMediaCaptureSession, QMediaDevices, QVideoSink
        except ImportError:         # the system lacks a library Qt Multimedia needs
            return NO_CAMERA_SUPPORT
        devices = QMediaDevices.videoInputs()
        if not devices:
            return NO_CAMERA
        self._camera = QCamera(devices[0])
        self._session = QMediaCaptureSession()
        self._sink = QVideoSink()
        self._session.setCamera(self._camera)
        self._session.setVideoSink(self._sink)
        self._sink.videoFrameChanged.connect(self._frame)
        self._camera.errorOccurred.connect(self._failed)
        self._camera.start()
        return None

    def _frame(self, video_frame: Any) -> None:
        image = video_frame.toImage()
        if not image.isNull():
            self.frame.emit(image)

    def _failed(self, *_args: Any) -> None:
        self.stop()
        self.stopped.emit("The camera stopped working; check that no other program is using it, or use another "
                          "way below.")

    def stop(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.stop()
        self._session = self._sink = None


class CameraPage(QWidget):
    """Live preview; the newest frame decoded on the runner, one at a time, throttled."""

    found = Signal(list)                    # the texts of a frame that had codes
    elsewhere = Signal(int)                 # no camera: the user chose another way in (a tab of the panel)

    def __init__(self, runner: Any, source: FrameSource) -> None:
        super().__init__()
        self._runner = runner
        self.source = source
        self.running = False
        self._latest: QImage | None = None
        self._latest_at = 0.0
        self._busy = False
        self._last_decode = 0.0
        self._last_preview = 0.0
        self.frames_seen = 0
        self.frames_decoded = 0
        self.last_latency: float | None = None      # seconds from a readable frame's arrival to its text
        layout = QVBoxLayout(self)
        self.preview = QLabel("The camera is off.")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(QSize(400, 300))
        self.preview.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.preview.setFrameShape(QLabel.Shape.StyledPanel)
        self.preview.setAccessibleName("Camera picture")
        self.message = QLabel("Hold the code up to the camera; it is read as soon as it is sharp.")
        self.message.setWordWrap(True)
        self.toggle = QPushButton("Stop the camera")
        self.toggle.setAccessibleName("Start or stop the camera")
        self.toggle.clicked.connect(lambda: self.stop() if self.running else self.start())
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.toggle)
        self.other_ways = QWidget()
        ways = QHBoxLayout(self.other_ways)
        ways.setContentsMargins(0, 0, 0, 0)
        ways.addStretch(1)
        for text, name, tab in (("Open a picture…", "Open a picture of the code instead", 1),
                                ("Pick from the screen…", "Pick the code on the screen instead", 2),
                                ("Paste a link…", "Paste the link instead", 3)):
            button = QPushButton(text)
            button.setAccessibleName(name)
            button.clicked.connect(lambda _c=False, t=tab: self.elsewhere.emit(t))
            ways.addWidget(button)
        ways.addStretch(1)
        self.other_ways.hide()
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.other_ways)
        layout.addLayout(row)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._decode_next)
        source.frame.connect(self._frame)
        source.stopped.connect(self._stopped)

    def start(self) -> None:
        why = self.source.start()
        if why is not None:
            self.running = False
            self.preview.setText(why)
            self.preview.setWordWrap(True)
            self.message.setText("")
            self.other_ways.show()
            self.toggle.setText("Try the camera again")
            return
        self.other_ways.hide()
        self.running = True
        self.toggle.setText("Stop the camera")
        self.message.setText("Hold the code up to the camera; it is read as soon as it is sharp.")

    def stop(self) -> None:
        self.source.stop()
        self.running = False
        self._latest = None
        self._timer.stop()
        self.toggle.setText("Start the camera")
        self.preview.clear()
        self.preview.setText("The camera is off.")

    def _stopped(self, why: str) -> None:
        self.running = False
        self.toggle.setText("Start the camera")
        self.message.setText(why)

    def _frame(self, image: QImage) -> None:
        if not self.running:
            return
        self.frames_seen += 1
        now = time.monotonic()
        if now - self._last_preview >= PREVIEW_EVERY_MS / 1000:
            self._last_preview = now
            self.preview.setPixmap(QPixmap.fromImage(image).scaled(
                self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        self._latest, self._latest_at = image, now
        self._decode_next()

    def _decode_next(self) -> None:
        if self._busy or self._latest is None or not self.running:
            return
        wait = DECODE_EVERY_MS / 1000 - (time.monotonic() - self._last_decode)
        if wait > 0:
            if not self._timer.isActive():
                self._timer.start(int(wait * 1000) + 1)
            return
        image, arrived = self._latest, self._latest_at
        self._latest = None
        self._busy = True
        self._last_decode = time.monotonic()
        self._runner.run(lambda: decode_image(image), lambda texts: self._decoded(texts, arrived),
                         self._decode_failed)

    def _decoded(self, texts: list[str], arrived: float) -> None:
        self._busy = False
        self.frames_decoded += 1
        if texts and self.running:
            self.last_latency = time.monotonic() - arrived
            self.found.emit(texts)
        self._decode_next()

    def _decode_failed(self, _exc: BaseException) -> None:
        self._busy = False                   # one unreadable frame says nothing about the next
        self._decode_next()


# --- a region of the screen ------------------------------------------------------------------------------------

class RegionOverlay(QWidget):
    """The screen as it was, dimmed, over the whole screen; the user drags a rectangle around the code. Enter
    takes the whole screen, Escape cancels."""

    chosen = Signal(QImage)
    cancelled = Signal()

    def __init__(self, shot: QPixmap, geometry: QRect) -> None:
        super().__init__(None, Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
                         | Qt.WindowType.Tool)
        self.shot = shot
        self.setGeometry(geometry)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Pick the region of the screen that shows the code")
        self.setAccessibleDescription("Drag a rectangle around the code. Enter takes the whole screen; Escape "
                                      "cancels.")
        self._origin: QPoint | None = None
        self.selection = QRect()

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        painter.drawPixmap(self.rect(), self.shot)
        shade = QColor(self.palette().color(QPalette.ColorRole.Shadow))
        shade.setAlpha(120)
        outside = self.rect()
        if self.selection.isValid():
            # the selection stays as bright as the screen was; everything else is dimmed
            for part in (QRect(outside.left(), outside.top(), outside.width(), self.selection.top()),
                         QRect(outside.left(), self.selection.bottom() + 1, outside.width(),
                               outside.bottom() - self.selection.bottom()),
                         QRect(outside.left(), self.selection.top(), self.selection.left(),
                               self.selection.height()),
                         QRect(self.selection.right() + 1, self.selection.top(),
                               outside.right() - self.selection.right(), self.selection.height())):
                painter.fillRect(part, shade)
            painter.setPen(self.palette().color(QPalette.ColorRole.Highlight))
            painter.drawRect(self.selection.adjusted(0, 0, -1, -1))
        else:
            painter.fillRect(outside, shade)
        tip = "Drag around the code.  Enter: the whole screen.  Escape: cancel."
        box = painter.fontMetrics().boundingRect(tip).adjusted(-10, -6, 10, 6)
        box.moveTopLeft(QPoint(outside.center().x() - box.width() // 2, 24))
        painter.fillRect(box, self.palette().color(QPalette.ColorRole.ToolTipBase))
        painter.setPen(self.palette().color(QPalette.ColorRole.ToolTipText))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, tip)

    def mousePressEvent(self, event: Any) -> None:
        self._origin = event.position().toPoint()
        self.selection = QRect(self._origin, QSize(1, 1))
        self.update()

    def mouseMoveEvent(self, event: Any) -> None:
        if self._origin is not None:
            self.selection = QRect(self._origin, event.position().toPoint()).normalized()
            self.update()

    def mouseReleaseEvent(self, event: Any) -> None:
        if self._origin is None:
            return
        self.selection = QRect(self._origin, event.position().toPoint()).normalized()
        self._origin = None
        if self.selection.width() < 8 or self.selection.height() < 8:
            self.selection = QRect()          # a click, not a drag: keep waiting for one
            self.update()
            return
        self._choose(self.selection)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            self.cancelled.emit()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._choose(self.rect())
        else:
            super().keyPressEvent(event)

    def _choose(self, area: QRect) -> None:
        ratio = self.shot.width() / max(1, self.width())       # the grab is in device pixels
        crop = QRect(int(area.x() * ratio), int(area.y() * ratio), int(area.width() * ratio),
                     int(area.height() * ratio))
        image = self.shot.copy(crop).toImage()
        self.close()
        self.chosen.emit(image)


def grab_screen(widget: QWidget) -> tuple[QPixmap, QRect]:
    """The screen the window is on, as it looks now, and its place on the desktop."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return screen.grabWindow(0), screen.geometry()


# --- the panel -------------------------------------------------------------------------------------------------

class ScanPanel(QWidget):
    """The four ways in, as tabs; drag and drop of a picture or a link anywhere on it."""

    scanned = Signal(object)                # app.services.received.Scanned

    CAMERA, PICTURE, REGION, PASTE = range(4)

    def __init__(self, runner: Any, *, source: FrameSource | None = None,
                 choose_file: Callable[[QWidget], str | None] | None = None,
                 grab: Callable[[QWidget], tuple[QPixmap, QRect]] | None = None) -> None:
        super().__init__()
        self._runner = runner
        self._choose_file = choose_file or _ask_for_picture
        self._grab = grab or grab_screen
        self.collector = ScanCollector()
        self.overlay: RegionOverlay | None = None
        self.last_decode_seconds: float | None = None
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        intro = QLabel("<b>Scan the patient's code</b> — a SMART Health Link, a medvault share or a SMART Health "
                       "Card. Nothing is saved on this computer unless you choose to keep a copy.")
        intro.setWordWrap(True)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Ways to scan")
        self.tabs.tabBar().setAccessibleName("Camera, picture, screen region or pasted link")
        self.camera = CameraPage(runner, source or CameraSource())
        self.camera.found.connect(self.take_texts)
        self.camera.elsewhere.connect(self._go_elsewhere)
        self.tabs.addTab(self.camera, "&Camera")
        self.tabs.addTab(self._picture_page(), "&Picture or screenshot")
        self.tabs.addTab(self._region_page(), "&Screen region")
        self.tabs.addTab(self._paste_page(), "Paste a &link")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setAccessibleName("Scan status")
        layout.addWidget(intro)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

    # --- pages ----------------------------------------------------------------------------------------------------
    def _picture_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        drop = QLabel("Drop a picture or screenshot of the code here,\nor open one from a file.")
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        drop.setFrameShape(QLabel.Shape.StyledPanel)
        drop.setMinimumHeight(160)
        self.open_picture = QPushButton("Open a picture…")
        self.open_picture.setAccessibleName("Open a picture or screenshot of the code")
        self.open_picture.clicked.connect(self.choose_picture)
        self.paste_picture = QPushButton("Paste a picture")
        self.paste_picture.setAccessibleName("Read the code in a picture on the clipboard")
        self.paste_picture.clicked.connect(self.paste_clipboard)
        row = QHBoxLayout()
        row.addWidget(self.open_picture)
        row.addWidget(self.paste_picture)
        row.addStretch(1)
        col.addWidget(drop, 1)
        col.addLayout(row)
        return page

    def _region_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        text = QLabel("When the code is on this screen (in a video call, an e-mail or another program), pick the "
                      "part of the screen that shows it. This window steps aside while you pick.")
        text.setWordWrap(True)
        self.pick_region_button = QPushButton("Pick a region of the screen…")
        self.pick_region_button.setAccessibleName("Pick the region of the screen that shows the code")
        self.pick_region_button.clicked.connect(self.pick_region)
        row = QHBoxLayout()
        row.addWidget(self.pick_region_button)
        row.addStretch(1)
        col.addWidget(text)
        col.addLayout(row)
        col.addStretch(1)
        return page

    def _paste_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        label = QLabel("Paste the link (shlink:/…, medvault:/…, or a viewer address ending in #shlink:/…) or the "
                       "card text (shc:/…):")
        label.setWordWrap(True)
        self.paste_field = QPlainTextEdit()
        self.paste_field.setAccessibleName("Link or card text")
        self.paste_field.setTabChangesFocus(True)
        label.setBuddy(self.paste_field)
        self.open_text_button = QPushButton("Open")
        self.open_text_button.setAccessibleName("Open the pasted link")
        self.open_text_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.open_text_button.setToolTip("Open the pasted link (Ctrl+Enter)")
        self.open_text_button.clicked.connect(self.open_pasted)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_text_button)
        col.addWidget(label)
        col.addWidget(self.paste_field, 1)
        col.addLayout(row)
        return page

    # --- the ways in ----------------------------------------------------------------------------------------------
    def _tab_changed(self, index: int) -> None:
        if index == self.CAMERA and self.isVisible():
            self.camera.start()
        elif self.camera.running:
            self.camera.stop()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.tabs.currentIndex() == self.CAMERA and not self.camera.running:
            self.camera.start()

    def hideEvent(self, event: Any) -> None:
        if self.camera.running:
            self.camera.stop()
        super().hideEvent(event)

    def _go_elsewhere(self, tab: int) -> None:
        self.tabs.setCurrentIndex(tab)
        {self.PICTURE: self.open_picture, self.REGION: self.pick_region_button,
         self.PASTE: self.paste_field}[tab].setFocus()

    def choose_picture(self) -> None:
        path = self._choose_file(self)
        if path:
            self.read_picture_file(path)

    def read_picture_file(self, path: str) -> None:
        self.say("Reading the picture…")
        started = time.perf_counter()
        self._runner.run(lambda: decode_file(path), lambda texts: self._read(texts, started), self._not_read)

    def read_image(self, image: QImage) -> None:
        """A picture already in memory (pasted, dropped, or a region of the screen)."""
        from sync.errors import QrNotFound
        self.say("Reading the picture…")
        started = time.perf_counter()

        def work() -> list[str]:
            texts = decode_image(image)
            if not texts:
                raise QrNotFound("No QR code was found there; pick the code with a little margin around it.")
            return texts
        self._runner.run(work, lambda texts: self._read(texts, started), self._not_read)

    def _read(self, texts: list[str], started: float) -> None:
        self.last_decode_seconds = time.perf_counter() - started
        self.take_texts(texts)

    def _not_read(self, exc: BaseException) -> None:
        self.say(getattr(exc, "user_message", None) or "The picture could not be read.")

    def pick_region(self) -> None:
        window = self.window()
        window.hide()           # step aside so the code behind the window is what gets grabbed
        QTimer.singleShot(300, self._grab_region)

    def _grab_region(self) -> None:
        shot, geometry = self._grab(self)
        self.overlay = RegionOverlay(shot, geometry)
        self.overlay.chosen.connect(self._region_chosen)
        self.overlay.cancelled.connect(self._region_cancelled)
        self.overlay.show()
        self.overlay.activateWindow()
        self.overlay.setFocus()

    def _region_chosen(self, image: QImage) -> None:
        self._back()
        self.read_image(image)

    def _region_cancelled(self) -> None:
        self._back()
        self.say("Picking a region was cancelled.")

    def _back(self) -> None:
        window = self.window()
        window.show()
        window.activateWindow()
        self.pick_region_button.setFocus()

    def open_pasted(self) -> None:
        text = self.paste_field.toPlainText().strip()
        if text:
            self.take_texts([text])

    def paste_clipboard(self) -> None:
        clip = QGuiApplication.clipboard()
        mime = clip.mimeData() if clip is not None else None
        if mime is not None and mime.hasImage():
            self.read_image(clip.image())
        elif mime is not None and mime.hasText() and mime.text().strip():
            self.paste_field.setPlainText(mime.text().strip())
            self.take_texts([mime.text()])
        else:
            self.say("The clipboard holds no picture and no link.")

    def dragEnterEvent(self, event: Any) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasText() or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.read_picture_file(paths[0])
        elif mime.hasImage():
            self.read_image(QImage(mime.imageData()))
        elif mime.hasText():
            self.take_texts([mime.text()])

    # --- what was read --------------------------------------------------------------------------------------------
    def take_texts(self, texts: list[str]) -> None:
        """Texts read from a code (or pasted): opened once something is complete."""
        from sync.errors import SyncError
        for text in texts:
            try:
                done = self.collector.add(text)
            except SyncError as exc:
                self.say(exc.user_message)
                continue
            if done is not None:
                self.say("Code read; opening it…")
                if self.camera.running:
                    self.camera.stop()
                self.scanned.emit(done)
                return
        progress = self.collector.progress
        if progress is not None:
            have, total = progress
            self.say(f"Part {have} of {total} of a health card read; show the next part.")

    def say(self, sentence: str) -> None:
        self.status.setText(sentence)
        self.status.setAccessibleDescription(sentence)

    def reset(self) -> None:
        self.collector.reset()
        self.paste_field.clear()
        self.say("")


def _ask_for_picture(parent: QWidget) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open a picture of the code", str(Path.home()), PICTURE_FILTER)
    return path or None


def scanned_from(text: str) -> Scanned:
    """What a whole text (a link, or every part of a card) opens as, for callers that have the text already."""
    done = ScanCollector().add(text)
    if done is None:
        from sync.errors import LinkUnsupported
        raise LinkUnsupported("This is one part of a health card split over several codes; scan every part.")
    return done

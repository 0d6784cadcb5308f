"""Shared pieces of the clinician GUI tests: a Synthea patient's vault serving real shares on the embedded gateway,
clinician vaults, QR pictures made by ``sync.qr`` and drawn into camera-like frames, the SMART Health Card fixtures'
QR codes rendered from their SVG files, and a frame source that feeds frames the way a camera does."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any, Iterator

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtGui import QImage, QPainter

from app.clinician.scan import FrameSource
from tests.conftest import FIXTURES
from tests.gui.synthea_vault import JULIETTE, synthea_vault

PATIENT_WORDS = (b"Juliette", b"Padberg")       # the Synthea patient's name, to look for on disk
SPEC = FIXTURES / "shl-shc" / "spec"
ISSUER_FOLDER = FIXTURES / "shl-shc" / "issuer"
ISSUER = "https://spec.smarthealth.cards/examples/issuer"
SYNTHEA_PATIENT_FILE = FIXTURES / "synthea" / JULIETTE


@contextlib.contextmanager
def serving_patient(folder: Path) -> Iterator[Any]:
    """Juliette Padberg's vault (a Synthea patient) with its embedded gateway running on a free loopback port."""
    from app.services import Session
    session = Session(synthea_vault(folder, JULIETTE))
    gateway = session.serve(port=0)
    session.gateway = gateway                       # type: ignore[attr-defined]
    try:
        yield session
    finally:
        gateway.stop()
        session.close()


def share(patient: Any, *, to: Any = None, ips: bool = True, types: tuple[str, ...] = (),
          expires: str = "7d") -> Any:
    from app.services.sharing import selection
    return patient.create_share(selection(ips=ips, types=types), gateway=patient.gateway.base_url, recipient=to,
                                expires=expires, label="For the clinic")


def qr_image(text: str) -> QImage:
    from sync import qr
    image = QImage()
    assert image.loadFromData(qr.png_bytes(text), "PNG")
    return image

def qr_on_screen(view: Any) -> str:
    """The code a widget shows, as a phone would read it: grabbed to PNG and decoded by zxing-cpp."""
    from PySide6.QtCore import QBuffer, QIODevice

    from sync import qr
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert view.grab().save(buffer, "PNG")
    return qr.decode_bytes(bytes(buffer.data()))


def noise_frame(width: int = 960, height: int = 540, seed: int = 0) -> QImage:
    """A camera frame with nothing to read: grey noise."""
    rng = random.Random(seed)
    frame = QImage(bytes(rng.randrange(60, 200) for _ in range(width * height)), width, height, width,
                   QImage.Format.Format_Grayscale8)
    return frame.copy()                             # owns its pixels once the bytes above are gone


def frame_with_code(text: str, seed: int = 1) -> QImage:
    """A noisy frame with the code drawn into it off-centre, as a webcam sees a phone held up."""
    frame = noise_frame(seed=seed).convertToFormat(QImage.Format.Format_RGB32)
    code = qr_image(text)
    side = min(frame.height() - 40, max(code.width(), 420))
    painter = QPainter(frame)
    painter.drawImage(QPoint(frame.width() // 2 - side // 2 + 90, 20), code.scaled(side, side))
    painter.end()
    return frame


def svg_image(path: Path, side: int = 654) -> QImage:
    """A QR code the fixtures give as SVG, drawn as a camera or screenshot would show it."""
    from PySide6.QtSvg import QSvgRenderer
    renderer = QSvgRenderer(str(path))
    assert renderer.isValid(), path
    image = QImage(side, side, QImage.Format.Format_RGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


class FeedSource(FrameSource):
    """Frames from memory at a camera's pace, in order, the last one repeated as a still camera would."""

    def __init__(self, frames: list[QImage], every_ms: int = 33) -> None:
        super().__init__()
        self.frames = frames
        self.sent = 0
        self.emitted_at: list[float] = []
        self.timer = QTimer(self)
        self.timer.setInterval(every_ms)
        self.timer.timeout.connect(self._next)

    def start(self) -> str | None:
        self.timer.start()
        return None

    def stop(self) -> None:
        self.timer.stop()

    def _next(self) -> None:
        import time
        frame = self.frames[min(self.sent, len(self.frames) - 1)]
        self.sent += 1
        self.emitted_at.append(time.monotonic())
        self.frame.emit(frame)


def files_containing(folder: Path, words: tuple[bytes, ...]) -> list[Path]:
    """Every file under ``folder`` holding any of ``words`` in clear (UTF-8 or UTF-16)."""
    needles = [w for word in words for w in (word, word.decode().encode("utf-16-le"))]
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(path)
    return found

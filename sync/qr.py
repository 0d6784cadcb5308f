"""QR codes for share links: drawing (``qrcode``) and reading (``zxing-cpp``).

The only module importing either library. Links are encoded in byte mode at error-correction level M, as the SHL
specification asks, with the standard four-module quiet zone and modules large enough for a phone or webcam to
lock on at arm's length.
"""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.constants
import zxingcpp
from PIL import Image, UnidentifiedImageError

from sync.errors import QrNotFound, QrNotWritten, QrUnreadable
from vault.fsutil import NotARegularFile, refuse_unless_regular, write_atomically

BOX_SIZE = 8  # pixels per module: a ~300-character link gives a ~600 px image, crisp on screen and paper
BORDER = 4  # modules of quiet zone, the minimum ISO/IEC 18004 requires
# Decompression-bomb guard for images we are handed: a camera frame or screenshot is far below this.
MAX_IMAGE_PIXELS = 40_000_000


def make_image(text: str) -> Image.Image:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=BOX_SIZE, border=BORDER)
    # One byte-mode segment: qrcode's optimiser would otherwise split the link into alphanumeric/byte runs.
    qr.add_data(qrcode.util.QRData(text.encode("utf-8"), mode=qrcode.util.MODE_8BIT_BYTE))
    qr.make(fit=True)
    return qr.make_image(fill_color="black", back_color="white").get_image().convert("L")


def png_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    make_image(text).save(buf, format="PNG")
    return buf.getvalue()


def write_png(text: str, path: str | Path) -> Path:
    """Write ``text`` as a QR PNG; returns the path written. The image holds a secret (a recovery key, a link that
    opens records), so it is 0600, written atomically, and a link, folder or pipe at ``path`` is refused rather
    than written through or replaced."""
    path = Path(path)
    try:
        write_atomically(path, png_bytes(text), only_over_regular=True)
    except NotARegularFile:
        raise _not_regular(path) from None
    except OSError:
        raise QrNotWritten() from None
    return path


def check_destination(path: str | Path) -> None:
    """Refuse, before anything is made, a QR destination that exists and is not a regular file."""
    try:
        refuse_unless_regular(Path(path))
    except NotARegularFile:
        raise _not_regular(Path(path)) from None


def _not_regular(path: Path) -> QrNotWritten:
    return QrNotWritten(f"{path} is a link, folder or device rather than a regular file; medvault does not write "
                        "a QR image there.")


def decode_image(image: Image.Image) -> str:
    """Text of the first QR code in an in-memory Pillow image (camera frames are converted to one by the app)."""
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise QrUnreadable("This image is too large to scan for a QR code.")
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return _read(image)


def _read(image) -> str:
    try:
        found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    except (ValueError, RuntimeError) as exc:
        raise QrUnreadable() from exc
    texts = [b.text for b in found if b.valid and b.text]
    if not texts:
        raise QrNotFound()
    return texts[0]


def decode_all_gray(data: bytes, width: int, height: int, stride: int | None = None) -> list[str]:
    """The text of every QR code in an 8-bit grayscale picture (a camera frame, a screen grab, a picture the app
    loaded), in the order found; none found is an empty list, as most camera frames are. A health card split over
    several codes may be on one screenshot, hence all of them."""
    stride = stride or width
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS or stride < width \
            or len(data) < stride * (height - 1) + width:
        raise QrUnreadable("This picture is too large, or not a picture, so no QR code was looked for.")
    view = zxingcpp.ImageView(data, width, height, zxingcpp.ImageFormat.Lum, stride, 1)
    try:
        found = zxingcpp.read_barcodes(view, formats=zxingcpp.BarcodeFormat.QRCode)
    except (ValueError, RuntimeError) as exc:
        raise QrUnreadable() from exc
    return [b.text for b in found if b.valid and b.text]


def decode_bytes(data: bytes) -> str:
    """Text of the first QR code in PNG/JPEG (or any format Pillow reads) bytes."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise QrUnreadable("This image is too large to scan for a QR code.")
            im.load()
            return decode_image(im)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError, ValueError, EOFError) as exc:
        # Pillow reports a damaged image in several ways: ValueError ("tile cannot extend outside image"), EOFError
        raise QrUnreadable() from exc


def image_file(text: str) -> Path | None:
    """The file ``text`` names, if it names one that exists; None for anything else, including text no file
    system accepts as a name (too long, a NUL byte), which is simply not a file."""
    try:
        path = Path(text)
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


def decode_file(path: str | Path) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise QrUnreadable("The image file could not be read.") from exc
    return decode_bytes(data)

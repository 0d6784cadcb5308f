"""QR images: ours decode with zxing-cpp to the exact link, the spec's image decodes to the spec's link."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from sync import qr
from sync.errors import QrNotFound, QrUnreadable

LINK = ("shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnL2lwZnMvYmFma3JlaWEiLCJrZXkiOiJBQUVDQXdRRkJnY0lDUW9MREEw"
        "T0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4IiwiZmxhZyI6IlUiLCJ2IjoxfQ")


def test_written_png_decodes_to_exact_link_at_level_m(tmp_path):
    path = qr.write_png(LINK, tmp_path / "share.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
        found = zxingcpp.read_barcodes(im)
    assert [b.text for b in found] == [LINK]
    assert found[0].ec_level == "M" and found[0].format == zxingcpp.BarcodeFormat.QRCode
    assert qr.decode_file(path) == LINK


def test_spec_png_decodes_to_spec_link(shl_dir):
    want = (shl_dir / "spec" / "IPS_IG-bundle-01-shl.txt").read_text()
    assert qr.decode_file(shl_dir / "spec" / "IPS_IG-bundle-01-shl.png") == want


def test_jpeg_and_in_memory_frames_decode():
    im = qr.make_image(LINK).convert("RGB").resize((500, 500))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=70)
    assert qr.decode_bytes(buf.getvalue()) == LINK
    frame = Image.new("RGB", (1280, 720), "gray")  # a camera frame with the code somewhere in it
    frame.paste(im, (600, 100))
    assert qr.decode_image(frame) == LINK


def test_image_without_a_code(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), "white").save(path)
    with pytest.raises(QrNotFound) as err:
        qr.decode_file(path)
    assert err.value.user_message == "No readable QR code was found in this image."


def test_damaged_code(tmp_path):
    im = qr.make_image(LINK).convert("RGB")
    draw = ImageDraw.Draw(im)
    w, h = im.size
    # Blot out two finder patterns and a band through the middle: beyond what level M can correct.
    draw.rectangle([0, 0, w // 3, h // 3], fill="white")
    draw.rectangle([0, h * 2 // 3, w // 3, h], fill="white")
    draw.rectangle([0, h * 2 // 5, w, h * 3 // 5], fill="black")
    path = tmp_path / "damaged.png"
    im.save(path)
    with pytest.raises(QrNotFound):
        qr.decode_file(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"this is not a png")
    with pytest.raises(QrUnreadable) as err:
        qr.decode_file(path)
    assert isinstance(err.value, QrNotFound) and err.value.user_message.endswith(".")
    with pytest.raises(QrUnreadable):
        qr.decode_file(tmp_path / "missing.png")


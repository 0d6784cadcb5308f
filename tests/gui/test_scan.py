"""The clinician's scan window, every way in, against real shares served by a real patient vault: a QR picture made
by ``sync.qr`` (chosen or dropped), a pasted link (bare, behind a viewer, ``medvault:/``), a region of the screen
grabbed from a widget showing the code, and the camera path fed real frames (noise first, then a frame with the code
drawn in) through an injected frame source; a SMART Health Card split over three codes (the HL7 fixtures), collected
in any order or read from one screenshot; text that is no share; and a computer with no camera."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QPushButton

from app.clinician.scan import NO_CAMERA, NO_CAMERA_SUPPORT, CameraSource, ScanPanel
from app.clinician.window import ClinicianWindow
from app.services import Session
from app.services import received as rc
from app.tasks import TaskRunner
from sync import qr
from tests.gui.clinician_support import (ISSUER, ISSUER_FOLDER, SPEC, FeedSource, frame_with_code, noise_frame,
                                         qr_image, serving_patient, share, svg_image)

OPEN_TIMEOUT = 30000


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    with serving_patient(tmp_path_factory.mktemp("patient") / "vault") as session:
        yield session


@pytest.fixture
def clinician(vault_factory):
    return vault_factory("clinician")


@pytest.fixture
def make_window(qtbot, clinician):
    """A clinician window on a real vault and a real task runner; closed, and its work finished, at teardown."""
    runner = TaskRunner()
    made: list[ClinicianWindow] = []
    told: list[str] = []

    def make(**options) -> ClinicianWindow:
        options.setdefault("source", FeedSource([noise_frame()]))
        window = ClinicianWindow(Session(clinician), runner, tell=told.append, **options)
        window.told = told                              # type: ignore[attr-defined]
        made.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make
    for window in made:
        window.close()
    runner.wait()
    assert not [t for t in told if "unexpected" in t.lower()], told


def _opened(qtbot, window, action) -> rc.Received:
    with qtbot.waitSignal(window.opened, timeout=OPEN_TIMEOUT) as got:
        action()
    return got.args[0]


def _shows_patient(qtbot, window) -> None:
    qtbot.waitUntil(lambda: "Juliette Padberg" in window.person_label.text(), timeout=10000)
    summary = window.screens["summary"]
    qtbot.waitUntil(lambda: summary.summary is not None, timeout=10000)
    assert summary.body.isVisible() and summary.summary.records > 0


def test_a_picture_of_the_code_chosen_from_a_file_opens_the_share(qtbot, make_window, patient, tmp_path):
    out = share(patient)
    png = qr.write_png(out.link, tmp_path / "code.png")
    window = make_window(choose_file=lambda _parent: str(png))
    window.scan.tabs.setCurrentIndex(ScanPanel.PICTURE)
    received = _opened(qtbot, window, lambda: qtbot.mouseClick(window.scan.open_picture, Qt.MouseButton.LeftButton))
    assert received.opened and received.kind == "shlink"
    assert received.verdict("cid").status == rc.PASSED
    assert received.verdict("encryption").status == rc.PASSED
    assert received.timings["decode"] > 0          # the picture's decoding was timed, on the runner
    _shows_patient(qtbot, window)


def test_a_picture_dropped_on_the_window_opens_the_share(qtbot, make_window, patient, tmp_path):
    out = share(patient, ips=False, types=("Condition",))
    png = qr.write_png(out.link, tmp_path / "dropped.png")
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    drop = QDropEvent(QPointF(40, 40), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    received = _opened(qtbot, window, lambda: window.scan.dropEvent(drop))
    assert received.opened
    assert set(received.counts) == {"Condition", "Patient", "Consent"} or "Condition" in received.counts


@pytest.mark.parametrize("prefix", ["", "https://viewer.example/#"], ids=["bare", "viewer-prefixed"])
def test_a_pasted_link_opens_the_share(qtbot, make_window, patient, prefix):
    out = share(patient)
    window = make_window()
    window.scan.tabs.setCurrentIndex(ScanPanel.PASTE)
    qtbot.keyClicks(window.scan.paste_field, prefix + out.link)
    received = _opened(qtbot, window, lambda: qtbot.mouseClick(window.scan.open_text_button,
                                                                Qt.MouseButton.LeftButton))
    assert received.opened and received.kind == "shlink"
    _shows_patient(qtbot, window)


def test_a_directed_medvault_share_scanned_from_its_picture_opens_for_its_recipient(qtbot, make_window, patient,
                                                                                     clinician, tmp_path):
    card = Session(clinician).card("Dr Scan")
    out = share(patient, to=card)
    assert out.link.startswith("medvault:/")
    png = qr.write_png(out.link, tmp_path / "directed.png")
    window = make_window()
    received = _opened(qtbot, window, lambda: window.scan.read_picture_file(str(png)))
    assert received.opened and received.kind == "medvault-share"
    assert received.verdict("signature").status == rc.PASSED
    assert received.verdict("recipient").status == rc.PASSED


def test_a_region_of_the_screen_showing_the_code_opens_the_share(qtbot, make_window, patient, screenshot):
    out = share(patient)
    shown = QLabel()
    shown.setPixmap(QPixmap.fromImage(qr_image(out.link)))
    shown.setFixedSize(shown.pixmap().size())       # a top-level window's default size would crop the code
    shown.move(60, 50)
    shown.show()
    qtbot.addWidget(shown)
    qtbot.waitExposed(shown)
    window = make_window()
    window.scan.tabs.setCurrentIndex(ScanPanel.REGION)
    qtbot.mouseClick(window.scan.pick_region_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.scan.overlay is not None and window.scan.overlay.isVisible(), timeout=5000)
    assert not window.isVisible()                   # the window steps aside while the region is picked
    overlay = window.scan.overlay
    assert overlay.accessibleName()
    area = shown.geometry().adjusted(-12, -12, 12, 12)
    start, end = overlay.mapFromGlobal(area.topLeft()), overlay.mapFromGlobal(area.bottomRight())

    def drag() -> None:
        qtbot.mousePress(overlay, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(overlay, pos=QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
        qtbot.mouseMove(overlay, pos=end)
        screenshot(overlay, "52-clinician-scan-region")
        qtbot.mouseRelease(overlay, Qt.MouseButton.LeftButton, pos=end)

    received = _opened(qtbot, window, drag)
    assert received.opened
    assert window.isVisible() and not overlay.isVisible()


def test_escape_cancels_picking_a_region_and_brings_the_window_back(qtbot, make_window):
    window = make_window()
    window.scan.tabs.setCurrentIndex(ScanPanel.REGION)
    window.scan.pick_region()
    qtbot.waitUntil(lambda: window.scan.overlay is not None and window.scan.overlay.isVisible(), timeout=5000)
    qtbot.keyClick(window.scan.overlay, Qt.Key.Key_Escape)
    qtbot.waitUntil(window.isVisible, timeout=2000)
    assert "cancelled" in window.scan.status.text()
    assert window.pages.currentWidget() is window.scan


def test_the_camera_reads_a_code_within_a_second_of_a_readable_frame(qtbot, make_window, patient):
    out = share(patient)
    frames = [noise_frame(seed=n) for n in range(12)] + [frame_with_code(out.link)]
    source = FeedSource(frames)
    window = make_window(source=source)
    assert window.scan.tabs.currentIndex() == ScanPanel.CAMERA
    qtbot.waitUntil(lambda: window.scan.camera.running, timeout=2000)
    with qtbot.waitSignal(window.scan.scanned, timeout=OPEN_TIMEOUT) as got:
        pass
    done = time.monotonic()
    readable_at = source.emitted_at[len(frames) - 1]
    assert got.args[0].kind == "link" and got.args[0].text == out.link
    assert done - readable_at < 1.0, f"read {done - readable_at:.2f} s after the readable frame"
    assert window.scan.camera.last_latency is not None and window.scan.camera.last_latency < 1.0
    # frames were decoded, but throttled: not every frame of the feed went to the decoder
    assert 1 <= window.scan.camera.frames_decoded < source.sent
    assert not window.scan.camera.running          # the camera stops once a code is read
    qtbot.waitUntil(lambda: window.received is not None and window.received.opened, timeout=OPEN_TIMEOUT)


def test_without_a_camera_the_camera_tab_says_so_calmly(qtbot, make_window):
    window = make_window(source=CameraSource())
    camera = window.scan.camera
    assert window.scan.tabs.currentIndex() == ScanPanel.CAMERA
    # this machine has no camera: the real Qt Multimedia source reports it, nothing fails
    assert not camera.running
    assert camera.preview.text() in (NO_CAMERA, NO_CAMERA_SUPPORT)
    assert camera.other_ways.isVisible()
    assert window.told == []                        # type: ignore[attr-defined]
    paste = next(b for b in camera.other_ways.findChildren(QPushButton) if "Paste" in b.text())
    qtbot.mouseClick(paste, Qt.MouseButton.LeftButton)
    assert window.scan.tabs.currentIndex() == ScanPanel.PASTE
    assert window.focusWidget() is window.scan.paste_field


def _trust_issuer(vault) -> None:
    from vault.records.shc import TrustStore
    TrustStore(vault).add_folder(ISSUER, ISSUER_FOLDER)


def test_a_health_card_split_over_three_codes_is_collected_in_any_order(qtbot, make_window, clinician):
    _trust_issuer(clinician)
    parts = [svg_image(SPEC / f"example-02-g-qr-code-{n}.svg") for n in range(3)]
    window = make_window()
    window.scan.tabs.setCurrentIndex(ScanPanel.PICTURE)
    for number, part in ((3, parts[2]), (1, parts[0])):
        window.scan.read_image(part)
        qtbot.waitUntil(lambda: "of 3 of a health card" in window.scan.status.text(), timeout=10000)
    assert window.scan.status.text().startswith("Part 2 of 3")
    received = _opened(qtbot, window, lambda: window.scan.read_image(parts[1]))
    assert received.opened and received.kind == "card"
    issuer = received.verdict("card_issuer")
    assert issuer.status == rc.PASSED and ISSUER in issuer.detail
    assert received.verdict("consent").status == rc.NOT_APPLICABLE


def test_a_screenshot_holding_every_part_of_a_card_opens_at_once(qtbot, make_window, clinician):
    _trust_issuer(clinician)
    parts = [svg_image(SPEC / f"example-02-g-qr-code-{n}.svg", side=436) for n in range(3)]
    sheet = QImage(3 * 460, 460, QImage.Format.Format_RGB32)
    sheet.fill(0xFFFFFFFF)
    painter = QPainter(sheet)
    for n, part in enumerate(parts):
        painter.drawImage(QPoint(12 + 460 * n, 12), part)
    painter.end()
    window = make_window()
    received = _opened(qtbot, window, lambda: window.scan.read_image(sheet))
    assert received.opened and received.kind == "card"
    assert received.counts.get("Immunization") or received.counts


def test_a_whole_card_pasted_as_shc_text_opens(qtbot, make_window):
    text = (SPEC / "example-00-f-qr-code-numeric-value-0.txt").read_text()
    window = make_window()
    window.scan.tabs.setCurrentIndex(ScanPanel.PASTE)
    window.scan.paste_field.setPlainText(text)
    received = _opened(qtbot, window, window.scan.open_pasted)
    assert received.opened and received.kind == "card"
    # the clinician's vault does not trust the example issuer: said, never a tick
    assert received.verdict("card_issuer").status == rc.NOT_CHECKED


def test_a_code_that_is_no_share_is_said_and_nothing_opens(qtbot, make_window, tmp_path):
    png = qr.write_png("https://example.org/menu", tmp_path / "menu.png")
    window = make_window()
    opened: list = []
    window.opened.connect(opened.append)
    window.scan.read_picture_file(str(png))
    qtbot.waitUntil(lambda: "not a share link" in window.scan.status.text(), timeout=10000)
    blank = tmp_path / "blank.png"
    assert QImage(200, 200, QImage.Format.Format_Grayscale8).save(str(blank))
    window.scan.read_picture_file(str(blank))
    qtbot.waitUntil(lambda: "No QR code" in window.scan.status.text(), timeout=10000)
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("not a picture")
    window.scan.read_picture_file(str(not_a_picture))
    qtbot.waitUntil(lambda: "not an image" in window.scan.status.text(), timeout=10000)
    assert opened == [] and window.pages.currentWidget() is window.scan


def test_an_identity_card_is_refused_as_no_share(qtbot, make_window, clinician):
    card = Session(clinician).card("Dr Card")
    window = make_window()
    window.scan.paste_field.setPlainText(card)
    received = _opened(qtbot, window, window.scan.open_pasted)
    assert not received.opened and "identity card" in received.refusal.user_message
    assert window.right.currentWidget() is window.refusal


def test_the_patient_window_opens_a_shared_record_from_its_file_menu(qtbot, patient, tmp_path, vault_factory):
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QKeySequence

    from app.main_window import MainWindow
    runner = TaskRunner()
    own = vault_factory("receiver")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    main = MainWindow(own, runner, settings=settings, tell=lambda _s: None)
    qtbot.addWidget(main)
    main.show()
    assert main.open_shared_action.shortcut() == QKeySequence("Ctrl+Shift+O")
    main.open_shared_action.trigger()
    window = main.shared_window
    assert isinstance(window, ClinicianWindow) and window.isVisible()
    window.scan.tabs.setCurrentIndex(ScanPanel.PASTE)
    window.scan.paste_field.setPlainText(share(patient).link)
    received = _opened(qtbot, window, window.scan.open_pasted)
    assert received.opened
    with own.read() as conn:                        # read, not imported: the receiver's vault holds nothing of it
        assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == 0
    main.lock()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    runner.wait()


def test_scan_window_pictures_for_the_guide(qtbot, make_window, screenshot):
    window = make_window(source=CameraSource())
    window.resize(900, 560)
    screenshot(window, "50-clinician-scan-no-camera")
    window.scan.tabs.setCurrentIndex(ScanPanel.PASTE)
    window.scan.paste_field.setPlainText("https://viewer.example/#shlink:/eyJ1cmwiOiJodHRwOi8vMTI3LjAuMC4xOjg0MjEv"
                                         "aXBmcy9iYWZr…")
    screenshot(window, "51-clinician-scan-paste")


def test_the_clinicians_own_window_locks_back_to_the_unlock_window(qtbot, tmp_path):
    from app.gui import Controller
    from sync import shares
    from tests.conftest import PASSPHRASE, TEST_PROFILE
    from tests.gui.serving_support import free_port
    from vault.store import Vault
    vault, _key = Vault.create(tmp_path / "clinic", PASSPHRASE, kdf_profile=TEST_PROFILE)
    shares.set_gateway_setting(vault, f"http://127.0.0.1:{free_port()}")
    runner = TaskRunner()
    controller = Controller(tmp_path / "clinic", runner, TEST_PROFILE, clinician=True,
                            clinician_options={"source": FeedSource([noise_frame()])})
    qtbot.addWidget(controller.unlock_window)
    controller._open(vault)
    window = controller.main_window
    assert window.standalone and window.isVisible() and not controller.unlock_window.isVisible()
    assert window.windowTitle() == "medvault"
    lock = next(a for a in window.actions() if a.shortcut().toString() == "Ctrl+L")
    lock.trigger()
    runner.wait()
    qtbot.waitUntil(lambda: not vault.is_open, timeout=5000)
    assert controller.unlock_window.isVisible() and not window.isVisible()
    controller.idle.stop()
    controller.serving.gateway.stop()


def test_closing_the_window_while_a_share_opens_frees_it_quietly(qtbot, make_window, patient):
    window = make_window()
    window.open_text(share(patient).link)
    window.close()                                  # the opening is still on the runner
    window._runner.wait()
    qtbot.wait(100)
    assert window.received is None and window.ctx is None
    assert window.told == []                        # type: ignore[attr-defined]

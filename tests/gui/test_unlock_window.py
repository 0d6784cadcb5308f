"""The first window as a user meets it: create a vault, keep the recovery key, unlock, recover.

Real vaults (cheap KDF profile), real widgets, the QR codes read back with a real decoder from the screen."""

from __future__ import annotations

import threading

import pytest
import zxingcpp
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from app.gui import Controller
from app.tasks import SyncRunner, TaskRunner
from app.unlock_window import UnlockWindow
from tests.conftest import PASSPHRASE, TEST_PROFILE
from vault.errors import WrongRecoveryKey
from vault.store import Vault


def _window(qtbot, folder, runner=None) -> UnlockWindow:
    window = UnlockWindow(folder, runner or SyncRunner(), kdf_profile=TEST_PROFILE)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # focus is only real in the active window
    return window


def _settled(qtbot, window) -> UnlockWindow:
    """Let pending layout requests run, as the event loop would before the user sees the window."""
    qtbot.wait(10)
    return window


def _qr_text(path) -> list[str]:
    return [d.text for d in zxingcpp.read_barcodes(Image.open(path))]


def _below(upper: QWidget, lower: QWidget, window: QWidget) -> int:
    """Pixels from the bottom of ``upper`` to the top of ``lower``, in window coordinates, once laid out."""
    QApplication.processEvents()
    return lower.mapTo(window, lower.rect().topLeft()).y() - upper.mapTo(window, upper.rect().bottomLeft()).y()


def _confirm(qtbot, window) -> Vault:
    key = window._recovery_key
    assert not window.continue_button.isEnabled()
    window.confirm_box.setChecked(True)
    assert not window.continue_button.isEnabled()  # ticking the box alone is not enough
    qtbot.keyClicks(window.confirm_group, key.rsplit("-", 1)[-1].lower())
    assert window.continue_button.isEnabled()
    with qtbot.waitSignal(window.unlocked, timeout=30000) as signal:
        qtbot.mouseClick(window.continue_button, Qt.MouseButton.LeftButton)
    return signal.args[0]


def test_strength_by_estimator_weak_refused_fair_confirmed(qtbot, tmp_path, screenshot):
    window = _window(qtbot, tmp_path / "v")
    assert window.pages.currentWidget() is window.create_page
    form = window.new_passphrase
    qtbot.keyClicks(window.new_pass, "short")
    assert window.meter_label.text() == "Too short" and not window.create_button.isEnabled()

    window.new_pass.clear()
    qtbot.keyClicks(window.new_pass, "Password123!")
    qtbot.keyClicks(window.new_pass2, "Password123!")
    assert window.meter_label.text() == "Weak"
    assert "commonly used password" in form.advice.text() and "seconds" in form.advice.text()
    assert not form.accept_box.isVisible()
    assert not window.create_button.isEnabled()  # refused outright: no box to tick it through
    qtbot.keyClick(window.new_pass2, Qt.Key.Key_Return)
    assert window.pages.currentWidget() is window.create_page and not (tmp_path / "v").exists()
    screenshot(_settled(qtbot, window), "01a-create-weak-passphrase")

    window.new_pass.clear()
    window.new_pass2.clear()
    qtbot.keyClicks(window.new_pass, "horse battery")
    qtbot.keyClicks(window.new_pass2, "horse battery")
    assert window.meter_label.text() == "Fair"
    assert form.accept_box.isVisible() and "hours" in form.accept_box.text()
    assert not window.create_button.isEnabled()
    screenshot(_settled(qtbot, window), "01b-create-fair-passphrase")
    form.accept_box.setChecked(True)
    assert window.create_button.isEnabled()
    qtbot.keyClick(window.new_pass, Qt.Key.Key_Backspace)  # another passphrase: the tick does not carry over
    assert not form.accept_box.isChecked() and not window.create_button.isEnabled()


def test_create_flow_with_recovery_confirmation(qtbot, tmp_path, screenshot):
    window = _window(qtbot, tmp_path / "v")
    qtbot.keyClicks(window.new_pass, PASSPHRASE)
    assert window.meter_label.text() == "Strong"
    qtbot.keyClicks(window.new_pass2, "something else")
    mismatch = window.new_passphrase.mismatch
    assert "differ" in mismatch.text() and mismatch.isVisible() and not window.create_button.isEnabled()
    assert 0 <= _below(window.new_pass2, mismatch, window) < 20  # under the field, not at the window's foot
    assert window.status.text() == ""
    window.new_pass.clear()
    window.new_pass2.clear()
    screenshot(_settled(qtbot, window), "01-create-vault")

    qtbot.keyClicks(window.new_pass, PASSPHRASE)
    qtbot.keyClicks(window.new_pass2, PASSPHRASE)
    qtbot.mouseClick(window.create_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.recovery_page
    key = window._recovery_key
    shot = screenshot(_settled(qtbot, window), "02-recovery-key")
    assert _qr_text(shot) == [key]  # the QR on the page decodes, with a real decoder, to the key itself
    vault = _confirm(qtbot, window)
    assert vault.is_open and vault.recovery_key_confirmed
    assert window._recovery_key == "" and window.key_label.text() == ""
    vault.close()
    assert window.windowTitle() == "medvault"


def test_wrong_passphrase_keeps_focus_selected_and_says_so_under_the_field(qtbot, tmp_path, vault_factory,
                                                                           screenshot, monkeypatch):
    vault_factory("v").close()
    window = _window(qtbot, tmp_path / "v", TaskRunner())
    assert window.pages.currentWidget() is window.unlock_page
    qtbot.keyClicks(window.pass_field, "not the passphrase")
    qtbot.keyClick(window.pass_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "passphrase is wrong" in window.unlock_message.text(), timeout=30000)
    assert window.pass_field.hasFocus()
    assert window.pass_field.selectedText() == "not the passphrase"  # typing replaces it
    assert window.unlock_message.isVisible()
    assert 0 <= _below(window.pass_field, window.unlock_message, window) < 20
    assert _below(window.unlock_message, window.unlock_button, window) >= 0
    assert "wrong" not in window.status.text()
    assert "passphrase is wrong" in window.pass_field.accessibleDescription()  # a screen reader hears it
    screenshot(_settled(qtbot, window), "03-wrong-passphrase")
    qtbot.keyClicks(window.pass_field, "x")
    assert window.pass_field.text() == "x" and window.unlock_message.text() == ""

    threads = []
    original = Vault.unlock.__func__

    def recording_unlock(cls, *args, **kwargs):
        threads.append(threading.current_thread())
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Vault, "unlock", classmethod(recording_unlock))
    window.pass_field.clear()
    qtbot.keyClicks(window.pass_field, PASSPHRASE)
    with qtbot.waitSignal(window.unlocked, timeout=30000) as signal:
        qtbot.mouseClick(window.unlock_button, Qt.MouseButton.LeftButton)
    assert threads and threads[0] is not threading.main_thread()  # the KDF never ran on the GUI thread
    signal.args[0].close()


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_error_reads_in_light_and_dark_themes(qtbot, tmp_path, vault_factory, screenshot, theme):
    vault_factory("v").close()
    app = QApplication.instance()
    original = app.palette()
    if theme == "dark":
        dark = QPalette()
        for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                             (QPalette.ColorRole.Base, "#303134"), (QPalette.ColorRole.Text, "#e8eaed"),
                             (QPalette.ColorRole.Button, "#303134"), (QPalette.ColorRole.ButtonText, "#e8eaed")):
            dark.setColor(role, QColor(colour))
        app.setPalette(dark)
    try:
        window = _window(qtbot, tmp_path / "v")
        qtbot.keyClicks(window.pass_field, "not the passphrase")
        qtbot.keyClick(window.pass_field, Qt.Key.Key_Return)
        assert "passphrase is wrong" in window.unlock_message.text()
        screenshot(_settled(qtbot, window), f"03b-wrong-passphrase-{theme}")
        image = window.unlock_message.label.grab().toImage()
        background = app.palette().color(QPalette.ColorRole.Window)
        best = max(_contrast(image.pixelColor(x, y), background)
                   for x in range(image.width()) for y in range(image.height()))
        assert best >= 7, f"the message's ink reaches only {best:.1f}:1 against the {theme} background"
        for widget in window.findChildren(QWidget):
            assert "#" not in widget.styleSheet() and "rgb" not in widget.styleSheet()  # palette colours only
    finally:
        app.setPalette(original)


def test_every_focusable_widget_on_every_page_has_an_accessible_name(qtbot, tmp_path):
    window = _window(qtbot, tmp_path / "v")
    for page in (window.create_page, window.recovery_page, window.unlock_page, window.recover_page,
                 window.offer_page):
        window.pages.setCurrentWidget(page)
        focusable = [w for w in page.findChildren(QWidget) if w.focusPolicy() != Qt.FocusPolicy.NoFocus]
        assert focusable
        unnamed = [f"{type(w).__name__}({getattr(w, 'text', lambda: '')()!r})" for w in focusable
                   if not w.accessibleName().strip()]
        assert not unnamed, unnamed


def test_recover_sets_a_new_passphrase(qtbot, tmp_path, vault_factory, screenshot):
    vault = vault_factory("v")
    key = vault.recovery_key
    vault.close()
    window = _window(qtbot, tmp_path / "v")
    qtbot.mouseClick(window.forgot_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.recover_page and window.recovery_field.hasFocus()
    qtbot.keyClicks(window.recovery_field, "AAAA-BBBB")
    qtbot.keyClicks(window.recover_pass, "Password123!")
    qtbot.keyClicks(window.recover_pass2, "Password123!")
    assert not window.recover_button.isEnabled()  # the same rule as at creation
    window.recover_pass.clear()
    window.recover_pass2.clear()
    qtbot.keyClicks(window.recover_pass, "a new passphrase")  # "passphrase" is one of the words tried first
    qtbot.keyClicks(window.recover_pass2, "a new passphrase")
    assert window.recover_passphrase.meter_label.text() == "Fair" and not window.recover_button.isEnabled()
    window.recover_pass.clear()
    window.recover_pass2.clear()
    qtbot.keyClicks(window.recover_pass, "a brand new passphrase")
    qtbot.keyClicks(window.recover_pass2, "a brand new passphrase")
    qtbot.mouseClick(window.recover_button, Qt.MouseButton.LeftButton)
    assert "not a medvault recovery key" in window.recovery_field_message.text()
    assert window.recovery_field.hasFocus() and window.recovery_field.selectedText() == "AAAA-BBBB"
    assert 0 <= _below(window.recovery_field, window.recovery_field_message, window) < 20
    screenshot(_settled(qtbot, window), "03c-recover")
    window.recovery_field.clear()
    qtbot.keyClicks(window.recovery_field, key)
    with qtbot.waitSignal(window.unlocked) as signal:
        qtbot.mouseClick(window.recover_button, Qt.MouseButton.LeftButton)
    signal.args[0].close()
    Vault.unlock(tmp_path / "v", "a brand new passphrase").close()


def test_closed_on_the_recovery_key_page_the_next_unlock_offers_a_new_key(qtbot, tmp_path, screenshot):
    folder = tmp_path / "v"
    window = _window(qtbot, folder)
    qtbot.keyClicks(window.new_pass, PASSPHRASE)
    qtbot.keyClicks(window.new_pass2, PASSPHRASE)
    qtbot.mouseClick(window.create_button, Qt.MouseButton.LeftButton)
    old_key = window._recovery_key
    assert window.pages.currentWidget() is window.recovery_page
    window.close()  # the user walks away without confirming
    assert window._recovery_key == "" and window.key_label.text() == ""

    again = _window(qtbot, folder)  # the vault was locked again: a new window can open it
    assert again.pages.currentWidget() is again.unlock_page
    qtbot.keyClicks(again.pass_field, PASSPHRASE)
    qtbot.mouseClick(again.unlock_button, Qt.MouseButton.LeftButton)
    assert again.pages.currentWidget() is again.offer_page
    assert again.new_key_button.hasFocus()
    screenshot(_settled(qtbot, again), "02b-offer-new-recovery-key")
    qtbot.mouseClick(again.new_key_button, Qt.MouseButton.LeftButton)
    assert again.pages.currentWidget() is again.recovery_page
    new_key = again._recovery_key
    assert new_key and new_key != old_key and again.recovery_title.text() == "Your new recovery key"
    assert _qr_text(screenshot(_settled(qtbot, again), "02c-new-recovery-key")) == [new_key]
    vault = _confirm(qtbot, again)
    assert vault.recovery_key_confirmed
    vault.close()

    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, old_key, "a passphrase nobody should set")
    third = _window(qtbot, folder)  # confirmed now: straight through
    qtbot.keyClicks(third.pass_field, PASSPHRASE)
    with qtbot.waitSignal(third.unlocked) as signal:
        qtbot.mouseClick(third.unlock_button, Qt.MouseButton.LeftButton)
    signal.args[0].close()
    Vault.recover(folder, new_key, "the passphrase after recovery").close()


def test_not_now_opens_the_vault_and_asks_again_next_time(qtbot, tmp_path, vault_factory):
    vault = vault_factory("v", recovery_key_confirmed=False)
    key = vault.recovery_key
    vault.close()
    for _ in range(2):
        window = _window(qtbot, tmp_path / "v")
        qtbot.keyClicks(window.pass_field, PASSPHRASE)
        qtbot.mouseClick(window.unlock_button, Qt.MouseButton.LeftButton)
        assert window.pages.currentWidget() is window.offer_page
        with qtbot.waitSignal(window.unlocked) as signal:
            qtbot.mouseClick(window.not_now_button, Qt.MouseButton.LeftButton)
        opened = signal.args[0]
        assert opened.is_open and not opened.recovery_key_confirmed
        opened.close()
    Vault.recover(tmp_path / "v", key, "still the first recovery key").close()  # nothing was rotated


def test_controller_opens_main_window_and_lock_returns(qtbot, tmp_path, vault_factory, screenshot):
    vault_factory("v").close()
    controller = Controller(tmp_path / "v", SyncRunner())
    qtbot.addWidget(controller.unlock_window)
    controller.start()
    qtbot.keyClicks(controller.unlock_window.pass_field, PASSPHRASE)
    qtbot.mouseClick(controller.unlock_window.unlock_button, Qt.MouseButton.LeftButton)
    main = controller.main_window
    assert main is not None and main.isVisible() and not controller.unlock_window.isVisible()
    qtbot.addWidget(main)
    assert main.windowTitle() == "medvault" and "did:key" not in main.person_label.text()
    main.show_screen("summary")     # the screen shown first is the one left open last time
    assert "Nothing here yet" in main.screens["summary"].status.text()
    screenshot(main, "04-unlocked")
    vault = main.vault
    main.lock_action.trigger()
    assert not vault.is_open and controller.unlock_window.isVisible()


def test_the_app_warms_the_validation_pool_at_unlock(qtbot, tmp_path, vault_factory, monkeypatch):
    """The desktop app starts the validation worker while the patient reads, so a large import later validates on
    both cores at once; the clinician's window and the tests' controllers do not."""
    from vault.records import parallel
    monkeypatch.setattr(parallel, "default_workers", lambda: 2)     # the same on a one-core runner
    parallel.shutdown()
    vault_factory("v").close()
    controller = Controller(tmp_path / "v", SyncRunner(), warm_validation=True)
    qtbot.addWidget(controller.unlock_window)
    controller.start()
    try:
        assert not parallel._is_warm()
        qtbot.keyClicks(controller.unlock_window.pass_field, PASSPHRASE)
        qtbot.mouseClick(controller.unlock_window.unlock_button, Qt.MouseButton.LeftButton)
        assert controller.main_window is not None
        qtbot.addWidget(controller.main_window)
        assert parallel._is_warm()
        controller.main_window.lock_action.trigger()
    finally:
        parallel.shutdown()
        controller.serving.gateway.stop()

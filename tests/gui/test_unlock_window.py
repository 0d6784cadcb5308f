"""The first window as a user meets it: create a vault, confirm the recovery key, unlock, recover."""

from __future__ import annotations

import threading

import zxingcpp
from PIL import Image
from PySide6.QtCore import Qt

from app.gui import Controller
from app.tasks import SyncRunner, TaskRunner
from app.unlock_window import UnlockWindow
from tests.conftest import PASSPHRASE, TEST_PROFILE


def _create(qtbot, window, passphrase=PASSPHRASE):
    qtbot.keyClicks(window.new_pass, passphrase)
    qtbot.keyClicks(window.new_pass2, passphrase)
    assert window.create_button.isEnabled()
    with qtbot.waitSignal(window.unlocked, timeout=30000) as signal:
        qtbot.mouseClick(window.create_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.pages.currentWidget() is window.recovery_page, timeout=30000)
        key = window._recovery_key
        assert not window.continue_button.isEnabled()
        window.confirm_box.setChecked(True)
        assert not window.continue_button.isEnabled()  # ticking the box alone is not enough
        qtbot.keyClicks(window.confirm_group, key.rsplit("-", 1)[-1].lower())
        assert window.continue_button.isEnabled()
        qtbot.mouseClick(window.continue_button, Qt.MouseButton.LeftButton)
    return signal.args[0], key


def test_create_flow_with_strength_meter_and_recovery_confirmation(qtbot, tmp_path, screenshot):
    window = UnlockWindow(tmp_path / "v", SyncRunner(), kdf_profile=TEST_PROFILE)
    qtbot.addWidget(window)
    window.show()
    assert window.pages.currentWidget() is window.create_page
    qtbot.keyClicks(window.new_pass, "short")
    assert window.meter_label.text() == "Too short" and not window.create_button.isEnabled()
    window.new_pass.clear()
    qtbot.keyClicks(window.new_pass, PASSPHRASE)
    assert window.meter_label.text() in ("Strong", "Very strong")
    qtbot.keyClicks(window.new_pass2, "something else")
    assert "differ" in window.status.text() and not window.create_button.isEnabled()
    window.new_pass.clear()
    window.new_pass2.clear()
    screenshot(window, "01-create-vault")

    qtbot.keyClicks(window.new_pass, PASSPHRASE)
    qtbot.keyClicks(window.new_pass2, PASSPHRASE)
    qtbot.mouseClick(window.create_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.recovery_page
    key = window._recovery_key
    shot = screenshot(window, "02-recovery-key")
    # the QR on the recovery page decodes, with a real decoder, to the key itself
    decoded = zxingcpp.read_barcodes(Image.open(shot))
    assert [d.text for d in decoded] == [key]
    window.confirm_box.setChecked(True)
    qtbot.keyClicks(window.confirm_group, key.rsplit("-", 1)[-1])
    with qtbot.waitSignal(window.unlocked) as signal:
        qtbot.mouseClick(window.continue_button, Qt.MouseButton.LeftButton)
    vault = signal.args[0]
    assert vault.is_open and window._recovery_key == "" and window.key_label.text() == ""
    vault.close()
    assert window.windowTitle() == "medvault"


def test_wrong_passphrase_says_so_and_unlock_works_off_the_gui_thread(qtbot, tmp_path, vault_factory, screenshot,
                                                                     monkeypatch):
    vault_factory("v").close()
    window = UnlockWindow(tmp_path / "v", TaskRunner())
    qtbot.addWidget(window)
    window.show()
    assert window.pages.currentWidget() is window.unlock_page
    qtbot.keyClicks(window.pass_field, "not the passphrase")
    qtbot.keyClick(window.pass_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "passphrase is wrong" in window.status.text(), timeout=30000)
    screenshot(window, "03-wrong-passphrase")

    from vault.store import Vault
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


def test_recover_sets_a_new_passphrase(qtbot, tmp_path, vault_factory):
    vault = vault_factory("v")
    key = vault.recovery_key
    vault.close()
    window = UnlockWindow(tmp_path / "v", SyncRunner())
    qtbot.addWidget(window)
    window.show()
    qtbot.mouseClick(window.forgot_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.recover_page
    qtbot.keyClicks(window.recovery_field, "AAAA-BBBB")
    qtbot.keyClicks(window.recover_pass, "a new passphrase")
    qtbot.keyClicks(window.recover_pass2, "a new passphrase")
    qtbot.mouseClick(window.recover_button, Qt.MouseButton.LeftButton)
    assert "not a medvault recovery key" in window.status.text()
    window.recovery_field.clear()
    qtbot.keyClicks(window.recovery_field, key)
    with qtbot.waitSignal(window.unlocked) as signal:
        qtbot.mouseClick(window.recover_button, Qt.MouseButton.LeftButton)
    signal.args[0].close()
    from vault.store import Vault
    Vault.unlock(tmp_path / "v", "a new passphrase").close()


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

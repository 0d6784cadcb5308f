"""Settings, through the window on real vaults: choices saved in the vault survive locking and unlocking; the IPFS
Test button adds and fetches a probe through a real js-ipfs node (and says why when the gateway is wrong); the
consent network deployed on a real ganache node; the card's QR read back by zxing-cpp; the passphrase changed
only with the right current one; a new recovery key shown once, read back from its QR, confirmed, and the old one
refused; every focusable widget named."""

from __future__ import annotations

import stat

import pytest
from PySide6.QtCore import QBuffer, QIODevice

from app.main_window import MainWindow
from app.screens.settings import RecoveryKeyDialog, SettingsScreen
from app.services import Session
from app.services.preferences import lan_address
from app.tasks import TaskRunner
from sync import qr
from sync.links import card_from_link
from tests.conftest import PASSPHRASE
from tests.gui.question_support import answer_question
from tests.gui.synthea_vault import synthea_vault
from tests.gui.test_accessibility import offenders
from tests.gui.serving_support import (controller_for, free_port, get, lock_in_window, settle,  # noqa: F401
                                       shared_vault, unlock_in_window, window_on)
from tests.peers.ganache import Ganache
from tests.peers.ipfs import running_ipfs_node
from vault.errors import WrongRecoveryKey
from vault.store import Vault

NEW_PASSPHRASE = "orbit cactus lantern mosaic velvet"


def _open_settings(qtbot, tmp_path, session, runner) -> tuple[MainWindow, SettingsScreen]:
    window = window_on(qtbot, tmp_path, session, runner, "settings")
    return window, window.screens["settings"]


def _png(pixmap) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert pixmap.save(buffer, "PNG")
    return bytes(buffer.data())


@pytest.fixture
def patient_folder(tmp_path):
    folder = tmp_path / "patient"
    vault = synthea_vault(folder)
    from sync import shares
    shares.set_gateway_setting(vault, f"http://127.0.0.1:{free_port()}")
    vault.close()
    return folder


def test_choices_survive_lock_and_unlock(qtbot, shared_vault, controller_for, screenshot):
    folder, port, created = shared_vault
    controller = controller_for(folder)
    runner = controller.runner
    unlock_in_window(qtbot, controller)
    window = controller.main_window
    window.show_screen("settings")
    settle(qtbot, runner)
    screen = window.screens["settings"]
    assert screen.autolock_box.currentText() == "After 5 minutes" and screen.locked_box.isChecked()
    assert not screen.lan_box.isChecked() and screen.embedded_radio.isChecked()
    assert screen.serving_label.text().startswith("Serving the shares kept on this computer")
    screenshot(window, "41-settings")

    screen.autolock_box.setCurrentIndex(screen.autolock_box.findData(15))
    screen.autolock_box.activated.emit(screen.autolock_box.currentIndex())
    settle(qtbot, runner)
    assert screen.locking_message.text() == "medvault locks after 15 minutes without use."
    assert controller.idle.delay_ms == 15 * 60_000          # the running timer follows at once
    screen.locked_box.click()
    settle(qtbot, runner)
    assert screen.serving_message.text() == "Locking will stop serving your shares until you unlock."

    screen.lan_box.click()
    settle(qtbot, runner)
    address = lan_address()
    if address is None:     # a machine on no network: said, and the choice does not take
        assert "not on a local network" in screen.serving_message.text() and not screen.lan_box.isChecked()
    else:
        assert screen.serving_message.text().startswith(f"New links point to http://{address}:")
        qtbot.waitUntil(lambda: controller.serving.status is not None and controller.serving.status.local_network,
                        timeout=30000)
        assert "this computer and the local network" in screen.serving_label.text()
        assert get(f"http://{address}:{port}/ipfs/{created.cid}")[0] == 200     # reached on that address
        assert get(created.url)[0] == 200        # and links already handed out keep working on this computer

    lock_in_window(qtbot, controller)
    assert controller.locked_notice.label.text() == "Locked: your shares are not served until you unlock."
    unlock_in_window(qtbot, controller)
    window = controller.main_window
    window.show_screen("settings")
    settle(qtbot, runner)
    screen = window.screens["settings"]
    assert screen.autolock_box.currentText() == "After 15 minutes"
    assert not screen.locked_box.isChecked()
    assert screen.lan_box.isChecked() is (address is not None)
    assert controller.idle.delay_ms == 15 * 60_000 and controller.idle.running


@pytest.fixture(scope="module")
def ipfs_node():
    with running_ipfs_node() as node:
        yield node


def test_ipfs_test_button_adds_and_fetches_a_probe_through_the_real_node(qtbot, tmp_path, ipfs_node,
                                                                        unlocked_vault):
    runner = TaskRunner()
    session = Session(unlocked_vault)
    window, screen = _open_settings(qtbot, tmp_path, session, runner)
    assert not screen.test_button.isEnabled()
    screen.ipfs_radio.click()
    screen.api_field.setText(ipfs_node.api_url)
    screen.gateway_field.setText(f"http://127.0.0.1:{free_port()}")     # nothing listens there
    screen.test_button.click()
    qtbot.waitUntil(screen.test_button.isEnabled, timeout=60000)
    wrong = screen.gateway_field.text()
    assert screen.sharing_message.text() == (f"The IPFS node took the test file, but the gateway at {wrong} did not "
                                             "give it back; check the gateway address.")

    screen.gateway_field.setText(ipfs_node.gateway_url)
    screen.test_button.click()
    qtbot.waitUntil(screen.test_button.isEnabled, timeout=60000)
    assert screen.sharing_message.text().startswith("The IPFS node answered (version ")
    assert "served a test file back through its gateway in " in screen.sharing_message.text()
    assert session.share_backend() == {"kind": "embedded"}         # a test changes nothing

    screen.apply_backend_button.click()
    qtbot.waitUntil(screen.apply_backend_button.isEnabled, timeout=60000)
    assert screen.sharing_message.text().startswith("New shares go to the IPFS node (version ")
    assert session.share_backend() == {"kind": "ipfs", "api": ipfs_node.api_url, "gateway": ipfs_node.gateway_url}
    window.close()


def test_consent_network_deployed_from_settings(qtbot, tmp_path, unlocked_vault):
    runner = TaskRunner()
    session = Session(unlocked_vault)
    window, screen = _open_settings(qtbot, tmp_path, session, runner)
    assert not screen.sync_button.isEnabled()
    node = Ganache(tmp_path / "chain", free_gas=True)
    with node:
        screen.rpc_field.setText(node.url)
        screen.connect_button.click()            # no registry given: said, nothing saved
        assert screen.chain_message.text() == "Give the registry's contract address, or deploy a new registry."
        screen.deploy_button.click()
        qtbot.waitUntil(screen.deploy_button.isEnabled, timeout=60000)
        settle(qtbot, runner)
        status = session.chain_status()
        assert status.configured and status.reachable
        assert screen.chain_message.text() == (f"Consent registry deployed at {status.contract} on chain "
                                               f"{status.chain_id}; this vault's account is its admin and a member.")
        assert screen.chain_label.text() == (f"Consent network at {node.url}: reachable; this vault is a member. "
                                             "Consent changes: 0 recorded.")
        assert screen.contract_field.text() == status.contract and screen.sync_button.isEnabled()
        screen.sync_button.click()
        qtbot.waitUntil(screen.sync_button.isEnabled, timeout=30000)
        settle(qtbot, runner)
        assert screen.chain_message.text() == "Nothing was waiting."
        assert screen.chain_label.text().endswith("reachable; this vault is a member. Consent changes: 0 recorded.")
    window.close()


def test_card_qr_reads_back_as_the_card_with_its_name(qtbot, tmp_path, patient_folder):
    runner = TaskRunner()
    session = Session(Vault.unlock(patient_folder, PASSPHRASE))
    window, screen = _open_settings(qtbot, tmp_path, session, runner)
    assert screen.card_name.text() == "Juliette Padberg"       # the vault's own person, from its records
    card = card_from_link(qr.decode_bytes(_png(screen.card_qr.pixmap())))
    assert card.name == "Juliette Padberg" and card.did == session.vault.identity.did
    screen.card_name.setText("J. Padberg")
    screen.card_name.editingFinished.emit()
    settle(qtbot, runner)
    assert card_from_link(qr.decode_bytes(_png(screen.card_qr.pixmap()))).name == "J. Padberg"
    screen.copy_card_button.click()
    from PySide6.QtGui import QGuiApplication
    assert QGuiApplication.clipboard().text() == screen.card_text
    window.close()


def test_passphrase_changes_only_with_the_current_one(qtbot, tmp_path, unlocked_vault):
    folder = unlocked_vault.folder
    header = (folder / "vault.header").read_bytes()
    runner = TaskRunner()
    window, screen = _open_settings(qtbot, tmp_path, Session(unlocked_vault), runner)
    screen.new_passphrase.field.setText("password1234")
    screen.new_passphrase.repeat.setText("password1234")
    screen.old_passphrase.setText(PASSPHRASE)
    assert not screen.change_button.isEnabled()              # too easy to guess: refused before anything runs
    screen.old_passphrase.setText("not my passphrase at all")
    screen.new_passphrase.field.setText(NEW_PASSPHRASE)
    screen.new_passphrase.repeat.setText(NEW_PASSPHRASE)
    assert screen.change_button.isEnabled()
    screen.change_button.click()
    settle(qtbot, runner)
    assert screen.passphrase_message.text() == "The current passphrase is wrong; it was not changed."
    assert (folder / "vault.header").read_bytes() == header
    assert screen.old_passphrase.hasFocus() and screen.old_passphrase.selectedText()
    screen.old_passphrase.setText(PASSPHRASE)
    screen.change_button.click()
    settle(qtbot, runner)
    assert screen.passphrase_message.text() == ("Passphrase changed, and your records moved to a new key. Use the "
                                                "new passphrase from now on; your recovery key still works.")
    assert not screen.old_passphrase.text() and not screen.new_passphrase.field.text()
    assert screen.passwd_recovery.isHidden()      # a new vault's recovery key follows the change by itself
    window.close()
    unlocked_vault.close()
    Vault.unlock(folder, NEW_PASSPHRASE).close()


@pytest.mark.parametrize("keep", [True, False])
def test_an_older_vaults_passphrase_change_keeps_or_replaces_the_recovery_key_openly(qtbot, tmp_path, keep):
    import shutil
    from tests.vault.test_frozen_formats import DATA, FROZEN
    name, frozen_passphrase, frozen_key = FROZEN[1]
    folder = tmp_path / "old"
    shutil.copytree(DATA / name, folder)
    runner = TaskRunner()
    session = Session(Vault.unlock(folder, frozen_passphrase))
    window, screen = _open_settings(qtbot, tmp_path, session, runner)
    assert not screen.passwd_recovery.isHidden() and not screen.passwd_recovery_note.isHidden()
    assert screen.passwd_recovery.accessibleName() == "Recovery key, to keep it working"
    screen.old_passphrase.setText(frozen_passphrase)
    screen.new_passphrase.field.setText(NEW_PASSPHRASE)
    screen.new_passphrase.repeat.setText(NEW_PASSPHRASE)
    if keep:
        screen.passwd_recovery.setText(frozen_key)
    else:       # left empty: a new recovery key is made only once the user said yes to that
        answer_question(qtbot, "Change it and get a new key")
    screen.change_button.click()
    settle(qtbot, runner)
    if keep:
        assert screen.passphrase_message.text().endswith("your recovery key still works.")
        assert getattr(screen, "recovery_dialog", None) is None
    else:
        assert "Your old recovery key no longer works" in screen.passphrase_message.text()
        dialog = screen.recovery_dialog
        assert dialog.isVisible() and dialog.pages.currentWidget() is dialog.show_page
        new_key = dialog.key
        assert new_key and new_key != frozen_key
        dialog.confirm_field.setText(new_key.rsplit("-", 1)[-1])
        dialog.done_button.click()
        settle(qtbot, runner)
    assert screen.passwd_recovery.isHidden()       # sealed to the recovery key's public key from now on
    window.close()
    session.close()
    Vault.recover(folder, frozen_key if keep else new_key, "recovered after the change").close()


def test_new_recovery_key_is_shown_once_confirmed_and_the_old_one_stops(qtbot, tmp_path, unlocked_vault):
    old_key, folder = unlocked_vault.recovery_key, unlocked_vault.folder
    runner = TaskRunner()
    window, screen = _open_settings(qtbot, tmp_path, Session(unlocked_vault), runner)
    screen.new_key_button.click()
    dialog = screen.recovery_dialog
    assert isinstance(dialog, RecoveryKeyDialog) and dialog.isVisible()
    assert not offenders(dialog, "New recovery key dialog")
    dialog.make_button.click()
    qtbot.waitUntil(lambda: dialog.pages.currentWidget() is dialog.show_page, timeout=30000)
    qtbot.wait(50)
    key = qr.decode_bytes(_png(dialog.key_qr.pixmap()))
    assert dialog.key_label.text().split() == key.split("-")
    assert not unlocked_vault.recovery_key_confirmed        # until it is typed back
    assert not offenders(dialog, "New recovery key dialog")
    kit = tmp_path / "kit.pdf"
    dialog.save_kit(str(kit))
    settle(qtbot, runner)
    assert kit.read_bytes().startswith(b"%PDF") and stat.S_IMODE(kit.stat().st_mode) == 0o600
    dialog.confirm_field.setText("WRONG")
    assert not dialog.done_button.isEnabled()
    dialog.confirm_field.setText(key.rsplit("-", 1)[-1].lower())
    dialog.done_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=30000)
    assert unlocked_vault.recovery_key_confirmed and not dialog.key
    window.close()
    unlocked_vault.close()
    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, old_key, NEW_PASSPHRASE)
    Vault.recover(folder, key, NEW_PASSPHRASE).close()


def test_every_focusable_widget_of_settings_and_activity_has_a_name(qtbot, tmp_path, unlocked_vault):
    runner = TaskRunner()
    window, screen = _open_settings(qtbot, tmp_path, Session(unlocked_vault), runner)
    screen.ipfs_radio.click()                  # the IPFS fields enabled too
    window.show_screen("activity")
    settle(qtbot, runner)
    problems = offenders(screen, "Settings") + offenders(window.screens["activity"], "Activity")
    assert not problems, problems
    walked: list = []
    offenders(screen, "Settings", walked)
    assert len(walked) >= 20
    window.close()

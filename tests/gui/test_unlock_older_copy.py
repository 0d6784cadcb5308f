"""An older copy of the vault met in the window, as a patient meets it: the database put back from before a change
(``vault.db`` copied aside, a share revoked, the copy put back) is refused with a plain explanation and a separate
button; the button asks first; "don't open it" leaves the vault closed and its files as they were; "open" opens
it with the passphrase already typed and the choice is in the audit log. Real vaults, real widgets, the real
question box clicked as a user would; the unlock runs on the real task runner."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from app.services import Session, sharing, unlocking
from app.tasks import TaskRunner
from sync import shares
from tests.conftest import FIXTURES, PASSPHRASE
from tests.gui.question_support import answer_question
from tests.gui.test_unlock_window import _below, _contrast, _settled, _window
from vault.errors import VaultRolledBack
from vault.store import Vault

SUPPORT = sorted((FIXTURES / "synthea").glob("*Information*.json"))


def _older_copy(vault: Vault, aside: Path, *, share: bool = False) -> str | None:
    """Close ``vault``, keep its database aside, make a change (revoke a share made before, if ``share``), put the
    old database back. Returns the revoked share's id."""
    created = None
    if share:
        session = Session(vault)
        session.import_sources([str(p) for p in SUPPORT])
        created = session.create_share(sharing.selection(types=["Organization"]), expires="1d", label="old",
                                       gateway="http://127.0.0.1:9").created
    folder = vault.folder
    vault.close()
    aside.mkdir()
    shutil.copy2(folder / "vault.db", aside / "vault.db")
    with Vault.unlock(folder, PASSPHRASE) as newer:
        if created is not None:
            shares.revoke_share(newer, created.id)
        else:
            newer.audit("settings", setting="changed after the copy")
    for leftover in ("vault.db-wal", "vault.db-shm"):
        (folder / leftover).unlink(missing_ok=True)
    shutil.copy2(aside / "vault.db", folder / "vault.db")
    return created.cid if created is not None else None


def _refused(qtbot, folder: Path, runner=None):
    window = _window(qtbot, folder, runner or TaskRunner())
    qtbot.keyClicks(window.pass_field, PASSPHRASE)
    qtbot.keyClick(window.pass_field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.unlock_older.isVisible(), timeout=30000)
    return window


def _restores(folder: Path) -> list[str]:
    with Vault.unlock(folder, PASSPHRASE) as vault:
        return [e.details["action"] for e in vault.audit_entries() if e.event == "restore"]



def _open_older_copy(qtbot, window, panel):
    """Answer "Open the older copy" to the question the panel's button asks, click it: the vault it opens."""
    answer_question(qtbot, "Open the older copy", {})
    with qtbot.waitSignal(window.unlocked, timeout=30000) as signal:
        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    return signal.args[0]

def test_the_refusal_explains_and_dont_open_leaves_the_vault_closed_and_unchanged(qtbot, tmp_path, vault_factory):
    vault = vault_factory("v")
    folder = vault.folder
    _older_copy(vault, tmp_path / "aside")
    before = {name: (folder / name).read_bytes() for name in ("vault.db", "vault.header", "vault.state")}
    window = _refused(qtbot, folder)

    said = window.unlock_older.text()
    assert "older than the last state medvault saved" in said
    assert "someone may have replaced your vault with an old copy" in said and "newest backup" in said
    assert "--accept-older-backup" not in said                  # no command-line flag in the window
    assert not window.unlock_message.isVisible()                # one explanation, not two
    assert 0 <= _below(window.pass_field, window.unlock_older, window) < 20
    button = window.unlock_older.open_button
    assert button.isVisible() and button.text() == "Open this older copy…"
    assert button.accessibleName() == "Open this older copy of the vault anyway"
    assert not button.isDefault() and window.unlock_button.isDefault()   # Enter never opens the older copy
    assert window.pass_field.text() == "" and window.pass_field.hasFocus()
    assert "older than the last state" in window.pass_field.accessibleDescription()
    window.pass_field.setFocus()
    qtbot.keyClick(window.pass_field, Qt.Key.Key_Tab)
    assert button.hasFocus()                                    # the next stop from the field, by keyboard

    seen: dict = {}
    unlocked: list = []
    window.unlocked.connect(unlocked.append)
    answer_question(qtbot, "Don't open it", seen)
    qtbot.keyClick(button, Qt.Key.Key_Space)
    assert "revoked" in seen["text"] and "revoke those again" in seen["text"]
    assert seen["default"] == "Don't open it"                   # Enter in the question does the safe thing
    assert seen["names"] == ["Don't open the older copy", "Open the older copy of the vault"]
    QApplication.processEvents()
    assert unlocked == [] and not window.busy.isVisible()
    assert window._open_older is None                           # the passphrase is not kept for later
    assert not button.isVisible() and window.unlock_older.isVisible()   # the explanation stays, the way in goes
    assert window.focusWidget() is window.pass_field    # (the offscreen platform does not re-activate the window)
    assert {name: (folder / name).read_bytes() for name in before} == before
    with pytest.raises(VaultRolledBack):
        Vault.unlock(folder, PASSPHRASE)

    qtbot.keyClicks(window.pass_field, "x")                     # typing again starts over
    assert not window.unlock_older.isVisible()


def test_open_asks_then_opens_with_the_passphrase_already_typed_and_the_audit_says_so(qtbot, tmp_path,
                                                                                        vault_factory, monkeypatch):
    vault = vault_factory("v")
    folder = vault.folder
    cid = _older_copy(vault, tmp_path / "aside", share=True)
    threads: list = []
    original = unlocking.open_vault

    def recording(*args, **kwargs):
        threads.append((threading.current_thread(), kwargs.get("accept_older")))
        return original(*args, **kwargs)

    monkeypatch.setattr("app.unlock_window.open_vault", recording)
    runner = TaskRunner()
    window = _refused(qtbot, folder, runner)
    seen: dict = {}
    answer_question(qtbot, "Open the older copy", seen)
    with qtbot.waitSignal(window.unlocked, timeout=30000) as signal:
        qtbot.mouseClick(window.unlock_older.open_button, Qt.MouseButton.LeftButton)
    opened = signal.args[0]
    try:
        assert [accept for _thread, accept in threads] == [False, True]    # asked once, never typed again
        assert all(thread is not threading.main_thread() for thread, _accept in threads)
        assert window._open_older is None and not window.unlock_older.isVisible()
        assert window.note == ""                                # no consent network: nothing to say
        restores = [e for e in opened.audit_entries() if e.event == "restore"]
        assert [e.details["action"] for e in restores] == ["accepted_older_copy"]
        # what the question warned of: the share revoked after the copy was made is served again in this copy
        assert shares.gateway_lookup(opened)(cid) is not None
    finally:
        opened.close()
    runner.wait()
    Vault.unlock(folder, PASSPHRASE).close()                    # accepted once: it opens from now on


def test_the_recovery_page_offers_the_same_way_for_an_older_copy(qtbot, tmp_path, vault_factory):
    vault = vault_factory("v")
    key, folder = vault.recovery_key, vault.folder
    _older_copy(vault, tmp_path / "aside")
    window = _window(qtbot, folder, TaskRunner())
    qtbot.mouseClick(window.forgot_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(window.recovery_field, key)
    qtbot.keyClicks(window.recover_pass, "a brand new passphrase")
    qtbot.keyClicks(window.recover_pass2, "a brand new passphrase")
    qtbot.mouseClick(window.recover_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.recover_older.isVisible(), timeout=30000)
    assert "older than the last state" in window.recover_older.text()
    assert window.recovery_field.text() == "" and window.recover_pass.text() == ""   # held only for the answer
    opened = _open_older_copy(qtbot, window, window.recover_older)
    try:
        assert [e.details["action"] for e in opened.audit_entries() if e.event == "restore"] == [
            "accepted_older_copy"]
        assert opened.recovery_key_confirmed
    finally:
        opened.close()
    Vault.unlock(folder, "a brand new passphrase").close()


DARK = ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
        (QPalette.ColorRole.Base, "#303134"), (QPalette.ColorRole.Text, "#e8eaed"),
        (QPalette.ColorRole.Button, "#303134"), (QPalette.ColorRole.ButtonText, "#e8eaed"))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_refusal_reads_in_light_and_dark_themes(qtbot, tmp_path, vault_factory, screenshot, theme):
    vault = vault_factory("v")
    _older_copy(vault, tmp_path / "aside")
    app = QApplication.instance()
    original = app.palette()
    if theme == "dark":
        dark = QPalette()
        for role, colour in DARK:
            dark.setColor(role, QColor(colour))
        app.setPalette(dark)
    try:
        window = _refused(qtbot, vault.folder)
        shot = screenshot(_settled(qtbot, window), f"03d-older-copy-{theme}")
        image = window.unlock_older.message.label.grab().toImage()
        background = app.palette().color(QPalette.ColorRole.Window)
        best = max(_contrast(image.pixelColor(x, y), background)
                   for x in range(image.width()) for y in range(image.height()))
        assert best >= 7, f"the explanation's ink reaches only {best:.1f}:1 against the {theme} background"
        for widget in window.findChildren(QWidget):
            assert "#" not in widget.styleSheet() and "rgb" not in widget.styleSheet()  # palette colours only
        if theme == "light":        # the question, beside the refusal's picture
            seen: dict = {}
            answer_question(qtbot, "Don't open it", seen)
            qtbot.mouseClick(window.unlock_older.open_button, Qt.MouseButton.LeftButton)
            question = shot.with_name("03e-older-copy-question.png")
            assert seen["box"].save(str(question), "PNG") and question.stat().st_size > 2000
        window.close()
    finally:
        app.setPalette(original)


def test_the_cli_opens_an_older_copy_through_the_same_use_case(cli, tmp_path, vault_factory):
    vault = vault_factory("v")
    key, folder = vault.recovery_key, vault.folder
    _older_copy(vault, tmp_path / "aside")
    refused = cli(["--vault", str(folder), "list"])
    assert refused.code == 1 and "--accept-older-backup" in refused.err and "Traceback" not in refused.err
    accepted = cli(["--vault", str(folder), "--accept-older-backup", "audit"])
    assert accepted.code == 0, accepted.err
    assert "accepted_older_copy" in accepted.out
    assert cli(["--vault", str(folder), "audit", "--verify"]).code == 0

    _older_copy(Vault.unlock(folder, PASSPHRASE), tmp_path / "aside again")
    env = {"MEDVAULT_RECOVERY_KEY": key, "MEDVAULT_NEW_PASSPHRASE": "a passphrase set by recovery"}
    assert cli(["--vault", str(folder), "recover"], env=env).code == 1
    recovered = cli(["--vault", str(folder), "--accept-older-backup", "recover"], env=env)
    assert recovered.code == 0, recovered.err
    with Vault.unlock(folder, "a passphrase set by recovery") as again:
        assert [e.details["action"] for e in again.audit_entries() if e.event == "restore"] == [
            "accepted_older_copy", "accepted_older_copy"]


@pytest.fixture
def networked(vault_factory):
    """A vault with a consent network (an in-process chain) that has anchored its audit head once."""
    import uuid
    from app.services import chain as chain_service
    from sync import consent_service
    from sync.chain import Chain
    name = f"older-{uuid.uuid4().hex[:8]}"
    Chain.in_process(publish_as=name)
    vault = vault_factory("v")
    consent_service.deploy(vault, f"eth-tester:{name}", pay_with_node_account=True)
    assert chain_service.sync(vault).unavailable is None
    yield vault, name
    Chain.withdraw_in_process(name)


def test_an_unreachable_consent_network_is_said_in_the_status_bar_not_in_the_way(qtbot, networked, screenshot):
    from app.gui import Controller
    from app.tasks import SyncRunner
    from sync import audit_anchor
    from sync.chain import Chain
    vault, name = networked
    folder = vault.folder
    vault.close()
    Chain.withdraw_in_process(name)              # the network is gone: the anchor check cannot be made
    controller = Controller(folder, SyncRunner())
    qtbot.addWidget(controller.unlock_window)
    controller.start()
    qtbot.keyClicks(controller.unlock_window.pass_field, PASSPHRASE)
    qtbot.mouseClick(controller.unlock_window.unlock_button, Qt.MouseButton.LeftButton)
    main = controller.main_window
    assert main is not None and main.isVisible()  # opened all the same
    qtbot.addWidget(main)
    note = main.statusBar().findChild(QWidget, "unlock-note")
    assert note is not None and note.isVisible() and "consent network (unreachable)" in note.text()
    assert note.toolTip() == note.accessibleDescription() == audit_anchor.NOT_CHECKED_SENTENCE   # as the CLI says
    assert note.accessibleName() == "Consent network check at unlock"
    screenshot(main, "04b-unlocked-network-not-checked")
    main.lock_action.trigger()


def test_a_whole_folder_put_back_is_refused_by_the_anchor_and_can_be_opened_from_the_window(qtbot, tmp_path,
                                                                                            networked):
    from app.services import chain as chain_service
    vault, name = networked
    folder = vault.folder
    vault.close()
    shutil.copytree(folder, tmp_path / "backup")
    with Vault.unlock(folder, PASSPHRASE) as newer:
        newer.audit("settings", setting="changed after the backup")
        assert chain_service.sync(newer).unavailable is None      # the newer state is anchored
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "backup", folder)

    window = _refused(qtbot, folder, TaskRunner())
    assert "older than the last state" in window.unlock_older.text()
    opened = _open_older_copy(qtbot, window, window.unlock_older)
    try:
        assert [e.details["action"] for e in opened.audit_entries() if e.event == "restore"] == [
            "accepted_older_than_anchor"]
    finally:
        opened.close()

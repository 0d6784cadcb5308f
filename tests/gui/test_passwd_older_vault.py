"""Changing the passphrase of a vault made before header format 2, in Settings, as its owner would: the frozen
format-1 vault (a real old vault, its printed recovery key known), real widgets, the real question box.

Its recovery key cannot follow the change by itself: typed in, it keeps working; a typo or another vault's key
changes nothing and puts the cursor back in the recovery key's field; left empty, medvault asks before making a
new key (the printed one stops working), and shows the new one at once."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QFormLayout, QGroupBox

from app.services import Session
from app.tasks import TaskRunner
from tests.gui.question_support import answer_question
from tests.gui.serving_support import settle, window_on
from tests.gui.test_accessibility import offenders
from tests.vault.test_frozen_formats import DATA, FROZEN
from vault import recovery
from vault.errors import WrongRecoveryKey
from vault.store import Vault

NEW_PASSPHRASE = "orbit cactus lantern mosaic velvet"
NAME, OLD_PASSPHRASE, PRINTED_KEY = FROZEN[1]
# the frozen vault's key with its check group off by one character, and a well-formed key of no vault here
TYPO = PRINTED_KEY[:-1] + ("D" if PRINTED_KEY[-1] != "D" else "E")
OTHER_KEY = recovery.format_key(recovery.new_secret())


@pytest.fixture
def older(qtbot, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(DATA / NAME, folder)
    runner = TaskRunner()
    session = Session(Vault.unlock(folder, OLD_PASSPHRASE))
    window = window_on(qtbot, tmp_path, session, runner, "settings")
    screen = window.screens["settings"]
    box = next(b for b in screen.findChildren(QGroupBox) if b.title() == "Passphrase")
    screen.scroll.ensureWidgetVisible(box)
    yield folder, runner, window, screen, box
    window.close()
    runner.wait()
    if session.vault.is_open:
        session.close()


def _fill(screen, recovery_key: str) -> None:
    screen.old_passphrase.setText(OLD_PASSPHRASE)
    screen.new_passphrase.field.setText(NEW_PASSPHRASE)
    screen.new_passphrase.repeat.setText(NEW_PASSPHRASE)
    screen.passwd_recovery.setText(recovery_key)


def test_the_form_reads_in_the_order_it_is_filled_and_a_wrong_key_changes_nothing(qtbot, older, screenshot):
    folder, runner, window, screen, box = older
    header = (folder / "vault.header").read_bytes()
    assert not offenders(box, "Passphrase box")
    assert "older version of medvault" in screen.passwd_recovery_note.text()
    assert "printed one stops working" in screen.passwd_recovery_note.text()
    assert "9MEF" not in screen.passwd_recovery.placeholderText()     # no real key's groups as an example
    # the fields in the order they are filled: current, new, repeat, then the recovery key; one left edge
    order = [screen.old_passphrase, screen.new_passphrase.field, screen.new_passphrase.repeat,
             screen.passwd_recovery]
    tops = [w.mapTo(box, w.rect().topLeft()).y() for w in order]
    assert tops == sorted(tops)
    lefts = {w.mapTo(box, w.rect().topLeft()).x() for w in order}
    assert len(lefts) == 1, lefts

    for typed, said in ((TYPO, "has a typo"), (OTHER_KEY, "does not open this vault")):
        _fill(screen, typed)
        screen.change_button.click()
        settle(qtbot, runner)
        assert said in screen.passphrase_message.text() and "not changed" in screen.passphrase_message.text()
        assert window.focusWidget() is screen.passwd_recovery           # back where the mistake is
        assert screen.passwd_recovery.selectedText() == typed           # typing replaces it
        assert screen.change_button.isEnabled()
        assert (folder / "vault.header").read_bytes() == header
    screenshot(box, "41b-change-passphrase-older-vault")
    screen.passwd_recovery.setText(PRINTED_KEY)
    screen.change_button.click()
    settle(qtbot, runner)
    assert screen.passphrase_message.text().endswith("your recovery key still works.")
    window.close()
    screen.session.close()
    Vault.recover(folder, PRINTED_KEY, "recovered with the printed key").close()


def test_left_empty_it_asks_before_making_a_new_key_and_go_back_changes_nothing(qtbot, older, screenshot):
    folder, runner, window, screen, box = older
    header = (folder / "vault.header").read_bytes()
    _fill(screen, "")
    seen = answer_question(qtbot, "Go back")
    screen.change_button.click()
    assert "did not type your recovery key" in seen["text"] and "will stop working" in seen["text"]
    assert seen["default"] == "Go back"                                  # Enter keeps the printed key
    assert seen["names"] == ["Change the passphrase and get a new recovery key",
                             "Go back and type the recovery key"]
    settle(qtbot, runner)
    assert (folder / "vault.header").read_bytes() == header
    assert window.focusWidget() is screen.passwd_recovery
    assert screen.old_passphrase.text() == OLD_PASSPHRASE                # nothing typed was thrown away

    answer_question(qtbot, "Change it and get a new key")
    screen.change_button.click()
    settle(qtbot, runner)
    assert "Your old recovery key no longer works" in screen.passphrase_message.text()
    dialog = screen.recovery_dialog
    assert dialog.isVisible() and dialog.pages.currentWidget() is dialog.show_page
    new_key = dialog.key
    assert new_key and new_key != PRINTED_KEY
    assert dialog.show_intro.text().startswith("Your passphrase was changed. The recovery key you had")
    assert window.focusWidget() is not dialog.done_button and dialog.focusWidget() is dialog.confirm_field
    screenshot(dialog, "41c-change-passphrase-new-recovery-key")
    dialog.confirm_field.setText(new_key.rsplit("-", 1)[-1])
    dialog.done_button.click()
    settle(qtbot, runner)
    assert screen.passwd_recovery.isHidden() and screen.passwd_recovery_note.isHidden()
    window.close()
    screen.session.close()
    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, PRINTED_KEY, "the printed key no longer opens it")
    Vault.recover(folder, new_key, "the new key opens it").close()


def test_the_labels_of_stacked_forms_share_one_width(older):
    _folder, _runner, _window, screen, _box = older
    widths = {form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget().minimumWidth()
              for form in (screen.new_passphrase.layout(), screen._passwd_form)
              for row in range(form.rowCount()) if form.itemAt(row, QFormLayout.ItemRole.LabelRole)}
    assert len(widths) == 1

"""Links and card files opened with medvault wait for the vault to be unlocked, then reach the receiver hook or the
importer in order; the stderr note names the kind and a fingerprint, never the link or the file name."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui import Controller
from app.link_inbox import AT_LAUNCH, HANDED_OVER, LinkInbox, attach
from app.tasks import TaskRunner
from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE
from tests.records.records_support import type_counts

CARD = FIXTURES / "shl-shc" / "spec" / "example-00-e-file.smart-health-card"
LINK = "shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnL3NlY3JldCIsImtleSI6InNlY3JldC1rZXkifQ"


def test_held_until_a_vault_is_open_then_delivered_in_order(qtbot, capsys):
    inbox = LinkInbox()
    links, files = [], []
    inbox.link_received.connect(links.append)
    inbox.file_received.connect(files.append)
    inbox.put(LINK, AT_LAUNCH)
    inbox.put(str(CARD))
    assert links == [] and files == [] and len(inbox.held) == 2
    inbox.set_vault_open(True)
    assert links == [LINK] and files == [str(CARD.resolve())] and inbox.held == []
    inbox.set_vault_open(False)
    inbox.put(LINK)
    assert links == [LINK] and len(inbox.held) == 1  # locked again: held again
    err = capsys.readouterr().err
    assert f"a shlink:/ link (ref " in err and AT_LAUNCH in err and HANDED_OVER in err
    assert "eyJ" not in err and "example-00" not in err


def test_something_that_is_neither_is_ignored_with_a_note(qtbot, capsys, tmp_path):
    inbox = LinkInbox()
    inbox.set_vault_open(True)
    got = []
    inbox.link_received.connect(got.append)
    inbox.file_received.connect(got.append)
    inbox.put(str(tmp_path / "Jane_Doe_records.json"))
    assert got == [] and inbox.held == []
    err = capsys.readouterr().err
    assert "ignored" in err and "Jane_Doe" not in err



def _started(qtbot, tmp_path, vault_factory):
    """The app's controller on a new vault, showing its unlock window, with the desktop's link inbox attached."""
    vault_factory("v").close()
    controller = Controller(tmp_path / "v", TaskRunner(), TEST_PROFILE)
    qtbot.addWidget(controller.unlock_window)
    inbox = LinkInbox()
    attach(inbox, controller)
    controller.start()
    return controller, inbox

def test_a_card_file_opened_before_unlocking_is_imported_after(qtbot, tmp_path, vault_factory):
    controller, inbox = _started(qtbot, tmp_path, vault_factory)
    inbox.put(str(CARD), AT_LAUNCH)
    qtbot.keyClicks(controller.unlock_window.pass_field, PASSPHRASE)
    qtbot.mouseClick(controller.unlock_window.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.main_window is not None, timeout=30000)
    main = controller.main_window
    qtbot.addWidget(main)
    assert inbox.held == []

    def imported() -> bool:
        if main.importing:
            return False
        with main.vault.read() as conn:
            return type_counts(conn).get("Immunization", 0) > 0

    qtbot.waitUntil(imported, timeout=60000)
    main.vault.close()


def test_a_link_opened_before_unlocking_goes_to_the_receiver_window_after(qtbot, tmp_path, vault_factory):
    controller, inbox = _started(qtbot, tmp_path, vault_factory)
    # well-formed on its face, but its payload is not a SHL manifest: the receiver refuses it without any network
    inbox.put("shlink:/bm90LWEtbWFuaWZlc3Q", AT_LAUNCH)
    qtbot.keyClicks(controller.unlock_window.pass_field, PASSPHRASE)
    qtbot.mouseClick(controller.unlock_window.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.main_window is not None, timeout=30000)
    main = controller.main_window
    qtbot.addWidget(main)
    qtbot.waitUntil(lambda: main.shared_window is not None and main.shared_window.isVisible(), timeout=30000)
    qtbot.addWidget(main.shared_window)
    assert inbox.held == [] and not main.importing  # read in the receiver, not imported
    main.vault.close()

"""Starts the desktop app: the unlock window first, then the main window; locking goes back to the start.

The crash hook is installed before any window exists, so an unexpected error anywhere ends as a report without
health data (``app.crash``) and one plain sentence, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from app import crash, desktop_identity, link_inbox
from app.main_window import MainWindow
from app.single_instance import AlreadyRunningNotAnswering, SingleInstance
from app.tasks import TaskRunner
from app.unlock_window import UnlockWindow


class Controller:
    """Owns the windows; swapping them is all it does."""

    def __init__(self, vault_dir: Path, runner: Any, kdf_profile: str = "default") -> None:
        self.runner = runner
        self.unlock_window = UnlockWindow(vault_dir, runner, kdf_profile)
        self.unlock_window.unlocked.connect(self._open)
        self.main_window: MainWindow | None = None

    def start(self) -> None:
        self.unlock_window.show_start_page()
        self.unlock_window.show()

    def _open(self, vault: Any) -> None:
        self.main_window = MainWindow(vault, self.runner)
        self.main_window.locked.connect(self.start)
        self.main_window.quit_requested.connect(QApplication.quit)
        self.unlock_window.hide()
        self.main_window.show()


def run(vault_dir: Path, kdf_profile: str = "default", link: str | None = None) -> int:
    """``link``: a share link or record file the desktop opened medvault with (see app/link_inbox.py)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("medvault")
    app.setApplicationDisplayName("medvault")
    desktop_identity.apply(app)
    instance = SingleInstance(vault_dir)
    try:
        if not instance.claim(link):
            return 0  # this vault is already open in a window, which took the link
    except AlreadyRunningNotAnswering as exc:
        QMessageBox.warning(None, "medvault", exc.user_message)
        return 1
    crash_notice = _CrashNotice()
    hook = crash.install(crash_notice.said.emit)
    controller = Controller(vault_dir, TaskRunner(), kdf_profile)
    inbox = link_inbox.LinkInbox()
    link_inbox.attach(inbox, controller)
    instance.link_received.connect(inbox.put)
    instance.activated.connect(inbox.arrived)
    controller.start()
    if link:
        inbox.put(link, link_inbox.AT_LAUNCH)
    code = app.exec()
    instance.close()
    controller.runner.wait()  # a lock still closing on a worker finishes before the process ends
    window = controller.main_window
    if window is not None and window.vault is not None and window.vault.is_open:
        window.vault.close()  # the app is ending: nothing left to keep responsive
    hook.uninstall()
    return code


class _CrashNotice(QObject):
    """Carries the crash sentence to the GUI thread (the hook runs on whichever thread failed) and shows it
    without blocking, once at a time."""

    said = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.box: QMessageBox | None = None
        self.said.connect(self._show)

    def _show(self, sentence: str) -> None:
        if self.box is not None and self.box.isVisible():
            return
        self.box = QMessageBox(QMessageBox.Icon.Warning, "medvault", sentence)
        self.box.setAccessibleName("Message")
        self.box.open()

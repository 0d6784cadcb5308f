"""Starts the desktop app: the unlock window first, then the main window; locking goes back to the start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
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
        self.unlock_window.hide()
        self.main_window.show()


def run(vault_dir: Path, kdf_profile: str = "default") -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("medvault")
    app.setApplicationDisplayName("medvault")
    controller = Controller(vault_dir, TaskRunner(), kdf_profile)
    controller.start()
    code = app.exec()
    controller.runner.wait()  # a lock still closing on a worker finishes before the process ends
    window = controller.main_window
    if window is not None and window.vault is not None and window.vault.is_open:
        window.vault.close()  # the app is ending: nothing left to keep responsive
    return code

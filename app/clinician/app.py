"""``medvault gui --clinician``: the unlock window, then the clinician's window instead of the patient's; locking
goes back to the unlock window. The crash hook is installed before any window exists, as for the patient's app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from app import crash, responsiveness
from app.clinician.window import ClinicianWindow
from app.tasks import TaskRunner
from app.unlock_window import UnlockWindow
from vault.fsutil import HOLDER_APP, set_holder_role


class ClinicianController:
    """Swaps the unlock window and the clinician's window."""

    def __init__(self, vault_dir: Path, runner: Any, kdf_profile: str = "default", **window_options: Any) -> None:
        self.runner = runner
        self.window_options = window_options        # tests inject the frame source, clock and dialogs
        self.unlock_window = UnlockWindow(vault_dir, runner, kdf_profile)
        self.unlock_window.unlocked.connect(self._open)
        self.window: ClinicianWindow | None = None

    def start(self) -> None:
        self.unlock_window.show_start_page()
        self.unlock_window.show()

    def _open(self, vault: Any) -> None:
        from app.services import Session
        self.window = ClinicianWindow(Session(vault), self.runner, standalone=True, **self.window_options)
        self.window.locked.connect(self.start)
        self.window.quit_requested.connect(QApplication.quit)
        self.unlock_window.hide()
        self.window.show()


def run(vault_dir: Path, kdf_profile: str = "default") -> int:
    from app.gui import _CrashNotice
    responsiveness.tune_interpreter()      # as app.gui.run: workers must not starve the event loop
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("medvault")
    app.setApplicationDisplayName("medvault")
    notice = _CrashNotice()
    hook = crash.install(notice.said.emit)
    set_holder_role(HOLDER_APP)
    controller = ClinicianController(vault_dir, TaskRunner(), kdf_profile)
    controller.start()
    code = app.exec()
    controller.runner.wait()
    window = controller.window
    if window is not None and window.session is not None and window.session.vault.is_open:
        window.session.vault.close()
    hook.uninstall()
    return code

"""The desktop app serves its own shares: the embedded gateway started after unlock, kept or stopped at lock (as
the patient chose in Settings), stopped at quit, and a line in the window that says which.

The gateway itself (``app.services.serving.AppGateway``) runs on its own threads; starting and stopping it (disk
reads, binding, joining its thread) run on the task runner, so the GUI never waits. A port already in use is
said calmly in that line, with a Retry button, and changes nothing else.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from app.errors import expected, user_message
from app.services.serving import AppGateway, Status


class Serving(QObject):
    """The app's gateway from the GUI's side; ``changed(text, problem)`` carries the line to show."""

    changed = Signal(str, bool)
    _from_worker = Signal(object)

    def __init__(self, runner: Any, gateway: AppGateway | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.gateway = gateway or AppGateway()
        self._session: Any = None
        self.status: Status | None = None
        self.text = ""
        self.problem = False
        self._from_worker.connect(self._show_status)   # queued: the lock hook runs on a worker

    def start(self, session: Any) -> None:
        """Serve from ``session``'s vault (after unlock, on Retry, or after the local-network choice changed)."""
        self._session = session
        gateway = self.gateway
        self._runner.run(lambda: gateway.start(session), self._show_status, self._failed)

    def retry(self) -> None:
        if self._session is not None and self._session.vault.is_open:
            self.start(self._session)

    def before_lock(self, vault: Any) -> None:
        """Runs on the worker that is about to close ``vault`` (``MainWindow.before_lock``)."""
        try:
            status = self.gateway.lock(vault)
        except Exception as exc:     # never keep the vault from locking; serving stops instead
            self.gateway.stop()
            from app.crash import record
            if not expected(exc):
                record(exc)
            status = Status(False, True, None, False, "Locked: your shares are not served until you unlock.")
        self._session = None
        self._from_worker.emit(status)

    def stop(self) -> None:
        gateway = self.gateway
        self._session = None
        self._runner.run(gateway.stop, lambda _r: None, lambda _e: None)

    def _show_status(self, status: Status) -> None:
        self.status = status
        self._say(status.sentence, False)

    def _failed(self, exc: BaseException) -> None:
        if not expected(exc):
            from app.crash import record
            record(exc)
        self.status = None
        self._say(f"Shares kept on this computer are not being served: {user_message(exc)}", True)

    def _say(self, text: str, problem: bool) -> None:
        self.text, self.problem = text, problem
        self.changed.emit(text, problem)


class ServingNotice(QWidget):
    """The line that says whether shares are served, with Retry when serving failed."""

    def __init__(self, serving: Serving, parent: QWidget | None = None, *, wrap: bool = True) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(wrap)     # a status bar keeps to one line; the narrow unlock window wraps
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setAccessibleName("Try again to serve your shares")
        self.retry_button.clicked.connect(serving.retry)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 2, 8, 2)
        row.addWidget(self.label, 1)
        row.addWidget(self.retry_button)
        serving.changed.connect(self.show_text)
        self.show_text(serving.text, serving.problem)

    def show_text(self, text: str, problem: bool) -> None:
        self.label.setText(text)
        self.label.setAccessibleName(text)
        self.retry_button.setVisible(problem)
        self.setVisible(bool(text))

"""The one place where errors become what the user reads.

Errors derived from ``MedvaultError`` (the typed errors of ``vault`` and ``sync``) carry a sentence meant for the
user; anything else is a bug, shown as a plain apology without details (a traceback could hold record content) and
written to a crash report that holds only the exception's type and stack frames (``app.crash``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from vault import eventlog
from vault.errors import MedvaultError

UNEXPECTED = ("Something unexpected went wrong, and medvault stopped what it was doing. "
              "Your records were not changed.")


def expected(exc: BaseException) -> bool:
    """Whether the error is one medvault knows how to explain (bad input, a locked vault, a network down)."""
    return isinstance(exc, MedvaultError)


def user_message(exc: BaseException) -> str:
    """The sentence to show; saying it is what the log file notes too (the error's class name, never its text)."""
    eventlog.event("error" if expected(exc) else "bug", error=type(exc).__name__)
    if expected(exc):
        return exc.user_message
    return UNEXPECTED


def show_error(parent: QWidget | None, exc: BaseException, title: str = "medvault") -> None:
    """A modal warning, for the moments the user must read it before going on (unlock, a refused action)."""
    QMessageBox.warning(parent, title, user_message(exc))


class ErrorPresenter:
    """Shows errors that arrive while the user is doing something else (a screen's read failed, a worker broke).

    One message box at a time, never modal, so a burst of failures does not stack dialogs or block the window;
    unexpected errors are also written to a crash report. ``tell`` replaces the box (tests read the sentences).
    """

    def __init__(self, parent: QWidget | None, tell: Callable[[str], None] | None = None) -> None:
        self._parent = parent
        self._tell = tell
        self._box: QMessageBox | None = None
        self.last: str | None = None

    def __call__(self, exc: BaseException) -> None:
        if not expected(exc):
            from app.crash import record
            record(exc)
        self.say(user_message(exc))

    def say(self, sentence: str) -> None:
        self.last = sentence
        if self._tell is not None:
            self._tell(sentence)
            return
        if self._box is None:
            self._box = QMessageBox(QMessageBox.Icon.Warning, "medvault", sentence, QMessageBox.StandardButton.Ok,
                                    self._parent)
            self._box.setAccessibleName("Message")
            self._box.finished.connect(self._closed)
            self._box.open()
        else:
            self._box.setText(sentence)

    def _closed(self, _result: int) -> None:
        box, self._box = self._box, None
        if box is not None:
            box.deleteLater()

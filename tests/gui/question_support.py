"""Answering ``app.questions.ask`` as a user would: the real question box runs its own event loop, so the answer is
clicked from a timer once the box is up, and what it said is kept for the test to check."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox


def answer_question(qtbot, answer: str, seen: dict | None = None) -> dict:
    """Click the button labelled ``answer`` in the next question box. ``seen`` gets its text, the default button's
    label, the buttons' accessible names and a picture of the box."""
    seen = {} if seen is None else seen

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen["text"] = box.text()
        seen["default"] = box.defaultButton().text()
        seen["names"] = sorted(b.accessibleName() for b in box.buttons())
        seen["box"] = box.grab()
        button = next(b for b in box.buttons() if b.text() == answer)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, click)
    return seen

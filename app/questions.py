"""One way to ask the user a yes-or-no question: two named buttons, the safe one the default, one accessible name
each (what a screen reader says may be longer than the button's text)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def ask(parent: QWidget | None, question: str, do: str, dont: str, *, do_name: str | None = None,
        dont_name: str | None = None) -> bool:
    """True when the user chose ``do``; ``dont`` is the default, so Enter never does the irreversible thing."""
    box = QMessageBox(QMessageBox.Icon.Question, "medvault", question, QMessageBox.StandardButton.NoButton, parent)
    yes = box.addButton(do, QMessageBox.ButtonRole.AcceptRole)
    no = box.addButton(dont, QMessageBox.ButtonRole.RejectRole)
    yes.setAccessibleName(do_name or do)
    no.setAccessibleName(dont_name or dont)
    box.setDefaultButton(no)
    box.exec()
    return box.clickedButton() is yes

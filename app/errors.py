"""The one place where errors become what the user reads.

Typed errors from ``vault`` and ``sync`` carry a sentence meant for the user; anything else is a bug, shown as a
plain apology without details (a traceback could hold record content).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from sync.errors import SyncError
from vault.errors import VaultError

UNEXPECTED = ("Something unexpected went wrong, and medvault stopped what it was doing. "
              "Your records were not changed.")


def user_message(exc: BaseException) -> str:
    if isinstance(exc, (VaultError, SyncError)):
        return exc.user_message
    return UNEXPECTED


def show_error(parent: QWidget | None, exc: BaseException, title: str = "medvault") -> None:
    QMessageBox.warning(parent, title, user_message(exc))

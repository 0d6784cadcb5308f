"""Sharing what the user picked in a list: a button under the list and the same entry in its context menu (the
Menu key or Shift+F10 opens it from the keyboard), both opening the share wizard with the picked records.

Offered only where a vault session can share (``ctx.extras["session"]``): the clinician's window shows a
patient's records through the same screens, and those are not the clinician's to share on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QPushButton, QWidget

from app.screens import ScreenContext

# what tests (and the window) inject instead of real dialogs, a real clipboard timer or a printer
WIZARD_HOOKS = ("guard", "ask_save_path", "ask_printer", "ask_card_file")


def can_share(ctx: ScreenContext) -> bool:
    return ctx.extras.get("session") is not None


def open_share_wizard(ctx: ScreenContext, ids: Sequence[str], parent: QWidget | None) -> Any:
    """``start_share`` with the hooks the context carries. Imported on use: the wizard pulls in the QR code and
    consent libraries, which a screen that is only looked at does not need."""
    from app.screens.share_wizard import start_share
    kwargs = {k: ctx.extras[k] for k in WIZARD_HOOKS if k in ctx.extras}
    return start_share(ctx, tuple(ids), parent, **kwargs)


class ShareSelected:
    """"Share selected…" for ``view``: ``picked()`` gives the "Type/id" of the selected records, in list order.
    The button is enabled while something is selected; ``wizard`` is the last wizard opened."""

    def __init__(self, ctx: ScreenContext, view: QAbstractItemView, picked: Callable[[], list[str]],
                 parent: QWidget) -> None:
        self.ctx, self.view, self.picked, self.parent = ctx, view, picked, parent
        self.wizard: Any = None
        self.button = QPushButton("Share selected\u2026")
        self.button.setAccessibleName("Share the selected records")
        self.button.setToolTip("Share the records selected in the list (Ctrl+click or Shift+arrows pick more "
                               "than one)")
        self.button.clicked.connect(lambda _checked=False: self.share())
        self.action = QAction("Share selected\u2026", view)
        self.action.triggered.connect(lambda _checked=False: self.share())
        view.addAction(self.action)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.selectionModel().selectionChanged.connect(lambda _s, _d: self.update())
        self.update()

    def row(self) -> QHBoxLayout:
        """The button on its own line, at the right under the list."""
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        return row

    def update(self) -> None:
        any_picked = self.view.selectionModel().hasSelection()
        self.button.setEnabled(any_picked)
        self.action.setEnabled(any_picked)

    def share(self) -> Any:
        ids = self.picked()
        if not ids:
            return None
        self.wizard = open_share_wizard(self.ctx, ids, self.parent)
        return self.wizard


def add_share_selected(ctx: ScreenContext, view: QAbstractItemView, picked: Callable[[], list[str]],
                       parent: QWidget) -> ShareSelected | None:
    """The share entry for ``view``, or None where nothing may be shared from (no session)."""
    return ShareSelected(ctx, view, picked, parent) if can_share(ctx) else None

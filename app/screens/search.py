"""Search: full-text over every record of the person, results as the user types, each opening its record.

The main window's search field hands its text to ``set_query``; the query runs a moment after the typing pauses
(so a fast typist starts one search, not ten), on the task runner, and an answer to an older text is dropped.
Records a patient is looking for come first; insurance claims, which repeat every diagnosis, come last. Where the
vault can share, results can be picked (Ctrl+click, Shift+arrows) and shared together ("Share selected…").
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QLocale, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from app.errors import user_message
from app.screens import ScreenContext
from app.screens.share_picked import add_share_selected
from vault.records import query
from vault.records.describe import DIRECTORY_TYPES, category_key, kind_label, local_date
from vault.records.summary import list_label

DEBOUNCE_MS = 250
LIMIT = 200
_ID = Qt.ItemDataRole.UserRole


def find(conn: Any, text: str, person: int | None) -> list[query.RecordRow]:
    """Best matches first, the same test or diagnosis kept together newest first (a ranking cannot tell one
    cholesterol result from the next), records about the person before people and places, claims last."""
    rows = query.search(conn, text, limit=LIMIT, person=person)
    first_seen: dict[tuple, int] = {}
    for n, row in enumerate(rows):
        first_seen.setdefault((row.rtype, row.display), n)

    def place(row: query.RecordRow) -> tuple:
        group = 2 if category_key(row.rtype, row.category) == "insurance" else 1 if row.rtype in DIRECTORY_TYPES \
            else 0
        return group, first_seen[(row.rtype, row.display)]
    newest_first = sorted(rows, key=lambda r: (r.date or "", r.rid), reverse=True)
    return sorted(newest_first, key=place)


class SearchScreen(QWidget):
    open_record = Signal(str, str)
    searched = Signal(str, int)         # the text and how many records matched, once the answer is shown

    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.text = ""
        self._generation = 0
        self._last_open: tuple[Any, float] = (None, 0.0)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._run)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        self.status = QLabel("Type in the search field above to find records.")
        self.status.setWordWrap(True)
        self.results = QTreeWidget()
        self.results.setObjectName("search-results")
        self.results.setAccessibleName("Search results")
        self.results.setAccessibleDescription("Press Enter or click a result to read the record in full.")
        self.results.setHeaderLabels(["Record", "Kind", "Date"])
        self.results.setRootIsDecorated(False)
        self.results.setUniformRowHeights(True)
        self.results.setAlternatingRowColors(True)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.results.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.results.itemClicked.connect(lambda item, _col: self._clicked(item))
        self.results.itemActivated.connect(lambda item, _col: self._open(item))
        self.status.setBuddy(self.results)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        self.sharing = add_share_selected(ctx, self.results, self.picked, self)
        if self.sharing is not None:
            layout.addLayout(self.sharing.row())

    def set_query(self, text: str) -> None:
        """Search for ``text`` once the typing pauses; an empty text clears the results at once."""
        self.text = text.strip()
        self._generation += 1
        if not self.text:
            self.timer.stop()
            self.results.clear()
            self.status.setText("Type in the search field above to find records.")
            return
        self.status.setText("Searching…")
        self.timer.start()

    def refresh(self) -> None:
        if self.text:
            self._generation += 1
            self._run()

    def _run(self) -> None:
        text, person, generation = self.text, self.ctx.person, self._generation
        if not text:
            return
        self.ctx.query(lambda conn: find(conn, text, person),
                       lambda rows: self._show(generation, text, rows),
                       lambda exc: self._failed(generation, exc))

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self.status.setText(user_message(exc))

    def _show(self, generation: int, text: str, rows: list[query.RecordRow]) -> None:
        if generation != self._generation:
            return          # the user has typed more since
        self.results.clear()
        for row in rows:
            kind = kind_label(row.rtype, row.category)
            item = QTreeWidgetItem([list_label(row.rtype, row.display) or row.code or kind, kind, local_date(row.date)])
            item.setData(0, _ID, (row.rtype, row.id))
            item.setToolTip(0, item.text(0))
            self.results.addTopLevelItem(item)
        if not rows:
            self.status.setText(f"Nothing in your records matches “{text}”.")
        else:
            many = f"the first {QLocale().toString(LIMIT)} are shown" if len(rows) >= LIMIT else ""
            count = QLocale().toString(len(rows))
            self.status.setText(f"{count} record{'s' if len(rows) != 1 else ''} match “{text}”"
                                + (f"; {many}." if many else ".") + " Press Enter or click one to read it.")
        self.searched.emit(text, len(rows))

    def picked(self) -> list[str]:
        """The "Type/id" of the selected results, in the order shown."""
        results = self.results
        chosen = sorted(results.selectedItems(), key=results.indexOfTopLevelItem)
        return [f"{rtype}/{rid}" for rtype, rid in (item.data(0, _ID) for item in chosen)]

    def _clicked(self, item: QTreeWidgetItem) -> None:
        held = QApplication.keyboardModifiers()
        if held & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            return          # picking several to share, not opening one
        self._open(item)

    def _open(self, item: QTreeWidgetItem) -> None:
        target = item.data(0, _ID)
        now = time.monotonic()
        if target is None or (self._last_open[0] == target and now - self._last_open[1] < 0.6):
            return
        self._last_open = (target, now)
        self.open_record.emit(*target)

"""Summary: the person's health at a glance, the first screen after unlocking.

The International Patient Summary's sections as short tables in plain words: active problems, allergies, current
medications, immunizations, the latest vital signs and lab results (with the value before them, and a flag when the
source said a value is outside its range), and recent visits. Long sections show their first rows and a button for
the rest, so nothing pushes the others out of sight. Selecting a row (click, or Enter) opens the record. The data
comes from ``vault.records.summary`` on the task runner; a result that arrives after a newer request is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QLocale, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QScrollArea,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.errors import user_message
from app.screens import ScreenContext
from vault.records.describe import local_date
from vault.records.summary import Item, Summary, summary

FIRST_ROWS = 8                          # rows a section shows before "Show all"
_ARROWS = {"high": "▲", "critical-high": "▲▲", "low": "▼", "critical-low": "▼▼"}
_ID = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class _Section:
    key: str
    title: str
    columns: tuple[str, ...]
    empty: str
    noun: str                           # "problems": for "Show all 17 problems"


SECTIONS = (
    _Section("problems", "Active problems", ("Problem", "Since"), "No active problems in your records.", "problems"),
    _Section("allergies", "Allergies", ("Allergy", "How serious", "Recorded"), "No allergies in your records.",
             "allergies"),
    _Section("medications", "Current medications", ("Medicine", "How to take it", "Since"),
             "No current medications in your records.", "medications"),
    _Section("immunizations", "Immunizations", ("Vaccine", "Doses", "Last given"),
             "No immunizations in your records.", "vaccines"),
    _Section("vitals", "Latest vital signs", ("Measurement", "Latest", "Taken", "Before"),
             "No vital signs in your records.", "vital signs"),
    _Section("results", "Latest lab results", ("Test", "Result", "Taken", "Before"),
             "No lab results in your records.", "lab results"),
    _Section("encounters", "Recent visits", ("Visit", "Kind and place", "Date"), "No visits in your records.",
             "visits"),
)
_LEFT, _RIGHT = ("problems",), ("allergies", "immunizations")
_WIDE = ("medications", "vitals", "results", "encounters")


def value_with_flag(item: Item) -> str:
    """The value, and when out of range an arrow and the word: never colour alone."""
    if not item.flag:
        return item.value or ""
    arrow = _ARROWS.get(item.flag, "!")
    return f"{item.value or ''}  {arrow} {item.flag_label}".strip()


def _before(item: Item) -> str:
    if not item.previous:
        return ""
    return f"{item.previous} on {local_date(item.previous_date)}" if item.previous_date else item.previous


def _cells(key: str, item: Item) -> list[str]:
    when = local_date(item.date)
    if key == "problems":
        return [item.label, when]
    if key in ("allergies", "medications", "encounters"):
        return [item.label, item.value or "", when]
    if key == "immunizations":
        return [item.label, QLocale().toString(item.count), when]
    return [item.label, value_with_flag(item), when, _before(item)]


class SectionView(QTableWidget):
    """A short read-only table whose rows open their records. It grows to fit its rows rather than scrolling
    inside the page that scrolls, and long names wrap onto a second line instead of being cut off."""

    opened = Signal(str, str)

    def __init__(self, section: _Section) -> None:
        super().__init__(0, len(section.columns))
        self.section = section
        self.setObjectName(f"summary-{section.key}")
        self.setAccessibleName(section.title)
        self.setAccessibleDescription("Press Enter or click a row to read the record in full.")
        self.setHorizontalHeaderLabels(list(section.columns))
        self.verticalHeader().hide()
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setTabKeyNavigation(False)     # Tab leaves the table; arrows move inside it
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(True)
        header = self.horizontalHeader()
        header.setStretchLastSection(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(section.columns)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self._last_open: tuple[Any, float] = (None, 0.0)
        self._refit = QTimer(self)          # owned by the view, so it dies with it
        self._refit.setSingleShot(True)
        self._refit.timeout.connect(self._fit)
        self.itemClicked.connect(self._open)
        self.itemActivated.connect(self._open)

    def fill(self, items: list[Item], limit: int | None) -> None:
        shown = items if limit is None else items[:limit]
        header = self.horizontalHeader()
        # a column sized to its contents is measured again at every item set: measure once, at the end
        for column in range(1, self.columnCount()):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        self.clearContents()
        self.setRowCount(len(shown))
        for row, item in enumerate(shown):
            for column, text in enumerate(_cells(self.section.key, item)):
                cell = QTableWidgetItem(text)
                cell.setData(_ID, (item.rtype, item.id))
                self.setItem(row, column, cell)
            self.item(row, 0).setToolTip(item.label)
            if item.flag:
                cell = self.item(row, 1)
                font = cell.font()
                font.setBold(True)
                cell.setFont(font)
                cell.setToolTip(f"{item.flag_label}: outside the range the source gave for this test")
            if item.previous and self.columnCount() > 3:
                self.item(row, 3).setToolTip(f"The measurement before the latest one: {_before(item)}")
        for column in range(1, self.columnCount()):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self._fit()

    def _fit(self) -> None:
        """As tall as its rows, which depend on the width when names wrap: refitted on every resize."""
        self.resizeRowsToContents()
        height = (self.horizontalHeader().sizeHint().height() + self.verticalHeader().length()
                  + 2 * self.frameWidth() + 2)
        if height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._refit.start(0)

    def _open(self, cell: QTableWidgetItem) -> None:
        target = cell.data(_ID)
        # a double click is a click and then an activation: open once
        now = time.monotonic()
        if target is None or (self._last_open[0] == target and now - self._last_open[1] < 0.6):
            return
        self._last_open = (target, now)
        self.opened.emit(*target)


class SectionCard(QWidget):
    def __init__(self, section: _Section, opened: Any) -> None:
        super().__init__()
        self.section = section
        self.items: list[Item] = []
        self.expanded = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(f"<b>{section.title}</b>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.view = SectionView(section)
        self.view.opened.connect(opened)
        self.title.setBuddy(self.view)
        self.empty = QLabel(section.empty)
        self.empty.setWordWrap(True)
        self.more = QPushButton()
        self.more.setFlat(True)
        self.more.clicked.connect(self.toggle)
        row = QHBoxLayout()
        row.addWidget(self.more)
        row.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.view)
        layout.addWidget(self.empty)
        layout.addLayout(row)
        layout.addStretch(1)

    def show_items(self, items: list[Item]) -> None:
        self.items = items
        self.view.setVisible(bool(items))
        self.empty.setVisible(not items)
        self._draw()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._draw()

    def _draw(self) -> None:
        many = len(self.items) > FIRST_ROWS
        self.view.fill(self.items, None if self.expanded or not many else FIRST_ROWS)
        self.more.setVisible(many)
        text = (f"Show the first {FIRST_ROWS} only" if self.expanded
                else f"Show all {QLocale().toString(len(self.items))} {self.section.noun}")
        self.more.setText(text)
        self.more.setAccessibleName(f"{text} ({self.section.title})")


class SummaryScreen(QWidget):
    open_record = Signal(str, str)

    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self._generation = 0
        self.summary: Summary | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setAccessibleName("Summary")
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer.addWidget(self.scroll)
        page = QWidget()
        self.scroll.setWidget(page)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(16, 12, 16, 16)
        layout.setSpacing(14)
        self.status = QLabel("Reading your records…")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.cards = {s.key: SectionCard(s, self.open_record.emit) for s in SECTIONS}
        columns = QHBoxLayout()
        columns.setSpacing(24)
        for keys in (_LEFT, _RIGHT):
            column = QVBoxLayout()
            column.setSpacing(14)
            for key in keys:
                column.addWidget(self.cards[key])
            column.addStretch(1)
            columns.addLayout(column, 1)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(14)
        body.addLayout(columns)
        for key in _WIDE:
            body.addWidget(self.cards[key])
        layout.addWidget(self.body)
        layout.addStretch(1)
        self.body.hide()

    def refresh(self) -> None:
        self._generation += 1
        generation, person = self._generation, self.ctx.person
        self.ctx.query(lambda conn: summary(conn, person=person),
                       lambda result: self._show(generation, result),
                       lambda exc: self._failed(generation, exc))

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self.status.setText(user_message(exc))
            self.status.show()
            self.ctx.show_error(exc)

    def _show(self, generation: int, result: Summary) -> None:
        if generation != self._generation:
            return          # the person changed or an import finished since this was asked for
        self.summary = result
        if result.is_empty():
            self.status.setText("Nothing here yet. Import your health records with File › Import files… (Ctrl+O), "
                                "paste a SMART Health Card or link with Ctrl+Shift+V, or drop files on this window.")
            self.status.show()
            self.body.hide()
            return
        self.status.setText(f"From {QLocale().toString(result.records)} records. Select a line to read the record "
                            "in full.")
        self.setUpdatesEnabled(False)   # one layout and one paint for all seven sections, not one each
        try:
            for key, card in self.cards.items():
                card.show_items(getattr(result, key))
            self.body.show()
        finally:
            self.setUpdatesEnabled(True)

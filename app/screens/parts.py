"""Pieces the screens build alike: a section's heading, and a read-only table of one-line rows."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView


def heading(text: str = "", scale: float = 1.25) -> QLabel:
    """A bold heading ``scale`` times the body text, wrapping rather than widening its pane."""
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(True)
    label.setFont(font)
    label.setWordWrap(True)
    return label


def compact_rows(table: QTableView, pad: int = 10) -> None:
    """One line of text per row, all rows the same height: readable, and a long table scrolls without measuring
    every row."""
    rows = table.verticalHeader()
    rows.hide()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(table.fontMetrics().height() + pad)


def read_only_rows(table: QTableView, pad: int = 10) -> None:
    """Rows chosen whole and never edited; Tab leaves the table (the arrows move within it); compact rows."""
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setTabKeyNavigation(False)
    compact_rows(table, pad)

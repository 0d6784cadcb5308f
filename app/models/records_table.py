"""The table of one category's records: read-only, newest first (or oldest, by the Date header), one page at a
time. Rows hold ids and a few words; the record itself is read only when its detail is opened."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from app.models.paged import PagedTableModel
from app.models.rows import DATE, ID, KIND, RESULT, RTYPE, STATUS, TITLE, TRUST, Plain, Row, labelled
from vault.records import query
from vault.records.describe import local_date

Index = QModelIndex | QPersistentModelIndex
PAGE = 100
# roles as plain ints, most asked first: a view asks for each of its roles at every paint, mostly ones left unanswered
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ANSWERED = frozenset({_DISPLAY, _TOOLTIP, int(Qt.ItemDataRole.UserRole)})


class RecordTableModel(PagedTableModel):
    COLUMNS = ("Date", "What", "Result", "Status", "Source trust")
    DATE, WHAT, RESULT, STATUS, TRUST = range(5)
    REF_ROLE = Qt.ItemDataRole.UserRole            # (rtype, id)

    def __init__(self, ctx: Any, page_size: int = PAGE, parent: Any = None) -> None:
        super().__init__(ctx, page_size, parent)
        self.kinds: list[query.Kind] | None = None
        self.ascending = False
        self._rows: list[Plain] = []          # plain tuples: see app.models.rows

    # --- what to show ---------------------------------------------------------------------------------------------
    def set_kinds(self, kinds: list[query.Kind] | None) -> None:
        """Show the records of these kinds (None or empty: none) from the first page."""
        self.kinds = list(kinds) if kinds else None
        self.reload()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Only by date: the index keeps that order cheap at any depth; other columns keep the date order."""
        ascending = order == Qt.SortOrder.AscendingOrder
        if column == self.DATE and ascending != self.ascending:
            self.ascending = ascending
            self.reload()

    def row_at(self, row: int) -> Row:
        return Row(*self._rows[row])

    def rows(self) -> list[Row]:
        return [Row(*row) for row in self._rows]

    # --- paging -------------------------------------------------------------------------------------------------
    def _nothing_to_show(self) -> bool:
        return self.kinds is None

    def _clear(self) -> None:
        self._rows = []

    def _row_total(self) -> int:
        return len(self._rows)

    def _page_job(self, cursor: query.Cursor | None) -> Any:
        kinds, ascending, limit, person = self.kinds, self.ascending, self.page_size, self.ctx.person

        def work(conn: Any) -> tuple[list[Plain], query.Cursor | None]:
            page = query.records_page(conn, kinds, after=cursor, ascending=ascending, limit=limit, person=person)
            return labelled(conn, page.rows), page.next_cursor
        return work

    def _append(self, rows: list[Plain]) -> None:
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()

    # --- the model ----------------------------------------------------------------------------------------------
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and section == self.DATE:
                return "Sort by date: newest or oldest first"
            if role == Qt.ItemDataRole.ToolTipRole and section == self.TRUST:
                return "Whether the record's signature was checked when it was imported"
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if role not in _ANSWERED or not self._valid(index):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == _DISPLAY:
            if col == self.DATE:
                return local_date(row[DATE]) or "No date"
            return ("", row[TITLE], row[RESULT], row[STATUS], row[TRUST])[col]
        if role == _TOOLTIP:
            return f"{row[KIND]}: {row[TITLE]}" if col == self.WHAT else None
        return (row[RTYPE], row[ID])

"""The table of one category's records: read-only, newest first (or oldest, by the Date header), one page at a
time. Rows hold ids and a few words; the record itself is read only when its detail is opened."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.errors import user_message
from app.models.rows import Row, labelled
from vault.records import query
from vault.records.describe import local_date

Index = QModelIndex | QPersistentModelIndex
PAGE = 100


class RecordTableModel(QAbstractTableModel):
    COLUMNS = ("Date", "What", "Result", "Status", "Source trust")
    DATE, WHAT, RESULT, STATUS, TRUST = range(5)
    REF_ROLE = Qt.ItemDataRole.UserRole            # (rtype, id)
    page_loaded = Signal()                         # after each page, and when the end is reached
    failed = Signal(str)

    def __init__(self, ctx: Any, page_size: int = PAGE, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.page_size = max(1, int(page_size))
        self.kinds: list[query.Kind] | None = None
        self.ascending = False
        self._rows: list[Row] = []
        self._cursor: query.Cursor | None = None
        self._at_end = True
        self._fetching = False
        self._generation = 0

    # --- what to show ---------------------------------------------------------------------------------------------
    def set_kinds(self, kinds: list[query.Kind] | None) -> None:
        """Show the records of these kinds (None or empty: none) from the first page."""
        self.kinds = list(kinds) if kinds else None
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        self._cursor = None
        self._fetching = False
        self._at_end = self.kinds is None
        self.endResetModel()
        if self._at_end:
            self.page_loaded.emit()
        else:
            self.fetchMore(QModelIndex())

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Only by date: the index keeps that order cheap at any depth; other columns keep the date order."""
        ascending = order == Qt.SortOrder.AscendingOrder
        if column == self.DATE and ascending != self.ascending:
            self.ascending = ascending
            self.reload()

    @property
    def loading(self) -> bool:
        return self._fetching

    @property
    def at_end(self) -> bool:
        return self._at_end

    def row_at(self, row: int) -> Row:
        return self._rows[row]

    def rows(self) -> list[Row]:
        return list(self._rows)

    # --- lazy loading -------------------------------------------------------------------------------------------
    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:
        return not parent.isValid() and not self._at_end and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        generation, kinds, cursor = self._generation, self.kinds, self._cursor
        ascending, limit, person = self.ascending, self.page_size, self.ctx.person

        def work(conn: Any) -> tuple[list[Row], query.Cursor | None]:
            page = query.records_page(conn, kinds, after=cursor, ascending=ascending, limit=limit, person=person)
            return labelled(conn, page.rows), page.next_cursor
        self.ctx.query(work, lambda result: self._arrived(generation, result),
                       lambda exc: self._failed(generation, exc))

    def _arrived(self, generation: int, result: tuple[list[Row], query.Cursor | None]) -> None:
        if generation != self._generation:
            return              # an answer for a category or order no longer shown
        rows, cursor = result
        self._fetching = False
        self._cursor = cursor
        self._at_end = cursor is None
        if rows:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()
        self.page_loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        self._at_end = True     # stop asking; reload() tries again
        self.failed.emit(user_message(exc))
        self.page_loaded.emit()

    # --- the model ----------------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and section == self.DATE:
                return "Sort by date: newest or oldest first"
            if role == Qt.ItemDataRole.ToolTipRole and section == self.TRUST:
                return "Whether the record's signature was checked when it was imported"
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.kind}: {row.title}" if col == self.WHAT else None
        if role == self.REF_ROLE:
            return (row.rtype, row.id)
        return None


def cell_text(row: Row, column: int) -> str:
    if column == RecordTableModel.DATE:
        return local_date(row.date) or "No date"
    return ("", row.title, row.result, row.status, row.trust)[column]

"""The part every paged table of records shares: pages read on the task runner one at a time, an answer for an
older filter dropped, rows only appended, read-only cells, and a failed read said once in plain words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Signal

from app.errors import expected, user_message
from vault.records import query

Index = QModelIndex | QPersistentModelIndex


class PagedTableModel(QAbstractTableModel):
    """Subclasses say what a page is (``_page_job``), how it joins the rows (``_append``), how many rows there
    are (``_row_total``) and forget them (``_clear``); this class does the rest."""
    COLUMNS: tuple[str, ...] = ()
    page_loaded = Signal()                         # after each page, and when the end is reached
    failed = Signal(str)

    def __init__(self, ctx: Any, page_size: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.page_size = max(1, int(page_size))
        self.error: str | None = None              # what the last failed read said, until the next reload
        self._cursor: query.Cursor | None = None
        self._at_end = True
        self._fetching = False
        self._generation = 0

    # --- for subclasses -----------------------------------------------------------------------------------------
    def _nothing_to_show(self) -> bool:
        return False

    def _clear(self) -> None:
        raise NotImplementedError

    def _row_total(self) -> int:
        raise NotImplementedError

    def _page_job(self, cursor: query.Cursor | None) -> Callable[[Any], tuple[Any, query.Cursor | None]]:
        """A function of a read connection, run on a worker: (the page, the cursor after it)."""
        raise NotImplementedError

    def _append(self, page: Any) -> None:
        """Put a page's rows in, between beginInsertRows and endInsertRows (on the GUI thread)."""
        raise NotImplementedError

    # --- paging -------------------------------------------------------------------------------------------------
    def reload(self) -> None:
        self._generation += 1
        self.error = None
        self.beginResetModel()
        self._clear()
        self._cursor = None
        self._fetching = False
        self._at_end = self._nothing_to_show()
        self.endResetModel()
        if self._at_end:
            self.page_loaded.emit()
        else:
            self.fetchMore(QModelIndex())

    @property
    def loading(self) -> bool:
        return self._fetching

    @property
    def at_end(self) -> bool:
        return self._at_end

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:
        return not parent.isValid() and not self._at_end and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        generation = self._generation
        self.ctx.query(self._page_job(self._cursor), lambda result: self._arrived(generation, result),
                       lambda exc: self._failed(generation, exc))

    def _arrived(self, generation: int, result: tuple[Any, query.Cursor | None]) -> None:
        if generation != self._generation:
            return              # an answer for a filter or order no longer shown
        page, self._cursor = result
        self._at_end = self._cursor is None
        self._append(page)
        # only now: a view asking for more from inside the insert signals would otherwise start the next page
        # before this one is placed
        self._fetching = False
        self.page_loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        self._at_end = True     # stop asking; reload() tries again
        self.error = user_message(exc)
        if not expected(exc):
            self.ctx.show_error(exc)            # a bug: the presenter keeps a crash report
        self.failed.emit(self.error)
        self.page_loaded.emit()

    # --- the model ----------------------------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        # Qt's own asks rowCount() and columnCount() first: two calls into Python, each taking the interpreter lock,
        # for every cell a view paints instead of this one
        if parent.isValid() or not (0 <= row < self._row_total() and 0 <= column < len(self.COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column)

    def multiData(self, index: Index, roles: Any) -> None:
        """All the roles a view's delegate asks for one cell (seven or so) in one call into Python instead of one
        each. Every role is answered or cleared: the delegate reuses its list from cell to cell."""
        for wanted in roles:
            value = self.data(index, wanted.role())
            if value is None:
                wanted.clearData()
            else:
                wanted.setData(value)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._row_total()

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    # flags() is not overridden: QAbstractTableModel's own answers enabled, selectable and without children (never
    # editable) in C++, where a Python override would take the interpreter lock for every cell at every paint

    def _valid(self, index: Index) -> bool:
        # a table's indexes have no parent; an invalid index has row -1
        return 0 <= index.row() < self._row_total() and index.isValid()

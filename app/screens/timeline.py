"""Timeline: everything in the person's records by date, newest first, each visit a heading with the records made
in it beneath. A category and a date range narrow it down. The table loads a page at a time as it scrolls, so it
opens at once on any vault; Enter or a double click opens a record (on a heading: the visit)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDate, QLocale, QModelIndex, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDateEdit, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPushButton, QTableView, QVBoxLayout, QWidget)

from app.errors import expected, user_message
from app.models.categories import category_counts
from app.models.timeline_table import PAGE, TimelineModel
from app.screens import ScreenContext
from app.screens.records import compact_rows
from vault.records import describe, query

EVERYTHING = ""                 # the category key of "everything but insurance"
_DEBOUNCE_MS = 300


def _qdate(value: str | None) -> QDate | None:
    date = QDate.fromString((value or "")[:10], "yyyy-MM-dd")
    return date if date.isValid() else None


class TimelineScreen(QWidget):
    open_record = Signal(str, str)

    def __init__(self, ctx: ScreenContext, page_size: int = PAGE) -> None:
        super().__init__()
        self.ctx = ctx
        self.model = TimelineModel(ctx, page_size, self)
        self._categories: dict[str, describe.Category] = {c.key: c for c in (*describe.CATEGORIES, describe.INSURANCE)}
        self._bounds: tuple[QDate | None, QDate | None] = (None, None)
        self._generation = 0
        self._applied: tuple[Any, ...] | None = None

        self.category = QComboBox()
        self.category.setAccessibleName("Show records of this category")
        self.category.view().setAccessibleName("Categories to choose from")
        self._fill_categories(None)
        self.category.currentIndexChanged.connect(lambda _i: self._apply())
        self.date_from = self._date_edit("From date", "Show records from this day on")
        self.date_to = self._date_edit("To date", "Show records up to and including this day")
        self.all_dates = QPushButton("All dates")
        self.all_dates.setAccessibleName("Show all dates")
        self.all_dates.setToolTip("Show records of every date again")
        self.all_dates.clicked.connect(self.reset_dates)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._apply)

        bar = QHBoxLayout()
        show = QLabel("&Show")
        show.setBuddy(self.category)
        since = QLabel("&From")
        since.setBuddy(self.date_from)
        until = QLabel("&to")
        until.setBuddy(self.date_to)
        for w in (show, self.category, since, self.date_from, until, self.date_to, self.all_dates):
            bar.addWidget(w)
        bar.addStretch(1)

        self.status = QLabel("Reading your records…")
        self.status.setWordWrap(True)
        self.table = QTableView()
        self.table.setObjectName("timeline")
        self.table.setAccessibleName("Timeline of your records")
        self.table.setAccessibleDescription("Newest first; each visit is a heading with its records beneath. "
                                            "Press Enter or double-click a record to open it.")
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        compact_rows(self.table)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(TimelineModel.WHAT, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(TimelineModel.DATE, 170)
        header.resizeSection(TimelineModel.RESULT, 150)
        header.resizeSection(TimelineModel.TYPE, 150)
        self.table.activated.connect(self._activated)
        self.model.page_loaded.connect(self._page_loaded)
        self.model.failed.connect(self.status.setText)
        self.status.setBuddy(self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addLayout(bar)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        self.refresh()

    def _date_edit(self, name: str, tip: str) -> QDateEdit:
        edit = QDateEdit()
        edit.setAccessibleName(name)
        edit.findChild(QLineEdit).setAccessibleName(name)
        edit.setToolTip(tip)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("d MMM yyyy")
        edit.setEnabled(False)                   # until the records' first and last dates are known
        edit.dateChanged.connect(lambda _d: self._debounce.start())
        return edit

    # --- public ---------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the date range and category counts again and reload the timeline."""
        self._generation += 1
        generation, person = self._generation, self.ctx.person

        self.ctx.query(lambda conn: query.date_bounds(conn, person=person),
                       lambda bounds: self._bounds_read(generation, bounds), self._failed)
        # counts can take a moment on a large vault: the timeline does not wait for them
        self.ctx.query(lambda conn: category_counts(conn, person), lambda r: self._counted(generation, r),
                       self._failed)
        self._apply(force=True)

    def set_category(self, key: str) -> None:
        """Show only one category (``EVERYTHING``: all but insurance)."""
        i = self.category.findData(key)
        if i < 0:
            raise KeyError(key)
        self.category.setCurrentIndex(i)
        self._apply()

    def set_dates(self, first: QDate | None, last: QDate | None) -> None:
        """Show records dated from ``first`` to ``last`` (inclusive); None leaves that end open."""
        low, high = self._bounds
        self.date_from.setDate(first or low or self.date_from.minimumDate())
        self.date_to.setDate(last or high or self.date_to.maximumDate())
        self._apply()

    def reset_dates(self) -> None:
        self.set_dates(None, None)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(user_message(exc))
        if not expected(exc):
            self.ctx.show_error(exc)            # a bug: the presenter keeps a crash report

    def current_filter(self) -> tuple[list[query.Kind] | None, str | None, str | None]:
        """(kinds, date_from, date_to) as the timeline queries them."""
        key = self.category.currentData() or EVERYTHING
        kinds = None if key == EVERYTHING else list(self._categories[key].kinds)
        low, high = self._bounds
        first = self.date_from.date() if self.date_from.isEnabled() else None
        last = self.date_to.date() if self.date_to.isEnabled() else None
        date_from = first.toString("yyyy-MM-dd") if first is not None and (low is None or first > low) else None
        date_to = last.toString("yyyy-MM-dd") if last is not None and (high is None or last < high) else None
        return kinds, date_from, date_to

    # --- filters --------------------------------------------------------------------------------------------------
    def _fill_categories(self, counts: dict[str, int] | None, cats: list[describe.Category] | None = None) -> None:
        current = self.category.currentData()
        self.category.blockSignals(True)
        self.category.clear()
        self.category.addItem("Everything (without insurance)", EVERYTHING)
        for cat in cats or [*describe.CATEGORIES, describe.INSURANCE]:
            n = None if counts is None else counts.get(cat.key, 0)
            if n == 0:
                continue        # a category with nothing in it would only show an empty timeline
            self.category.addItem(cat.label if n is None else f"{cat.label} ({QLocale().toString(n)})", cat.key)
        i = self.category.findData(current) if current is not None else 0
        self.category.setCurrentIndex(max(0, i))
        self.category.blockSignals(False)
        if current is not None and i < 0:
            self._apply()

    def _counted(self, generation: int, result: tuple[list[describe.Category], dict[str, int]]) -> None:
        if generation != self._generation:
            return
        cats, counts = result
        self._categories = {c.key: c for c in cats}
        self._fill_categories(counts, cats)

    def _bounds_read(self, generation: int, bounds: tuple[str | None, str | None]) -> None:
        if generation != self._generation:
            return
        low, high = _qdate(bounds[0]), _qdate(bounds[1])
        old_low, old_high = self._bounds
        self._bounds = (low, high)
        for edit in (self.date_from, self.date_to):
            edit.blockSignals(True)
            edit.setEnabled(low is not None)
            if low is not None and high is not None:
                edit.setDateRange(low, high)
        # a range the user left open stays open as the records grow; one they narrowed stays as they set it
        if low is not None and high is not None:
            if old_low is None or self.date_from.date() <= old_low:
                self.date_from.setDate(low)
            if old_high is None or self.date_to.date() >= old_high:
                self.date_to.setDate(high)
        for edit in (self.date_from, self.date_to):
            edit.blockSignals(False)

    def _apply(self, force: bool = False) -> None:
        self._debounce.stop()
        wanted = self.current_filter()
        if not force and self._applied == wanted:
            return
        self._applied = wanted
        self.status.setText("Reading your records…")
        self.model.set_filter(*wanted)

    # --- the table ----------------------------------------------------------------------------------------------
    def _page_loaded(self) -> None:
        if self.model.loading or self.model.error:
            return
        if self.model.rowCount() == 0 and self.model.at_end:
            kinds, date_from, date_to = self.current_filter()
            self.status.setText("No records match these choices." if kinds is not None or date_from or date_to
                                else "There are no records here yet. Import your files to see them.")
        else:
            self.status.setText("Newest first; each visit is a heading with its records beneath. "
                                "Press Enter or double-click a record to open it.")

    def _activated(self, index: QModelIndex) -> None:
        ref = self.model.data(index, TimelineModel.REF_ROLE)
        if ref is not None:
            self.open_record.emit(*ref)

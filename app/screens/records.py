"""Records: the person's records by category, in a patient's words (Conditions, Medications, ... Documents),
with insurance claims kept apart at the end of the list. Each category is a read-only table that loads a page at a
time as it scrolls, newest first (the Date header turns the order round). The selected record reads like a letter
in the pane beside the table; Enter or a double click opens it (``open_record``). Where the vault can share, several
records can be picked (Ctrl+click, Shift+arrows) and shared together ("Share selected…", also in the context menu).
"""

from __future__ import annotations

from PySide6.QtCore import QLocale, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QListView, QSplitter, QTableView, QVBoxLayout,
                               QWidget)

from app.models.categories import CategoryListModel
from app.models.records_table import PAGE, RecordTableModel
from app.screens import ScreenContext
from app.screens.detail import RecordDetail
from app.screens.parts import compact_rows, heading, read_only_rows  # noqa: F401 (compact_rows: for the timeline)
from app.screens.share_picked import add_share_selected
from vault.records.describe import INSURANCE, OTHER_KEY

# categories whose records are measurements: only these need the Result column
_MEASURED = ("labs", "vitals", OTHER_KEY)
_NOUNS = {"conditions": "condition", "medications": "medication record", "allergies": "allergy",
          "immunizations": "immunization", "procedures": "procedure", "labs": "lab result", "vitals": "vital sign",
          "encounters": "encounter", "careplans": "care plan record", "documents": "document",
          OTHER_KEY: "other record", INSURANCE.key: "insurance record"}


def _plural(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") and not noun.endswith("ay") else noun + "s"
    return f"{QLocale().toString(n)} {plural}"


class RecordsScreen(QWidget):
    open_record = Signal(str, str)

    def __init__(self, ctx: ScreenContext, page_size: int = PAGE, detail_pane: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.current_key: str | None = None
        self._sized_for: str | None = None
        self.categories_model = CategoryListModel(ctx, self)
        self.model = RecordTableModel(ctx, page_size, self)

        self.categories = QListView()
        self.categories.setObjectName("record-categories")
        self.categories.setAccessibleName("Record categories")
        self.categories.setAccessibleDescription("Choose a category to list its records.")
        self.categories.setModel(self.categories_model)
        self.categories.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.categories.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.categories.setSpacing(3)
        self.categories.selectionModel().currentChanged.connect(self._category_chosen)

        self.heading = heading()
        self.status = QLabel("Counting your records…")
        self.status.setWordWrap(True)
        self.table = QTableView()
        self.table.setObjectName("records-table")
        self.table.setAccessibleName("Records")
        self.table.setAccessibleDescription("Press Enter or double-click a record to open it.")
        self.table.setModel(self.model)
        read_only_rows(self.table)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(RecordTableModel.DATE, Qt.SortOrder.DescendingOrder)
        header.sortIndicatorChanged.connect(self._sort_changed)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(RecordTableModel.WHAT, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.table.activated.connect(self._activated)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.model.page_loaded.connect(self._page_loaded)
        self.model.failed.connect(self.status.setText)
        self.categories_model.counted.connect(self._counted)
        self.categories_model.failed.connect(self.status.setText)
        self.status.setBuddy(self.table)

        middle = QWidget()
        column = QVBoxLayout(middle)
        column.setContentsMargins(8, 8, 8, 8)
        column.addWidget(self.heading)
        column.addWidget(self.status)
        column.addWidget(self.table, 1)
        self.sharing = add_share_selected(ctx, self.table, self.picked, self)
        if self.sharing is not None:
            column.addLayout(self.sharing.row())

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.categories)
        self.splitter.addWidget(middle)
        self.detail: RecordDetail | None = None
        if detail_pane:
            self.detail = RecordDetail(ctx)
            self.detail.open_record.connect(self.open_record)
            self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([180, 680, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self.refresh()

    # --- public ---------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Count the categories again and reload the table shown (after an import, or for another person)."""
        self.categories_model.refresh()
        if self.current_key is not None:
            self._show_category(self.current_key)

    def show_category(self, key: str) -> None:
        row = self.categories_model.row_of(key)
        if row < 0:
            raise KeyError(key)
        self.categories.setCurrentIndex(self.categories_model.index(row))

    def picked(self) -> list[str]:
        """The "Type/id" of the selected records, in the table's order."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.model.row_at(row).ref for row in rows]

    # --- categories -----------------------------------------------------------------------------------------------
    def _counted(self) -> None:
        cm = self.categories_model
        if self.current_key is None or cm.row_of(self.current_key) < 0:
            first = next((r for r in range(cm.rowCount()) if cm.count(cm.category(r).key)), 0)
            if cm.rowCount():
                self.show_category(cm.category(first).key)
        elif self.current_key is not None:
            current = cm.index(cm.row_of(self.current_key))
            if self.categories.currentIndex() != current:
                self.categories.setCurrentIndex(current)
            else:
                self._show_category(self.current_key)   # 'Other records' may now hold other kinds
        if cm.total == 0:
            self.status.setText("There are no records here yet. Import your files to see them.")

    def _category_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._show_category(self.categories_model.category(current.row()).key)

    def _show_category(self, key: str) -> None:
        cm = self.categories_model
        row = cm.row_of(key)
        if row < 0:
            return
        cat = cm.category(row)
        self.current_key = key
        self.heading.setText(cat.label)
        self.status.setText("Loading…")
        self.table.setColumnHidden(RecordTableModel.RESULT, key not in _MEASURED)
        if self.detail is not None:
            self.detail.clear()
        self.model.set_kinds(list(cat.kinds))

    # --- the table ------------------------------------------------------------------------------------------------
    def _page_loaded(self) -> None:
        if self.current_key is None or self.model.loading or self.model.error:
            return
        n = self.categories_model.count(self.current_key)
        label = self.categories_model.category(self.categories_model.row_of(self.current_key)).label
        if self.model.rowCount() == 0 and self.model.at_end:
            self.status.setText(f"No {label.lower()} in your records.")
        elif n is not None:
            order = "oldest first" if self.model.ascending else "newest first"
            note = (" Claims and statements from insurers; they repeat what your health records say."
                    if self.current_key == INSURANCE.key else "")
            self.status.setText(f"{_plural(n, _NOUNS.get(self.current_key, 'record'))}, {order}. "
                                f"Press Enter or double-click one to open it.{note}")
        else:
            self.status.setText("Press Enter or double-click a record to open it.")
        if self._sized_for != self.current_key and self.model.rowCount():
            self._sized_for = self.current_key
            for col in (RecordTableModel.DATE, RecordTableModel.RESULT, RecordTableModel.STATUS,
                        RecordTableModel.TRUST):
                self.table.resizeColumnToContents(col)

    def _sort_changed(self, section: int, order: Qt.SortOrder) -> None:
        header = self.table.horizontalHeader()
        if section != RecordTableModel.DATE:
            # only the date order is kept by the index; put the indicator back where the order really is
            header.blockSignals(True)
            header.setSortIndicator(RecordTableModel.DATE, Qt.SortOrder.AscendingOrder if self.model.ascending
                                    else Qt.SortOrder.DescendingOrder)
            header.blockSignals(False)
            return
        if self.detail is not None:
            self.detail.clear()
        self.status.setText("Loading…")
        self.model.sort(section, order)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        # the record under the cursor, not the whole selection: several may be picked to share
        if self.detail is not None and current.isValid():
            self.detail.show_record(*self.model.row_at(current.row()).ref.split("/", 1))

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid():
            row = self.model.row_at(index.row())
            self.open_record.emit(row.rtype, row.id)

"""The list of record categories in a patient's words, each with how many records it holds; insurance last."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QLocale, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.errors import expected, user_message
from vault.records import describe, query

Index = QModelIndex | QPersistentModelIndex


def category_counts(conn: Any, person: int | None) -> tuple[list[describe.Category], dict[str, int]]:
    """The categories to list (named ones, 'Other records' when there are any, insurance) and their counts."""
    groups = query.kind_counts(conn, person=person)
    cats = [*describe.CATEGORIES, describe.other_category(groups), describe.INSURANCE]
    counts = {c.key: sum(n for (t, k), n in groups.items() if c.matches(t, k)) for c in cats}
    return [c for c in cats if c.key != describe.OTHER_KEY or counts[c.key]], counts


class CategoryListModel(QAbstractListModel):
    KEY_ROLE = Qt.ItemDataRole.UserRole
    COUNT_ROLE = Qt.ItemDataRole.UserRole + 1
    counted = Signal()
    failed = Signal(str)

    def __init__(self, ctx: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._cats: list[describe.Category] = [*describe.CATEGORIES, describe.INSURANCE]
        self._counts: dict[str, int] | None = None
        self._generation = 0

    def refresh(self) -> None:
        """Count again (after an import, or for another person)."""
        self._generation += 1
        generation, person = self._generation, self.ctx.person
        self.ctx.query(lambda conn: category_counts(conn, person), lambda r: self._counted(generation, r),
                       lambda exc: self._failed(generation, exc))

    def _counted(self, generation: int, result: tuple[list[describe.Category], dict[str, int]]) -> None:
        if generation != self._generation:
            return
        cats, counts = result
        if [c.key for c in cats] != [c.key for c in self._cats]:
            self.beginResetModel()
            self._cats, self._counts = cats, counts
            self.endResetModel()
        else:
            # same rows: the category's kinds ("Other records") may differ, so keep the fresh ones
            self._cats, self._counts = cats, counts
            if cats:
                self.dataChanged.emit(self.index(0), self.index(len(cats) - 1))
        self.counted.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            if not expected(exc):
                self.ctx.show_error(exc)        # a bug: the presenter keeps a crash report
            self.failed.emit(user_message(exc))

    def category(self, row: int) -> describe.Category:
        return self._cats[row]

    def row_of(self, key: str) -> int:
        return next((i for i, c in enumerate(self._cats) if c.key == key), -1)

    def count(self, key: str) -> int | None:
        return None if self._counts is None else self._counts.get(key, 0)

    @property
    def total(self) -> int | None:
        return None if self._counts is None else sum(self._counts.values())

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._cats)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or not 0 <= index.row() < len(self._cats):
            return None
        cat = self._cats[index.row()]
        n = self.count(cat.key)
        if role == Qt.ItemDataRole.DisplayRole:
            return cat.label if n is None else f"{cat.label} ({QLocale().toString(n)})"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if n is None:
                return cat.label
            return f"{cat.label}, {QLocale().toString(n)} record{'s' if n != 1 else ''}"
        if role == Qt.ItemDataRole.ToolTipRole and cat.key == describe.INSURANCE.key:
            return "Claims and statements from insurers, kept apart from your health records"
        if role == self.KEY_ROLE:
            return cat.key
        if role == self.COUNT_ROLE:
            return n
        return None

"""Everything in a person's records by date, newest first, grouped under the visit (encounter) each record was
made in: a tree whose top rows are visits (with their records under them) and records made outside any visit.

Pages of the timeline arrive from the task runner as the view scrolls; a page's records join the last visit when
they belong to it, else start new top rows, so rows are only ever appended and a vault of any size costs one page
at a time. A visit whose records are far apart in time (rare) shows up again where its later records are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont

from app.errors import user_message
from app.models.rows import Row, labelled
from vault.records import query
from vault.records.describe import DIRECTORY_TYPES, INSURANCE, local_date

Index = QModelIndex | QPersistentModelIndex
PAGE = 100
# "Everything" leaves out people and places (shown inside records) and insurance paperwork
EVERYTHING_EXCLUDES = tuple(sorted({*query.TIMELINE_EXCLUDED, *DIRECTORY_TYPES, *(k.rtype for k in INSURANCE.kinds)}))


@dataclass(slots=True)
class _Top:
    record: Row | None = None               # a record made outside any visit
    ref: str | None = None                  # else the visit, "Encounter/<id>"
    heading: Row | None = None              # the visit's own row, when the vault has it
    visit_listed: bool = False              # the visit itself is one of the records the filter selects
    children: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Page:
    rows: list[Row]
    visits: dict[int, str]                  # rid -> the visit it belongs to
    headings: dict[str, Row]                # visit -> its row
    cursor: query.Cursor | None


def load_page(conn: Any, kinds: list[query.Kind] | None, cursor: query.Cursor | None, date_from: str | None,
              date_to: str | None, limit: int, person: int | None) -> _Page:
    page = query.records_page(conn, kinds, after=cursor, date_from=date_from, date_to=date_to, dated_only=True,
                              exclude_types=EVERYTHING_EXCLUDES, limit=limit, person=person)
    visits = query.encounter_refs(conn, [r.rid for r in page.rows])
    found = query.rows_by_reference(conn, sorted(set(visits.values())))
    headings = dict(zip(found.keys(), labelled(conn, list(found.values()))))
    return _Page(labelled(conn, page.rows), visits, headings, page.next_cursor)


class TimelineModel(QAbstractItemModel):
    COLUMNS = ("Date", "What", "Result", "Type")
    DATE, WHAT, RESULT, TYPE = range(4)
    REF_ROLE = Qt.ItemDataRole.UserRole            # (rtype, id) of the record (or visit) a row stands for
    page_loaded = Signal()
    failed = Signal(str)

    def __init__(self, ctx: Any, page_size: int = PAGE, parent: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.page_size = max(1, int(page_size))
        self.kinds: list[query.Kind] | None = None
        self.date_from: str | None = None
        self.date_to: str | None = None
        self._tops: list[_Top] = []
        self._cursor: query.Cursor | None = None
        self._at_end = False
        self._fetching = False
        self._generation = 0
        self._bold = QFont()
        self._bold.setBold(True)

    # --- what to show ---------------------------------------------------------------------------------------------
    def set_filter(self, kinds: list[query.Kind] | None = None, date_from: str | None = None,
                   date_to: str | None = None) -> None:
        """Records of ``kinds`` (None: everything but insurance), dated within ``date_from``..``date_to``
        (ISO dates, either may be None; the end day is included)."""
        self.kinds = list(kinds) if kinds is not None else None
        self.date_from, self.date_to = date_from or None, date_to or None
        self.reload()

    def reload(self) -> None:
        self._generation += 1
        self.beginResetModel()
        self._tops = []
        self._cursor = None
        self._at_end = self.kinds is not None and not self.kinds
        self._fetching = False
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

    def records(self) -> list[Row]:
        """Every record loaded so far, in timeline order (visit headings count when the filter selects visits)."""
        out: list[Row] = []
        for top in self._tops:
            if top.record is not None:
                out.append(top.record)
            else:
                out.extend(top.children)
                if top.visit_listed and top.heading is not None:
                    out.append(top.heading)
        return out

    def is_heading(self, index: Index) -> bool:
        return index.isValid() and index.internalId() == 0 and self._tops[index.row()].record is None

    # --- lazy loading -------------------------------------------------------------------------------------------
    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:
        return not parent.isValid() and not self._at_end and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:
        if not self.canFetchMore(parent):
            return
        self._fetching = True
        generation = self._generation
        args = (self.kinds, self._cursor, self.date_from, self.date_to, self.page_size, self.ctx.person)
        self.ctx.query(lambda conn: load_page(conn, *args), lambda page: self._arrived(generation, page),
                       lambda exc: self._failed(generation, exc))

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        self._at_end = True
        self.failed.emit(user_message(exc))
        self.page_loaded.emit()

    def _arrived(self, generation: int, page: _Page) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        self._cursor = page.cursor
        self._at_end = page.cursor is None
        last = self._tops[-1] if self._tops else None
        more_for_last: list[Row] = []
        last_heading_changed = False
        new: list[_Top] = []
        for row in page.rows:
            ref = page.visits.get(row.rid)
            if ref is None:
                new.append(_Top(record=row))
                continue
            is_visit = row.rtype == "Encounter"
            current = new[-1] if new else last
            if current is not None and current.ref == ref:
                if is_visit:
                    current.visit_listed, current.heading = True, row
                    last_heading_changed |= current is last
                elif current is last:
                    more_for_last.append(row)
                else:
                    current.children.append(row)
                continue
            top = _Top(ref=ref, heading=row if is_visit else page.headings.get(ref), visit_listed=is_visit)
            if not is_visit:
                top.children.append(row)
            new.append(top)
        if last is not None and more_for_last:
            parent = self.index(len(self._tops) - 1, 0)
            self.beginInsertRows(parent, len(last.children), len(last.children) + len(more_for_last) - 1)
            last.children.extend(more_for_last)
            self.endInsertRows()
        if last is not None and last_heading_changed:
            row = len(self._tops) - 1
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
        if new:
            self.beginInsertRows(QModelIndex(), len(self._tops), len(self._tops) + len(new) - 1)
            self._tops.extend(new)
            self.endInsertRows()
        self.page_loaded.emit()

    # --- the model ----------------------------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        return self.createIndex(row, column, parent.row() + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._tops)
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        return len(self._tops[parent.row()].children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(self.COLUMNS)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if not self.is_heading(index):
            flags |= Qt.ItemFlag.ItemNeverHasChildren
        return flags

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def _row(self, index: Index) -> tuple[Row | None, _Top, bool]:
        """(the row shown, its top-level entry, whether it is a visit heading)."""
        if index.internalId() == 0:
            top = self._tops[index.row()]
            return (top.record, top, False) if top.record is not None else (top.heading, top, True)
        top = self._tops[index.internalId() - 1]
        return top.children[index.row()], top, False

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not self.checkIndex(index):
            return None
        row, top, heading = self._row(index)
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if heading:
                if row is None:
                    return "A visit that is not in your records" if col == self.WHAT else ""
                return (local_date(row.date), row.title, "", row.kind)[col]
            if col == self.DATE:
                # under a visit, a record of the visit's own day needs no date of its own
                text = local_date(row.date)
                same = top.heading is not None and index.internalId() != 0 and text == local_date(top.heading.date)
                return "" if same else text
            return ("", row.title, row.result, row.kind)[col]
        if role == Qt.ItemDataRole.FontRole and heading:
            return self._bold
        if role == Qt.ItemDataRole.AccessibleTextRole and col == self.WHAT:
            if heading:
                n = len(top.children)
                what = row.title if row is not None else "a visit that is not in your records"
                when = f", {local_date(row.date)}" if row is not None else ""
                return f"Visit: {what}{when}, {n} record{'s' if n != 1 else ''}"
            return f"{row.kind}: {row.title}, {local_date(row.date)}" + (f", {row.result}" if row.result else "")
        if role == Qt.ItemDataRole.ToolTipRole and col == self.WHAT and row is not None:
            return f"{row.kind}: {row.title}"
        if role == self.REF_ROLE:
            return (row.rtype, row.id) if row is not None else None
        return None

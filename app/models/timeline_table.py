"""Everything in a person's records by date, newest first, grouped under the visit (encounter) each record was made
in: a flat table in which a visit is a heading row with its records in the rows beneath, and a record made outside
any visit stands alone.

A table rather than a tree because a long timeline must stay cheap: QTreeView lays out every expanded row again
after each insert, a table only what is in sight. Pages arrive from the task runner as the view scrolls; a page's
records join the last visit when they belong to it, else start new groups, so rows are only ever appended. A
visit whose records are far apart in time (rare) shows up again where its later records are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from app.models.paged import PagedTableModel
from app.models.rows import Row, labelled
from vault.records import query
from vault.records.describe import DIRECTORY_TYPES, INSURANCE, local_date

Index = QModelIndex | QPersistentModelIndex
PAGE = 100
# "Everything" leaves out people and places (shown inside records) and insurance paperwork
EVERYTHING_EXCLUDES = tuple(sorted({*query.TIMELINE_EXCLUDED, *DIRECTORY_TYPES, *(k.rtype for k in INSURANCE.kinds)}))


@dataclass(slots=True)
class _Visit:
    """A heading row: the visit the records beneath it were made in."""
    ref: str                                # "Encounter/<id>"
    heading: Row | None                     # the visit's own row, when the vault has it
    visit_listed: bool = False              # the visit itself is one of the records the filter selects
    count: int = 0                          # its records


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


class TimelineModel(PagedTableModel):
    COLUMNS = ("Date", "What", "Result", "Type")
    DATE, WHAT, RESULT, TYPE = range(4)
    REF_ROLE = Qt.ItemDataRole.UserRole            # (rtype, id) of the record (or visit) a row stands for

    def __init__(self, ctx: Any, page_size: int = PAGE, parent: Any = None) -> None:
        super().__init__(ctx, page_size, parent)
        self.kinds: list[query.Kind] | None = None
        self.date_from: str | None = None
        self.date_to: str | None = None
        self._lines: list[Any] = []             # _Visit headings and (Row, heading row) records
        self._open_heading = -1                 # the heading row records of the last visit join
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

    def groups(self) -> list[list[Row]]:
        """The records loaded so far, one list per group: a record alone, or a visit's records (the visit itself
        last, when the filter selects visits)."""
        out: list[list[Row]] = []
        visits: list[tuple[list[Row], _Visit]] = []
        for line in self._lines:
            if isinstance(line, _Visit):
                out.append([])
                visits.append((out[-1], line))
            elif line[1] < 0:
                out.append([line[0]])
            else:
                visits[-1][0].append(line[0])
        for group, visit in visits:
            if visit.visit_listed and visit.heading is not None:
                group.append(visit.heading)
        return out

    def records(self) -> list[Row]:
        return [row for group in self.groups() for row in group]

    def is_heading(self, index: Index) -> bool:
        return index.isValid() and isinstance(self._lines[index.row()], _Visit)

    def heading_of(self, row: int) -> int:
        """The heading row of the visit a record row belongs to (-1: none, or a heading itself)."""
        line = self._lines[row]
        return -1 if isinstance(line, _Visit) else line[1]

    # --- paging -------------------------------------------------------------------------------------------------
    def _nothing_to_show(self) -> bool:
        return self.kinds is not None and not self.kinds

    def _clear(self) -> None:
        self._lines = []
        self._open_heading = -1

    def _row_total(self) -> int:
        return len(self._lines)

    def _page_job(self, cursor: query.Cursor | None) -> Any:
        args = (self.kinds, cursor, self.date_from, self.date_to, self.page_size, self.ctx.person)

        def work(conn: Any) -> tuple[_Page, query.Cursor | None]:
            page = load_page(conn, *args)
            return page, page.cursor
        return work

    def _append(self, page: _Page) -> None:
        new: list[Any] = []
        changed: set[int] = set()               # existing heading rows whose words change (count, visit listed)
        base = len(self._lines)
        heading = self._open_heading
        for row in page.rows:
            ref = page.visits.get(row.rid)
            if ref is None:
                new.append((row, -1))
                heading = -1
                continue
            visit = (new[heading - base] if heading >= base else self._lines[heading]) if heading >= 0 else None
            if visit is None or visit.ref != ref:
                heading = base + len(new)
                visit = _Visit(ref, page.headings.get(ref))
                new.append(visit)
            elif heading < base:
                changed.add(heading)
            if row.rtype == "Encounter":
                visit.visit_listed, visit.heading = True, row
            else:
                visit.count += 1
                new.append((row, heading))
        self._open_heading = heading
        if new:
            self.beginInsertRows(QModelIndex(), base, base + len(new) - 1)
            self._lines.extend(new)
            self.endInsertRows()
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    # --- the model ----------------------------------------------------------------------------------------------
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        line = self._lines[index.row()]
        col = index.column()
        if isinstance(line, _Visit):
            return self._heading_data(line, col, role)
        row, under = line
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.DATE:
                # under a visit, a record of the visit's own day needs no date of its own
                text = local_date(row.date)
                head = self._lines[under].heading if under >= 0 else None
                return "" if head is not None and text == local_date(head.date) else text
            # indented under its visit, as a letter lists the items of one appointment
            return ("", ("    " if under >= 0 else "") + row.title, row.result, row.kind)[col]
        if role == Qt.ItemDataRole.AccessibleTextRole and col == self.WHAT:
            return f"{row.kind}: {row.title}, {local_date(row.date)}" + (f", {row.result}" if row.result else "")
        if role == Qt.ItemDataRole.ToolTipRole and col == self.WHAT:
            return f"{row.kind}: {row.title}"
        if role == self.REF_ROLE:
            return (row.rtype, row.id)
        return None

    def _heading_data(self, line: _Visit, col: int, role: int) -> Any:
        row = line.heading
        if role == Qt.ItemDataRole.DisplayRole:
            if row is None:
                return "A visit that is not in your records" if col == self.WHAT else ""
            count = self._count(line)
            return (local_date(row.date), f"{row.title}  ·  {count}" if count else row.title, "", row.kind)[col]
        if role == Qt.ItemDataRole.FontRole:
            return self._bold
        if role == Qt.ItemDataRole.AccessibleTextRole and col == self.WHAT:
            what = row.title if row is not None else "a visit that is not in your records"
            when = f", {local_date(row.date)}" if row is not None else ""
            return f"Visit: {what}{when}, {self._count(line)}"
        if role == self.REF_ROLE:
            return (row.rtype, row.id) if row is not None else None
        return None

    @staticmethod
    def _count(line: _Visit) -> str:
        return "" if not line.count else f"{line.count} record{'s' if line.count != 1 else ''}"

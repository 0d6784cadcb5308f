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
from app.models.rows import DATE, ID, KIND, RESULT, RID, RTYPE, TITLE, Plain, Row, labelled
from vault.records import query
from vault.records.describe import DIRECTORY_TYPES, INSURANCE, local_date

Index = QModelIndex | QPersistentModelIndex
PAGE = 100
# "Everything" leaves out people and places (shown inside records) and insurance paperwork
EVERYTHING_EXCLUDES = tuple(sorted({*query.TIMELINE_EXCLUDED, *DIRECTORY_TYPES, *(k.rtype for k in INSURANCE.kinds)}))

# roles as plain ints: data() is called for every cell and role at every paint, most often for roles it leaves
# unanswered, so those must cost one set lookup
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FONT = int(Qt.ItemDataRole.FontRole)
_ACCESSIBLE = int(Qt.ItemDataRole.AccessibleTextRole)
_REF = int(Qt.ItemDataRole.UserRole)
_ANSWERED = frozenset({_TOOLTIP, _FONT, _ACCESSIBLE, _REF})
_INDENT = "    "       # a record under its visit, as a letter lists the items of one appointment

# A visit (heading) as a plain tuple, replaced whenever it changes: (reference "Encounter/<id>", the visit's own
# row or None when the vault does not have it, whether the filter selects the visit itself, how many records)
_REF_AT, _HEAD_AT, _LISTED_AT, _COUNT_AT = range(4)


@dataclass(frozen=True, slots=True)
class _Page:
    rows: list[Plain]
    visits: dict[int, str]                  # rid -> the visit it belongs to
    headings: dict[str, Plain]              # visit -> its row
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
        # per table row: an int, the number of a visit whose heading it is, or (record row, its heading's row or -1)
        self._lines: list[Any] = []
        self._visits: list[tuple] = []
        self._shown: list[tuple[str, ...] | None] = []     # per row, its four cells' words once it has been shown
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
        visits: list[tuple[list[Row], int]] = []
        for line in self._lines:
            if type(line) is int:
                out.append([])
                visits.append((out[-1], line))
            elif line[1] < 0:
                out.append([Row(*line[0])])
            else:
                visits[-1][0].append(Row(*line[0]))
        for group, number in visits:
            visit = self._visits[number]
            if visit[_LISTED_AT] and visit[_HEAD_AT] is not None:
                group.append(Row(*visit[_HEAD_AT]))
        return out

    def records(self) -> list[Row]:
        return [row for group in self.groups() for row in group]

    def is_heading(self, index: Index) -> bool:
        return index.isValid() and type(self._lines[index.row()]) is int

    def heading_of(self, row: int) -> int:
        """The heading row of the visit a record row belongs to (-1: none, or a heading itself)."""
        line = self._lines[row]
        return -1 if type(line) is int else line[1]

    # --- paging -------------------------------------------------------------------------------------------------
    def _nothing_to_show(self) -> bool:
        return self.kinds is not None and not self.kinds

    def _clear(self) -> None:
        self._lines = []
        self._visits = []
        self._shown = []
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
        moved: set[int] = set()                 # existing heading rows whose visit row arrived (dates beneath)
        lines, visits = self._lines, self._visits
        base = len(lines)
        heading = self._open_heading
        for row in page.rows:
            ref = page.visits.get(row[RID])
            if ref is None:
                new.append((row, -1))
                heading = -1
                continue
            number = (new[heading - base] if heading >= base else lines[heading]) if heading >= 0 else -1
            if number < 0 or visits[number][_REF_AT] != ref:
                heading = base + len(new)
                number = len(visits)
                visits.append((ref, page.headings.get(ref), False, 0))
                new.append(number)
            elif heading < base:
                changed.add(heading)
            ref, head, listed, count = visits[number]
            if row[RTYPE] == "Encounter":
                if head != row and heading < base:
                    moved.add(heading)
                visits[number] = (ref, row, True, count)
            else:
                visits[number] = (ref, head, listed, count + 1)
                new.append((row, heading))
        self._open_heading = heading
        for row in changed:
            self._shown[row] = None
        for row in moved:                       # a record of the visit's day shows no date of its own
            self._shown[row:] = [None] * (len(self._shown) - row)
        if new:
            self.beginInsertRows(QModelIndex(), base, base + len(new) - 1)
            lines.extend(new)
            self._shown.extend([None] * len(new))
            self.endInsertRows()
        for row in sorted(changed | moved):
            self.dataChanged.emit(self.index(row, 0), self.index(row if row not in moved else base - 1,
                                                                 len(self.COLUMNS) - 1))

    # --- the model ----------------------------------------------------------------------------------------------
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        if role == _DISPLAY:
            row = index.row()
            if 0 <= row < len(self._shown) and index.isValid():
                words = self._shown[row] or self._words(row)
                return words[index.column()]
            return None
        if role not in _ANSWERED or not self._valid(index):
            return None
        line = self._lines[index.row()]
        if type(line) is int:
            return self._heading_data(self._visits[line], index.column(), role)
        if role == _FONT:
            return None
        row, _under = line
        col = index.column()
        if role == _ACCESSIBLE and col == self.WHAT:
            when = local_date(row[DATE])
            return f"{row[KIND]}: {row[TITLE]}, {when}" + (f", {row[RESULT]}" if row[RESULT] else "")
        if role == _TOOLTIP and col == self.WHAT:
            return f"{row[KIND]}: {row[TITLE]}"
        if role == _REF:
            return (row[RTYPE], row[ID])
        return None

    def multiData(self, index: Index, roles: Any) -> None:
        """What a view's delegate asks for each cell it paints (seven roles or so) in one call: every call from Qt
        into Python must take the interpreter lock, which a busy worker may be holding. Every role is answered or
        cleared: the delegate reuses its list from cell to cell."""
        row = index.row()
        valid = 0 <= row < len(self._shown) and index.isValid()
        for wanted in roles:
            role = wanted.role()
            if valid and role == _DISPLAY:
                wanted.setData((self._shown[row] or self._words(row))[index.column()])
                continue
            value = self.data(index, role) if valid and role in _ANSWERED else None
            if value is None:
                wanted.clearData()
            else:
                wanted.setData(value)

    def _words(self, n: int) -> tuple[str, ...]:
        """A row's four cells, worded once: the view asks again at every paint while the row is in sight."""
        line = self._lines[n]
        if type(line) is int:
            visit = self._visits[line]
            row = visit[_HEAD_AT]
            if row is None:
                words: tuple[str, ...] = ("", "A visit that is not in your records", "", "")
            else:
                count = self._count(visit)
                words = (local_date(row[DATE]), f"{row[TITLE]}  ·  {count}" if count else row[TITLE], "", row[KIND])
        else:
            row, under = line
            text = local_date(row[DATE])
            head = self._visits[self._lines[under]][_HEAD_AT] if under >= 0 else None
            # under a visit, a record of the visit's own day needs no date of its own
            if head is not None and text == local_date(head[DATE]):
                text = ""
            words = (text, (_INDENT if under >= 0 else "") + row[TITLE], row[RESULT], row[KIND])
        self._shown[n] = words
        return words

    def _heading_data(self, visit: tuple, col: int, role: int) -> Any:
        if role == _FONT:
            return self._bold
        row = visit[_HEAD_AT]
        if role == _ACCESSIBLE and col == self.WHAT:
            what = row[TITLE] if row is not None else "a visit that is not in your records"
            when = f", {local_date(row[DATE])}" if row is not None else ""
            return f"Visit: {what}{when}, {self._count(visit)}"
        if role == _REF:
            return (row[RTYPE], row[ID]) if row is not None else None
        return None

    @staticmethod
    def _count(visit: tuple) -> str:
        count = visit[_COUNT_AT]
        return "" if not count else f"{count} record{'s' if count != 1 else ''}"

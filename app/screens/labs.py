"""Labs & vitals: every measurement in the vault, and for the one chosen, its readings over time as a chart and
as a table.

Finding "my last cholesterol and how it changed" takes typing a word: the search field has the focus when the
screen opens, and as you type the closest match is shown (the shortest name first, so "cholesterol" finds Total
Cholesterol before its fractions). The line above the chart says the latest value and the change since the
reading before it in words. Reads run on the task runner; a result that arrives after the user has moved on is
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt, QTimer, Signal)
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QLineEdit, QSplitter, QStackedWidget,
                               QTableView, QTreeView, QVBoxLayout, QWidget)

from app.charts import MeasurementChart, range_text
from app.errors import user_message
from app.screens import LatestQuery, ScreenContext
from app.screens.parts import heading, read_only_rows
from vault.records import query, ranges
from vault.records.describe import local_date, unit_text
from vault.records.ranges import Line, Measurement, Range, format_value

MEASUREMENT_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class ChartData:
    measurement: Measurement
    lines: list[Line]
    band: Range | None
    ids: dict[int, str]             # rid -> Observation id, to open a reading's record
    bands: list[Range | None]       # each line's own range


def load_measurements(conn: Any, person: int | None) -> list[Measurement]:
    return ranges.measurements(conn, person=person)


def load_chart(conn: Any, measurement: Measurement, person: int | None) -> ChartData:
    lines = ranges.lines(conn, measurement, person=person)
    readings = [r for line in lines for r in line.readings]
    rows = query.rows_by_rid(conn, sorted({r.rid for r in readings}), person=person)
    # one band behind several lines only when it is every line's range: a systolic range drawn behind the
    # diastolic line would say something about it that no source said
    bands = [ranges.band(line.readings) for line in lines]
    band = bands[0] if bands and all(b == bands[0] for b in bands) else None
    return ChartData(measurement, lines, band, {row.rid: row.id for row in rows}, bands)


def value_text(values: tuple[tuple[float, str | None], ...]) -> str:
    """One reading as written: "164 mg/dL", or "152/92 mmHg" for a panel whose parts share a unit (and then
    one precision, the first part's)."""
    units = {u for _, u in values}
    if len(values) > 1 and len(units) == 1:
        unit = unit_text(units.pop())
        digits = ranges.decimals(max(abs(v) for v, _ in values))
        return "/".join(format_value(v, None, digits) for v, _ in values) + (f" {unit}" if unit else "")
    return ", ".join(format_value(v, unit_text(u) or None) for v, u in values)


def change_text(lines: list[Line]) -> str:
    """The latest value and how it moved since the reading before it, in words. Series not measured on the
    latest day (a systolic pressure taken alone) are left out of "latest" rather than paired with an older one."""
    pairs = [(line, line.readings) for line in lines if line.readings]
    if not pairs:
        return "No readings."
    when = max(rs[-1].date for _, rs in pairs)
    current = [(line, rs) for line, rs in pairs if rs[-1].date == when]
    latest = [rs[-1] for _, rs in current]
    if len(current) == len(pairs):
        shown = value_text(tuple((r.value, r.unit) for r in latest))
    else:
        shown = ", ".join(f"{line.name.lower()} {format_value(rs[-1].value, unit_text(rs[-1].unit) or None)}"
                          for line, rs in current)
    flags = [r.flag_label for r in latest if r.flag]
    text = f"Latest: {shown} on {local_date(when)}"
    text += f" ({', '.join(flags).lower()})." if flags else "."
    moves: list[tuple[str, str]] = []
    for line, rs in current:
        if len(rs) < 2:
            continue
        prev, last = rs[-2], rs[-1]
        # the change between the values as shown, so 154 -> 164 reads "up 10", not "up 9.75"
        digits = line.digits
        delta = round(last.value, digits) - round(prev.value, digits)
        unit = unit_text(last.unit)
        if abs(delta) < 10 ** -(digits + 1):
            move = "unchanged"
        else:
            move = f"{'up' if delta > 0 else 'down'} {format_value(abs(delta), unit or None, digits)}"
        moves.append((f"{line.name.lower()} {move}" if len(pairs) > 1 else move, prev.date))
    if moves:
        if len({d for _, d in moves}) == 1:
            said = f"{', '.join(m for m, _ in moves)} since {local_date(moves[0][1])}."
        else:
            said = ", ".join(f"{m} since {local_date(d)}" for m, d in moves) + "."
        text += " " + said[0].upper() + said[1:]
    count = max(len(rs) for _, rs in pairs)
    first = min(rs[0].date for _, rs in pairs)
    if count > 1:
        years = (first[:4], when[:4])
        span = f"in {years[0]}" if years[0] == years[1] else f"from {years[0]} to {years[1]}"
        text += f" {count} readings {span}."
    return text


class _MeasurementFilter(QSortFilterProxyModel):
    """Shows the measurements whose name or code holds every word typed; while searching, the closest names
    first. Group rows show only while one of their measurements does."""

    def __init__(self) -> None:
        super().__init__()
        self.setRecursiveFilteringEnabled(True)
        self._words: list[str] = []

    def set_text(self, text: str) -> None:
        self._words = text.casefold().split()
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:
        index = self.sourceModel().index(row, 0, parent)
        if index.data(MEASUREMENT_ROLE) is None:
            return False            # a group: shown through its children
        haystack = index.data(SEARCH_ROLE) or ""
        return all(w in haystack for w in self._words)

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        if self._words and left.parent().isValid():
            return self._rank(left) < self._rank(right)
        return left.row() < right.row()

    def _rank(self, index: QModelIndex | QPersistentModelIndex) -> tuple:
        name = (index.data(SEARCH_ROLE) or "").split("\n")[0]
        first = self._words[0]
        at_start = name.startswith(first)
        at_word = any(word.startswith(first) for word in name.split())
        return (not at_start, not at_word, len(name), index.row())


class ReadingsModel(QAbstractTableModel):
    """The chart's readings as rows, newest first: date, a column per series, reference range, flag."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[Line] = []
        self._rows: list[tuple[str, int, dict[int, Any]]] = []     # (date, rid, {line index: Reading})
        self._has_range = False
        self.ids: dict[int, str] = {}

    def set_data(self, data: ChartData | None) -> None:
        self.beginResetModel()
        self._lines = data.lines if data else []
        self.ids = data.ids if data else {}
        rows: dict[tuple[str, int], dict[int, Any]] = {}
        for i, line in enumerate(self._lines):
            for r in line.readings:
                rows.setdefault((r.date, r.rid), {})[i] = r
        self._rows = [(d, rid, by) for (d, rid), by in sorted(rows.items(), reverse=True)]
        self._has_range = any(r.range is not None for by in rows.values() for r in by.values())
        self.endResetModel()

    def _columns(self) -> list[str]:
        names = [line.name for line in self._lines] if len(self._lines) > 1 else ["Value"]
        return ["Date", *names, *(["Reference range"] if self._has_range else []), "Flag"]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() or not self._lines else len(self._columns())

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._columns()[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable   # never editable

    def reading(self, row: int, line: int = 0) -> Any:
        return self._rows[row][2].get(line)

    def row_key(self, row: int) -> tuple[str, int]:
        return self._rows[row][0], self._rows[row][1]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                                               Qt.ItemDataRole.FontRole):
            return None
        date, _rid, by = self._rows[index.row()]
        column = self._columns()[index.column()]
        n = len(self._lines)
        flagged = [r for r in by.values() if r.flag]
        if role == Qt.ItemDataRole.FontRole:
            if flagged and column == "Flag":
                font = QFont()
                font.setBold(True)
                return font
            return None
        if column == "Date":
            return local_date(date)
        if column == "Reference range":
            texts = {range_text(r.range) for r in by.values() if r.range is not None}
            return "; ".join(sorted(texts))
        if column == "Flag":
            if n > 1:
                return ", ".join(f"{self._lines[i].name}: {r.flag_label.lower()}" for i, r in sorted(by.items())
                                 if r.flag)
            return next(iter(by.values())).flag_label
        i = index.column() - 1
        r = by.get(i)
        return format_value(r.value, unit_text(r.unit) or None, self._lines[i].digits) if r is not None else ""


class LabsScreen(QWidget):
    open_record = Signal(str, str)
    title = "Labs & vitals"

    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setAccessibleName("Labs and vital signs")
        self._list_read = LatestQuery(ctx)
        self._chart_read = LatestQuery(ctx)
        self.current: Measurement | None = None
        self.chart_data: ChartData | None = None

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search, e.g. cholesterol")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search measurements")
        self.search.textChanged.connect(self._search_changed)
        self.search.returnPressed.connect(self._choose_first)

        self.source = QStandardItemModel(0, 3)
        self.source.setHorizontalHeaderLabels(["Measurement", "Latest", "Readings"])
        self.filter = _MeasurementFilter()
        self.filter.setSourceModel(self.source)
        self.filter.sort(0)
        self.tree = QTreeView()
        self.tree.setModel(self.filter)
        self.tree.setAccessibleName("Measurements")
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setRootIsDecorated(False)
        self.tree.setItemsExpandable(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)
        self.list_note = QLabel("Reading your measurements…")
        self.list_note.setWordWrap(True)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.tree, 1)
        left_layout.addWidget(self.list_note)

        self.heading = heading(scale=1.35)
        self.heading.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.change = QLabel()
        self.change.setWordWrap(True)
        self.range_note = QLabel()
        self.range_note.setWordWrap(True)
        self.chart = MeasurementChart()
        self.readings = ReadingsModel()
        self.table = QTableView()
        self.table.setModel(self.readings)
        self.table.setAccessibleName("Readings of the selected measurement, newest first")
        read_only_rows(self.table, pad=8)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # sized from the first rows, not every one of a thousand readings: the values all look alike
        self.table.horizontalHeader().setResizeContentsPrecision(60)
        self.table.activated.connect(self._open_reading)
        self.table.selectionModel().selectionChanged.connect(self._table_selection)

        self.detail = detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.heading)
        detail_layout.addWidget(self.change)
        detail_layout.addWidget(self.range_note)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.chart)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        detail_layout.addWidget(split, 1)
        self.empty = QLabel("Choose a measurement on the left, or type its name in the search field, to see how it "
                            "has changed over time.")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(detail)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.pages)
        body.setStretchFactor(0, 2)
        body.setStretchFactor(1, 5)
        body.setChildrenCollapsible(False)
        body.setSizes([400, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(body)
        self.setFocusProxy(self.search)
        self._pending_search = QTimer(self)
        self._pending_search.setSingleShot(True)
        self._pending_search.setInterval(150)   # one chart per pause in typing, not one per key
        self._pending_search.timeout.connect(self._show_best_match)

    # --- the list -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        person = self.ctx.person
        self._list_read.run(lambda conn: load_measurements(conn, person), self._show_measurements,
                            self._list_failed)

    def _list_failed(self, exc: BaseException) -> None:
        self.list_note.setText(user_message(exc))
        self.list_note.show()

    def _show_measurements(self, found: list[Measurement]) -> None:
        keep = self.current.key if self.current else None
        self.source.removeRows(0, self.source.rowCount())
        groups: dict[str, QStandardItem] = {}
        bold = QFont()
        bold.setBold(True)
        for m in found:
            group = groups.get(m.group)
            if group is None:
                group = QStandardItem(m.group)
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                group.setFont(bold)
                filler = [QStandardItem(""), QStandardItem("")]
                for item in filler:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.source.appendRow([group, *filler])
                groups[m.group] = group
            name = QStandardItem(m.name)
            name.setData(m, MEASUREMENT_ROLE)
            name.setToolTip(m.full_name or m.name)
            name.setData(f"{m.name.casefold()}\n{m.full_name.casefold()}\n{m.code.casefold()}", SEARCH_ROLE)
            latest = value_text(m.latest)
            flag = ranges.FLAG_LABELS.get(m.latest_flag or "", "")
            latest_item = QStandardItem(f"{latest} · {flag}" if flag else latest)
            latest_item.setToolTip(f"Latest reading, on {local_date(m.latest_date)}")
            count = QStandardItem(str(m.count))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for item in (name, latest_item, count):
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            group.appendRow([name, latest_item, count])
        self.tree.expandAll()
        for row in range(self.filter.rowCount()):
            self.tree.setFirstColumnSpanned(row, QModelIndex(), True)
        if found:
            self.list_note.hide()
        else:
            self.list_note.setText("No measurements yet. Lab results and vital signs appear here once records "
                                   "that hold them are imported.")
            self.list_note.show()
        index = self._index_of(keep) if keep else QModelIndex()
        if index.isValid():
            self.tree.setCurrentIndex(index)
            self._load(index.data(MEASUREMENT_ROLE))       # the readings may have changed with an import
        else:
            self._show_nothing()
            if self.search.text():
                self._choose_first()

    def _index_of(self, key: tuple[str, str | None]) -> QModelIndex:
        """The row of a measurement; a key without a system matches the code in any system."""
        code, system = key
        for g in range(self.filter.rowCount()):
            group = self.filter.index(g, 0)
            for r in range(self.filter.rowCount(group)):
                index = self.filter.index(r, 0, group)
                m = index.data(MEASUREMENT_ROLE)
                if m is not None and m.code == code and (system is None or m.system == system):
                    return index
        return QModelIndex()

    def _first_visible(self) -> QModelIndex:
        for g in range(self.filter.rowCount()):
            group = self.filter.index(g, 0)
            if self.filter.rowCount(group):
                return self.filter.index(0, 0, group)
        return QModelIndex()

    def _search_changed(self, text: str) -> None:
        self.filter.set_text(text)
        self.tree.expandAll()
        for row in range(self.filter.rowCount()):
            self.tree.setFirstColumnSpanned(row, QModelIndex(), True)
        if text.strip():
            self._pending_search.start()

    def _show_best_match(self) -> None:
        """While typing, show the best match; a measurement already shown stays while it still matches (the
        filter drops the current index of one that no longer does)."""
        if not self.tree.currentIndex().isValid():
            self._choose_first()

    def _choose_first(self) -> None:
        self._pending_search.stop()
        first = self._first_visible()
        if first.isValid():
            self.tree.setCurrentIndex(first)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        m = current.siblingAtColumn(0).data(MEASUREMENT_ROLE) if current.isValid() else None
        if m is not None and (self.current is None or m.key != self.current.key):
            self._load(m)

    # --- the chosen measurement ----------------------------------------------------------------------------------
    def select(self, code: str, system: str | None = None) -> bool:
        """Show a measurement by its code (from the Summary, say); False when the vault has none."""
        index = self._index_of((code, system))
        if index.isValid():
            self.tree.setCurrentIndex(index)
            self.tree.selectionModel().select(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                              | QItemSelectionModel.SelectionFlag.Rows)
        return index.isValid()

    def _load(self, m: Measurement) -> None:
        self.current = m
        person = self.ctx.person
        self.heading.setText(m.name)
        self.change.setText("Reading…")
        self.pages.setCurrentIndex(1)
        self._chart_read.run(lambda conn: load_chart(conn, m, person), self._show_chart,
                             lambda exc: self.change.setText(user_message(exc)))

    def _show_chart(self, data: ChartData) -> None:
        self.chart_data = data
        self.heading.setText(data.measurement.name)
        self.heading.setToolTip(data.measurement.full_name)
        self.change.setText(change_text(data.lines))
        flagged = sum(1 for line in data.lines for r in line.readings if r.flag)
        readings = f"{flagged} reading{'s' if flagged != 1 else ''}"
        if data.band is not None:
            self.range_note.setText(f"Reference range from your records: {range_text(data.band)}. "
                                    + (f"{readings} outside it, marked ▲." if flagged else
                                       "Every reading is within it."))
        elif any(data.bands):
            each = "; ".join(f"{line.name.lower()} {range_text(b)}" for line, b in zip(data.lines, data.bands) if b)
            self.range_note.setText(f"Reference ranges from your records: {each}. "
                                    + (f"{readings} outside their range, marked ▲." if flagged else
                                       "Every reading is within its range."))
        else:
            self.range_note.setText(f"{flagged} reading{'s' if flagged != 1 else ''} marked ▲ as outside the "
                                    "normal range by the lab." if flagged else
                                    "Your records give no reference range for this measurement.")
        self.chart.show_lines(data.lines, data.band)
        self.chart.setAccessibleName(f"Chart of {data.measurement.name} over time")
        self.readings.set_data(data)
        self.table.setAccessibleName(f"Readings of {data.measurement.name}, newest first")
        self.detail.layout().activate()     # the new texts' heights now, not on a later pass of the loop

    def _show_nothing(self) -> None:
        self.current = None
        self.chart_data = None
        self._chart_read.drop()
        self.readings.set_data(None)
        self.chart.clear()
        self.pages.setCurrentIndex(0)

    def _table_selection(self, *_args: Any) -> None:
        rows = {i.row() for i in self.table.selectionModel().selectedRows()}
        self.chart.select({self.readings.row_key(r)[0] for r in rows})

    def _open_reading(self, index: QModelIndex) -> None:
        rid = self.readings.row_key(index.row())[1]
        rid_id = self.readings.ids.get(rid)
        if rid_id is not None:
            self.open_record.emit("Observation", rid_id)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not event.spontaneous():     # opened by the user, not the window coming back from minimised
            self.search.setFocus(Qt.FocusReason.OtherFocusReason)

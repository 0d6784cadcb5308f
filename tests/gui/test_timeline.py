"""Timeline on a real vault holding a Synthea patient: newest first, each record under the visit it references,
exactly the records a category and date range select (checked against plain SQL), one page at a time off the GUI
thread, Enter opening a record or a visit, and an accessible name on everything that takes focus."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QDate, QModelIndex, Qt

from app.models.timeline_table import EVERYTHING_EXCLUDES, TimelineModel
from app.screens.timeline import EVERYTHING, TimelineScreen
from tests.gui.test_records_screen import (_sql, accessible_gaps, ctx,  # noqa: F401 (fixtures)
                                           painted_cells_say_what_data_says, threaded_context, vault)
from vault.records import describe


def _load_all(model: TimelineModel) -> None:
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())


def _category(key: str) -> describe.Category:
    return next(c for c in (*describe.CATEGORIES, describe.INSURANCE) if c.key == key)


def test_the_model_passes_the_model_tester_while_pages_arrive(qtbot, ctx, qtmodeltester):
    model = TimelineModel(ctx, page_size=40)
    model.set_filter()
    qtmodeltester.check(model)          # also fetches pages (rows appended to the last visit and at the end)
    _load_all(model)
    qtmodeltester.check(model)


def test_pages_load_lazily(qtbot, ctx, vault):
    model = TimelineModel(ctx, page_size=30)
    model.set_filter()
    assert len(model.records()) == 30 and model.canFetchMore(QModelIndex())
    rows = model.rowCount()
    assert len(model.records()) == 30                       # nothing more arrives unasked
    model.fetchMore(QModelIndex())
    assert len(model.records()) == 60 and model.rowCount() > rows
    _load_all(model)
    marks = ",".join("?" * len(EVERYTHING_EXCLUDES))
    total = _sql(vault, f"SELECT count(*) FROM rec_resources WHERE date IS NOT NULL AND rtype NOT IN ({marks})",
                 *EVERYTHING_EXCLUDES)[0][0]
    assert len(model.records()) == total and total > 600


FILTERS = {
    "everything": (None, None, None, f"rtype NOT IN ({','.join(repr(t) for t in EVERYTHING_EXCLUDES)})"),
    "conditions": ("conditions", None, None, "rtype = 'Condition'"),
    "labs 1990-1993": ("labs", "1990-01-01", "1993-12-31",
                       "((rtype = 'Observation' AND category = 'laboratory') OR"
                       " (rtype = 'DiagnosticReport' AND category = 'LAB'))"),
    "everything in 1995": (None, "1995-01-01", "1995-12-31",
                           f"rtype NOT IN ({','.join(repr(t) for t in EVERYTHING_EXCLUDES)})"),
    "insurance": ("insurance", None, "1990-06-30", "rtype IN ('Claim', 'ExplanationOfBenefit', 'Coverage')"),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_select_exactly_what_the_query_selects(qtbot, ctx, vault, name):
    key, first, last, where = FILTERS[name]
    screen = TimelineScreen(ctx, page_size=50)
    qtbot.addWidget(screen)
    screen.set_category(key or EVERYTHING)
    screen.set_dates(QDate.fromString(first, "yyyy-MM-dd") if first else None,
                     QDate.fromString(last, "yyyy-MM-dd") if last else None)
    kinds, date_from, date_to = screen.current_filter()
    assert (date_from, date_to) == (first, last)
    assert kinds == (list(_category(key).kinds) if key else None)
    _load_all(screen.model)
    shown = [r.rid for r in screen.model.records()]
    sql = f"SELECT rid, date FROM rec_resources WHERE date IS NOT NULL AND {where}"
    args = []
    if first:
        sql += " AND date >= ?"
        args.append(first)
    if last:
        sql += " AND substr(date, 1, 10) <= ?"
        args.append(last)
    expected = _sql(vault, sql + " ORDER BY date DESC, rid DESC", *args)
    assert sorted(shown) == sorted(r[0] for r in expected) and len(shown) == len(set(shown)) and expected
    # newest first: each top row (a visit's records, or a record alone) is no older than the rows below it
    groups = [[r.date for r in group] for group in screen.model.groups()]
    assert all(min(a) >= max(b) for a, b in zip(groups, groups[1:]))
    assert all(group for group in groups)


def test_records_sit_under_the_visit_they_reference(qtbot, ctx, vault):
    model = TimelineModel(ctx, page_size=80)
    model.set_filter()
    _load_all(model)
    visits = {rid: ref for rid, ref in _sql(
        vault, "SELECT rid, json_extract(json, '$.encounter.reference') FROM rec_resources")}
    ids = {f"{t}/{i}": rid for rid, t, i in _sql(vault, "SELECT rid, rtype, id FROM rec_resources")}
    headings = under = alone = 0
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        ref = model.data(index, TimelineModel.REF_ROLE)
        if model.is_heading(index):
            headings += 1
            assert ref[0] == "Encounter"
            assert model.data(model.index(row, TimelineModel.TYPE)) in {
                "Outpatient visit", "Hospital stay", "Emergency visit", "Check-up", "Urgent care visit"}
            assert model.data(index, Qt.ItemDataRole.FontRole).bold()
        elif model.heading_of(row) >= 0:
            under += 1
            visit = model.data(model.index(model.heading_of(row), 0), TimelineModel.REF_ROLE)
            assert visits[ids["/".join(ref)]] == "/".join(visit), ref
            assert model.heading_of(row) < row          # the heading comes first
        else:
            alone += 1
            assert visits[ids["/".join(ref)]] is None, ref
    total_visits = _sql(vault, "SELECT count(*) FROM rec_resources WHERE rtype = 'Encounter'")[0][0]
    assert headings >= total_visits and under > 500
    # a heading says how many records it holds
    first = next(r for r in range(model.rowCount()) if model.is_heading(model.index(r, 0)))
    n = sum(1 for r in range(model.rowCount()) if model.heading_of(r) == first)
    assert model.data(model.index(first, TimelineModel.WHAT)).endswith(f"  ·  {n} record{'s' if n != 1 else ''}")
    # the screen opens a visit from its heading, and a record from its row
    screen = TimelineScreen(ctx)
    qtbot.addWidget(screen)
    screen.show()
    opened = []
    screen.open_record.connect(lambda t, i: opened.append((t, i)))
    m = screen.model
    heading = next(r for r in range(m.rowCount()) if m.is_heading(m.index(r, 0)) and m.heading_of(r + 1) == r)
    screen.table.setFocus()
    screen.table.setCurrentIndex(m.index(heading, TimelineModel.WHAT))
    qtbot.keyClick(screen.table, Qt.Key.Key_Return)
    screen.table.setCurrentIndex(m.index(heading + 1, TimelineModel.WHAT))
    qtbot.keyClick(screen.table, Qt.Key.Key_Return)
    assert opened == [m.data(m.index(heading, 0), TimelineModel.REF_ROLE),
                      m.data(m.index(heading + 1, 0), TimelineModel.REF_ROLE)]
    assert opened[0][0] == "Encounter" and opened[1][0] != "Encounter"


def test_a_shown_timeline_reads_only_what_fills_the_window(qtbot, vault):
    """Lazy in a real view: the first pages fill the window, scrolling to the end reads one more, no more."""
    inner, threads = threaded_context(vault)
    screen = TimelineScreen(inner, page_size=40)
    qtbot.addWidget(screen)
    screen.resize(1000, 600)
    screen.show()
    assert screen.model.rowCount() == 0 and screen.model.loading     # the GUI thread did not wait
    qtbot.waitUntil(lambda: not screen.model.loading and screen.model.rowCount() > 0, timeout=10000)
    qtbot.wait(300)
    loaded = len(screen.model.records())
    assert 40 <= loaded <= 120 and not screen.model.at_end
    bar = screen.table.verticalScrollBar()
    assert bar.maximum() > 0                                           # the window is full
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: len(screen.model.records()) > loaded, timeout=10000)
    qtbot.wait(300)
    assert len(screen.model.records()) <= loaded + 80
    assert threads and all(t is not threading.main_thread() for t in threads)
    inner.runner.wait()


def test_read_only_and_the_range_follows_the_records(qtbot, ctx, vault):
    screen = TimelineScreen(ctx)
    qtbot.addWidget(screen)
    model = screen.model
    assert screen.table.editTriggers() == screen.table.EditTrigger.NoEditTriggers
    for row in range(min(model.rowCount(), 30)):
        index = model.index(row, TimelineModel.WHAT)
        assert not model.flags(index) & Qt.ItemFlag.ItemIsEditable
        assert not model.setData(index, "changed")
    low, high = _sql(vault, "SELECT min(date), max(date) FROM rec_resources")[0]
    assert screen.date_from.date() == QDate.fromString(low[:10], "yyyy-MM-dd")
    assert screen.date_to.date() == QDate.fromString(high[:10], "yyyy-MM-dd")
    assert screen.current_filter() == (None, None, None)        # the whole range is no filter at all
    screen.set_dates(QDate(1993, 1, 1), None)
    assert screen.current_filter()[1:] == ("1993-01-01", None)
    qtbot.mouseClick(screen.all_dates, Qt.MouseButton.LeftButton)
    assert screen.current_filter() == (None, None, None)
    assert screen.category.itemText(screen.category.count() - 1).startswith("Insurance & billing")
    empty = TimelineScreen(ctx)
    qtbot.addWidget(empty)
    empty.set_category("conditions")
    empty.set_dates(QDate(1940, 1, 1), QDate(1940, 1, 2))
    assert empty.model.rowCount() == 0 and empty.status.text() == "No records match these choices."


def test_every_focusable_widget_has_an_accessible_name(qtbot, ctx, tmp_path):
    screen = TimelineScreen(ctx)
    qtbot.addWidget(screen)
    screen.resize(1100, 760)
    screen.show()
    assert accessible_gaps(screen) == []
    # the user guide's picture is taken with the main window; this one is for looking at the screen alone
    assert screen.grab().save(str(tmp_path / "timeline.png"))


def test_a_painted_cell_says_what_data_says(qtbot, ctx):
    model = TimelineModel(ctx, page_size=60)
    model.set_filter()
    assert painted_cells_say_what_data_says(model) > model.rowCount() * model.columnCount()
    headings = [r for r in range(model.rowCount()) if model.is_heading(model.index(r, 0))]
    assert headings and len(headings) < model.rowCount()
    assert model.data(model.index(0, 0), Qt.ItemDataRole.FontRole).bold()      # a heading; its records are not
    assert model.data(model.index(1, 0), Qt.ItemDataRole.FontRole) is None

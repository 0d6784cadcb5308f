"""Records and record detail on a real vault holding a Synthea patient: categories counted from the file itself,
read-only tables that load one page at a time off the GUI thread, date order both ways, Enter and double click
opening a record, a detail whose words match the record's JSON (with names the record points at), the raw JSON
exactly as stored, and an accessible name on everything that takes focus."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

import pytest
from PySide6.QtCore import QModelIndex, QModelRoleData, QModelRoleDataSpan, QPoint, Qt
from PySide6.QtGui import QFontInfo
from PySide6.QtWidgets import QWidget

from app.models.categories import CategoryListModel
from app.models.records_table import RecordTableModel
from app.screens import ScreenContext, vault_context
from app.screens.detail import Loaded, RecordDetail, letter_html
from app.screens.records import RecordsScreen
from app.tasks import SyncRunner, TaskRunner
from tests.gui.synthea_vault import FLETCHER, SYNTHEA, directory_files, synthea_vault
from vault.records import describe
from vault.records.describe import local_date


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    v = synthea_vault(tmp_path_factory.mktemp("records-screen") / "vault", FLETCHER)
    yield v
    v.close()


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return [e["resource"] for e in json.loads((SYNTHEA / FLETCHER).read_text())["entry"]]


@pytest.fixture(scope="module")
def directory() -> dict[str, dict]:
    out = {}
    for path in directory_files():
        for e in json.loads(path.read_text())["entry"]:
            r = e["resource"]
            out[f"{r['resourceType']}/{r['id']}"] = r
    return out


@pytest.fixture
def ctx(vault):
    return vault_context(vault, SyncRunner())


def _sql(vault, sql: str, *args) -> list:
    with vault.read() as conn:
        return conn.execute(sql, args).fetchall()


def _uuid(ref: str) -> str:
    return ref.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def accessible_gaps(root: QWidget) -> list[str]:
    """Every widget under ``root`` that can take focus but has no accessible name to say what it is."""
    return [f"{type(w).__name__} {w.objectName()!r}" for w in [root, *root.findChildren(QWidget)]
            if w.focusPolicy() != Qt.FocusPolicy.NoFocus and not w.accessibleName().strip()]


def test_categories_are_counted_in_a_patients_words(qtbot, ctx, entries, qtmodeltester):
    model = CategoryListModel(ctx)
    with qtbot.waitSignal(model.counted):
        model.refresh()
    qtmodeltester.check(model)
    labels = [model.data(model.index(r)) for r in range(model.rowCount())]
    by_type = Counter(r["resourceType"] for r in entries)

    def first_category(r):
        return r.get("category", [{}])[0].get("coding", [{}])[0].get("code")

    expected = {
        "Conditions": by_type["Condition"], "Medications": by_type["MedicationRequest"], "Allergies": 0,
        "Immunizations": by_type["Immunization"], "Procedures": by_type["Procedure"],
        "Lab results": sum(1 for r in entries if r["resourceType"] in ("Observation", "DiagnosticReport")
                           and first_category(r) in ("laboratory", "LAB")),
        "Vital signs": sum(1 for r in entries if r["resourceType"] == "Observation"
                           and first_category(r) in ("vital-signs", "vital-sign")),
        "Encounters": by_type["Encounter"], "Care plans": by_type["CarePlan"] + by_type["Goal"], "Documents": 0,
        "Insurance & billing": by_type["Claim"] + by_type["ExplanationOfBenefit"],
    }
    shown = {re.sub(r" \([\d,]+\)$", "", label): int(re.search(r"\(([\d,]+)\)$", label).group(1).replace(",", ""))
             for label in labels}
    for label, n in expected.items():
        assert shown[label] == n, label
    assert labels[-1].startswith("Insurance & billing")          # claims kept out of the way, at the end
    assert list(shown)[:10] == ["Conditions", "Medications", "Allergies", "Immunizations", "Procedures",
                                "Lab results", "Vital signs", "Encounters", "Care plans", "Documents"]
    # nothing is left out: the rest (imaging, surveys) is under 'Other records'
    people_and_places = sum(by_type[t] for t in describe.DIRECTORY_TYPES)
    assert sum(shown.values()) == len(entries) - people_and_places
    assert model.flags(model.index(0)) & Qt.ItemFlag.ItemIsEditable == Qt.ItemFlag.NoItemFlags


def test_tables_are_read_only_and_pass_the_model_tester(qtbot, ctx, qtmodeltester):
    screen = RecordsScreen(ctx, page_size=25)
    qtbot.addWidget(screen)
    screen.show_category("vitals")
    model = screen.model
    assert model.rowCount() == 25
    qtmodeltester.check(model)
    assert screen.table.editTriggers() == screen.table.EditTrigger.NoEditTriggers
    for row in range(model.rowCount()):
        for col in range(model.columnCount()):
            index = model.index(row, col)
            assert not model.flags(index) & Qt.ItemFlag.ItemIsEditable
            assert not model.setData(index, "changed", Qt.ItemDataRole.EditRole)
    before = model.data(model.index(0, model.WHAT))
    screen.table.setCurrentIndex(model.index(0, model.WHAT))
    qtbot.keyClick(screen.table, Qt.Key.Key_F2)
    qtbot.keyClicks(screen.table, "typed over")
    assert model.data(model.index(0, model.WHAT)) == before


def test_rows_load_a_page_at_a_time(qtbot, ctx, vault):
    model = RecordTableModel(ctx, page_size=25)
    vitals = next(c for c in describe.CATEGORIES if c.key == "vitals")
    total = _sql(vault, "SELECT count(*) FROM rec_resources WHERE rtype = 'Observation'"
                        " AND category IN ('vital-signs', 'vital-sign')")[0][0]
    assert total > 50
    model.set_kinds(list(vitals.kinds))
    assert model.rowCount() == 25 and model.canFetchMore(QModelIndex())
    assert model.rowCount() == 25                           # nothing more arrives unasked
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 50
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
    assert model.rowCount() == total
    expected = [r[0] for r in _sql(vault, "SELECT rid FROM rec_resources WHERE rtype = 'Observation' AND category"
                                          " IN ('vital-signs', 'vital-sign') ORDER BY date DESC, rid DESC")]
    assert [r.rid for r in model.rows()] == expected
    assert not model.canFetchMore(model.index(0, 0))         # rows have no children to fetch


PAINTED_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ToolTipRole,
                 Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.TextAlignmentRole,
                 Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.UserRole]


def painted_cells_say_what_data_says(model) -> int:
    """The delegate asks for all its roles of a cell at once (multiData), reusing its list from cell to cell: each
    answer must be the model's own, and a role left unanswered must keep nothing of the cell before. Returns how
    many answers there were."""
    answered = 0
    for row in range(model.rowCount()):
        for col in range(model.columnCount()):
            index = model.index(row, col)
            for role in PAINTED_ROLES:
                asked = QModelRoleData(role)
                asked.setData("left from the cell before")
                model.multiData(index, QModelRoleDataSpan(asked))
                assert asked.data() == model.data(index, role), (row, col, role)
                answered += asked.data() is not None
    return answered


def test_a_painted_cell_says_what_data_says(qtbot, ctx):
    model = RecordTableModel(ctx, page_size=25)
    model.set_kinds(list(next(c for c in describe.CATEGORIES if c.key == "vitals").kinds))
    assert painted_cells_say_what_data_says(model) > model.rowCount() * model.columnCount()


def threaded_context(vault) -> tuple[ScreenContext, list[threading.Thread]]:
    """A context on the real task runner that notes the thread of every read."""
    threads: list[threading.Thread] = []
    inner = vault_context(vault, TaskRunner())
    read = inner.read

    def spying_read():
        threads.append(threading.current_thread())
        return read()
    inner.read = spying_read
    return inner, threads


def test_pages_are_read_off_the_gui_thread(qtbot, vault):
    inner, threads = threaded_context(vault)
    model = RecordTableModel(inner, page_size=10)
    conditions = next(c for c in describe.CATEGORIES if c.key == "conditions")
    model.set_kinds(list(conditions.kinds))
    assert model.rowCount() == 0 and model.loading          # the GUI thread did not wait for the database
    qtbot.waitUntil(lambda: model.rowCount() == 10, timeout=10000)
    assert threads and all(t is not threading.main_thread() for t in threads)
    inner.runner.wait()


def test_date_order_both_ways(qtbot, ctx, vault):
    screen = RecordsScreen(ctx)
    qtbot.addWidget(screen)
    screen.show_category("conditions")
    newest = [r.rid for r in screen.model.rows()]
    assert newest == [r[0] for r in _sql(vault, "SELECT rid FROM rec_resources WHERE rtype = 'Condition'"
                                                " ORDER BY date DESC, rid DESC")]
    header = screen.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(screen.model.DATE) + 10, header.height() // 2))
    assert screen.model.ascending
    dates = [r.date for r in screen.model.rows()]
    assert dates == sorted(dates) and "oldest first" in screen.status.text()
    # another column does not pretend to sort: the date order stays and so does the indicator
    header.setSortIndicator(screen.model.WHAT, Qt.SortOrder.AscendingOrder)
    assert header.sortIndicatorSection() == screen.model.DATE and screen.model.ascending


def test_enter_and_double_click_open_the_record(qtbot, ctx):
    screen = RecordsScreen(ctx)
    qtbot.addWidget(screen)
    screen.show()
    screen.show_category("immunizations")
    table, model = screen.table, screen.model
    opened = []
    screen.open_record.connect(lambda rtype, rid: opened.append((rtype, rid)))
    table.setFocus()
    table.setCurrentIndex(model.index(2, model.WHAT))
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert opened == [("Immunization", model.row_at(2).id)]
    rect = table.visualRect(model.index(4, model.WHAT))
    # a real double click: press and release, then the second press arrives as a double click
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened[1:] == [("Immunization", model.row_at(4).id)]     # once, not twice
    # the pane beside the table already shows the selected record
    assert screen.detail.loaded is not None and screen.detail.loaded.id == model.row_at(4).id


def _detail(ctx, qtbot, rtype: str, rid: str) -> RecordDetail:
    detail = RecordDetail(ctx)
    qtbot.addWidget(detail)
    detail.show_record(rtype, rid)
    assert detail.loaded is not None
    return detail


def _letter(detail: RecordDetail) -> dict[str, str]:
    return dict(detail.description.lines)


def test_detail_of_a_condition(qtbot, ctx, entries):
    r = next(e for e in entries if e["resourceType"] == "Condition" and "abatementDateTime" in e)
    detail = _detail(ctx, qtbot, "Condition", r["id"])
    lines = _letter(detail)
    assert detail.title.text() == describe.plain(r["code"]["text"])
    assert detail.subtitle.text() == f"Condition, {local_date(r['onsetDateTime'])}"
    assert lines["Status"] == "Resolved" == r["clinicalStatus"]["coding"][0]["code"].capitalize()
    assert lines["Started"] == local_date(r["onsetDateTime"])
    assert lines["Ended"] == local_date(r["abatementDateTime"])
    visit = next(e for e in entries if e["id"] == _uuid(r["encounter"]["reference"]))
    assert lines["During the visit"] == describe.name_of(visit)
    text = detail.letter.toPlainText()
    assert "Started" in text and local_date(r["onsetDateTime"]) in text and "Where this record came from" in text
    # the visit is a link: from the keyboard, Tab reaches it and Enter opens the visit
    opened = []
    detail.open_record.connect(lambda t, i: opened.append((t, i)))
    detail.show()
    detail.letter.setFocus()
    qtbot.keyClick(detail.letter, Qt.Key.Key_Tab)
    qtbot.keyClick(detail.letter, Qt.Key.Key_Return)
    assert opened == [("Encounter", visit["id"])]


def test_detail_of_an_observation_with_value_and_unit(qtbot, ctx, entries):
    r = next(e for e in entries if e["resourceType"] == "Observation"
             and e["code"]["coding"][0]["code"] == "2093-3")                     # total cholesterol
    detail = _detail(ctx, qtbot, "Observation", r["id"])
    lines = _letter(detail)
    value, unit = r["valueQuantity"]["value"], r["valueQuantity"]["unit"]
    number, shown_unit = lines["Result"].split(" ", 1)
    assert abs(float(number) - value) <= 0.5 and shown_unit == unit
    assert lines["Taken"] == local_date(r["effectiveDateTime"], True)
    assert detail.subtitle.text().startswith("Lab result, ")
    assert detail.title.text() == r["code"]["text"]


def test_detail_of_a_prescription_names_who_and_why(qtbot, ctx, entries, directory):
    r = next(e for e in entries if e["resourceType"] == "MedicationRequest" and "reasonReference" in e)
    detail = _detail(ctx, qtbot, "MedicationRequest", r["id"])
    lines = _letter(detail)
    assert detail.title.text() == r["medicationCodeableConcept"]["text"]
    assert lines["Status"] == r["status"].capitalize()
    assert lines["Prescribed"] == local_date(r["authoredOn"])
    prescriber = next(p for k, p in directory.items() if k.startswith("Practitioner/")
                      and p["id"] == _uuid(r["requester"]["reference"]))
    assert lines["Prescribed by"] == describe.human_name(prescriber["name"])
    assert prescriber["name"][0]["family"].rstrip("0123456789") in lines["Prescribed by"]
    reason = next(e for e in entries if e["id"] == _uuid(r["reasonReference"][0]["reference"]))
    assert lines["Reason"] == describe.plain(reason["code"]["text"])


def test_detail_of_an_immunization_with_provenance(qtbot, ctx, entries, vault):
    r = next(e for e in entries if e["resourceType"] == "Immunization")
    detail = _detail(ctx, qtbot, "Immunization", r["id"])
    lines = _letter(detail)
    assert detail.title.text() == r["vaccineCode"]["text"]
    assert lines["Status"] == "Given" and r["status"] == "completed"
    assert lines["Given"] == local_date(r["occurrenceDateTime"], True)
    sources = dict(detail.loaded.sources)
    imported = _sql(vault, "SELECT s.imported_at FROM rec_resources r JOIN rec_sources s ON s.id = r.source_id"
                           " WHERE r.rtype = 'Immunization' AND r.id = ?", r["id"])[0][0]
    assert sources == {"Came from": "A FHIR file you imported", "Verified": "Not verified (imported from a file)",
                       "Imported": local_date(imported, True)}
    for label, value in sources.items():
        assert label in detail.letter.toPlainText() and value in detail.letter.toPlainText()


def test_raw_json_is_the_stored_json_one_click_away(qtbot, ctx, entries, vault):
    r = next(e for e in entries if e["resourceType"] == "MedicationRequest")
    detail = _detail(ctx, qtbot, "MedicationRequest", r["id"])
    detail.show()
    stored = _sql(vault, "SELECT json FROM rec_resources WHERE rtype = 'MedicationRequest' AND id = ?", r["id"])[0][0]
    assert json.loads(detail.raw_text()) == json.loads(stored)
    assert detail.raw.isReadOnly() and QFontInfo(detail.raw.font()).fixedPitch()
    assert detail.tabs.currentWidget() is detail.letter
    qtbot.mouseClick(detail.tabs.tabBar(), Qt.MouseButton.LeftButton,
                     pos=detail.tabs.tabBar().tabRect(1).center())        # one click
    assert detail.tabs.currentWidget() is detail.raw and detail.raw.isVisible()
    assert detail.tabs.tabText(1) == "Original data (FHIR JSON)"


def test_record_text_is_shown_as_text_never_as_markup():
    d = describe.Description("<b>x</b>", "Condition", "", (("Note", "<img src=x onerror=alert(1)> & <script>"),))
    page = letter_html(Loaded("Condition", "x", d, [("Came from", "<i>file</i>")], "{}"))
    assert "<img" not in page and "<script>" not in page and "<i>file" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;" in page


def test_a_missing_record_says_so(qtbot, ctx):
    detail = RecordDetail(ctx)
    qtbot.addWidget(detail)
    detail.show_record("Condition", "not-in-this-vault")
    assert detail.loaded is None and "not in your vault" in detail.title.text()
    assert detail.tabs.isHidden()


def test_every_focusable_widget_has_an_accessible_name(qtbot, ctx, tmp_path):
    screen = RecordsScreen(ctx)
    qtbot.addWidget(screen)
    screen.resize(1280, 760)
    screen.show()
    screen.show_category("labs")
    screen.table.selectRow(0)
    assert accessible_gaps(screen) == []
    detail = RecordDetail(ctx)
    qtbot.addWidget(detail)
    assert accessible_gaps(detail) == []
    # the user guide's picture is taken with the main window; this one is for looking at the screen alone
    assert screen.grab().save(str(tmp_path / "records.png"))


def test_screens_show_only_the_chosen_persons_records(qtbot, tmp_path):
    """A parent keeping a child's records: the screens read the person of the context, never a mix."""
    from app.services import Session
    from app.screens.timeline import TimelineScreen
    from tests.gui.synthea_vault import NED
    from vault.records import persons
    v = synthea_vault(tmp_path / "two", FLETCHER)
    try:
        outcomes = Session(v).import_sources([SYNTHEA / NED], other_person=True)
        assert all(o.ok for o in outcomes)
        with v.read() as conn:
            ned = next(p.id for p in persons.persons(conn) if not p.is_primary)
        ned_entries = [e["resource"] for e in json.loads((SYNTHEA / NED).read_text())["entry"]]
        ctx = vault_context(v, SyncRunner(), person=ned)
        screen = RecordsScreen(ctx)
        qtbot.addWidget(screen)
        assert screen.categories_model.count("conditions") == sum(
            1 for r in ned_entries if r["resourceType"] == "Condition")
        screen.show_category("immunizations")
        ids = {r["id"] for r in ned_entries if r["resourceType"] == "Immunization"}
        assert {row.id for row in screen.model.rows()} == ids and ids
        timeline = TimelineScreen(ctx)
        qtbot.addWidget(timeline)
        while timeline.model.canFetchMore(QModelIndex()):
            timeline.model.fetchMore(QModelIndex())
        mine = {r["id"] for r in ned_entries}
        shown = {row.id for row in timeline.model.records()}
        assert shown and shown <= mine
        # and the vault's own person still sees only their own
        own = RecordsScreen(vault_context(v, SyncRunner()))
        qtbot.addWidget(own)
        own.show_category("immunizations")
        assert not {row.id for row in own.model.rows()} & ids
    finally:
        v.close()


def test_a_read_that_fails_says_one_plain_sentence(qtbot, tmp_path):
    from app.screens.timeline import TimelineScreen
    from vault.errors import VaultLocked
    v = synthea_vault(tmp_path / "locked", FLETCHER)
    ctx = vault_context(v, SyncRunner())
    v.close()                   # locked under the screens' feet
    shown = []
    ctx.show_error = shown.append
    screen = RecordsScreen(ctx)
    qtbot.addWidget(screen)
    sentence = VaultLocked().user_message
    assert screen.status.text() == sentence
    screen.show_category("conditions")
    assert screen.status.text() == sentence and screen.model.rowCount() == 0
    timeline = TimelineScreen(ctx)
    qtbot.addWidget(timeline)
    assert timeline.status.text() == sentence
    detail = RecordDetail(ctx)
    qtbot.addWidget(detail)
    detail.show_record("Condition", "x")
    assert detail.subtitle.text() == sentence and "Traceback" not in sentence
    assert shown == []          # an error medvault can explain is said in place, not in a box as well

"""The Summary screen on real vaults: its sections in plain words, long sections folded behind "Show all", rows
that open their records by mouse and by keyboard, flags in words, and an empty vault that says what to do."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from app.screens import vault_context
from app.screens.summary import FIRST_ROWS, SummaryScreen
from app.services import Session
from app.tasks import SyncRunner, TaskRunner
from tests.conftest import FIXTURES
from tests.gui.synthea_vault import JULIETTE, SYNTHEA, synthea_vault


@pytest.fixture(scope="module")
def juliette(tmp_path_factory):
    vault = synthea_vault(tmp_path_factory.mktemp("summary") / "v", JULIETTE)
    yield vault
    vault.close()


def _screen(qtbot, vault, runner=None) -> SummaryScreen:
    screen = SummaryScreen(vault_context(vault, runner or SyncRunner()))
    qtbot.addWidget(screen)
    screen.resize(1000, 800)
    screen.show()
    screen.refresh()
    return screen


def _rows(view) -> list[list[str]]:
    return [[view.item(r, c).text() for c in range(view.columnCount())] for r in range(view.rowCount())]


def test_sections_read_in_plain_words(qtbot, juliette):
    screen = _screen(qtbot, juliette, TaskRunner())
    qtbot.waitUntil(lambda: screen.summary is not None, timeout=10000)
    cards = screen.cards
    assert [r[:2] for r in _rows(cards["allergies"].view)] == [["Shellfish allergy", "Low risk"],
                                                                ["Allergy to mould", "Low risk"]]
    assert _rows(cards["problems"].view)[0][0] == "Normal pregnancy"
    medicines = {r[0]: r[1] for r in _rows(cards["medications"].view)}
    assert medicines["diphenhydrAMINE Hydrochloride 25 MG Oral Tablet"] == "As needed"
    vaccines = {r[0]: r[1] for r in _rows(cards["immunizations"].view)}
    assert vaccines["Influenza, seasonal, injectable, preservative free"] == "4"
    results = {r[0]: r for r in _rows(cards["results"].view)}
    cholesterol = json.loads((SYNTHEA / JULIETTE).read_text("utf-8"))
    latest = max((e["resource"] for e in cholesterol["entry"] if e["resource"]["resourceType"] == "Observation"
                  and e["resource"]["code"]["coding"][0]["code"] == "2093-3"), key=lambda r: r["effectiveDateTime"])
    assert results["Total Cholesterol"][1] == f"{latest['valueQuantity']['value']:.0f} mg/dL"
    assert results["Total Cholesterol"][2] == "10 November 2020"
    vitals = {r[0]: r for r in _rows(cards["vitals"].view)}
    assert vitals["Body Weight"][3].endswith("on 7 November 2017")   # the value before, from an earlier visit
    visits = _rows(cards["encounters"].view)
    assert len(visits) == 5 and visits[0][0] == "Prenatal visit" and "Falmouth Hospital" in visits[0][1]
    assert "From" in screen.status.text() and screen.body.isVisible()


def test_a_long_section_folds_and_unfolds(qtbot, juliette):
    screen = _screen(qtbot, juliette)
    card = screen.cards["results"]
    total = len(screen.summary.results)
    assert total > FIRST_ROWS
    assert card.view.rowCount() == FIRST_ROWS and card.more.isVisible()
    assert card.more.text() == f"Show all {total} lab results"
    folded = card.view.height()
    qtbot.mouseClick(card.more, Qt.MouseButton.LeftButton)
    assert card.view.rowCount() == total and card.view.height() > folded
    assert card.view.verticalScrollBar().maximum() == 0     # the table grew; the page scrolls, not the table
    qtbot.mouseClick(card.more, Qt.MouseButton.LeftButton)
    assert card.view.rowCount() == FIRST_ROWS
    assert not screen.cards["allergies"].more.isVisible()


def test_rows_open_their_record_by_click_and_by_enter(qtbot, juliette):
    screen = _screen(qtbot, juliette)
    view = screen.cards["allergies"].view
    first, second = screen.summary.allergies
    with qtbot.waitSignal(screen.open_record) as opened:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(view.item(0, 1)).center())
    assert opened.args == ["AllergyIntolerance", first.id]
    view.setFocus()
    view.setCurrentCell(1, 0)
    with qtbot.waitSignal(screen.open_record) as opened:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert opened.args == ["AllergyIntolerance", second.id]
    visits = screen.cards["encounters"].view
    with qtbot.waitSignal(screen.open_record) as opened:
        qtbot.mouseClick(visits.viewport(), Qt.MouseButton.LeftButton,
                         pos=visits.visualItemRect(visits.item(0, 0)).center())
    assert opened.args == ["Encounter", screen.summary.encounters[0].id]


def test_out_of_range_results_say_so_in_words(qtbot, vault_factory):
    vault = vault_factory("flags")
    us_core = FIXTURES / "us-core"
    outcomes = Session(vault).import_sources([us_core / "patient-example.json",
                                              *sorted(us_core.glob("observation-serum-*.json"))])
    assert all(o.ok for o in outcomes)
    screen = _screen(qtbot, vault)
    view = screen.cards["results"].view
    rows = {r[0]: (r[1], view.item(n, 1).font().bold()) for n, r in enumerate(_rows(view))}
    assert rows["Calcium, Blood"] == ("7.7 mg/dL  ▼ Low", True)
    assert rows["Creatinine, Blood"] == ("1 mg/dL  ▲ High", True)
    assert rows["Sodium, Blood"] == ("137 mmol/L", False)


def test_an_empty_vault_says_how_to_begin(qtbot, unlocked_vault):
    screen = _screen(qtbot, unlocked_vault)
    assert "Nothing here yet" in screen.status.text() and "Import" in screen.status.text()
    assert screen.body.isHidden()

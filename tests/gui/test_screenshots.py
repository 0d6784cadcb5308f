"""The user guide's pictures of the main window: every screen with a Synthea patient imported through the window
itself, a PDF among the documents, search results, a record's detail, records picked to share and a second person
kept apart.
``MEDVAULT_UPDATE_SCREENSHOTS=1`` writes them to docs/screenshots; each is checked to show what it claims."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSettings

from app.main_window import MainWindow, Placeholder
from app.tasks import TaskRunner
from tests.gui.synthea_vault import JULIETTE, NED, SYNTHEA, directory_files
from tests.gui.test_documents import _pdf


def _settle(qtbot, runner) -> None:
    for _ in range(3):          # results arrive, and may ask for more (a screen's list, then its selection)
        runner.wait(30000)
        qtbot.wait(150)


def test_every_screen_of_the_main_window(qtbot, vault_factory, tmp_path, screenshot):
    vault = vault_factory("guide")
    letter = tmp_path / "discharge-letter.pdf"
    letter.write_bytes(_pdf())
    picks = iter([[*map(str, directory_files()), str(SYNTHEA / JULIETTE), str(letter)], [str(SYNTHEA / NED)]])
    runner = TaskRunner()
    window = MainWindow(vault, runner, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        choose_files=lambda parent: next(picks), ask_other_person=lambda parent, n, owner: True,
                        tell=lambda sentence: None)
    qtbot.addWidget(window)
    window.resize(1180, 760)
    window.show()

    window.choose_and_import()
    qtbot.waitUntil(lambda: window.import_panel.close_button.isVisible(), timeout=120000)
    _settle(qtbot, runner)
    assert window.import_panel.summary.text().startswith("4 files imported: ")
    window.import_panel.details_button.click()
    screenshot(window, "10-import-result")
    window.import_panel.hide()

    window.show_screen("summary")
    _settle(qtbot, runner)
    summary = window.screens["summary"]
    assert summary.summary.allergies and "Juliette" in window.person_label.text()
    screenshot(window, "11-summary")

    for n, key in enumerate(("timeline", "records", "labs", "documents"), 12):
        window.show_screen(key)
        _settle(qtbot, runner)
        screen = window.screens[key]
        assert not isinstance(screen, Placeholder), f"app.screens.{key} did not load"
        if key == "labs":
            assert screen.select("29463-7")      # body weight: four readings over the years
            _settle(qtbot, runner)
        if key == "documents":
            screen.select_row(0)
            _settle(qtbot, runner)
        screenshot(window, f"{n}-{key}")

    window.search_field.setText("cholesterol")
    window.search_screen._run()
    _settle(qtbot, runner)
    results = window.search_screen.results
    assert results.topLevelItemCount() > 0
    screenshot(window, "16-search")
    target = results.topLevelItem(0).data(0, 256)
    window.open_record(*target)
    _settle(qtbot, runner)
    window.detail.resize(720, 620)
    screenshot(window.detail, "17-record-detail")
    window.detail.close()
    window.search_field.clear()
    qtbot.wait(400)             # the field's clear button fades out

    # two records picked in Records, ready to share together
    window.show_screen("records")
    records = window.screens["records"]
    records.show_category("immunizations")
    _settle(qtbot, runner)
    records.table.setCurrentIndex(records.model.index(0, 0))
    records.table.selectionModel().select(records.model.index(2, 0), QItemSelectionModel.SelectionFlag.Select
                                          | QItemSelectionModel.SelectionFlag.Rows)
    _settle(qtbot, runner)
    assert len(records.picked()) == 2 and records.sharing.button.isEnabled()
    screenshot(window, "18-share-selected")

    window.choose_and_import()
    qtbot.waitUntil(lambda: window.person_box.isVisible(), timeout=120000)
    window.show_screen("summary")
    _settle(qtbot, runner)
    assert window.person_box.count() == 2
    screenshot(window, "19-two-persons")
    runner.wait(30000)

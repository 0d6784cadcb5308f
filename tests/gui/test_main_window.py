"""The main window on real vaults: its screens and navigation by keyboard, the person in the header, search as
you type opening a record, layout kept between runs, a title that never carries health data, pasting a card,
a hundred files summed up in one line, and the question about a file that is about someone else."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from app.main_window import SCREENS, MainWindow, Placeholder
from app.tasks import SyncRunner, TaskRunner
from tests.conftest import FIXTURES
from tests.gui.synthea_vault import JULIETTE, NED, SYNTHEA, directory_files, synthea_vault

SHC = FIXTURES / "shl-shc" / "spec"


@pytest.fixture(scope="module")
def juliette_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("window") / "v"
    synthea_vault(folder, JULIETTE).close()
    return folder


@pytest.fixture
def juliette(juliette_folder):
    """The module's vault, unlocked for one test (closing the window locks it)."""
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    vault = Vault.unlock(juliette_folder, PASSPHRASE)
    yield vault
    if vault.is_open:
        vault.close()


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def _window(qtbot, vault, settings, runner=None, **kwargs) -> MainWindow:
    said: list[str] = []
    window = MainWindow(vault, runner or SyncRunner(), settings=settings, tell=said.append, **kwargs)
    window.said = said
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.windowHandle().requestActivate()     # shortcuts reach only the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    return window


def test_every_screen_is_reachable_from_the_pane_and_the_keyboard(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings)
    labels = [window.nav.item(n).text() for n in range(window.nav.count())]
    assert labels == ["Summary", "Timeline", "Records", "Labs & vitals", "Documents", "Sharing", "Activity",
                      "Settings"]
    assert window.nav.accessibleName() == "Sections" and window.current_key() == "summary"
    window.nav.setFocus()
    qtbot.keyClick(window.nav, Qt.Key.Key_Down)
    assert window.current_key() == "timeline" and window.stack.currentWidget() is window.screens["timeline"]
    qtbot.keyClick(window.nav, Qt.Key.Key_End)
    assert window.current_key() == "settings"
    for n, (_label, key) in enumerate(SCREENS, 1):
        qtbot.keyClick(window, getattr(Qt.Key, f"Key_{n}"), Qt.KeyboardModifier.ControlModifier)
        assert window.current_key() == key and window.nav.currentRow() == n - 1
        assert window.screens[key].isVisible()
    for _label, key in SCREENS:         # every section is its own screen, none a stand-in page
        page = window.screens[key]
        assert not isinstance(page, Placeholder) and type(page).__module__ == f"app.screens.{key}"
    shortcuts = {a.text(): a.shortcut().toString() for a in window.findChildren(type(window.import_action))}
    assert shortcuts["&Import files…"] == "Ctrl+O" and shortcuts["Import from &text or link…"] == "Ctrl+Shift+V"
    assert shortcuts["&Lock"] == "Ctrl+L" and shortcuts["&Quit"] == "Ctrl+Q"
    assert shortcuts["&Find in your records"] == "Ctrl+F"


def test_header_names_the_person_and_their_birth_date_not_an_identity_key(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings)
    text = window.person_label.text()
    assert "Juliette" in text and "Padberg" in text and "born" in text
    from vault.records.describe import local_date
    assert local_date("1990-07-14") in text or "19" in text
    assert "did:key" not in text and window.person_box.isHidden()


def test_search_as_you_type_and_the_result_opens_its_record(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings, TaskRunner())
    searches: list[tuple[str, int]] = []
    window.search_screen.searched.connect(lambda text, n: searches.append((text, n)))
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search_field.hasFocus()
    qtbot.keyClicks(window.search_field, "cholesterol")
    assert window.current_key() == "search"
    qtbot.waitUntil(lambda: bool(searches), timeout=10000)
    assert searches == [("cholesterol", searches[0][1])] and searches[0][1] > 0   # typing paused once: one search
    results = window.search_screen.results
    labels = [results.topLevelItem(n).text(0) for n in range(results.topLevelItemCount())]
    assert "Total Cholesterol" in labels
    qtbot.keyClick(window.search_field, Qt.Key.Key_Down)
    assert results.hasFocus()
    target = results.currentItem().data(0, Qt.ItemDataRole.UserRole)
    with qtbot.waitSignal(window.record_opened) as opened:
        qtbot.keyClick(results, Qt.Key.Key_Return)
    assert tuple(opened.args) == tuple(target)
    assert window.detail is not None and window.detail.isVisible()
    assert window.detail.windowTitle() == "medvault"
    window.detail.close()
    window.search_field.setFocus()
    qtbot.keyClick(window.search_field, Qt.Key.Key_Escape)
    assert window.search_field.text() == "" and window.current_key() == "summary"


def test_summary_rows_open_their_record_in_the_window(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings)
    view = window.screens["summary"].cards["allergies"].view
    with qtbot.waitSignal(window.record_opened) as opened:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(view.item(0, 0)).center())
    assert opened.args[0] == "AllergyIntolerance" and window.detail.isVisible()
    window.detail.close()


def test_size_splitter_and_screen_are_restored(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings)
    window.resize(640, 480)
    window.splitter.setSizes([230, 410])
    window.show_screen("labs")
    sizes = window.splitter.sizes()
    size = window.size()
    window.close()
    assert not juliette.is_open
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    again = _window(qtbot, Vault.unlock(juliette.folder, PASSPHRASE), settings)
    assert again.size() == size and size.width() < 700
    assert again.splitter.sizes() == sizes
    assert again.current_key() == "labs"
    stored = " ".join(str(settings.value(k)) for k in settings.allKeys())
    assert "Juliette" not in stored and "Padberg" not in stored


def test_the_title_never_carries_health_data(qtbot, juliette, settings):
    window = _window(qtbot, juliette, settings)
    window.search_field.setText("pregnancy")
    window.search_screen._run()
    window.open_record("Condition", window.screens["summary"].summary.problems[0].id)
    for key in ("records", "timeline", "labs", "documents"):
        window.show_screen(key)
    titles = {w.windowTitle() for w in QApplication.topLevelWidgets() if w.isVisible()}
    assert titles == {"medvault"}
    window.detail.close()


def test_lock_closes_the_vault_and_says_so(qtbot, vault_factory, settings):
    vault = vault_factory("lock")
    window = _window(qtbot, vault, settings)
    with qtbot.waitSignal(window.locked):
        qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not vault.is_open and window.vault is None


def test_paste_a_health_card_text(qtbot, unlocked_vault, settings):
    text = (SHC / "example-00-f-qr-code-numeric-value-0.txt").read_text().strip()
    assert text.startswith("shc:/")
    window = _window(qtbot, unlocked_vault, settings, ask_text=lambda parent: text)
    qtbot.keyClick(window, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    panel = window.import_panel
    with unlocked_vault.read_only() as conn:
        stored = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
    assert stored > 0
    assert panel.summary.text() == f"Pasted text imported: {stored} records added"
    assert window.person_label.text().startswith("<b>John B. Anyperson</b>")
    panel.details_button.click()
    assert panel.details.item(0).text().startswith("Pasted text: Imported")


def test_a_hundred_files_are_one_line_with_details_folded(qtbot, unlocked_vault, settings):
    us_core = FIXTURES / "us-core"
    files = [*sorted(us_core.glob("*.json"))[:98], us_core / "patient-example.json",
             us_core / "patient-child-example.json"]
    asked: list[int] = []
    window = _window(qtbot, unlocked_vault, settings, choose_files=lambda parent: [str(p) for p in files],
                     ask_other_person=lambda parent, n, owner: asked.append(n) or False)
    window.resize(1000, 700)
    before = window.size()
    window.choose_and_import()
    panel = window.import_panel
    summary = panel.summary.text()
    assert "\n" not in summary and summary.startswith("99 files imported: ") and "1 skipped" in summary
    assert panel.details.count() == 100 and panel.details.isHidden()
    qtbot.mouseClick(panel.details_button, Qt.MouseButton.LeftButton)
    assert panel.details.isVisible() and panel.details.height() <= 150
    assert window.size() == before and window.minimumSizeHint().height() < 700
    names = [panel.details.item(n).text().split(":", 1)[0] for n in range(panel.details.count())]
    assert sorted(names) == sorted(p.name for p in files)
    assert asked == [1]


def test_a_file_about_someone_else_asks_and_can_be_kept_apart(qtbot, vault_factory, settings):
    vault = vault_factory("two")
    questions: list[tuple[int, str | None]] = []
    picks = iter([[*map(str, directory_files()), str(SYNTHEA / JULIETTE)], [str(SYNTHEA / NED)]])
    window = _window(qtbot, vault, settings, choose_files=lambda parent: next(picks),
                     ask_other_person=lambda parent, n, owner: questions.append((n, owner)) or True)
    window.choose_and_import()
    assert questions == [] and "Juliette" in window.person_label.text()
    window.choose_and_import()
    assert questions == [(1, "Juliette Padberg")]
    assert window.import_panel.summary.text().startswith("1 file imported: ")
    assert window.person_box.isVisible() and window.person_box.count() == 2
    assert window.person_box.accessibleName() == "Whose records to show"
    window.person_box.setCurrentIndex(1)
    window.person_box.activated.emit(1)
    assert "Ned" in window.person_box.currentText() and window.ctx.person is not None
    assert window.person_label.text() == "Showing the records of" and "born" in window.person_box.currentText()
    summary = window.screens["summary"].summary
    assert summary.allergies == [] and summary.immunizations
    window.person_box.setCurrentIndex(0)
    window.person_box.activated.emit(0)
    assert window.person_box.currentText().startswith("Juliette Padberg (born ") and window.ctx.person is None
    assert {i.label for i in window.screens["summary"].summary.allergies} == {"Shellfish allergy",
                                                                               "Allergy to mould"}


def test_skipping_a_file_about_someone_else_keeps_nothing_of_it(qtbot, vault_factory, settings):
    vault = vault_factory("skip")
    picks = iter([[*map(str, directory_files()), str(SYNTHEA / JULIETTE)], [str(SYNTHEA / NED)]])
    window = _window(qtbot, vault, settings, choose_files=lambda parent: next(picks),
                     ask_other_person=lambda parent, n, owner: False)
    window.choose_and_import()
    with vault.read_only() as conn:
        before = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
    window.choose_and_import()
    assert window.import_panel.summary.text() == "No files imported: 1 skipped as about someone else"
    window.import_panel.details_button.click()
    assert window.import_panel.details.item(0).text() == f"{NED}: skipped, because it is about someone else."
    with vault.read_only() as conn:
        assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == before
    assert window.person_box.isHidden()


def test_a_pasted_link_that_cannot_be_used_says_why_in_one_sentence(qtbot, unlocked_vault, settings, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    links = iter(["shlink:/bm90IGpzb24",       # not a link's JSON
                  (FIXTURES / "shl-shc" / "validation-sdk" / "shlink-link-direct.txt").read_text().strip()])
    window = _window(qtbot, unlocked_vault, settings, ask_text=lambda parent: next(links))
    window.paste_and_import()
    assert window.import_panel.summary.text() == "This SMART Health Link is damaged: its content cannot be decoded."
    window.paste_and_import()
    assert window.import_panel.summary.text() == "This share has expired; ask the sender for a new one."
    assert window.said == [] and not (tmp_path / "state").exists()      # expected errors: no crash report
    with unlocked_vault.read_only() as conn:
        assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == 0
    assert window.import_action.isEnabled() and window.lock_action.isEnabled()

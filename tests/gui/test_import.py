"""Importing from the main window: a file chooser (injected), a progress bar that only moves forward, one summary
line with the files' details behind a button, the screens refreshed; a bad file that says what was wrong; Cancel
that keeps nothing from the file being imported; files dropped on the window."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.main_window import MainWindow
from app.tasks import SyncRunner, TaskRunner
from tests.gui.synthea_vault import NED, SYNTHEA, directory_files


def _window(qtbot, vault, tmp_path, runner, paths) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(vault, runner, settings=settings, choose_files=lambda parent: [str(p) for p in paths])
    qtbot.addWidget(window)
    return window


def _stored(vault) -> int:
    with vault.read_only() as conn:
        return conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]


def test_import_with_progress_then_one_summary_line(qtbot, unlocked_vault, tmp_path, screenshot):
    files = [*directory_files(), SYNTHEA / NED]
    window = _window(qtbot, unlocked_vault, tmp_path, TaskRunner(), files)
    window.show()
    summary = window.screens["summary"]
    qtbot.waitUntil(lambda: "Nothing here yet" in summary.status.text(), timeout=10000)
    seen: list[int] = []
    panel = window.import_panel
    panel.progress.valueChanged.connect(seen.append)
    qtbot.mouseClick(window.import_button, Qt.MouseButton.LeftButton)
    assert not window.import_button.isEnabled() and not window.lock_action.isEnabled()
    assert panel.cancel_button.isVisible() and panel.summary.text() == "Importing 3 files…"
    qtbot.waitUntil(lambda: window.import_button.isEnabled(), timeout=120000)
    assert seen and seen == sorted(seen) and max(seen) == 1000    # the bar only moves forward, to the end
    stored = _stored(unlocked_vault)
    assert panel.summary.text().startswith(f"3 files imported: {stored} records added")
    assert panel.details.isHidden() and panel.progress.isHidden() and panel.cancel_button.isHidden()
    qtbot.mouseClick(panel.details_button, Qt.MouseButton.LeftButton)
    lines = [panel.details.item(n).text() for n in range(panel.details.count())]
    assert lines[-1].startswith(f"{NED}: Imported ") and len(lines) == 3
    qtbot.waitUntil(lambda: summary.summary is not None and not summary.summary.is_empty(), timeout=10000)
    # the header is refreshed by its own read after the import, not with the summary
    qtbot.waitUntil(lambda: "Ned" in window.person_label.text(), timeout=10000)
    qtbot.wait(100)     # the header's new text is laid out on the next pass of the event loop
    screenshot(window, "05-imported")


def test_a_bad_file_says_what_was_wrong_and_imports_nothing(qtbot, unlocked_vault, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [')
    window = _window(qtbot, unlocked_vault, tmp_path, SyncRunner(), [bad])
    window.choose_and_import()
    panel = window.import_panel
    assert panel.summary.text() == "No files imported: 1 file refused"
    assert panel.details.item(0).text().startswith("broken.json: ") and "not valid JSON" in panel.details.item(0).text()
    assert _stored(unlocked_vault) == 0
    assert window.import_button.isEnabled() and panel.progress.isHidden()


def test_cancel_keeps_nothing_from_the_file(qtbot, unlocked_vault, tmp_path):
    hospital = directory_files()[0]
    window = _window(qtbot, unlocked_vault, tmp_path, SyncRunner(), [hospital])
    panel = window.import_panel
    # The synchronous runner delivers progress inline, so Cancel is pressed while the file is being imported.
    panel.progress.valueChanged.connect(lambda _v: panel.cancel_button.isVisible() and panel.cancel_button.click())
    window.show()
    window.choose_and_import()
    assert panel.summary.text() == "No files imported: 1 cancelled"
    assert "cancelled" in panel.details.item(0).text()
    assert _stored(unlocked_vault) == 0


def test_files_dropped_on_the_window_are_imported(qtbot, unlocked_vault, tmp_path):
    window = _window(qtbot, unlocked_vault, tmp_path, SyncRunner(), [])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in directory_files()])
    drop = QDropEvent(QPointF(QPoint(200, 200)), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert window.import_panel.summary.text() == f"2 files imported: {_stored(unlocked_vault)} records added"

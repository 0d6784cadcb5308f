"""Importing from the main window: a file chooser (injected), a progress bar that moves, the counts that follow,
a bad file that says what was wrong, and Cancel that keeps nothing from the file being imported."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.main_window import MainWindow
from app.tasks import SyncRunner, TaskRunner
from tests.conftest import FIXTURES


def _counts(window):
    return {window.table.item(r, 0).text(): int(window.table.item(r, 1).text())
            for r in range(window.table.rowCount())}


def test_import_with_progress_then_counts(qtbot, unlocked_vault, screenshot):
    synthea = FIXTURES / "synthea"
    files = sorted(synthea.glob("*Information*.json")) + [synthea / "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"]
    window = MainWindow(unlocked_vault, TaskRunner(), choose_files=lambda parent: [str(p) for p in files])
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "empty" in window.summary.text(), timeout=10000)
    seen = []
    window.progress.valueChanged.connect(seen.append)
    qtbot.mouseClick(window.import_button, Qt.MouseButton.LeftButton)
    assert not window.import_button.isEnabled() and not window.lock_button.isEnabled()
    qtbot.waitUntil(lambda: window.import_button.isEnabled(), timeout=120000)
    assert seen and seen == sorted(seen) and max(seen) == 1000  # the bar only moves forward, to the end
    assert "Ned_Hintz" in window.import_result.text() and "new record" in window.import_result.text()
    qtbot.waitUntil(lambda: "Condition" in _counts(window), timeout=10000)
    assert _counts(window)["Patient"] == 1
    screenshot(window, "05-imported")


def test_a_bad_file_says_what_was_wrong_and_imports_nothing(qtbot, unlocked_vault, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [')
    window = MainWindow(unlocked_vault, SyncRunner(), choose_files=lambda parent: [str(bad)])
    qtbot.addWidget(window)
    window.choose_and_import()
    assert "broken.json: " in window.import_result.text() and "not valid JSON" in window.import_result.text()
    assert _counts(window) == {}
    assert window.import_button.isEnabled() and window.progress.isHidden()


def test_cancel_keeps_nothing_from_the_file(qtbot, unlocked_vault):
    hospital = sorted((FIXTURES / "synthea").glob("hospitalInformation*.json"))[0]
    window = MainWindow(unlocked_vault, SyncRunner(), choose_files=lambda parent: [str(hospital)])
    qtbot.addWidget(window)
    # The synchronous runner delivers progress inline, so Cancel is pressed while the file is being imported.
    window.progress.valueChanged.connect(lambda _v: not window.cancel_button.isHidden() and window.cancel_import())
    window.choose_and_import()
    assert "cancelled" in window.import_result.text()
    assert _counts(window) == {}

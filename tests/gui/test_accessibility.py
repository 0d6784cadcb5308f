"""Every widget the keyboard can reach, on every screen of the main window (with a Synthea patient loaded, so
tables, charts and lists are filled), in the record detail, the import panel and the paste dialog, has a name a
screen reader can say. The test lists every offender with the screen it is on and where it sits, so whoever owns
the screen can find it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QCalendarWidget, QComboBox, QDialog, QMenu,
                               QMenuBar, QWidget)

from app.main_window import SCREENS, MainWindow, PasteDialog
from app.tasks import TaskRunner
from tests.gui.synthea_vault import JULIETTE, synthea_vault

# Composite widgets speak for their inner parts (a combo box's popup list, a spin box's line edit).
_COMPOSITES = (QComboBox, QAbstractSpinBox, QCalendarWidget, QMenu, QMenuBar)


def _spoken_name(widget: QWidget) -> str:
    """The name an assistive technology gets: the accessible name, or what Qt derives (a button's text, the
    text of the label whose buddy the widget is)."""
    if widget.accessibleName().strip():
        return widget.accessibleName().strip()
    interface = QAccessible.queryAccessibleInterface(widget)
    return interface.text(QAccessible.Text.Name).strip() if interface is not None and interface.isValid() else ""


def _keyboard_reachable(widget: QWidget) -> bool:
    return bool(widget.focusPolicy().value & Qt.FocusPolicy.TabFocus.value) and widget.focusProxy() is None


def _inside_composite(widget: QWidget, root: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        if isinstance(parent, _COMPOSITES):
            return True
        parent = parent.parentWidget()
    return False


def _where(widget: QWidget, root: QWidget) -> str:
    chain = []
    node: QWidget | None = widget
    while node is not None and node is not root:
        name = node.objectName()
        text = node.property("text") if node.metaObject().indexOfProperty("text") >= 0 else None
        label = type(node).__name__ + (f"#{name}" if name else "") + (f" {str(text)[:30]!r}" if text else "")
        chain.append(label)
        node = node.parentWidget()
    return " › ".join(reversed(chain))


def offenders(root: QWidget, label: str, walked: list[QWidget] | None = None) -> list[str]:
    out = []
    for widget in [root, *root.findChildren(QWidget)]:
        if isinstance(widget, QDialog) and widget is not root:
            continue                        # dialogs are walked on their own
        if not _keyboard_reachable(widget) or isinstance(widget, QMenuBar) or _inside_composite(widget, root):
            continue
        if walked is not None:
            walked.append(widget)
        if not _spoken_name(widget):
            out.append(f"{label}: {_where(widget, root)} ({type(widget).__module__})")
    return out


def test_the_walk_finds_an_unnamed_field_and_says_where_it_is(qtbot):
    from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QVBoxLayout
    page = QWidget()
    qtbot.addWidget(page)
    layout = QVBoxLayout(page)
    unnamed = QLineEdit()
    unnamed.setObjectName("dose")
    named_by_buddy, buddy = QLineEdit(), QLabel("&Reason")
    buddy.setBuddy(named_by_buddy)
    for w in (unnamed, buddy, named_by_buddy, QPushButton("Save"), QComboBox()):
        layout.addWidget(w)
    page.findChildren(QComboBox)[0].setAccessibleName("Unit")
    assert offenders(page, "Test page") == ["Test page: QLineEdit#dose (PySide6.QtWidgets)"]


@pytest.fixture(scope="module")
def vault_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("a11y") / "v"
    synthea_vault(folder, JULIETTE).close()
    return folder


def test_every_focusable_widget_of_every_screen_has_a_name(qtbot, vault_folder, tmp_path):
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    vault = Vault.unlock(vault_folder, PASSPHRASE)
    runner = TaskRunner()
    window = MainWindow(vault, runner, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        tell=lambda sentence: None)
    qtbot.addWidget(window)
    window.show()
    problems: list[str] = []
    walked: list[QWidget] = []
    for title, key in SCREENS:
        window.show_screen(key)
        screen = window.screens[key]
        runner.wait(20000)
        qtbot.wait(200)             # results delivered to the GUI thread fill the screen's views
        problems += offenders(screen, f"{title} screen (app.screens.{key})", walked)
    window.search_field.setText("cholesterol")
    window.search_screen._run()
    runner.wait(20000)
    qtbot.wait(200)
    problems += offenders(window.search_screen, "Search screen (app.screens.search)")
    window.import_panel.finish("1 file imported: 3 records added", ["a.json: Imported 3 new record(s)."])
    window.import_panel.details_button.setChecked(True)
    window.person_box.show()
    problems += offenders(window, "Main window (app.main_window)")
    summary = window.screens["summary"].summary
    window.open_record("AllergyIntolerance", summary.allergies[0].id)
    runner.wait(20000)
    qtbot.wait(200)
    problems += offenders(window.detail, "Record detail")
    paste = PasteDialog(window, "shc:/")
    problems += offenders(paste, "Paste dialog (app.main_window)")
    paste.close()
    window.detail.close()
    assert not problems, ("focusable widgets without an accessible name (setAccessibleName):\n  "
                          + "\n  ".join(problems))
    assert len(walked) >= 25        # the screens were really there and filled, not placeholders
    assert QApplication.focusWidget() is None or _spoken_name(QApplication.focusWidget())

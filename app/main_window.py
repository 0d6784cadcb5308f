"""The window behind the lock: a navigation pane, the screen chosen in it, the person whose records these are, a
search field, a menu bar with shortcuts, and importing (files, dropped or chosen; pasted cards and links).

Screens live in ``app.screens.<name>`` and are built the first time they are shown; one whose module is not there
yet shows a calm placeholder, so the window works while the app grows. Every read and every import runs on the
task runner through the application layer (``app.services.Session``); the GUI thread only draws. The window title
is "medvault" and nothing else: titles end up in task switchers, screen recordings and window-manager logs.
Size, splitter and the current screen are kept with QSettings (nothing from the records).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QLocale, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QPlainTextEdit,
                               QProgressBar, QPushButton, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from app import responsiveness
from app.questions import ask
from app.errors import ErrorPresenter, expected, user_message
from app.screens import ScreenContext

# (what the navigation pane says, module under app.screens)
SCREENS = (("Summary", "summary"), ("Timeline", "timeline"), ("Records", "records"), ("Labs & vitals", "labs"),
           ("Documents", "documents"), ("Sharing", "sharing"), ("Activity", "activity"), ("Settings", "settings"))
SETTINGS_PREFIX = "main_window"


def _ask_for_files(parent: QWidget) -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, "Import records", str(Path.home()),
                                            "Health records (*.json *.ndjson *.smart-health-card *.txt *.pdf *.png "
                                            "*.jpg *.jpeg);;All files (*)")
    return paths


def _ask_other_person(parent: QWidget, count: int, owner: str | None) -> bool:
    """True: keep them as a separate person; False: skip them."""
    whom = owner or "the person this vault belongs to"
    what = "This file is" if count == 1 else f"{count} of the files are"
    return ask(parent, f"{what} about someone other than {whom}. Keep {'its' if count == 1 else 'their'} records as "
                       "a separate person (you can switch between persons at the top of the window), or skip "
                       f"{'it' if count == 1 else 'them'}?", "Keep as a separate person", "Skip")


class PasteDialog(QDialog):
    """Where a SMART Health Card's ``shc:/`` text or a share link is pasted to be imported."""

    def __init__(self, parent: QWidget | None, text: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("medvault")
        layout = QVBoxLayout(self)
        intro = QLabel("Paste a SMART Health Card (text starting with shc:/) or a share link (shlink:/…), "
                       "then choose Import.")
        intro.setWordWrap(True)
        self.text = QPlainTextEdit(text)
        self.text.setAccessibleName("Card text or link to import")
        self.text.setTabChangesFocus(True)
        intro.setBuddy(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setAccessibleName("Import")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(intro)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(560, 260)


def _ask_for_text(parent: QWidget) -> str | None:
    from app.services.importing import is_link, looks_like_card_text
    clip = QGuiApplication.clipboard().text() if QGuiApplication.clipboard() else ""
    dialog = PasteDialog(parent, clip if clip and (is_link(clip) or looks_like_card_text(clip)) else "")
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.text.toPlainText().strip() or None


def import_summary(outcomes: list[Any], skipped: int = 0) -> str:
    """One line for a whole import: "3 files imported: 1,204 records added, 1 file refused"."""
    from vault.records.errors import ImportCancelled
    loc = QLocale()
    n = loc.toString
    files = all(o.source != "text" for o in outcomes)
    noun = (lambda k: "file" if k == 1 else "files") if files else (lambda k: "item" if k == 1 else "items")
    done = [o for o in outcomes if o.ok]
    cancelled = [o for o in outcomes if isinstance(o.error, ImportCancelled)]
    refused = [o for o in outcomes if not o.ok and not o.other_person and o not in cancelled]
    added = sum(o.report.added for o in done)
    updated = sum(o.report.updated for o in done)
    before = sum(1 for o in done if o.report.already_imported)
    if not files and len(outcomes) == 1 and done:
        head = "Pasted text imported"
    else:
        head = f"{n(len(done))} {noun(len(done))} imported" if done else f"No {noun(2)} imported"
    parts = [f"{n(added)} record{'s' if added != 1 else ''} added"] if done else []
    if updated:
        parts.append(f"{n(updated)} updated")
    if before:
        parts.append(f"{n(before)} {noun(before)} imported before")
    if refused:
        parts.append(f"{n(len(refused))} {noun(len(refused))} refused")
    if skipped:
        parts.append(f"{n(skipped)} skipped as about someone else")
    if cancelled:
        parts.append(f"{n(len(cancelled))} cancelled")
    return f"{head}: {', '.join(parts)}" if parts else head


def detail_line(outcome: Any, skipped_other: bool = False) -> str:
    name = "Pasted text" if outcome.source == "text" else outcome.name
    if skipped_other:
        return f"{name}: skipped, because it is about someone else."
    return f"{name}: {outcome.sentence}"


class ImportPanel(QWidget):
    """Progress and Cancel while importing; afterwards one summary line, with the per-file lines behind a
    Details button in a list of bounded height, so a hundred files never push the window off the screen."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        row = QHBoxLayout()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setAccessibleName("Import progress")
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the import")
        self.details_button = QToolButton()
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setAccessibleName("Show the result of each file")
        self.details_button.toggled.connect(self._toggle_details)
        self.close_button = QPushButton("Close")
        self.close_button.setAccessibleName("Close the import result")
        self.close_button.clicked.connect(self.hide)
        row.addWidget(self.summary, 1)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.details_button)
        row.addWidget(self.close_button)
        self.details = QListWidget()
        self.details.setAccessibleName("Result of each file")
        self.details.setMaximumHeight(150)
        self.details.setWordWrap(True)
        self.details.hide()
        layout.addLayout(row)
        layout.addWidget(self.details)
        self.hide()

    def start(self, count: int) -> None:
        self.details_button.setChecked(False)
        self.details_button.hide()
        self.close_button.hide()
        self.details.clear()
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.summary.setText(f"Importing {QLocale().toString(count)} {'file' if count == 1 else 'files'}…"
                             if count else "Importing…")
        self.show()

    def advance(self, value: int) -> None:
        # a file retried after the others of its batch would move the bar back; it only ever moves forward
        if value > self.progress.value():
            self.progress.setValue(min(value, 1000))

    def finish(self, summary: str, lines: list[str]) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.close_button.show()
        self.summary.setText(summary)
        self.details.clear()
        self.details.addItems(lines)
        rows = sum(self.details.sizeHintForRow(n) for n in range(min(len(lines), 8)))
        self.details.setFixedHeight(min(150, rows + 2 * self.details.frameWidth() + 4))
        self.details_button.setVisible(bool(lines))

    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.details_button.setAccessibleName("Hide the result of each file" if shown
                                              else "Show the result of each file")


class Placeholder(QWidget):
    """A calm page in place of a screen that could not be opened."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 32, 32, 32)
        heading = QLabel(f"<h2>{title}</h2>")
        body = QLabel(text)
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(heading)
        layout.addWidget(body)
        layout.addStretch(1)

    def refresh(self) -> None:
        pass


class RawRecordDialog(QDialog):
    """The record as stored (FHIR JSON), read-only: used until a readable detail view is available."""

    def __init__(self, parent: QWidget | None, ctx: ScreenContext) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("medvault")
        self.target: tuple[str, str] | None = None
        layout = QVBoxLayout(self)
        self.heading = QLabel()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Record as stored (FHIR JSON)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close")
        buttons.rejected.connect(self.close)
        layout.addWidget(self.heading)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(640, 560)

    def show_record(self, rtype: str, rid: str) -> None:
        from vault.records.query import get
        self.target = (rtype, rid)
        self.heading.setText("Reading the record…")
        self.text.clear()
        self.ctx.query(lambda conn: get(conn, rtype, rid), lambda doc: self._show(rtype, rid, doc))

    def _show(self, rtype: str, rid: str, doc: dict | None) -> None:
        if self.target != (rtype, rid):
            return
        self.heading.setText("The record as it was stored:" if doc else "This record is no longer in the vault.")
        self.text.setPlainText(json.dumps(doc, indent=2, ensure_ascii=False) if doc else "")


class MainWindow(QMainWindow):
    locked = Signal()
    quit_requested = Signal()
    record_opened = Signal(str, str)        # (rtype, id) whose detail was just shown

    def __init__(self, vault: Any, runner: Any, *, choose_files: Callable[[QWidget], list[str]] | None = None,
                 ask_text: Callable[[QWidget], str | None] | None = None,
                 ask_other_person: Callable[[QWidget, int, str | None], bool] | None = None,
                 settings: QSettings | None = None, tell: Callable[[str], None] | None = None) -> None:
        super().__init__()
        from app.services import Session
        self.setWindowTitle("medvault")  # never anything from the records
        self.setAcceptDrops(True)
        # the unlock window hands over the unlocked vault; a caller that already has the session may pass it
        self.session = vault if isinstance(vault, Session) else Session(vault)
        self.vault = vault = self.session.vault
        self._runner = runner
        self._choose_files = choose_files or _ask_for_files
        self._ask_text = ask_text or _ask_for_text
        self._ask_other_person = ask_other_person or _ask_other_person
        self._settings = settings if settings is not None else QSettings("medvault", "medvault")
        self.presenter = ErrorPresenter(self, tell)
        self._cancel: Any = None
        self.before_lock: list[Callable[[Any], None]] = []   # run with the vault on the worker that locks it
        self._stale: set[str] = set()
        self.persons: list[Any] = []
        self.owner: Any = None              # the vault's own person, once known
        self.detail: QWidget | None = None
        self.shared_window: QWidget | None = None   # a share someone handed over, read in memory
        self.ctx = ScreenContext(runner=runner, read=self.session.read, person=None,
                                 show_error=self._show_error, extras={"session": self.session, "vault": vault})
        self.screens: dict[str, QWidget] = {}

        self._build_header()
        self.nav = QListWidget()
        self.nav.setObjectName("navigation")
        self.nav.setAccessibleName("Sections")
        self.nav.setAccessibleDescription("Choose what to see; Ctrl+1 to Ctrl+8 also switch sections.")
        for n, (label, key) in enumerate(SCREENS, 1):
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, label)
            item.setToolTip(f"{label} (Ctrl+{n})")
            self.nav.addItem(item)
        self.nav.setMinimumWidth(150)
        self.nav.setSpacing(3)
        nav_font = self.nav.font()
        nav_font.setPointSizeF(nav_font.pointSizeF() * 1.1)
        self.nav.setFont(nav_font)
        self.nav.currentRowChanged.connect(self._nav_changed)
        self.nav.itemClicked.connect(lambda item: self.show_screen(item.data(Qt.ItemDataRole.UserRole)))
        self.stack = QStackedWidget()
        from app.screens.search import SearchScreen
        self.search_screen = SearchScreen(self.ctx)
        self.search_screen.open_record.connect(self.open_record)
        self.stack.addWidget(self.search_screen)
        self.import_panel = ImportPanel()
        self.import_panel.cancel_button.clicked.connect(self.cancel_import)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        right_layout.addWidget(self.stack, 1)
        right_layout.addWidget(self.import_panel)
        self.splitter = QSplitter()
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.nav)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([180, 920])
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(body)
        self._build_menus()
        self.resize(1100, 720)
        self._before_search: str | None = None
        self._focus_before: QWidget | None = None
        self._last_sources: list[Any] = []
        self._restore_layout()
        self.show_screen(self._initial_screen)
        self.nav.setFocus()     # the keyboard starts where the sections are chosen
        self.load_persons()
        responsiveness.settle()     # the window and its first screen live as long as the session

    # --- building ---------------------------------------------------------------------------------------------
    def _build_header(self) -> None:
        self.header = QWidget()
        row = QHBoxLayout(self.header)
        row.setContentsMargins(12, 8, 12, 8)
        self.person_label = QLabel("Your records")
        font = self.person_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.person_label.setFont(font)
        self.person_label.setTextFormat(Qt.TextFormat.RichText)
        self.person_box = QComboBox()
        self.person_box.setAccessibleName("Whose records to show")
        self.person_box.setToolTip("This vault keeps the records of more than one person; choose whose to show.")
        self.person_box.hide()
        self.person_box.activated.connect(self._person_chosen)
        self.import_button = QPushButton("Import…")
        self.import_button.setAccessibleName("Import records from files")
        self.import_button.setToolTip("FHIR JSON or NDJSON, SMART Health Cards, PDFs and images (Ctrl+O); "
                                      "you can also drop files on this window")
        self.import_button.clicked.connect(self.choose_and_import)
        self.search_field = QLineEdit()
        self.search_field.setObjectName("search")
        self.search_field.setPlaceholderText("Search your records (Ctrl+F)")
        self.search_field.setAccessibleName("Search your records")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.setMinimumWidth(260)
        self.search_field.textChanged.connect(self._search_changed)
        self.search_field.returnPressed.connect(self._search_enter)
        self.search_field.installEventFilter(self)
        row.addWidget(self.person_label)
        row.addWidget(self.person_box)
        row.addStretch(1)
        row.addWidget(self.import_button)
        row.addWidget(self.search_field)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.import_action = self._action(file_menu, "&Import files…", QKeySequence.StandardKey.Open,
                                          self.choose_and_import)
        self.paste_action = self._action(file_menu, "Import from &text or link…", "Ctrl+Shift+V",
                                         self.paste_and_import)
        self.open_shared_action = self._action(file_menu, "&Open a shared record…", "Ctrl+Shift+O",
                                               self.open_shared_record)
        file_menu.addSeparator()
        self.lock_action = self._action(file_menu, "&Lock", "Ctrl+L", self.lock)
        self.quit_action = self._action(file_menu, "&Quit", "Ctrl+Q", self.quit)
        view_menu = bar.addMenu("&View")
        self.view_actions = []
        for n, (label, key) in enumerate(SCREENS, 1):
            self.view_actions.append(self._action(view_menu, label, f"Ctrl+{n}",
                                                  lambda _checked=False, k=key: self.show_screen(k)))
        view_menu.addSeparator()
        self.find_action = self._action(view_menu, "&Find in your records", QKeySequence.StandardKey.Find,
                                        self.focus_search)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", None, self.show_shortcuts)
        self._action(help_menu, "&About medvault", None, self.show_about)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Callable) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work even while the menu bar is hidden (some desktops do)
        return action

    # --- screens ----------------------------------------------------------------------------------------------
    def _nav_changed(self, row: int) -> None:
        if 0 <= row < len(SCREENS):
            self.show_screen(SCREENS[row][1])

    def current_key(self) -> str | None:
        widget = self.stack.currentWidget()
        if widget is self.search_screen:
            return "search"
        return next((k for k, w in self.screens.items() if w is widget), None)

    def show_screen(self, key: str) -> None:
        keys = [k for _, k in SCREENS]
        if key not in keys:
            return
        if self.stack.currentWidget() is self.search_screen and self.search_field.text():
            self.search_field.blockSignals(True)
            self.search_field.clear()
            self.search_field.blockSignals(False)
            self.search_screen.set_query("")
        screen = self.screens.get(key) or self._build_screen(key)
        row = keys.index(key)
        if self.nav.currentRow() != row:
            self.nav.blockSignals(True)
            self.nav.setCurrentRow(row)
            self.nav.blockSignals(False)
        self.stack.setCurrentWidget(screen)
        if key in self._stale:
            self._stale.discard(key)
            self._refresh(screen)

    def _build_screen(self, key: str) -> QWidget:
        screen = self._load_screen(key)
        if hasattr(screen, "open_record"):
            screen.open_record.connect(self.open_record)
        self.screens[key] = screen
        self.stack.addWidget(screen)
        self._stale.add(key)
        responsiveness.settle()
        return screen

    def _load_screen(self, key: str) -> QWidget:
        name = f"app.screens.{key}"
        try:
            cls = _screen_class(importlib.import_module(name))
            if cls is None:
                raise LookupError(f"{name} defines no screen")      # every section has its screen: a bug
            return cls(self.ctx)
        except Exception as exc:  # a screen that fails to load must not take the window with it
            return self._broken_screen(exc)

    def _broken_screen(self, exc: BaseException) -> QWidget:
        from app.crash import record
        record(exc)
        return Placeholder("This part could not be opened",
                           "medvault could not open this part of the window. Your records are safe; a report "
                           "without any health data was saved for the developers.")

    def _refresh(self, screen: QWidget) -> None:
        refresh = getattr(screen, "refresh", None)
        if refresh is not None:
            try:
                refresh()
            except Exception as exc:
                self._show_error(exc)

    def refresh_all(self) -> None:
        """After an import or a change of person: the current screen now, the others when next shown."""
        current = self.stack.currentWidget()
        self._stale = {k for k, w in self.screens.items() if w is not current}
        if current is not None:
            self._refresh(current)

    # --- record detail ----------------------------------------------------------------------------------------
    def open_record(self, rtype: str, rid: str) -> None:
        if self.vault is None:
            return
        detail = self.detail
        if detail is None:
            detail = self.detail = self._make_detail()
            if hasattr(detail, "open_record"):
                detail.open_record.connect(self.open_record)
        if hasattr(detail, "show_record"):
            detail.show_record(rtype, rid)
        detail.show()
        detail.raise_()
        detail.activateWindow()
        self.record_opened.emit(rtype, rid)

    def _make_detail(self) -> QWidget:
        try:
            from app.screens.detail import RecordDetail
        except ImportError:
            return RawRecordDialog(self, self.ctx)
        if isinstance(RecordDetail, type) and issubclass(RecordDetail, QDialog):
            return RecordDetail(self.ctx, self)
        dialog = QDialog(self)
        dialog.setWindowTitle("medvault")
        layout = QVBoxLayout(dialog)
        layout.setContentsMargins(0, 0, 0, 0)
        inner = RecordDetail(self.ctx)
        layout.addWidget(inner)
        dialog.show_record = inner.show_record          # type: ignore[attr-defined]
        if hasattr(inner, "open_record"):
            inner.open_record.connect(self.open_record)
        dialog.inner = inner                            # type: ignore[attr-defined]
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the record")
        buttons.rejected.connect(dialog.close)
        buttons.setContentsMargins(12, 0, 12, 12)
        layout.addWidget(buttons)
        dialog.resize(720, 640)
        return dialog

    # --- search -----------------------------------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_field.selectAll()

    def _search_changed(self, text: str) -> None:
        self.search_screen.set_query(text)
        if text.strip():
            if self.stack.currentWidget() is not self.search_screen:
                self._before_search = self.current_key()
            self.stack.setCurrentWidget(self.search_screen)
            self.nav.blockSignals(True)     # no section is shown while the results are
            self.nav.setCurrentRow(-1)
            self.nav.blockSignals(False)
        elif self.stack.currentWidget() is self.search_screen:
            self.show_screen(self._before_search or "summary")

    def _search_enter(self) -> None:
        if self.search_screen.results.topLevelItemCount():
            self.search_screen.results.setFocus()
            self.search_screen.results.setCurrentItem(self.search_screen.results.topLevelItem(0))

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if watched is self.search_field and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape and self.search_field.text():
                self.search_field.clear()
                return True
            if event.key() == Qt.Key.Key_Down and self.search_screen.results.topLevelItemCount():
                self._search_enter()
                return True
        return super().eventFilter(watched, event)

    # --- persons ----------------------------------------------------------------------------------------------
    def load_persons(self) -> None:
        session = self.session

        def work() -> list[Any]:
            try:
                return session.persons()
            except ImportError:
                return []
        self._runner.run(work, self._show_persons, self._show_error)

    def _show_persons(self, persons: list[Any]) -> None:
        self.persons = persons
        self.owner = next((p for p in persons if getattr(p, "is_primary", False)), persons[0] if persons else None)
        current = self.current_person()
        self.person_box.blockSignals(True)
        self.person_box.clear()
        for p in persons:
            self.person_box.addItem(_person_text(p), p.id)
        if current is not None:
            self.person_box.setCurrentIndex(self.person_box.findData(current.id))
        self.person_box.blockSignals(False)
        self.person_box.setVisible(len(persons) > 1)
        self._show_person(current)

    def current_person(self) -> Any:
        wanted = self.ctx.person
        if wanted is None:
            return self.owner
        return next((p for p in self.persons if p.id == wanted), self.owner)

    def _show_person(self, person: Any) -> None:
        from vault.records.describe import local_date
        if len(self.persons) > 1:
            # the switcher names the person; the label only says what it is for
            self.person_label.setText("Showing the records of")
            self.person_label.setAccessibleName("Showing the records of")
            self.person_label.setBuddy(self.person_box)
            return
        if person is None:
            self.person_label.setText("<b>Your records</b>")
            self.person_label.setAccessibleName("Your records")
            return
        name = getattr(person, "display_name", None) or "Unnamed person"
        born = getattr(person, "birth_date", None)
        text = f"<b>{_escape(name)}</b>" + (f" · born {_escape(local_date(born))}" if born else "")
        self.person_label.setText(text)
        self.person_label.setAccessibleName(f"{name}, born {local_date(born)}" if born else name)

    def _person_chosen(self, index: int) -> None:
        pid = self.person_box.itemData(index)
        if pid is None:
            return
        person = None if self.owner is not None and pid == self.owner.id else pid
        self.set_person(person)

    def set_person(self, person: int | None) -> None:
        """Show ``person``'s records (None: the vault's own) on every screen."""
        self.ctx.person = person
        session = self.session
        self._runner.run(lambda: session.set_person(person), lambda _r: None, self._show_error)
        self._show_person(self.current_person())
        self.search_screen.refresh()
        self.refresh_all()

    # --- import -----------------------------------------------------------------------------------------------
    @property
    def importing(self) -> bool:
        return self._cancel is not None

    def choose_and_import(self) -> None:
        if self.importing or self.vault is None:
            return
        paths = self._choose_files(self)
        if paths:
            self.import_sources(paths)

    def paste_and_import(self) -> None:
        if self.importing or self.vault is None:
            return
        text = self._ask_text(self)
        if text:
            from app.services import PastedText
            self.import_sources([PastedText(text)])

    def dragEnterEvent(self, event: Any) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasText():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        from app.services import PastedText
        from app.services.importing import is_link, looks_like_card_text
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if paths:
            self.import_sources(paths)
            return
        text = mime.text().strip() if mime.hasText() else ""
        if text and (is_link(text) or looks_like_card_text(text)):
            self.import_sources([PastedText(text)])

    def import_sources(self, sources: list[Any], other_person: bool = False,
                       earlier: list[Any] | None = None, skipped: int = 0) -> None:
        """Import on a worker with progress and Cancel; each source is all-or-nothing. ``earlier`` holds the
        outcomes of the first pass when this is the second one, for the sources about someone else."""
        if self.vault is None or (self.importing and earlier is None):
            return
        from app.services import CancelToken
        session, cancel = self.session, CancelToken()
        self._cancel = cancel
        if earlier is None:
            self._last_sources = list(sources)
        self._set_busy(True)
        self.import_panel.start(sum(1 for source in sources if not _is_text(source)))

        def work(report: Callable[[Any], None]) -> list[Any]:
            return session.import_sources(sources, other_person=other_person, cancel=cancel,
                                          progress=lambda fraction: report(int(1000 * fraction)))

        self._runner.run_with_progress(work, self.import_panel.advance,
                                       lambda outcomes: self._imported(outcomes, earlier, skipped),
                                       self._import_failed)

    def cancel_import(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.import_panel.cancel_button.setEnabled(False)
            self.import_panel.summary.setText("Cancelling… nothing from the file being imported will be kept.")

    def _set_busy(self, busy: bool) -> None:
        if busy:
            # disabling the focused Import button would push the focus on to the search field
            self._focus_before = QApplication.focusWidget()
        for widget in (self.import_button, self.import_action, self.paste_action, self.lock_action):
            widget.setEnabled(not busy)
        if not busy and self._focus_before is not None:
            try:
                if self._focus_before.isVisible() and self._focus_before.isEnabled():
                    self._focus_before.setFocus()
            except RuntimeError:    # the widget was deleted meanwhile
                pass
            self._focus_before = None

    def _imported(self, outcomes: list[Any], earlier: list[Any] | None, skipped: int) -> None:
        self._cancel = None
        if earlier is not None:
            # the second pass stands in for the first pass's refusals of the same sources
            outcomes = [o for o in earlier if not o.other_person] + outcomes
        others = [o for o in outcomes if o.other_person]
        if others and earlier is None and self.vault is not None:
            owner = getattr(self.owner, "display_name", None)
            if self._ask_other_person(self, len(others), owner):
                self.import_sources(_sources_of(others, self._last_sources), other_person=True, earlier=outcomes)
                return
            skipped = len(others)
        self._set_busy(False)
        self.import_panel.finish(import_summary(outcomes, skipped),
                                 [detail_line(o, skipped > 0 and o.other_person) for o in outcomes])
        self.refresh_all()
        self.load_persons()   # a first Patient, or a person kept apart, changes the header and the switcher

    def _import_failed(self, exc: BaseException) -> None:
        self._cancel = None
        self._set_busy(False)
        self.import_panel.finish(user_message(exc), [])
        if not expected(exc):
            self._show_error(exc)   # a bug: the presenter writes the crash report
        self.refresh_all()
        self.load_persons()

    # --- a shared record ----------------------------------------------------------------------------------------
    def open_shared_record(self) -> None:
        """Scan or paste a share someone handed over (a clinician's note, say) and read it in memory with what was
        checked; keeping a copy is a choice made there (app.clinician)."""
        if self.vault is None:
            return
        if self.shared_window is None:
            from app.clinician.window import ClinicianWindow
            self.shared_window = ClinicianWindow(self.session, self._runner)
        self.shared_window.show()
        self.shared_window.raise_()
        self.shared_window.activateWindow()

    # --- errors -----------------------------------------------------------------------------------------------
    def _show_error(self, exc: BaseException) -> None:
        if self.vault is not None:      # a read that failed because the vault was just locked is no news
            self.presenter(exc)

    # --- help -------------------------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        lines = ["Ctrl+O: import files", "Ctrl+Shift+V: import a pasted card or link", "Ctrl+F: search",
                 *[f"Ctrl+{n}: {label}" for n, (label, _k) in enumerate(SCREENS, 1)], "Ctrl+L: lock",
                 "Ctrl+Q: quit"]
        QMessageBox.information(self, "medvault", "\n".join(lines))

    def show_about(self) -> None:
        QMessageBox.about(self, "medvault", "medvault keeps your medical records encrypted on this computer and "
                                            "shares them only when you choose to.")

    # --- layout kept between runs -----------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        s = self._settings
        geometry = s.value(f"{SETTINGS_PREFIX}/geometry")
        if isinstance(geometry, (QByteArray, bytes)) and geometry:
            self.restoreGeometry(QByteArray(geometry))
        splitter = s.value(f"{SETTINGS_PREFIX}/splitter")
        if isinstance(splitter, (QByteArray, bytes)) and splitter:
            self.splitter.restoreState(QByteArray(splitter))
        screen = s.value(f"{SETTINGS_PREFIX}/screen")
        self._initial_screen = screen if screen in {k for _, k in SCREENS} else "summary"

    def save_layout(self) -> None:
        s = self._settings
        s.setValue(f"{SETTINGS_PREFIX}/geometry", self.saveGeometry())
        s.setValue(f"{SETTINGS_PREFIX}/splitter", self.splitter.saveState())
        key = self.current_key()
        if key and key != "search":
            s.setValue(f"{SETTINGS_PREFIX}/screen", key)
        s.sync()

    def sizeHint(self) -> QSize:
        return QSize(1100, 720)

    # --- leaving ----------------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Closing the database may checkpoint its journal to disk, so it runs on the task runner."""
        if self.importing:
            return
        self.save_layout()
        vault, self.vault = self.vault, None
        self.lock_action.setEnabled(False)
        self.import_button.setEnabled(False)
        if self.detail is not None:
            self.detail.close()
        if self.shared_window is not None:
            self.shared_window.close()

        def done(_result: Any = None) -> None:
            self.locked.emit()
            self.close()

        hooks = list(self.before_lock)

        def close() -> None:
            try:
                for hook in hooks:      # on the worker, while the vault is still open (serving keeps its files)
                    hook(vault)
            finally:
                vault.close()

        if vault is not None and vault.is_open:
            self._runner.run(close, done, lambda exc: done())
        else:
            done()

    def quit(self) -> None:
        self.close()
        self.quit_requested.emit()

    def closeEvent(self, event: Any) -> None:
        if self.vault is not None:
            self.save_layout()
        if self._cancel is not None:
            # the worker still holds the vault: it stops at its next record, and the app closes the vault after
            # waiting for it (app.gui.run)
            self._cancel.cancel()
        elif self.vault is not None and self.vault.is_open:
            self.vault.close()
        if self.detail is not None:
            self.detail.close()
        if self.shared_window is not None:
            self.shared_window.close()
        responsiveness.release()    # what the session held is collectable again
        super().closeEvent(event)


def _screen_class(module: Any) -> type | None:
    cls = getattr(module, "Screen", None)
    if isinstance(cls, type) and issubclass(cls, QWidget):
        return cls
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, QWidget) and value.__module__ == module.__name__ \
                and value.__name__.endswith("Screen"):
            return value
    return None


def _person_text(person: Any) -> str:
    from vault.records.describe import local_date
    name = getattr(person, "display_name", None) or "Unnamed person"
    born = getattr(person, "birth_date", None)
    return f"{name} (born {local_date(born)})" if born else name


def _escape(text: str) -> str:
    import html
    return html.escape(text, quote=False)


def _is_text(source: Any) -> bool:
    from app.services import PastedText
    from app.services.importing import is_text_source
    return isinstance(source, PastedText) or (isinstance(source, str) and is_text_source(source))


def _sources_of(refused: list[Any], sources: list[Any]) -> list[Any]:
    """The sources to import again: refused files by path; the texts all again when any text was refused (a
    link's bundles are not told apart, and those already imported add nothing the second time)."""
    files = [o.source for o in refused if o.source != "text"]
    texts = [s for s in sources if _is_text(s)] if any(o.source == "text" for o in refused) else []
    return texts + files

"""The clinician's window: scan a code, watch it open step by step, then the checks beside the patient's records in
the patient's own views (Summary, Timeline, Records, Labs & vitals, Documents), read-only and in memory only.

Opening runs on the task runner through ``app.services.received``; the records live in a
``vault.records.memory.MemoryRecords`` that the screens read through their usual ``ScreenContext``, so nothing of the
patient's reaches this computer's disk. "Keep a copy" imports them into the vault, marked as a received share, and
only when asked. "Write back to the patient" (``app.clinician.writeback``) is offered once the patient's key is known
from what was opened; "Profile" shows the clinician's card (``app.clinician.profile``). Closing the record (or
scanning another) drops the screens first, then frees the memory on the runner; a read still running for a closed
record is dropped when it returns. The title is "medvault" and nothing else, as for every window. Opened by the
app's controller (``app.gui``) for a vault in clinician mode, it serves and locks like the patient's main window.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QMainWindow,
                               QPushButton, QSplitter, QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from app.clinician.scan import FrameSource, ScanPanel
from app.clinician.verification import StepsView, VerificationPanel
from app.errors import ErrorPresenter, expected, user_message
from app.questions import ask
from app.screens import ScreenContext
from app.services import received as rc

# (tab text, module under app.screens, class): the patient's own screens, in the patient's order
RECORD_SCREENS = (("Summary", "summary", "SummaryScreen"), ("Timeline", "timeline", "TimelineScreen"),
                  ("Records", "records", "RecordsScreen"), ("Labs && vitals", "labs", "LabsScreen"),
                  ("Documents", "documents", "DocumentsScreen"))


class _RecordContext(ScreenContext):
    """A screen context for one received record: once the record is closed, answers still on their way are
    dropped instead of reaching screens that are gone."""

    alive: bool = True

    def query(self, fn: Callable[[Any], Any], on_done: Callable[[Any], None],
              on_error: Callable[[BaseException], None] | None = None) -> None:
        failed = on_error or self.show_error
        super().query(fn, lambda result: on_done(result) if self.alive else None,
                      lambda exc: failed(exc) if self.alive else None)


def _ask_keep(parent: QWidget) -> bool:
    return ask(parent, "Keep a copy of these records in your vault? They are kept apart, as another person's "
                       "records, marked as received in a share with what was verified. Until now nothing of them "
                       "was saved on this computer.", "Keep a copy", "Cancel")


class ClinicianWindow(QMainWindow):
    locked = Signal()
    quit_requested = Signal()
    opened = Signal(object)                 # the Received, once its checks and records are on screen
    receipt_updated = Signal(object)        # the access receipt's verdict after sending it
    kept = Signal(object)                   # the import reports of "Keep a copy"

    def __init__(self, session: Any, runner: Any, *, source: FrameSource | None = None,
                 choose_file: Callable[[QWidget], str | None] | None = None,
                 grab: Callable[[QWidget], tuple[QPixmap, QRect]] | None = None,
                 clock: Callable[[], float] | None = None, connect: Callable[[Any], Any] | None = None,
                 allow_local_http: bool = True, confirm_keep: Callable[[QWidget], bool] | None = None,
                 tell: Callable[[str], None] | None = None, standalone: bool = False) -> None:
        super().__init__()
        from app.services import Session
        self.setWindowTitle("medvault")
        self.session = session if session is None or isinstance(session, Session) else Session(session)
        self._runner = runner
        self._clock = clock
        self._connect = connect
        # the embedded gateway serves over http on this computer or the clinic's network; public http is refused
        self._allow_local_http = allow_local_http
        self._confirm_keep = confirm_keep or _ask_keep
        self.standalone = standalone
        self.presenter = ErrorPresenter(self, tell)
        self.received: rc.Received | None = None
        self.ctx: _RecordContext | None = None
        self.screens: dict[str, QWidget] = {}
        self.detail: QDialog | None = None
        self._last: rc.Scanned | None = None
        self._opening = False
        self._closed = False                # closed while a share was opening: its answer is only freed
        self.before_lock: list[Callable[[Any], None]] = []   # run with the vault on the worker that closes it
        self.write_back_dialog: QDialog | None = None
        self.profile_dialog: QDialog | None = None

        self.scan = ScanPanel(runner, source=source, choose_file=choose_file, grab=grab)
        self.scan.scanned.connect(self.open_scanned)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.scan)
        self.pages.addWidget(self._build_received_page())
        self.setCentralWidget(self.pages)
        self._build_menus()
        self.resize(1180, 760)

    # --- building -------------------------------------------------------------------------------------------------
    def _build_received_page(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        col.setContentsMargins(8, 8, 8, 8)
        header = QHBoxLayout()
        self.person_label = QLabel()
        font = self.person_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.person_label.setFont(font)
        self.person_label.setTextFormat(Qt.TextFormat.RichText)
        self.mode_label = QLabel("Read-only · in memory only, nothing saved")
        self.mode_label.setToolTip("These records are held in memory and forgotten when you close them, unless you "
                                   "choose Keep a copy.")
        self.keep_button = QPushButton("Keep a copy…")
        self.keep_button.setAccessibleName("Keep a copy of these records in your vault")
        self.keep_button.clicked.connect(self.keep_copy)
        self.another_button = QPushButton("Scan another code")
        self.another_button.setAccessibleName("Close this record and scan another code")
        self.another_button.clicked.connect(self.scan_another)
        header.addWidget(self.person_label)
        header.addSpacing(12)
        header.addWidget(self.mode_label)
        header.addStretch(1)
        header.addWidget(self.keep_button)
        header.addWidget(self.another_button)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Message")
        self.note.hide()

        self.left = QStackedWidget()
        self.steps = StepsView()
        self.panel = VerificationPanel()
        self.left.addWidget(self.steps)
        self.left.addWidget(self.panel)
        self.write_back_button = QPushButton("Write back to the patient…")
        self.write_back_button.setAccessibleName("Write a signed note back to the patient")
        self.write_back_button.clicked.connect(self.write_back)
        left_column = QWidget()
        left_col = QVBoxLayout(left_column)
        left_col.setContentsMargins(0, 0, 0, 0)
        left_col.addWidget(self.left, 1)
        left_col.addWidget(self.write_back_button)
        left_column.setMinimumWidth(320)
        self.right = QStackedWidget()
        self.record_tabs = QTabWidget()
        self.record_tabs.setAccessibleName("Views of the shared records")
        self.record_tabs.tabBar().setAccessibleName("Summary, timeline, records, labs and documents")
        self.record_tabs.currentChanged.connect(self._tab_changed)
        self.refusal = self._build_refusal()
        self.waiting = QLabel("The records appear here once the checks are done.")
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for w in (self.waiting, self.record_tabs, self.refusal):
            self.right.addWidget(w)
        splitter = QSplitter()
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(left_column)
        splitter.addWidget(self.right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 800])
        col.addLayout(header)
        col.addWidget(self.note)
        col.addWidget(splitter, 1)
        return page

    def _build_refusal(self) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        col.setContentsMargins(24, 24, 24, 24)
        self.refusal_text = QLabel()
        self.refusal_text.setWordWrap(True)
        self.refusal_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.refusal_text.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.refusal_text.setAccessibleName("Why nothing is shown")
        self.passcode_row = QWidget()
        row = QHBoxLayout(self.passcode_row)
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel("&Passcode:")
        self.passcode = QLineEdit()
        self.passcode.setEchoMode(QLineEdit.EchoMode.Password)
        self.passcode.setAccessibleName("Passcode of the share")
        label.setBuddy(self.passcode)
        self.passcode_button = QPushButton("Open with this passcode")
        self.passcode_button.setAccessibleName("Open the share with this passcode")
        self.passcode_button.clicked.connect(self._open_with_passcode)
        self.passcode.returnPressed.connect(self._open_with_passcode)
        row.addWidget(label)
        row.addWidget(self.passcode, 1)
        row.addWidget(self.passcode_button)
        col.addWidget(self.refusal_text)
        col.addWidget(self.passcode_row)
        col.addStretch(1)
        return page

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.scan_action = self._action(file_menu, "&Scan a code", "Ctrl+N", self.scan_another)
        self._action(file_menu, "&Open a picture of a code…", QKeySequence.StandardKey.Open, self._open_picture)
        self._action(file_menu, "Pick a code on the &screen…", "Ctrl+Shift+S", self._pick_region)
        self.keep_action = self._action(file_menu, "&Keep a copy…", QKeySequence.StandardKey.Save, self.keep_copy)
        self.close_record_action = self._action(file_menu, "&Close this record", "Ctrl+W", self.scan_another)
        file_menu.addSeparator()
        self.write_back_action = self._action(file_menu, "&Write back to the patient…", "Ctrl+Shift+N",
                                              self.write_back)
        self.profile_action = self._action(file_menu, "&Profile…", "Ctrl+Shift+P", self.show_profile)
        self.profile_action.setEnabled(self.session is not None)
        file_menu.addSeparator()
        if self.standalone:
            self._action(file_menu, "&Lock", "Ctrl+L", self.lock)
            self._action(file_menu, "&Quit", "Ctrl+Q", self.quit)
        else:
            self._action(file_menu, "Close &window", "Ctrl+Shift+W", self.close)
        view = bar.addMenu("&View")
        self._action(view, "&Checks", "Ctrl+0", lambda: self.panel.headline.setFocus())
        self.view_actions = [self._action(view, text.replace("&&", "&"), f"Ctrl+{n}",
                                          lambda _c=False, i=n - 1: self.show_tab(i))
                             for n, (text, _m, _c) in enumerate(RECORD_SCREENS, 1)]
        self._set_record_actions(False)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Callable) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _set_record_actions(self, on: bool) -> None:
        for action in (self.keep_action, *self.view_actions):
            action.setEnabled(on)
        self.keep_button.setEnabled(on and self.session is not None)
        self.keep_button.setVisible(self.session is not None)
        self._update_write_back()

    def _update_write_back(self) -> None:
        why = write_back_problem(self.received, self.session)
        for control in (self.write_back_action, self.write_back_button):
            control.setEnabled(why is None)
            control.setToolTip(why or "Sign a note or measurements for the patient and show them a code to scan.")
        self.write_back_button.setVisible(self.session is not None)

    # --- scanning and opening ---------------------------------------------------------------------------------------
    def show_scan(self) -> None:
        self.pages.setCurrentWidget(self.scan)
        self.scan.tabs.currentWidget().setFocus()

    def _open_picture(self) -> None:
        self.show_scan()
        self.scan.tabs.setCurrentIndex(ScanPanel.PICTURE)
        self.scan.choose_picture()

    def _pick_region(self) -> None:
        self.show_scan()
        self.scan.tabs.setCurrentIndex(ScanPanel.REGION)
        self.scan.pick_region()

    def scan_another(self) -> None:
        if self._opening:
            return
        self.close_record()
        self.scan.reset()
        self.show_scan()

    def open_text(self, text: str) -> None:
        """A whole link or card text, as if scanned (the patient window's File > Open a shared record)."""
        from app.clinician.scan import scanned_from
        from sync.errors import SyncError
        try:
            scanned = scanned_from(text)
        except SyncError as exc:
            self.scan.say(exc.user_message)
            return
        self.open_scanned(scanned)

    def open_file(self, path: str) -> None:
        """A file the desktop handed over: a picture is read for its QR code; a record file belongs in a patient's
        vault, not in a clinician's reading window."""
        if Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"):
            self.show_scan()
            self.scan.read_picture_file(path)
        else:
            self.scan.say("This window opens share links and pictures of QR codes; import record files into a "
                          "patient's vault instead.")

    def open_scanned(self, scanned: rc.Scanned, passcode: str | None = None) -> None:
        if self._opening:
            return
        self._closed = False
        self.close_record()
        self._last = scanned
        self._opening = True
        self.pages.setCurrentWidget(self.pages.widget(1))
        self.left.setCurrentWidget(self.steps)
        self.right.setCurrentWidget(self.waiting)
        self.person_label.setText("<b>Opening the shared record…</b>")
        self.mode_label.hide()
        self.note.hide()
        self.steps.reset()
        self.steps.show_step(rc.Step("decode", rc.DONE))
        self._set_record_actions(False)
        self.another_button.setEnabled(False)
        vault = self.session.vault if self.session is not None else None
        clock, connect, local = self._clock, self._connect, self._allow_local_http
        decode = self.scan.last_decode_seconds

        def work(report: Callable[[Any], None]) -> rc.Received:
            timings = {"decode": decode} if decode is not None else {}
            return rc.open_scanned(scanned, vault=vault, allow_local_http=local, clock=clock, passcode=passcode,
                                   progress=report, connect=connect, timings=timings)

        self._runner.run_with_progress(work, self.steps.show_step, self._opened, self._open_failed)

    def _opened(self, received: rc.Received) -> None:
        self._opening = False
        if self._closed:
            self._runner.run(received.close, lambda _r: None, lambda _e: None)
            self._close_vault()
            return
        self.another_button.setEnabled(True)
        self.received = received
        self.panel.show_received(received)
        self._update_write_back()
        self.left.setCurrentWidget(self.panel)
        if received.opened:
            self._show_records(received)
        else:
            self._show_refusal(received)
        if received.receipt_entry is not None and self.session is not None:
            vault, entry = self.session.vault, received.receipt_entry
            self._runner.run(lambda: rc.send_receipt(vault, entry), self._receipt_sent, self._receipt_failed)
        self.opened.emit(received)

    def _open_failed(self, exc: BaseException) -> None:
        self._opening = False
        if self._closed:
            self._close_vault()
            return
        self.another_button.setEnabled(True)
        if not expected(exc):
            self.presenter(exc)         # a bug: the presenter keeps a crash report without health data
        self.person_label.setText("<b>The shared record could not be opened</b>")
        self.left.setCurrentWidget(self.steps)
        self.refusal_text.setText(user_message(exc))
        self.refusal_text.setAccessibleName(user_message(exc))
        self.passcode_row.hide()
        self.right.setCurrentWidget(self.refusal)

    def _show_refusal(self, received: rc.Received) -> None:
        from sync.errors import PasscodeLocked, PasscodeRequired, PasscodeWrong
        self.person_label.setText("<b>Nothing is shown</b>")
        self.mode_label.hide()
        sentence = user_message(received.refusal) if received.refusal is not None else ""
        self.refusal_text.setText(f"<b>Refused.</b> {html.escape(sentence)}<br><br>No record from this share was "
                                  "read or kept; the checks beside say what was found.")
        self.refusal_text.setAccessibleName("Refused: " + sentence)
        asks = isinstance(received.refusal, (PasscodeRequired, PasscodeWrong)) and \
            not isinstance(received.refusal, PasscodeLocked)
        self.passcode_row.setVisible(asks)
        self.right.setCurrentWidget(self.refusal)
        (self.passcode if asks else self.panel.headline).setFocus()

    def _open_with_passcode(self) -> None:
        code = self.passcode.text()
        self.passcode.clear()
        if code and self._last is not None:
            self.open_scanned(self._last, passcode=code)

    def _receipt_sent(self, verdict: rc.Verdict) -> None:
        if self.received is not None:
            self.received.set_verdict(verdict)
            self.panel.update_verdict(verdict)
        self.receipt_updated.emit(verdict)

    def _receipt_failed(self, exc: BaseException) -> None:
        if not expected(exc):
            self.presenter(exc)
        self._receipt_sent(rc.Verdict("receipt", rc.WAITING, "Waiting: your receipt stays queued in your vault ("
                                      + user_message(exc).rstrip(".") + ")."))

    # --- the records --------------------------------------------------------------------------------------------------
    def _show_records(self, received: rc.Received) -> None:
        ctx = _RecordContext(runner=self._runner, read=received.records.read_only, person=None,
                             show_error=self._show_error)
        self.ctx = ctx
        self.screens = {}
        self.record_tabs.blockSignals(True)
        while self.record_tabs.count():
            self.record_tabs.removeTab(0)
        for text, key, _cls in RECORD_SCREENS:
            holder = QWidget()
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self.record_tabs.addTab(holder, text)
        self.record_tabs.blockSignals(False)
        self.record_tabs.setCurrentIndex(0)
        self._tab_changed(0)
        self.right.setCurrentWidget(self.record_tabs)
        self.mode_label.show()
        self._set_record_actions(True)
        self.keep_button.setText("Keep a copy…")
        ctx.query(_patient, self._show_person)

    def _tab_changed(self, index: int) -> None:
        if self.ctx is None or not 0 <= index < len(RECORD_SCREENS):
            return
        _text, key, cls_name = RECORD_SCREENS[index]
        screen = self.screens.get(key)
        if screen is None:
            import importlib
            cls = getattr(importlib.import_module(f"app.screens.{key}"), cls_name)
            screen = cls(self.ctx)
            if hasattr(screen, "open_record"):
                screen.open_record.connect(self.open_record)
            self.screens[key] = screen
            self.record_tabs.widget(index).layout().addWidget(screen)
            refresh = getattr(screen, "refresh", None)
            if refresh is not None:
                refresh()

    def show_tab(self, index: int) -> None:
        if self.ctx is not None:
            self.record_tabs.setCurrentIndex(index)
            self.record_tabs.currentWidget().setFocus()

    def _show_person(self, person: Any) -> None:
        from vault.records.describe import local_date
        if person is None:
            self.person_label.setText("<b>Shared records</b>")
            self.person_label.setAccessibleName("Shared records")
            return
        name = person.display_name or "Unnamed person"
        born = f" · born {local_date(person.birth_date)}" if person.birth_date else ""
        self.person_label.setText(f"<b>{html.escape(name)}</b>{html.escape(born)}")
        self.person_label.setAccessibleName(f"Shared records of {name}{born.replace(' · ', ', ')}")

    def open_record(self, rtype: str, rid: str) -> None:
        if self.ctx is None:
            return
        if self.detail is None:
            from app.screens.detail import RecordDetail
            dialog = QDialog(self)
            dialog.setWindowTitle("medvault")
            layout = QVBoxLayout(dialog)
            layout.setContentsMargins(0, 0, 0, 0)
            inner = RecordDetail(self.ctx)
            inner.open_record.connect(self.open_record)
            layout.addWidget(inner)
            buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
            buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the record")
            buttons.rejected.connect(dialog.close)
            buttons.setContentsMargins(12, 0, 12, 12)
            layout.addWidget(buttons)
            dialog.resize(720, 640)
            dialog.inner = inner            # type: ignore[attr-defined]
            self.detail = dialog
        self.detail.inner.show_record(rtype, rid)     # type: ignore[attr-defined]
        self.detail.show()
        self.detail.raise_()

    def close_record(self) -> None:
        """Forget the open record: screens first, then its memory, freed on the runner (a read may hold it)."""
        if self.ctx is not None:
            self.ctx.alive = False
            self.ctx = None
        if self.detail is not None:
            self.detail.close()
            self.detail.deleteLater()
            self.detail = None
        for screen in self.screens.values():
            screen.hide()
            screen.deleteLater()
        self.screens = {}
        while self.record_tabs.count():
            self.record_tabs.removeTab(0)
        received, self.received = self.received, None
        if received is not None and received.records is not None:
            self._runner.run(received.close, lambda _r: None, lambda _e: None)
        self._set_record_actions(False)

    # --- writing back and the profile -----------------------------------------------------------------------------
    def write_back(self) -> None:
        received = self.received
        if write_back_problem(received, self.session) is not None:
            return
        from app.clinician.writeback import WriteBackDialog
        dialog = WriteBackDialog(self.session, received, self._runner, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _o=None, d=dialog: self._forget_dialog("write_back_dialog", d))
        self.write_back_dialog = dialog
        dialog.show()
        dialog.note_field.setFocus()

    def show_profile(self) -> None:
        if self.session is None:
            return
        if self.profile_dialog is not None:
            self.profile_dialog.show()
            self.profile_dialog.raise_()
            return
        from app.clinician.profile import ProfileDialog
        dialog = ProfileDialog(self.session, self._runner, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _o=None, d=dialog: self._forget_dialog("profile_dialog", d))
        self.profile_dialog = dialog
        dialog.show()

    def _forget_dialog(self, attribute: str, dialog: QDialog) -> None:
        if getattr(self, attribute, None) is dialog:
            setattr(self, attribute, None)

    # --- keeping a copy ---------------------------------------------------------------------------------------------
    def keep_copy(self) -> None:
        received = self.received
        if received is None or not received.opened or self.session is None or not self.keep_button.isEnabled():
            return
        if not self._confirm_keep(self):
            return
        vault = self.session.vault
        self.keep_button.setEnabled(False)
        self.keep_action.setEnabled(False)
        self._runner.run(lambda: rc.keep_copy(vault, received), self._kept, self._keep_failed)

    def _kept(self, reports: list[Any]) -> None:
        added = sum(r.added for r in reports)
        before = all(r.already_imported for r in reports)
        self.keep_button.setText("Copy kept")
        self.say("This copy was kept before; nothing new was added to your vault." if before else
                 f"A copy was kept in your vault: {added} record{'s' if added != 1 else ''}, marked as received "
                 "in a share, with what was verified.")
        self.kept.emit(reports)

    def _keep_failed(self, exc: BaseException) -> None:
        self.keep_button.setEnabled(True)
        self.keep_action.setEnabled(True)
        if not expected(exc):
            self.presenter(exc)
        self.say("No copy was kept: " + user_message(exc))

    def say(self, sentence: str) -> None:
        self.note.setText(sentence)
        self.note.setAccessibleDescription(sentence)
        self.note.show()

    # --- errors and leaving -----------------------------------------------------------------------------------------
    def _show_error(self, exc: BaseException) -> None:
        self.presenter(exc)

    @property
    def vault(self) -> Any:
        """The open vault, None once the window closed or locked (what the app's controller asks)."""
        if self._closed or self.session is None or not self.session.vault.is_open:
            return None
        return self.session.vault

    importing = False       # the controller's auto-lock waits for imports; this window imports only on Keep a copy

    def lock(self) -> None:
        self.locked.emit()          # the unlock window shows first, so closing this one does not end the app
        self.close()

    def quit(self) -> None:
        self.close()
        self.quit_requested.emit()

    def closeEvent(self, event: Any) -> None:
        if self.scan.camera.running:
            self.scan.camera.stop()
        for dialog in (self.write_back_dialog, self.profile_dialog):
            if dialog is not None:
                dialog.close()
        self.close_record()
        self._closed = True
        if not self._opening:               # else the opening still holds the vault: closed when it answers
            self._close_vault()
        super().closeEvent(event)

    def _close_vault(self) -> None:
        """The clinician's own window owns its vault; one opened from the patient's window does not."""
        if self.standalone and self.session is not None and self.session.vault.is_open:
            vault, hooks = self.session.vault, list(self.before_lock)

            def close() -> None:
                try:
                    for hook in hooks:      # while the vault is still open (serving keeps its files)
                        hook(vault)
                finally:
                    vault.close()

            self._runner.run(close, lambda _r: None, lambda _e: None)


def write_back_problem(received: rc.Received | None, session: Any) -> str | None:
    """Why nothing can be written back for what is open (the sentence for the disabled control), or None.

    The note is encrypted to the patient's key, so it needs a share that names it: a directed share's verified
    signer, or the did:key of the share's consent record (``app.services.writeback.Recipient.from_opened``)."""
    from app.services.writeback import Recipient
    if session is None:
        return "Writing back needs your vault: open medvault with your passphrase first."
    if received is None:
        return "Open a patient's share first: the note is encrypted to the patient it names."
    if not received.opened:
        return "This share was refused: nothing can be written back to it."
    if received.kind == "medvault-return":
        return "This is a clinician's note, not a patient's share: there is nobody to write back to."
    if received.kind == "medvault-share" and any(v.key == "signature" and v.status != rc.PASSED
                                                 for v in received.verdicts):
        return "The sender's signature was not verified, so the patient's key is not known."
    try:
        Recipient.from_opened(received)
    except Exception as exc:     # the writeback service's typed error: its sentence says what is missing
        return user_message(exc)
    return None


def _patient(conn: Any) -> Any:
    from vault.records.persons import persons
    people = persons(conn)
    return people[0] if people else None

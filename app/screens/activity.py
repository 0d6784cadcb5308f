"""Activity: everything done with the vault, in words, newest first; each consent's state on the consent network;
who opened the shares; and the integrity check.

The log is the vault's audit log (``app.services.activity``), read a page at a time as the table scrolls. The
consent network's state, the opens and the check run on the task runner; the check reports each of its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QListWidget, QProgressBar, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from app.errors import expected, user_message
from app.models.paged import Index, PagedTableModel
from app.screens import ScreenContext
from app.screens.parts import read_only_rows
from app.services import activity
from app.unlock_window import InlineMessage
from vault.records.describe import local_date


class ActivityModel(PagedTableModel):
    """The audit log in words, a page at a time, newest first."""

    COLUMNS = ("When", "What happened", "On the consent network")

    def __init__(self, ctx: Any, page_size: int = activity.PAGE, parent: Any = None) -> None:
        super().__init__(ctx, page_size, parent)
        self.entries: list[activity.Entry] = []

    def _clear(self) -> None:
        self.entries = []

    def _row_total(self) -> int:
        return len(self.entries)

    def _page_job(self, cursor: Any) -> Callable[[Any], tuple[Any, Any]]:
        size = self.page_size

        def job(conn: Any) -> tuple[Any, Any]:
            got = activity.page(conn, before=cursor, limit=size)
            return got.entries, got.older
        return job

    def _append(self, page: list[activity.Entry]) -> None:
        if not page:
            return
        first = len(self.entries)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        self.entries.extend(page)
        self.endInsertRows()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        entry = self.entries[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            if column == 0:
                return local_date(entry.at, with_time=True)
            if column == 1:
                return entry.words
            return entry.chain.words if entry.chain is not None else ""
        if role == Qt.ItemDataRole.ToolTipRole and column == 2 and entry.chain is not None:
            return f"{entry.chain.words}\nTransaction {entry.chain.tx}" if entry.chain.tx else entry.chain.words
        return None


class ActivityScreen(QWidget):
    def __init__(self, ctx: ScreenContext, page_size: int = activity.PAGE) -> None:
        super().__init__()
        self.ctx = ctx
        self.session = ctx.extras.get("session")
        self.model = ActivityModel(ctx, page_size, self)

        heading = QLabel("<h2>Activity</h2>")
        intro = QLabel("Everything done with your vault, newest first. The log keeps no health data, and each entry "
                       "is sealed to the one before it, so a change to it shows when its integrity is checked.")
        intro.setWordWrap(True)

        self.check_button = QPushButton("Check integrity")
        self.check_button.setAccessibleName("Check the integrity of the vault and its log")
        self.check_button.clicked.connect(self.check_integrity)
        self.check_progress = QProgressBar()
        self.check_progress.setAccessibleName("Integrity check progress")
        self.check_progress.setTextVisible(False)
        self.check_progress.hide()
        self.check_result = InlineMessage("Integrity check result")
        check_row = QHBoxLayout()
        check_row.addWidget(self.check_button)
        check_row.addWidget(self.check_progress, 1)
        check_row.addStretch(1)

        self.chain_label = QLabel()
        self.chain_label.setWordWrap(True)
        self.chain_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.send_button = QPushButton("Send what waits")
        self.send_button.setAccessibleName("Send the consent changes waiting for the consent network")
        self.send_button.clicked.connect(self.send_waiting)
        self.send_button.hide()
        chain_row = QHBoxLayout()
        chain_row.addWidget(self.chain_label, 1)
        chain_row.addWidget(self.send_button)

        self.table = QTableView()
        self.table.setObjectName("activity-log")
        self.table.setAccessibleName("Activity log")
        self.table.setAccessibleDescription("What was done with the vault, newest first.")
        self.table.setModel(self.model)
        read_only_rows(self.table)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 300)
        self.empty_label = QLabel()
        self.model.failed.connect(self.empty_label.setText)

        opened_title = QLabel("<b>Who opened your shares</b>")
        self.opened_note = QLabel()
        self.opened_note.setWordWrap(True)
        self.opened = QListWidget()
        self.opened.setAccessibleName("Who opened your shares")
        self.opened.setMaximumHeight(120)
        opened_title.setBuddy(self.opened)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addLayout(check_row)
        layout.addWidget(self.check_result)
        layout.addLayout(chain_row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_label)
        layout.addWidget(opened_title)
        layout.addWidget(self.opened_note)
        layout.addWidget(self.opened)

    # --- loading ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.model.reload()
        self.load_chain()

    def load_chain(self) -> None:
        """The consent network's state and who opened which share: both may wait on the network."""
        session = self.session
        if session is None:
            return
        self.chain_label.setText("Asking the consent network…")

        def work() -> tuple[Any, Any, list[dict]]:
            return session.chain_status(), session.share_accesses(), session.list_shares()
        self.ctx.runner.run(work, self._show_chain, self._chain_failed)

    def _show_chain(self, result: tuple[Any, Any, list[dict]]) -> None:
        status, log, shares = result
        self.chain_label.setText(chain_line(status, "Set one up in Settings."))
        # the column stays while any entry has a state to show, even after the network was removed
        self.table.setColumnHidden(2, not status.configured and not any(e.chain for e in self.model.entries))
        waiting = status.counts()["pending"]
        self.send_button.setVisible(status.configured and waiting > 0)
        self.opened_note.setText(log.note)
        self.opened.clear()
        self.opened.addItems(activity.opened_words(log, shares) or ["Nobody has opened your shares, as far as the "
                                                                    "consent network knows."])

    def _chain_failed(self, exc: BaseException) -> None:
        self.chain_label.setText(f"The consent network's state could not be read: {user_message(exc)}")
        if not expected(exc):
            self.ctx.show_error(exc)

    # --- actions ------------------------------------------------------------------------------------------------
    def send_waiting(self) -> None:
        session = self.session
        if session is None:
            return
        self.send_button.setEnabled(False)
        self.chain_label.setText("Sending what waits to the consent network…")

        def done(report: Any) -> None:
            self.send_button.setEnabled(True)
            self.refresh()

        def failed(exc: BaseException) -> None:
            self.send_button.setEnabled(True)
            self._chain_failed(exc)
        self.ctx.runner.run(session.sync_chain, done, failed)

    def check_integrity(self) -> None:
        session = self.session
        if session is None:
            return
        steps = len(session.vault.VERIFY_STEPS)
        self.check_button.setEnabled(False)
        self.check_result.say("Checking…", warning=False)
        self.check_progress.setRange(0, steps)
        self.check_progress.setValue(0)
        self.check_progress.show()

        def work(report: Callable[[Any], None]) -> activity.Integrity:
            return session.check_integrity(lambda n, total, words: report((n, words)))
        self.ctx.runner.run_with_progress(work, self._check_step, self._checked, self._check_failed)

    def _check_step(self, step: tuple[int, str]) -> None:
        n, words = step
        self.check_progress.setValue(n)
        self.check_result.say(words, warning=False)

    def _checked(self, result: activity.Integrity) -> None:
        self.check_button.setEnabled(True)
        self.check_progress.setValue(self.check_progress.maximum())
        self.check_progress.hide()
        self.check_result.say(result.sentence if result.intact else f"Not intact. {result.sentence}",
                              warning=not result.intact)
        self.check_button.setFocus()

    def _check_failed(self, exc: BaseException) -> None:
        self.check_button.setEnabled(True)
        self.check_progress.hide()
        self.check_result.say(user_message(exc))
        if not expected(exc):
            self.ctx.show_error(exc)


Screen = ActivityScreen


def chain_line(status: Any, how_to_set_up: str = "") -> str:
    """The consent network's state in one sentence (``chain.ChainStatus``)."""
    if not status.configured:
        return ("No consent network is set up: your shares work without one, but nobody else can check them or "
                f"record that they were opened. {how_to_set_up}").rstrip()
    counts = status.counts()
    parts = [f"{counts['pending']:,} waiting to be sent"] if counts["pending"] else []
    parts.append(f"{counts['anchored']:,} recorded")
    if counts["failed"]:
        parts.append(f"{counts['failed']:,} refused")
    return f"Consent network at {status.rpc}: {status.detail.rstrip('.')}. Consent changes: {', '.join(parts)}."

"""The window behind the lock: for now what the vault holds and who this identity is, and a Lock button.

The full record views (summary, timeline, charts, sharing) build on this window. Counts are read on the task
runner, never on the GUI thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.errors import user_message


def _record_counts(vault: Any) -> list[tuple[str, int]]:
    from vault.records.query import type_counts
    with vault.read() as conn:
        return sorted(type_counts(conn).items(), key=lambda item: (-item[1], item[0]))


class MainWindow(QMainWindow):
    locked = Signal()

    def __init__(self, vault: Any, runner: Any) -> None:
        super().__init__()
        self.setWindowTitle("medvault")  # never anything from the records
        self.resize(720, 480)
        self.vault = vault
        self._runner = runner
        body = QWidget()
        layout = QVBoxLayout(body)
        self.heading = QLabel("<h2>Your vault is unlocked</h2>")
        self.identity = QLabel(f"Your identity: <code>{vault.identity.did}</code>")
        self.identity.setWordWrap(True)
        self.summary = QLabel("Reading your records…")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Record type", "Count"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.lock_button = QPushButton("Lock")
        self.lock_button.clicked.connect(self.lock)
        for widget in (self.heading, self.identity, self.summary, self.table, self.lock_button):
            layout.addWidget(widget)
        self.setCentralWidget(body)
        self.refresh()

    def refresh(self) -> None:
        vault = self.vault
        self._runner.run(lambda: _record_counts(vault), self._show_counts,
                         lambda exc: self.summary.setText(user_message(exc)))

    def _show_counts(self, counts: list[tuple[str, int]]) -> None:
        total = sum(n for _, n in counts)
        self.summary.setText(f"{total} records in your vault." if total else
                             "Your vault is empty. Import your records with medvault import.")
        self.table.setRowCount(len(counts))
        for row, (rtype, n) in enumerate(counts):
            self.table.setItem(row, 0, QTableWidgetItem(rtype))
            self.table.setItem(row, 1, QTableWidgetItem(str(n)))

    def lock(self) -> None:
        if self.vault is not None and self.vault.is_open:
            self.vault.close()
        self.vault = None
        self.locked.emit()
        self.close()

    def closeEvent(self, event: Any) -> None:
        if self.vault is not None and self.vault.is_open:
            self.vault.close()
        super().closeEvent(event)

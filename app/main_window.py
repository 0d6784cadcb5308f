"""The window behind the lock: what the vault holds, who this identity is, importing files, and Lock.

The full record views (summary, timeline, charts, sharing) build on this window. Counts are read and files
imported on the task runner, never on the GUI thread; an import shows its progress and can be cancelled.
"""

from __future__ import annotations

from typing import Any

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMainWindow, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.errors import user_message


def _record_counts(vault: Any) -> list[tuple[str, int]]:
    from vault.records.query import type_counts
    with vault.read() as conn:
        return sorted(type_counts(conn).items(), key=lambda item: (-item[1], item[0]))


class MainWindow(QMainWindow):
    locked = Signal()

    def __init__(self, vault: Any, runner: Any,
                 choose_files: Callable[[QWidget], list[str]] | None = None) -> None:
        super().__init__()
        self._choose_files = choose_files or _ask_for_files
        self._cancel: Any = None
        self.setAcceptDrops(True)
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
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.import_button = QPushButton("Import records…")
        self.import_button.setToolTip("FHIR JSON or NDJSON, SMART Health Cards, PDFs and images; "
                                      "you can also drop files on this window")
        self.import_button.clicked.connect(self.choose_and_import)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_import)
        self.import_result = QLabel()
        self.import_result.setWordWrap(True)
        self.lock_button = QPushButton("Lock")
        self.lock_button.clicked.connect(self.lock)
        row = QHBoxLayout()
        row.addWidget(self.import_button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        for widget in (self.heading, self.identity, self.summary, self.table):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(self.import_result)
        layout.addWidget(self.lock_button)
        self.setCentralWidget(body)
        self.refresh()

    def refresh(self) -> None:
        vault = self.vault
        self._runner.run(lambda: _record_counts(vault), self._show_counts,
                         lambda exc: self.summary.setText(user_message(exc)))

    def _show_counts(self, counts: list[tuple[str, int]]) -> None:
        total = sum(n for _, n in counts)
        self.summary.setText(f"{total} records in your vault." if total else
                             "Your vault is empty. Import your records with the button below, or drop files on this window.")
        self.table.setRowCount(len(counts))
        for row, (rtype, n) in enumerate(counts):
            self.table.setItem(row, 0, QTableWidgetItem(rtype))
            self.table.setItem(row, 1, QTableWidgetItem(str(n)))

    # --- import -----------------------------------------------------------------------------------------------
    def choose_and_import(self) -> None:
        paths = self._choose_files(self)
        if paths:
            self.import_files(paths)

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.import_files(paths)

    def import_files(self, paths: list[str]) -> None:
        """Import on a worker with a progress bar and Cancel; each file is all-or-nothing."""
        if self._cancel is not None or self.vault is None:
            return
        from vault.records.importer import CancelToken, ImportService
        vault, cancel = self.vault, CancelToken()
        self._cancel = cancel
        self.import_button.setEnabled(False)
        self.lock_button.setEnabled(False)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.import_result.setText(f"Importing {len(paths)} file(s)…")

        def work(report: Callable[[Any], None]) -> list:
            def progress(index: int, count: int, done: int, total: int) -> None:
                report(int(1000 * (index + (done / total if total else 1)) / max(count, 1)))
            return ImportService(vault).import_paths([Path(p) for p in paths], progress, cancel)

        self._runner.run_with_progress(work, self.progress.setValue, self._imported, self._import_failed)

    def cancel_import(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.import_result.setText("Cancelling… nothing from the current file will be kept.")

    def _end_import(self) -> None:
        self._cancel = None
        self.progress.hide()
        self.cancel_button.hide()
        self.import_button.setEnabled(True)
        self.lock_button.setEnabled(True)

    def _imported(self, results: list) -> None:
        self._end_import()
        lines = []
        for path, outcome in results:
            sentence = outcome.sentence() if hasattr(outcome, "sentence") else user_message(outcome)
            lines.append(f"{Path(path).name}: {sentence}")
        self.import_result.setText("\n".join(lines))
        self.refresh()

    def _import_failed(self, exc: BaseException) -> None:
        self._end_import()
        self.import_result.setText(user_message(exc))
        self.refresh()

    def lock(self) -> None:
        """Closing the database may checkpoint its journal to disk, so it runs on the task runner."""
        vault, self.vault = self.vault, None
        self.lock_button.setEnabled(False)
        self.import_button.setEnabled(False)

        def done(_result: Any = None) -> None:
            self.locked.emit()
            self.close()

        if vault is not None and vault.is_open:
            self._runner.run(vault.close, done, lambda exc: done())
        else:
            done()

    def closeEvent(self, event: Any) -> None:
        if self.vault is not None and self.vault.is_open:
            self.vault.close()
        super().closeEvent(event)


def _ask_for_files(parent: QWidget) -> list[str]:
    paths, _ = QFileDialog.getOpenFileNames(parent, "Import records", str(Path.home()),
                                            "Health records (*.json *.ndjson *.smart-health-card *.txt *.pdf *.png "
                                            "*.jpg *.jpeg);;All files (*)")
    return paths

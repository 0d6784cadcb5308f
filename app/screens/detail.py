"""One record, read like a letter: what it is, when, the values with their units and normal range, who and where,
and where the record came from (the file or issuer, whether its signature was checked, when it was imported).
The original FHIR JSON is one tab away, read-only.

``RecordDetail`` works in a pane beside a list or alone in a dialog. The record and the names it points at are read
on the task runner; the words come from ``vault.records.describe``. Where the vault can share, "Share this record…"
opens the share wizard with the record shown.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QTabWidget, QTextBrowser, QVBoxLayout,
                               QWidget)

from app.errors import expected, user_message
from app.screens import ScreenContext
from app.screens.parts import heading
from app.screens.share_picked import can_share, open_share_wizard
from vault.records import describe, query

MAX_NAMES = 60          # references whose names are looked up; a record pointing at more lists the first ones
EMPTY = "Choose a record to read it here."


@dataclass(frozen=True, slots=True)
class Loaded:
    rtype: str
    id: str
    description: describe.Description
    sources: list[tuple[str, str]]
    raw: str                                    # the stored JSON, indented for reading
    links: dict[str, str] = field(default_factory=dict)    # a value naming one record in the vault -> "Type/id"


def load(conn: Any, rtype: str, rid: str) -> Loaded | None:
    resource = query.get(conn, rtype, rid)
    if resource is None:
        return None
    names: dict[str, str] = {}
    for ref in describe.references(resource)[:MAX_NAMES]:
        target = query.get(conn, *ref.split("/", 1))
        if target is not None:
            names[ref] = describe.name_of(target)
    sources = query.provenance(conn, resource["resourceType"], resource["id"])
    said = describe.describe(resource, names)
    # a value that is the name of exactly one record the vault holds opens that record
    by_name: dict[str, list[str]] = {}
    for ref, name in names.items():
        by_name.setdefault(describe.plain(name), []).append(ref)
    links = {value: refs[0] for _label, value in said.lines
             if len(refs := by_name.get(value, [])) == 1 and refs[0] != f"{resource['resourceType']}/{resource['id']}"}
    return Loaded(resource["resourceType"], resource["id"], said, describe.describe_sources(sources),
                  json.dumps(resource, indent=2, ensure_ascii=False), links)


def _value(value: str, links: dict[str, str]) -> str:
    text = html.escape(value).replace("\n", "<br>")
    ref = links.get(value)
    return f"<a href='record:{html.escape(ref, quote=True)}'>{text}</a>" if ref else text


def _rows(lines: list[tuple[str, str]] | tuple[tuple[str, str], ...], links: dict[str, str] | None = None) -> str:
    cells = "".join(
        f"<tr><td valign='top' width='150' style='padding:3px 12px 3px 0'><b>{html.escape(label)}</b></td>"
        f"<td valign='top' style='padding:3px 0'>{_value(value, links or {})}</td></tr>"
        for label, value in lines)
    return f"<table cellspacing='0'>{cells}</table>"


def letter_html(loaded: Loaded) -> str:
    """The description as HTML: every value escaped (records come from files), no colours (the palette's), and a
    value that names another record of the vault (the visit, the prescriber) a link that opens it."""
    d = loaded.description
    body = _rows(d.lines, loaded.links) if d.lines else "<p>This record says nothing more than its title.</p>"
    return (f"{body}<h3 style='margin-top:18px'>Where this record came from</h3>{_rows(loaded.sources)}")


class RecordDetail(QWidget):
    open_record = Signal(str, str)              # a link to another record was followed
    shown = Signal(str, str)                    # a record's words are on screen (rtype, id)
    failed = Signal(str)

    def __init__(self, ctx: ScreenContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loaded: Loaded | None = None
        self.target: tuple[str, str] | None = None
        self._generation = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.title = heading(EMPTY, scale=1.35)
        self.subtitle = QLabel()
        self.subtitle.setWordWrap(True)
        self.letter = QTextBrowser()
        self.letter.setObjectName("record-letter")
        self.letter.setAccessibleName("Record details")
        self.letter.setOpenLinks(False)
        self.letter.setAccessibleDescription("Links open the record they name; Tab moves between them, Enter "
                                             "follows one.")
        self.letter.anchorClicked.connect(self._follow)
        self.raw = QPlainTextEdit()
        self.raw.setObjectName("record-raw-json")
        self.raw.setAccessibleName("Original record data (FHIR JSON)")
        self.raw.setReadOnly(True)
        self.raw.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.raw.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Record views")
        self.tabs.addTab(self.letter, "Details")
        self.tabs.addTab(self.raw, "Original data (FHIR JSON)")
        self.tabs.tabBar().setAccessibleName("Details or original data")
        self.tabs.setTabToolTip(1, "The record exactly as stored, in the FHIR format health systems exchange")
        self.share_button: QPushButton | None = None
        self.wizard: Any = None
        layout.addWidget(self.title)
        if can_share(ctx):
            self.share_button = QPushButton("Share this record\u2026")
            self.share_button.setAccessibleName("Share this record")
            self.share_button.clicked.connect(lambda _checked=False: self.share())
            self.share_button.hide()
            row = QHBoxLayout()
            row.addWidget(self.subtitle, 1)
            row.addWidget(self.share_button)
            layout.addLayout(row)
        else:
            layout.addWidget(self.subtitle)
        layout.addWidget(self.tabs, 1)
        self._show_tabs(False)

    # --- public ---------------------------------------------------------------------------------------------------
    def show_record(self, rtype: str, rid: str) -> None:
        """Read the record on the task runner and show it; a later call wins over an earlier one still loading."""
        self._generation += 1
        generation = self._generation
        self.target = (rtype, rid)
        if self.loaded is None or (self.loaded.rtype, self.loaded.id) != (rtype, rid):
            self.subtitle.setText("Reading the record…")
        self.ctx.query(lambda conn: load(conn, rtype, rid), lambda result: self._show(generation, result),
                       lambda exc: self._failed(generation, exc))

    def refresh(self) -> None:
        if self.target is not None:
            self.show_record(*self.target)

    def clear(self) -> None:
        self._generation += 1
        self.loaded = self.target = None
        self.title.setText(EMPTY)
        self.subtitle.clear()
        self.letter.clear()
        self.raw.clear()
        self._show_tabs(False)

    def show_raw(self, raw: bool = True) -> None:
        """Switch between the letter and the original JSON."""
        self.tabs.setCurrentWidget(self.raw if raw else self.letter)

    @property
    def description(self) -> describe.Description | None:
        return self.loaded.description if self.loaded else None

    def raw_text(self) -> str:
        return self.raw.toPlainText()

    def share(self) -> Any:
        """Open the share wizard with the record on screen picked."""
        if self.loaded is None or self.share_button is None:
            return None
        self.wizard = open_share_wizard(self.ctx, [f"{self.loaded.rtype}/{self.loaded.id}"], self)
        return self.wizard

    def _show_tabs(self, shown: bool) -> None:
        # the record and what can be done with it appear together: nothing to share while none is shown
        self.tabs.setVisible(shown)
        if self.share_button is not None:
            self.share_button.setVisible(shown)

    def _follow(self, url: QUrl) -> None:
        target = url.toString()
        if target.startswith("record:") and "/" in target:
            self.open_record.emit(*target[len("record:"):].split("/", 1))

    # --- results --------------------------------------------------------------------------------------------------
    def _show(self, generation: int, loaded: Loaded | None) -> None:
        if generation != self._generation:
            return
        if loaded is None:
            self.loaded = None
            self.title.setText("This record is not in your vault any more.")
            self.subtitle.clear()
            self._show_tabs(False)
            self.failed.emit(self.title.text())
            return
        self.loaded = loaded
        d = loaded.description
        self.title.setText(d.title)
        self.subtitle.setText(f"{d.kind}, {d.when}" if d.when else d.kind)
        self.letter.setHtml(letter_html(loaded))
        self.raw.setPlainText(loaded.raw)
        self._show_tabs(True)
        self.shown.emit(loaded.rtype, loaded.id)

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.subtitle.setText(user_message(exc))
        self.failed.emit(user_message(exc))
        if not expected(exc):
            self.ctx.show_error(exc)            # a bug: the presenter keeps a crash report

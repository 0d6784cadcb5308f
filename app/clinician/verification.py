"""What was checked when a share was opened, in words: the steps while it opens, then one row per check.

Every row has an icon and a word (Passed, Failed, Not checked, Waiting) besides its sentence, so nothing rests on
colour; a check that was not made says "Not checked" and why, it never shows a tick by default. The rows come from
``app.services.received.Verdict``; colours and icons from the palette and the style.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QScrollArea, QStyle,
                               QVBoxLayout, QWidget)

from app.services import received as rc

STATUS_WORDS = {rc.PASSED: "Passed", rc.FAILED: "Failed", rc.NOT_CHECKED: "Not checked",
                rc.NOT_APPLICABLE: "Not checked", rc.WAITING: "Waiting"}
_STATUS_ICONS = {rc.PASSED: QStyle.StandardPixmap.SP_DialogApplyButton,
                 rc.FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical,
                 rc.NOT_CHECKED: QStyle.StandardPixmap.SP_MessageBoxWarning,
                 rc.NOT_APPLICABLE: QStyle.StandardPixmap.SP_MessageBoxInformation,
                 rc.WAITING: QStyle.StandardPixmap.SP_BrowserReload}
STEP_WORDS = {rc.STARTED: "in progress…", rc.DONE: "done", rc.SKIPPED: "not needed", rc.STOPPED: "stopped here"}
_STEP_ICONS = {rc.DONE: QStyle.StandardPixmap.SP_DialogApplyButton,
               rc.STOPPED: QStyle.StandardPixmap.SP_MessageBoxCritical,
               rc.STARTED: QStyle.StandardPixmap.SP_BrowserReload,
               rc.SKIPPED: QStyle.StandardPixmap.SP_ArrowRight}
ICON = QSize(22, 22)


def _icon_label(widget: QWidget, which: QStyle.StandardPixmap | None) -> QLabel:
    label = QLabel()
    label.setFixedSize(ICON)
    if which is not None:
        label.setPixmap(widget.style().standardIcon(which).pixmap(ICON))
    return label


def _split(detail: str) -> tuple[str, str]:
    """"Passed: the rest" -> ("Passed:", "the rest"), so the verdict's own first word can be set in bold."""
    head, sep, rest = detail.partition(": ")
    return (head + ":", rest) if sep and len(head) <= 24 else ("", detail)


class CheckRow(QFrame):
    """One check: icon, title, status word, and the sentence saying what was found."""

    def __init__(self, verdict: rc.Verdict) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        self.icon = _icon_label(self, None)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        # selectable from the keyboard so Tab reaches every check and a screen reader reads it whole
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.text.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.text, 1)
        self.show_verdict(verdict)

    def show_verdict(self, verdict: rc.Verdict) -> None:
        import html
        self.verdict = verdict
        self.icon.setPixmap(self.style().standardIcon(_STATUS_ICONS[verdict.status]).pixmap(ICON))
        word = STATUS_WORDS[verdict.status]
        head, rest = _split(verdict.detail)
        self.text.setText(f"<b>{html.escape(verdict.title)}</b><br><b>{html.escape(head or word + ':')}</b> "
                          f"{html.escape(rest)}")
        said = rest if head in ("", word + ":") else f"{head} {rest}"
        self.text.setAccessibleName(f"{verdict.title}: {word}. {said[:1].upper()}{said[1:]}")
        self.icon.setAccessibleName(word)
        self.icon.setToolTip(word)


class VerificationPanel(QWidget):
    """The checks of one opened (or refused) share, the most important sentence first."""

    def __init__(self) -> None:
        super().__init__()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.headline.setFont(font)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                              | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.headline.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.headline.setAccessibleName("Outcome of the checks")
        self.about = QLabel()
        self.about.setWordWrap(True)
        self.about.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body = QWidget()
        self.rows_layout = QVBoxLayout(body)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(6)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer.addWidget(self.headline)
        outer.addWidget(self.about)
        outer.addWidget(scroll, 1)
        self.rows: dict[str, CheckRow] = {}

    def show_received(self, received: rc.Received) -> None:
        self.headline.setText(received.headline)
        self.headline.setAccessibleName(received.headline)
        self.about.setText(_about(received))
        for row in self.rows.values():
            row.deleteLater()
        self.rows = {}
        for verdict in received.verdicts:
            row = CheckRow(verdict)
            self.rows[verdict.key] = row
            self.rows_layout.addWidget(row)
        self.rows_layout.addStretch(1)

    def update_verdict(self, verdict: rc.Verdict) -> None:
        """A check that finished later (the access receipt reaching the chain)."""
        row = self.rows.get(verdict.key)
        if row is not None:
            row.show_verdict(verdict)

    def status_of(self, key: str) -> str:
        return self.rows[key].verdict.status

    def text_of(self, key: str) -> str:
        return self.rows[key].text.accessibleName()


def _about(received: rc.Received) -> str:
    kinds = {"shlink": "A SMART Health Link", "medvault-share": "A share sealed to you",
             "medvault-return": "A signed note handed back", "card": "A SMART Health Card"}
    parts = [kinds.get(received.kind, "A share")]
    if received.label:
        parts.append(f"labelled \u201c{received.label}\u201d")
    text = " ".join(parts) + "."
    if received.opened:
        n = sum(received.counts.values())
        text += f" {n} record{'s' if n != 1 else ''} read into memory, read-only; nothing is saved unless you " \
                "choose Keep a copy."
        if received.skipped:
            text += f" {received.skipped} could not be read and are not shown."
    return text


class StepsView(QWidget):
    """The opening as it happens: each step with an icon and a word; a bar for the whole."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("<b>Opening the shared record…</b>")
        self.bar = QProgressBar()
        self.bar.setRange(0, len(rc.STEPS))
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Opening progress")
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        self.icons: dict[str, QLabel] = {}
        self.states: dict[str, QLabel] = {}
        for n, (key, words) in enumerate(rc.STEPS):
            icon = _icon_label(self, None)
            name = QLabel(words)
            state = QLabel("waiting")
            self.icons[key], self.states[key] = icon, state
            grid.addWidget(icon, n, 0)
            grid.addWidget(name, n, 1)
            grid.addWidget(state, n, 2)
        grid.setColumnStretch(1, 1)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addLayout(grid)
        layout.addStretch(1)

    def reset(self) -> None:
        self.bar.setValue(0)
        for key, _words in rc.STEPS:
            self.icons[key].clear()
            self.states[key].setText("waiting")

    def show_step(self, step: Any) -> None:
        if step.key not in self.states:
            return
        self.states[step.key].setText(STEP_WORDS.get(step.state, step.state))
        which = _STEP_ICONS.get(step.state)
        if which is not None:
            self.icons[step.key].setPixmap(self.style().standardIcon(which).pixmap(ICON))
        finished = sum(1 for label in self.states.values() if label.text() in ("done", "not needed"))
        self.bar.setValue(finished)

    def state_of(self, key: str) -> str:
        return self.states[key].text()

"""Writing back to the patient: a note and measurements (common vitals, with their LOINC codes and UCUM units),
signed with the clinician's key, encrypted to the patient and handed over as a QR code the patient's app imports.

``WriteBackDialog(session, opened, runner)`` is opened from the clinician window with what was just opened (a
``app.services.received.Received`` or ``sync.receiver.OpenResult``; or pass ``recipient=`` built from the patient's
card). The dialog draws; ``app.services.writeback`` does the work, on the task runner. The window title is
"medvault" and nothing else: the patient's name appears inside the dialog only.
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from app.errors import user_message
from app.share_qr import QrPanel, qr_image
from app.unlock_window import InlineMessage

EXPIRY_CHOICES = (("1 day", timedelta(days=1)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)))
UNSET_STEP = 0.1
RETURN_WARNING = ("Anyone holding this code can fetch the note until it is imported or expires, but only the "
                  "patient's medvault can open it: it is encrypted to their key.")


def _short(text: str, keep: int = 10) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}\u2026{text[-keep:]}"


def _number(value: float) -> str:
    return f"{value:g}"


def button(text: str, name: str, slot: Any) -> QPushButton:
    """A push button with its spoken name and what it does."""
    b = QPushButton(text)
    b.setAccessibleName(name)
    b.clicked.connect(slot)
    return b


def right_aligned(*widgets: QWidget) -> QHBoxLayout:
    """A row of buttons at the right edge, as dialogs place them."""
    row = QHBoxLayout()
    row.addStretch(1)
    for w in widgets:
        row.addWidget(w)
    return row


def measurement_words(m: Any) -> str:
    """A measurement as the list shows it: "Blood pressure 128/82 mmHg"."""
    from app.services.writeback import VITALS
    vital = VITALS[m.vital]
    return f"{vital.label} {'/'.join(_number(v) for v in m.values)} {vital.unit_label}"


class WriteBackDialog(QDialog):
    """Write, sign and hand over; then the return code, to show the patient or print."""

    written = Signal(object)        # the WriteBack, once published

    def __init__(self, session: Any, opened: Any = None, runner: Any = None, *, recipient: Any = None,
                 parent: QWidget | None = None, guard: Any = None, ask_save_path: Any = None,
                 ask_printer: Any = None) -> None:
        super().__init__(parent)
        from app.services import writeback
        self.setWindowTitle("medvault")
        self.session = session
        self._runner = runner
        self.result: Any = None
        self.recipient = recipient
        self.measurements: list[Any] = []
        problem = None
        if self.recipient is None:
            try:
                self.recipient = writeback.Recipient.from_opened(opened)
            except Exception as exc:  # a share that names no patient: the dialog says so and offers nothing to send
                problem = user_message(exc)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._write_page(problem))
        self.pages.addWidget(self._done_page(guard, ask_save_path, ask_printer))
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.resize(980, 640)
        self._vital_changed()

    # --- building -------------------------------------------------------------------------------------------------
    def _write_page(self, problem: str | None) -> QWidget:
        from app.services.writeback import VITALS
        page = QWidget()
        col = QVBoxLayout(page)
        self.for_label = QLabel()
        self.for_label.setWordWrap(True)
        self.for_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                               | Qt.TextInteractionFlag.TextSelectableByMouse)
        self.for_label.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if self.recipient is not None:
            who = self.recipient.display or "the patient"
            self.for_label.setText(f"<b>For {html.escape(who)}</b> \u2014 encrypted to their key "
                                   f"({_short(self.recipient.did, 14)}), taken from their {self.recipient.how}. "
                                   "Signed with your key: their app checks it against the practitioner registry.")
            self.for_label.setAccessibleName(f"Writing back to {who}")
        else:
            self.for_label.setTextFormat(Qt.TextFormat.PlainText)
            self.for_label.setText(problem or "")
            self.for_label.setAccessibleName("Who the note is for")
        col.addWidget(self.for_label)

        note_box = QGroupBox("Note")
        self.title_field = QLineEdit("Clinical note")
        self.title_field.setAccessibleName("Title of the note")
        self.title_field.setMaxLength(120)
        self.note_field = QPlainTextEdit()
        self.note_field.setAccessibleName("Text of the note")
        self.note_field.setPlaceholderText("What you want the patient to keep (optional if you add measurements)")
        self.note_field.setTabChangesFocus(True)
        form = QFormLayout(note_box)
        title_label, text_label = QLabel("&Title"), QLabel("T&ext")
        title_label.setBuddy(self.title_field)
        text_label.setBuddy(self.note_field)
        form.addRow(title_label, self.title_field)
        form.addRow(text_label, self.note_field)

        vitals_box = QGroupBox("Measurements")
        self.vital_box = QComboBox()
        self.vital_box.setAccessibleName("Which measurement")
        for key, vital in VITALS.items():
            self.vital_box.addItem(f"{vital.label} (LOINC {vital.code})", key)
        self.vital_box.currentIndexChanged.connect(self._vital_changed)
        self.value_boxes = [QDoubleSpinBox(), QDoubleSpinBox()]
        for n, box in enumerate(self.value_boxes):
            box.setDecimals(1)
            box.setAccessibleName("First value" if n == 0 else "Second value")
        self.add_button = button("&Add measurement", "Add the measurement to the note", self.add_measurement)
        self.list = QListWidget()
        self.list.setAccessibleName("Measurements to send")
        self.remove_button = button("&Remove", "Remove the selected measurement", self.remove_measurement)
        pick = QHBoxLayout()
        what_label = QLabel("&Measurement")
        what_label.setBuddy(self.vital_box)
        pick.addWidget(what_label)
        pick.addWidget(self.vital_box, 2)
        for box in self.value_boxes:
            pick.addWidget(box, 1)
        pick.addWidget(self.add_button)
        vcol = QVBoxLayout(vitals_box)
        vcol.addLayout(pick)
        vcol.addWidget(self.list)
        vcol.addLayout(right_aligned(self.remove_button))

        self.expiry_box = QComboBox()
        self.expiry_box.setAccessibleName("How long the code can be fetched")
        for text, delta in EXPIRY_CHOICES:
            self.expiry_box.addItem(text, delta)
        self.expiry_box.setCurrentIndex(1)
        self.message = InlineMessage("Write-back result")
        self.sign_button = button("&Sign and create the code", "Sign the note and create its QR code for the "
                                  "patient", self.sign)
        self.sign_button.setDefault(True)
        self.cancel_button = button("Cancel", "Cancel without sending anything", self.reject)
        bottom = QHBoxLayout()
        expiry_label = QLabel("Code &valid for")
        expiry_label.setBuddy(self.expiry_box)
        bottom.addWidget(expiry_label)
        bottom.addWidget(self.expiry_box)
        bottom.addStretch(1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.sign_button)

        col.addWidget(note_box, 3)
        col.addWidget(vitals_box, 2)
        col.addWidget(self.message)
        col.addLayout(bottom)
        if self.recipient is None:
            for w in (note_box, vitals_box, self.sign_button, self.expiry_box):
                w.setEnabled(False)
        return page

    def _done_page(self, guard: Any, ask_save_path: Any, ask_printer: Any) -> QWidget:
        page = QWidget()
        col = QVBoxLayout(page)
        self.done_label = QLabel()
        self.done_label.setWordWrap(True)
        self.qr_panel = QrPanel(self._runner, guard=guard, ask_save_path=ask_save_path, ask_printer=ask_printer)
        self.qr_panel.view.setAccessibleName("QR code of the note for the patient")
        self.close_button = button("&Done", "Close", self.accept)
        col.addWidget(self.done_label)
        col.addWidget(self.qr_panel, 1)
        col.addLayout(right_aligned(self.close_button))
        return page

    # --- measurements ---------------------------------------------------------------------------------------------
    def _vital_changed(self) -> None:
        from app.services.writeback import VITALS
        vital = VITALS[self.vital_box.currentData()]
        for n, box in enumerate(self.value_boxes):
            part = vital.parts[n] if n < len(vital.parts) else None
            box.setVisible(part is not None)
            if part is not None:
                # one step below the range stands for "nothing typed yet", shown as a dash, never sent
                box.setRange(part.low - UNSET_STEP, part.high)
                box.setSpecialValueText(f"\u2014 {vital.unit_label}")
                box.setValue(box.minimum())
                box.setSuffix(f" {vital.unit_label}")
                box.setAccessibleName(f"{part.display} in {vital.unit_label}")

    def add_measurement(self) -> None:
        from app.services.writeback import VITALS, Measurement
        vital = VITALS[self.vital_box.currentData()]
        boxes = self.value_boxes[:len(vital.parts)]
        if any(box.value() <= box.minimum() for box in boxes):
            self.message.say(f"Type the {vital.label.lower()} first.")
            boxes[0].setFocus()
            return
        m = Measurement(vital.key, tuple(round(box.value(), 1) for box in boxes))
        self.measurements.append(m)
        item = QListWidgetItem(measurement_words(m))
        self.list.addItem(item)
        for box in boxes:
            box.setValue(box.minimum())
        self.message.clear()

    def remove_measurement(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self.list.takeItem(row)
        del self.measurements[row]

    def items(self) -> list[Any]:
        from app.services.writeback import Note
        out: list[Any] = []
        text = self.note_field.toPlainText()
        if text.strip():
            out.append(Note(text, self.title_field.text().strip() or "Clinical note"))
        return out + list(self.measurements)

    # --- signing --------------------------------------------------------------------------------------------------
    def sign(self) -> None:
        from app.services import writeback
        items = self.items()
        try:
            writeback.check_items(items)
        except writeback.WriteBackError as exc:
            self.message.say(exc.user_message)
            return
        session, recipient, expires = self.session, self.recipient, self.expiry_box.currentData()
        self.sign_button.setEnabled(False)
        self.message.say("Signing, encrypting and publishing\u2026", warning=False)

        def work() -> tuple[Any, Any, dict]:
            from app.services import sharing
            back = session.write_back(recipient, items, expires=expires)
            return back, qr_image(back.link), sharing.places(session.vault)

        self._runner.run(work, self._written, self._failed)

    def _written(self, result: tuple[Any, Any, dict]) -> None:
        back, image, places = result
        self.result = back
        notes = sum(1 for r in back.resources if r.startswith("DocumentReference/"))
        measured = len(back.resources) - notes
        what = ", ".join(p for p in (f"{notes} note" if notes else "",
                                     f"{measured} measurement{'s' if measured != 1 else ''}" if measured else "") if p)
        self.done_label.setText(f"<b>Signed and ready:</b> {what}. Show this code to the patient: their medvault "
                                "imports it and checks your signature.")
        lines = [f"A signed note for the patient: {what}", "Scan with the patient's medvault to import it."]
        local = places.get("embedded_local_only") if places.get("backend") == "embedded" else \
            places.get("ipfs_local_only")
        notice = ("This code opens only on this computer: the file is served from here. Turn on serving to the "
                  "local network in Settings for a patient's own device.") if local else \
            ("Keep medvault open and serving until the patient has scanned it."
             if places.get("backend") == "embedded" else "")
        self.qr_panel.show_link(back.link, image, lines, RETURN_WARNING, notice)
        self.pages.setCurrentIndex(1)
        self.close_button.setFocus()
        self.written.emit(back)

    def _failed(self, exc: BaseException) -> None:
        self.sign_button.setEnabled(True)
        self.message.say(user_message(exc))

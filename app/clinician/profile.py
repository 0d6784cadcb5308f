"""The clinician's profile: clinician mode, the name and organisation on their card, the card as a QR for patients to
scan (so a share is sealed to this clinician alone), and whether the consent network lists them as a practitioner.

Everything is read and saved through ``app.services.clinician`` on the task runner; the registration is asked of the
network and says "not checked", with the reason, when it cannot be asked. Registering is done by a member of the
network (the clinician's organisation) from this card; the panel says how.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QVBoxLayout, QWidget)

from app.clinician.writeback import button, right_aligned
from app.errors import user_message
from app.share_qr import QrPanel, qr_image
from app.unlock_window import InlineMessage

CARD_WARNING = ("This is a clinician's identity card: it holds their name, organisation and public keys, and opens "
                "no records.")


def _field(placeholder: str, name: str) -> QLineEdit:
    field = QLineEdit()
    field.setPlaceholderText(placeholder)
    field.setAccessibleName(name)
    field.setMaxLength(80)
    return field


def _para(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def _card_lines(profile: Any, card: Any) -> list[str]:
    who = card.name + (f", {card.organisation}" if card.organisation else "")
    lines = [f"Your card: {who}",
             "Patients scan it to share their records with you alone: the records are sealed to your key."]
    if not profile.clinician:
        lines.append("Clinician mode is off: the card shows the name of a medvault user.")
    return lines


class ProfilePanel(QWidget):
    """The profile form, the card's QR beside it, and the registration state under them."""

    saved = Signal(object)              # the Profile, after saving
    registration_shown = Signal(object)  # the Registration, after each check

    def __init__(self, session: Any, runner: Any, *, guard: Any = None, ask_save_path: Any = None,
                 ask_printer: Any = None) -> None:
        super().__init__()
        self.session = session
        self._runner = runner
        self.profile: Any = None
        self.registration: Any = None

        self.clinician_box = QCheckBox("&Clinician mode: my card names me as a clinician")
        self.clinician_box.setAccessibleName("Clinician mode")
        self.name_field = _field("Dr Ada Sample", "Your name on your card")
        self.organisation_field = _field("Riverside Practice (optional)", "Your organisation on your card")
        self.save_button = button("&Save profile", "Save the profile", self.save)
        self.message = InlineMessage("Profile result")
        form = QFormLayout()
        name_label, org_label = QLabel("&Name"), QLabel("&Organisation")
        name_label.setBuddy(self.name_field)
        org_label.setBuddy(self.organisation_field)
        form.addRow(self.clinician_box)
        form.addRow(name_label, self.name_field)
        form.addRow(org_label, self.organisation_field)
        profile_box = QGroupBox("Your profile")
        col = QVBoxLayout(profile_box)
        col.addWidget(_para("Your name and organisation go on your card; patients see them when they choose whom "
                            "to share with, and on the notes you write back."))
        col.addLayout(form)
        col.addLayout(right_aligned(self.save_button))
        col.addWidget(self.message)

        self.state_label = QLabel("Not checked yet.")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                 | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.state_label.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.state_label.setAccessibleName("Registration as a practitioner")
        self.check_button = button("C&heck again", "Check the registration again", self.check_registration)
        reg_box = QGroupBox("Registration on the consent network")
        reg = QVBoxLayout(reg_box)
        reg.addWidget(self.state_label)
        reg.addWidget(_para("Your organisation, a member of the consent network, registers your card as a "
                            "practitioner. Patients' apps then show your notes as signed by a clinician; a patient "
                            "who checked your card in person can also confirm it."))
        reg.addLayout(right_aligned(self.check_button))

        self.qr_panel = QrPanel(runner, guard=guard, ask_save_path=ask_save_path, ask_printer=ask_printer)
        self.qr_panel.view.setAccessibleName("QR code of your card")
        left = QVBoxLayout()
        left.addWidget(profile_box)
        left.addWidget(reg_box)
        left.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addWidget(self.qr_panel, 3)

    # --- loading --------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the profile and draw the card (on the runner), then ask the network about the registration."""
        session = self.session

        def work() -> tuple[Any, Any, str, Any]:
            from sync.links import card_from_link
            profile = session.profile()
            text = session.card()
            return profile, card_from_link(text), text, qr_image(text)

        self._runner.run(work, self._show, self._failed)
        self.check_registration()

    def _show(self, result: tuple[Any, Any, str, Any]) -> None:
        profile, card, text, image = result
        self.profile = profile
        self.clinician_box.setChecked(profile.clinician)
        self.name_field.setText(profile.name or "")
        self.organisation_field.setText(profile.organisation or "")
        self.qr_panel.show_link(text, image, _card_lines(profile, card), CARD_WARNING)

    def check_registration(self) -> None:
        self.check_button.setEnabled(False)
        self.state_label.setText("Asking the consent network\u2026")
        session = self.session
        self._runner.run(session.practitioner_registration, self._show_registration, self._registration_failed)

    def _show_registration(self, registration: Any) -> None:
        self.registration = registration
        self.check_button.setEnabled(True)
        self.state_label.setText(registration.sentence)
        self.state_label.setAccessibleDescription(registration.sentence)
        self.registration_shown.emit(registration)

    def _registration_failed(self, exc: BaseException) -> None:
        # the registration service answers "not checked" for every network failure; only a bug gets here
        self.check_button.setEnabled(True)
        self.state_label.setText("Not checked: " + user_message(exc))

    # --- saving ---------------------------------------------------------------------------------------------------
    def save(self) -> None:
        session = self.session
        mode, name, org = self.clinician_box.isChecked(), self.name_field.text(), self.organisation_field.text()
        self.save_button.setEnabled(False)
        self.message.clear()

        def work() -> tuple[Any, Any, str, Any]:
            from sync.links import card_from_link
            profile = session.set_profile(clinician_mode=mode, name=name, organisation=org)
            text = session.card()
            return profile, card_from_link(text), text, qr_image(text)

        def done(result: tuple[Any, Any, str, Any]) -> None:
            self.save_button.setEnabled(True)
            self._show(result)
            self.message.say("Saved; your card below shows it.", warning=False)
            self.saved.emit(result[0])

        self._runner.run(work, done, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        self.message.say(user_message(exc))


class ProfileDialog(QDialog):
    """The profile panel in its own window, for the clinician window's menu."""

    def __init__(self, session: Any, runner: Any, parent: QWidget | None = None, **panel_options: Any) -> None:
        super().__init__(parent)
        self.setWindowTitle("medvault")
        self.panel = ProfilePanel(session, runner, **panel_options)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the profile")
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel, 1)
        layout.addWidget(buttons)
        self.resize(1000, 620)
        self.panel.refresh()

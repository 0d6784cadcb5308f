"""The first window: create a vault (with a recovery key the user keeps), unlock it, or recover it.

Argon2id takes about a second by design, so every create, unlock and recover runs on the task runner; the window
shows a busy bar and stays responsive. The window title never says anything about the records.

A recovery key is confirmed by typing its last group back. A vault whose key was never confirmed (the window was
closed on that page) is offered a new key at the next unlock: the old one cannot be shown again, since the vault
keeps it only wrapped, and one the user may not have kept is better replaced.

Unlocking and recovering are the application layer's use cases (``app/services/unlocking.py``), as for the CLI. An
older copy of the vault (``VaultRolledBack``) is explained in plain words, with a separate button that asks before
opening it anyway with what was already typed; that is held only until the user answers, types or leaves.

Messages sit under the field they are about, with an icon and bold text in the palette's own colours, so they read
in a dark theme and do not rely on colour alone.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont, QPixmap
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QStackedWidget, QStyle, QVBoxLayout, QWidget)

from app import questions, recovery_kit
from app.errors import expected, user_message
from app.passphrase_strength import LABELS, Strength, Verdict, assess
from app.services.unlocking import Opened, older_copy_explanation, open_vault, recover_vault
from sync.qr import png_bytes
from vault.errors import VaultRolledBack
from vault.header import HEADER_NAME
from vault.store import Vault

OLDER_COPY_QUESTION = ("Open this older copy of your vault?\n\n"
                       "Only if you restored it from a backup yourself. Anything changed since this copy was made is "
                       "not in it, and shares you revoked since may come back to life: a link you stopped could work "
                       "again. After opening, look at your shares and revoke those again.\n\n"
                       "medvault notes in its activity log that you chose this copy.")


def ask_to_open_older_copy(parent: QWidget) -> bool:
    return questions.ask(parent, OLDER_COPY_QUESTION, "Open the older copy", "Don't open it",
                         do_name="Open the older copy of the vault",
                         dont_name="Don't open the older copy")


def _password_field(placeholder: str, name: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    field.setAccessibleName(name)
    return field


def _button(text: str, name: str, *, flat: bool = False) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    button.setFlat(flat)
    return button


def _button_row(left: QPushButton, right: QPushButton) -> QHBoxLayout:
    """A quiet way out on the left, the page's action on the right."""
    row = QHBoxLayout()
    row.addWidget(left)
    row.addStretch(1)
    row.addWidget(right)
    return row


def _title(text: str) -> QLabel:
    title = QLabel(text)
    font = title.font()
    font.setPointSize(font.pointSize() + 6)
    font.setBold(True)
    title.setFont(font)
    return title


def _para(text: str) -> QLabel:
    para = QLabel(text)
    para.setWordWrap(True)
    return para


class InlineMessage(QWidget):
    """A sentence shown right under the field it concerns: a standard warning icon and bold text, in the
    palette's text colour, so it is readable in any theme and does not depend on seeing red."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setAccessibleName(name)
        self.icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size, size))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        font = self.label.font()
        font.setBold(True)
        self.label.setFont(font)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        self.hide()

    def say(self, text: str, *, warning: bool = True) -> None:
        self.icon.setVisible(warning)
        font = self.label.font()
        font.setBold(warning)
        self.label.setFont(font)
        self.label.setText(text)
        self.setAccessibleDescription(text)
        self.setVisible(bool(text))

    def clear(self) -> None:
        self.say("")

    def text(self) -> str:
        return self.label.text()


class OlderCopyRefusal(QWidget):
    """Under the field: why an older copy of the vault was not opened, and a deliberate way to open it anyway
    (a plain button, never the page's default, that asks before doing anything)."""

    def __init__(self) -> None:
        super().__init__()
        self.message = InlineMessage("Older copy of the vault")
        self.open_button = _button("Open this older copy…", "Open this older copy of the vault anyway")
        self.open_button.setAutoDefault(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        row.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addLayout(row)
        self.hide()

    def say(self, explanation: str, *, can_open: bool) -> None:
        self.message.say(explanation)
        self.open_button.setVisible(can_open)
        self.setVisible(bool(explanation))

    def clear(self) -> None:
        self.say("", can_open=False)

    def text(self) -> str:
        return self.message.text()


class NewPassphrase(QWidget):
    """A new passphrase typed twice, judged as it is typed (app.passphrase_strength decides what passes)."""

    changed = Signal()

    def __init__(self, what: str) -> None:
        super().__init__()
        self.field = _password_field("a few unrelated words work well", what)
        self.repeat = _password_field("the same passphrase again", f"Repeat the {what.lower()}")
        self.meter = QProgressBar()
        self.meter.setRange(0, 100)
        self.meter.setTextVisible(False)
        self.meter.setAccessibleName("Passphrase strength")
        self.meter_label = QLabel()
        font = self.meter_label.font()
        font.setBold(True)
        self.meter_label.setFont(font)
        # as wide as the widest word, so the bar does not jump as the word changes
        self.meter_label.setMinimumWidth(max(self.meter_label.fontMetrics().horizontalAdvance(word)
                                             for word in (*LABELS, "Too short")))
        self.advice = _para("")
        self.advice.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.advice.setAccessibleName("Passphrase advice")
        self.accept_box = QCheckBox()
        self.accept_box.setAccessibleName("Use this passphrase although it could be guessed")
        self.accept_box.hide()
        self.mismatch = InlineMessage("Passphrase problem")
        self._strength = assess("")
        self.field.textChanged.connect(self._judge)
        self.repeat.textChanged.connect(self._compare)
        self.repeat.editingFinished.connect(self._check_finished)
        self.accept_box.toggled.connect(lambda _on: self.changed.emit())

        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.meter_label)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(what, self.field)
        form.addRow("Strength", meter_row)
        form.addRow("", self.advice)
        form.addRow("", self.accept_box)
        form.addRow("Repeat", self.repeat)
        form.addRow("", self.mismatch)
        self._judge("")

    @property
    def strength(self) -> Strength:
        return self._strength

    def _judge(self, text: str) -> None:
        self._strength = assess(text)
        self.meter.setValue(self._strength.meter)
        self.meter_label.setText(self._strength.label)
        self.meter.setAccessibleDescription(self._strength.label)
        self.advice.setText(self._strength.advice)
        self.field.setAccessibleDescription(f"{self._strength.label}. {self._strength.advice}")
        confirm = self._strength.verdict is Verdict.CONFIRM
        self.accept_box.setChecked(False)  # a tick given to one passphrase is not given to the next
        self.accept_box.setText(f"Use it anyway: I accept it could be found in {self._strength.guess_time}"
                                if confirm else "")
        self.accept_box.setVisible(confirm)
        self._compare()

    def _compare(self) -> None:
        first, second = self.field.text(), self.repeat.text()
        # While the repeat is still a beginning of the first it is being typed, not wrong: no complaint for
        # every keystroke. Leaving the field short is caught by _check_finished.
        if second and not first.startswith(second):
            self.mismatch.say("The two passphrases differ.")
        else:
            self.mismatch.clear()
        self.changed.emit()

    def _check_finished(self) -> None:
        if self.repeat.text() and self.repeat.text() != self.field.text():
            self.mismatch.say("The two passphrases differ.")

    def value(self) -> str | None:
        """The passphrase if it may be used: typed the same twice, and strong enough or knowingly accepted."""
        first = self.field.text()
        if first != self.repeat.text():
            return None
        verdict = assess(first).verdict
        if verdict is Verdict.ACCEPTED or (verdict is Verdict.CONFIRM and self.accept_box.isChecked()):
            return first
        return None

    def clear(self) -> None:
        self.field.clear()
        self.repeat.clear()


class UnlockWindow(QWidget):
    unlocked = Signal(object)  # the Vault

    def __init__(self, vault_dir: Path, runner: Any, kdf_profile: str = "default", *,
                 confirm_older_copy: Callable[[QWidget], bool] = ask_to_open_older_copy) -> None:
        super().__init__()
        self.setWindowTitle("medvault")
        self.setMinimumWidth(560)
        self.vault_dir = Path(vault_dir)
        self._runner = runner
        self._kdf_profile = kdf_profile
        self._pending: Vault | None = None  # opened, but the user is still on the recovery-key pages
        self._recovery_key = ""
        self._kit_made_on = date.today()
        self._save_dialog: QFileDialog | None = None
        self._print_dialog: QPrintDialog | None = None
        self._confirm_older_copy = confirm_older_copy
        # Set while an older copy's refusal is shown: opens it with the secrets the user already typed, so they are
        # not asked twice. Dropped (and the secrets with it) as soon as the user answers, types or leaves the page.
        self._open_older: Callable[[], None] | None = None
        self.note = ""      # the unlock's note (the consent network could not be asked), for the main window

        self.pages = QStackedWidget()
        self.create_page = self._build_create_page()
        self.recovery_page = self._build_recovery_page()
        self.unlock_page = self._build_unlock_page()
        self.recover_page = self._build_recover_page()
        self.offer_page = self._build_offer_page()
        for page in (self.create_page, self.recovery_page, self.unlock_page, self.recover_page, self.offer_page):
            self.pages.addWidget(page)

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: the KDF has no progress to report
        self.busy.setTextVisible(False)
        self.busy.setAccessibleName("Working")
        self.busy.hide()
        self.status = QLabel()  # what is being done right now; problems go under their field instead
        self.status.setWordWrap(True)
        self.status.setObjectName("status")

        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        layout.addWidget(self.busy)
        layout.addWidget(self.status)
        self.show_start_page()

    # --- pages ------------------------------------------------------------------------------------------------
    def show_start_page(self) -> None:
        exists = (self.vault_dir / HEADER_NAME).exists()
        self._go(self.unlock_page if exists else self.create_page)

    def _build_create_page(self) -> QWidget:
        page = QWidget()
        self.new_passphrase = NewPassphrase("Passphrase")
        self.new_pass, self.new_pass2 = self.new_passphrase.field, self.new_passphrase.repeat
        self.meter, self.meter_label = self.new_passphrase.meter, self.new_passphrase.meter_label
        self.create_button = _button("Create vault", "Create vault")
        self.create_button.setEnabled(False)
        self.create_button.setDefault(True)
        self.create_message = InlineMessage("Problem creating the vault")
        self.new_passphrase.changed.connect(self._update_create)
        self.create_button.clicked.connect(self._create)
        self.new_pass2.returnPressed.connect(self._create)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Create your vault"))
        layout.addWidget(_para("Your records are kept encrypted on this computer. Choose a passphrase only you "
                               "know: medvault cannot read your records without it, and neither can anyone else."))
        layout.addWidget(self.new_passphrase)
        layout.addWidget(self.create_message)
        layout.addWidget(self.create_button, alignment=Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return page

    def _build_recovery_page(self) -> QWidget:
        page = QWidget()
        self.recovery_title = _title("Your recovery key")
        self.key_label = QLabel()
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                               | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.key_label.setAccessibleName("Recovery key")
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(mono.pointSize() + 3)
        self.key_label.setFont(mono)
        self.key_qr = QLabel()
        self.key_qr.setFixedSize(180, 180)
        self.key_qr.setScaledContents(True)
        self.key_qr.setAccessibleName("Recovery key as a QR code")
        self.save_kit_button = _button("Save as PDF…", "Save the recovery kit as a PDF")
        self.print_kit_button = _button("Print…", "Print the recovery kit")
        self.kit_message = InlineMessage("Recovery kit")
        self.confirm_group = QLineEdit()
        self.confirm_group.setPlaceholderText("the last group of 4 characters")
        self.confirm_group.setAccessibleName("Last group of the recovery key, to confirm you kept it")
        self.confirm_box = QCheckBox("I have written down or printed my recovery key and put it somewhere safe")
        self.confirm_box.setAccessibleName("I have kept my recovery key somewhere safe")
        self.continue_button = _button("Continue", "Continue")
        self.continue_button.setEnabled(False)
        self.recovery_message = InlineMessage("Problem confirming the recovery key")
        self.confirm_group.textChanged.connect(self._update_confirm)
        self.confirm_box.toggled.connect(self._update_confirm)
        self.continue_button.clicked.connect(self._confirm_recovery)
        self.confirm_group.returnPressed.connect(self._confirm_recovery)
        self.save_kit_button.clicked.connect(self._ask_where_to_save_kit)
        self.print_kit_button.clicked.connect(self._ask_printer)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_label, 1)
        key_row.addWidget(self.key_qr)
        kit_row = QHBoxLayout()
        kit_row.addWidget(self.save_kit_button)
        kit_row.addWidget(self.print_kit_button)
        kit_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Type the last group to confirm", self.confirm_group)
        layout = QVBoxLayout(page)
        layout.addWidget(self.recovery_title)
        layout.addWidget(_para("If you forget your passphrase, this key is the only way back into your records. "
                               "It is shown only now. Print it, or write it down, and keep it away from this "
                               "computer. Anyone with this key and your vault folder can open your records."))
        layout.addLayout(key_row)
        layout.addLayout(kit_row)
        layout.addWidget(self.kit_message)
        layout.addLayout(form)
        layout.addWidget(self.confirm_box)
        layout.addWidget(self.recovery_message)
        layout.addWidget(self.continue_button, alignment=Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return page

    def _build_unlock_page(self) -> QWidget:
        page = QWidget()
        self.pass_field = _password_field("your vault passphrase", "Passphrase")
        self.unlock_message = InlineMessage("Unlock problem")
        self.unlock_older = OlderCopyRefusal()
        self.unlock_older.open_button.clicked.connect(
            lambda: self._ask_to_open_older(self.unlock_older, self.pass_field))
        self.unlock_button = _button("Unlock", "Unlock")
        self.unlock_button.setDefault(True)
        self.forgot_button = _button("Forgot your passphrase? Use your recovery key",
                                     "Forgot your passphrase? Use your recovery key", flat=True)
        self.unlock_button.clicked.connect(self._unlock)
        self.pass_field.returnPressed.connect(self._unlock)
        self.pass_field.textEdited.connect(lambda _text: self._drop_refusals())
        self.forgot_button.clicked.connect(lambda: self._go(self.recover_page))
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Unlock your vault"))
        layout.addWidget(self.pass_field)
        layout.addWidget(self.unlock_message)
        layout.addWidget(self.unlock_older)
        layout.addLayout(_button_row(self.forgot_button, self.unlock_button))
        layout.addStretch(1)
        QWidget.setTabOrder(self.pass_field, self.unlock_older.open_button)
        QWidget.setTabOrder(self.unlock_older.open_button, self.forgot_button)
        QWidget.setTabOrder(self.forgot_button, self.unlock_button)
        return page

    def _build_recover_page(self) -> QWidget:
        page = QWidget()
        self.recovery_field = QLineEdit()
        self.recovery_field.setPlaceholderText("9 groups of 4 letters and digits, as on your recovery kit")
        self.recovery_field.setAccessibleName("Recovery key")
        self.recovery_field_message = InlineMessage("Recovery key problem")
        self.recover_older = OlderCopyRefusal()
        self.recover_older.open_button.clicked.connect(
            lambda: self._ask_to_open_older(self.recover_older, self.recovery_field))
        self.recover_passphrase = NewPassphrase("New passphrase")
        self.recover_pass, self.recover_pass2 = self.recover_passphrase.field, self.recover_passphrase.repeat
        self.recover_button = _button("Set new passphrase", "Set new passphrase")
        self.recover_button.setEnabled(False)
        back = _button("Back", "Back to unlocking", flat=True)
        back.clicked.connect(lambda: self._go(self.unlock_page))
        self.recover_button.clicked.connect(self._recover)
        self.recovery_field.textEdited.connect(lambda _text: self._drop_refusals())
        self.recover_passphrase.changed.connect(
            lambda: self.recover_button.setEnabled(self.recover_passphrase.value() is not None))
        form = QFormLayout()
        form.addRow("Recovery key", self.recovery_field)
        form.addRow("", self.recovery_field_message)
        form.addRow("", self.recover_older)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Recover your vault"))
        layout.addWidget(_para("Type the recovery key from your recovery kit and choose a new passphrase. "
                               "Your records stay exactly as they are."))
        layout.addLayout(form)
        layout.addWidget(self.recover_passphrase)
        layout.addLayout(_button_row(back, self.recover_button))
        layout.addStretch(1)
        return page

    def _build_offer_page(self) -> QWidget:
        page = QWidget()
        self.new_key_button = _button("Make a new recovery key", "Make a new recovery key")
        self.new_key_button.setDefault(True)
        self.not_now_button = _button("Not now", "Not now: ask again at the next unlock", flat=True)
        self.offer_message = InlineMessage("Problem making a new recovery key")
        self.new_key_button.clicked.connect(self._rotate_recovery_key)
        self.not_now_button.clicked.connect(self._skip_new_key)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Your recovery key was never confirmed"))
        layout.addWidget(_para("When this vault was made, its recovery key was shown but not confirmed, so it may "
                               "not have been kept. medvault cannot show that key again: it keeps it only in "
                               "locked form. Make a new one now and keep it safe; the old one then stops working."))
        layout.addWidget(self.offer_message)
        layout.addLayout(_button_row(self.not_now_button, self.new_key_button))
        layout.addStretch(1)
        return page

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _go(self, page: QWidget) -> None:
        for message in (self.create_message, self.unlock_message, self.recovery_field_message,
                        self.recovery_message, self.kit_message, self.offer_message):
            message.clear()
        self._drop_refusals()
        self.status.clear()
        self.pages.setCurrentWidget(page)
        first = {self.create_page: self.new_pass, self.unlock_page: self.pass_field,
                 self.recover_page: self.recovery_field, self.recovery_page: self.confirm_group,
                 self.offer_page: self.new_key_button}.get(page)
        if first is not None:
            first.setFocus()

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self.busy.setVisible(busy)
        self.pages.setEnabled(not busy)
        self.status.setText(message)

    def _failure(self, message: InlineMessage, field: QLineEdit | QPushButton) -> Callable[[BaseException], None]:
        """A task's failure shown under ``field``, which gets the focus back (its text selected) for a retry."""
        def fail(exc: BaseException) -> None:
            if not expected(exc):
                from app.crash import record
                record(exc)
            self._set_busy(False)
            message.say(user_message(exc))
            field.setFocus(Qt.FocusReason.OtherFocusReason)
            if isinstance(field, QLineEdit):
                field.selectAll()
                field.setAccessibleDescription(user_message(exc))
        return fail

    # --- create -----------------------------------------------------------------------------------------------
    def _update_create(self) -> None:
        self.create_button.setEnabled(self.new_passphrase.value() is not None)

    def _create(self) -> None:
        passphrase = self.new_passphrase.value()
        if passphrase is None:
            return
        folder, profile = self.vault_dir, self._kdf_profile
        self._set_busy(True, "Creating your vault…")

        def work() -> tuple[Vault, str]:
            return Vault.create(folder, passphrase, kdf_profile=profile, recovery_key_confirmed=False)

        self._runner.run(work, self._created_ok, self._failure(self.create_message, self.new_pass))

    def _created_ok(self, result: tuple[Vault, str]) -> None:
        self.new_passphrase.clear()
        vault, key = result
        self._show_recovery_key(vault, key, "Your recovery key")

    # --- the recovery key -------------------------------------------------------------------------------------
    def _show_recovery_key(self, vault: Vault, key: str, title: str) -> None:
        self._set_busy(False)
        self._pending, self._recovery_key = vault, key
        self._kit_made_on = date.today()
        self.recovery_title.setText(title)
        self.key_label.setText("\n".join(" ".join(key.split("-")[i:i + 3]) for i in (0, 3, 6)))
        pixmap = QPixmap()
        pixmap.loadFromData(png_bytes(key), "PNG")
        self.key_qr.setPixmap(pixmap)
        self.confirm_group.clear()
        self.confirm_box.setChecked(False)
        self._go(self.recovery_page)

    def _update_confirm(self) -> None:
        last = self._recovery_key.rsplit("-", 1)[-1] if self._recovery_key else None
        typed = self.confirm_group.text().strip().upper()
        self.continue_button.setEnabled(bool(last) and typed == last and self.confirm_box.isChecked())

    def _confirm_recovery(self) -> None:
        vault = self._pending
        if vault is None or not self.continue_button.isEnabled():
            return
        self._set_busy(True, "Saving…")
        self._runner.run(vault.confirm_recovery_key, lambda _none: self._finish(vault),
                         self._failure(self.recovery_message, self.confirm_group))

    def _finish(self, vault: Vault) -> None:
        self._set_busy(False)
        self._pending, self._recovery_key = None, ""
        self.key_label.clear()
        self.key_qr.clear()
        self.confirm_group.clear()
        self.confirm_box.setChecked(False)
        self.unlocked.emit(vault)

    def _rotate_recovery_key(self) -> None:
        vault = self._pending
        if vault is None:
            return
        self._set_busy(True, "Making a new recovery key…")
        self._runner.run(vault.rotate_recovery_key,
                         lambda key: self._show_recovery_key(vault, key, "Your new recovery key"),
                         self._failure(self.offer_message, self.new_key_button))

    def _skip_new_key(self) -> None:
        if self._pending is not None:
            self._finish(self._pending)

    # --- the recovery kit -------------------------------------------------------------------------------------
    def _kit_hint(self) -> str:
        return recovery_kit.vault_hint(self._pending.vault_id if self._pending is not None else "")

    def _ask_where_to_save_kit(self) -> None:
        self._save_dialog = recovery_kit.save_dialog(self, self.save_kit)

    def save_kit(self, path: str) -> None:
        """Draw the kit here (Qt painting), write it on a worker (disk)."""
        if not self._recovery_key:
            return
        data = recovery_kit.pdf_bytes(self._recovery_key, self._kit_made_on, self._kit_hint())
        self.kit_message.clear()
        self._runner.run(lambda: recovery_kit.save_pdf(path, data),
                         lambda saved: self.kit_message.say(recovery_kit.SAVED.format(name=saved.name),
                                                            warning=False),
                         self._failure(self.kit_message, self.save_kit_button))

    def _ask_printer(self) -> None:
        self._print_dialog = recovery_kit.print_dialog(self, self.print_kit)

    def print_kit(self, printer: QPrinter) -> None:
        if not self._recovery_key:
            return
        try:
            said = recovery_kit.print_or_save(printer, self._recovery_key, self._kit_made_on, self._kit_hint(),
                                              self.save_kit)
        except recovery_kit.KitNotSaved as exc:
            self.kit_message.say(exc.user_message)
            return
        if said:
            self.kit_message.say(said, warning=False)

    # --- unlock and recover -----------------------------------------------------------------------------------
    def _unlock(self) -> None:
        passphrase = self.pass_field.text()
        if not passphrase:
            return
        self._drop_refusals()
        self._open(passphrase)

    def _open(self, passphrase: str, *, accept_older: bool = False) -> None:
        folder = self.vault_dir
        self._set_busy(True, "Opening the older copy…" if accept_older else "Unlocking…")
        retry = None if accept_older else lambda: self._open(passphrase, accept_older=True)
        self._runner.run(lambda: open_vault(folder, passphrase, accept_older=accept_older), self._unlocked_ok,
                         self._refused_or_failed(self.unlock_older, retry, self.unlock_message, self.pass_field,
                                                 (self.pass_field,)))

    def _unlocked_ok(self, opened: Opened) -> None:
        self._set_busy(False)
        self.pass_field.clear()
        self.pass_field.setAccessibleDescription("")
        self.note = opened.note
        if opened.recovery_key_confirmed:
            self.unlocked.emit(opened.vault)
        else:
            self._pending = opened.vault
            self._go(self.offer_page)

    def _recover(self) -> None:
        key, new = self.recovery_field.text(), self.recover_passphrase.value()
        if new is None:
            return
        self._drop_refusals()
        self._start_recovery(key, new)

    def _start_recovery(self, key: str, new: str, *, accept_older: bool = False) -> None:
        folder = self.vault_dir
        self._set_busy(True, "Opening the older copy…" if accept_older else "Checking your recovery key…")
        retry = None if accept_older else lambda: self._start_recovery(key, new, accept_older=True)
        self._runner.run(lambda: recover_vault(folder, key, new, accept_older=accept_older), self._recovered_ok,
                         self._refused_or_failed(self.recover_older, retry, self.recovery_field_message,
                                                 self.recovery_field,
                                                 (self.recovery_field, self.recover_pass, self.recover_pass2)))

    def _recovered_ok(self, opened: Opened) -> None:
        self._set_busy(False)
        self.recovery_field.clear()
        self.recover_passphrase.clear()
        self.note = opened.note
        self.unlocked.emit(opened.vault)

    # --- an older copy ----------------------------------------------------------------------------------------
    def _refused_or_failed(self, refusal: OlderCopyRefusal, retry: Callable[[], None] | None,
                           message: InlineMessage, field: QLineEdit,
                           secrets: tuple[QLineEdit, ...]) -> Callable[[BaseException], None]:
        """An older copy is explained under ``field`` with a way to open it anyway (``retry`` keeps what was typed,
        so the fields are emptied); any other failure is shown as usual."""
        failed = self._failure(message, field)

        def refused_or_failed(exc: BaseException) -> None:
            if not isinstance(exc, VaultRolledBack) or retry is None:
                failed(exc)
                return
            self._set_busy(False)
            for typed in secrets:
                typed.clear()
            explanation = older_copy_explanation(exc)
            refusal.say(explanation, can_open=True)
            self._open_older = retry
            field.setAccessibleDescription(explanation)
            field.setFocus(Qt.FocusReason.OtherFocusReason)
        return refused_or_failed

    def _ask_to_open_older(self, refusal: OlderCopyRefusal, field: QLineEdit) -> None:
        """Say what opening the older copy means before doing it; 'no' leaves it closed and forgets what was typed
        (typing it again brings the choice back)."""
        retry = self._open_older
        if retry is None:
            return
        if not self._confirm_older_copy(self):
            self._open_older = None
            refusal.say(refusal.text(), can_open=False)
            field.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self._drop_refusals()
        retry()

    def _drop_refusals(self) -> None:
        self._open_older = None
        self.unlock_message.clear()
        self.recovery_field_message.clear()
        for refusal in (self.unlock_older, self.recover_older):
            refusal.clear()
        for field in (self.pass_field, self.recovery_field):
            field.setAccessibleDescription("")

    # --- closing ----------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Closed on the recovery-key pages: the vault locks again (on the runner), the key is forgotten and
        stays unconfirmed, so the next unlock offers a new one."""
        vault, self._pending, self._recovery_key = self._pending, None, ""
        self._drop_refusals()
        self.key_label.clear()
        self.key_qr.clear()
        if vault is not None:
            self._runner.run(vault.close, lambda _none: None, lambda _exc: None)
            self.show_start_page()
        super().closeEvent(event)


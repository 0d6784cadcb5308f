"""The first window: create a vault (with a recovery key the user confirms), unlock it, or recover it.

Argon2id takes about a second by design, so every create, unlock and recover runs on the task runner; the window
shows a busy bar and stays responsive. The window title never says anything about the records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QStackedWidget, QVBoxLayout, QWidget)

from app.errors import user_message
from app.passphrase_strength import label as strength_label
from vault.store import MIN_PASSPHRASE_CHARS, Vault


def _password_field(placeholder: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    return field


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


class UnlockWindow(QWidget):
    unlocked = Signal(object)  # the Vault

    def __init__(self, vault_dir: Path, runner: Any, kdf_profile: str = "default") -> None:
        super().__init__()
        self.setWindowTitle("medvault")
        self.setMinimumWidth(520)
        self.vault_dir = Path(vault_dir)
        self._runner = runner
        self._kdf_profile = kdf_profile
        self._created: Vault | None = None
        self._recovery_key = ""

        self.pages = QStackedWidget()
        self.create_page = self._build_create_page()
        self.recovery_page = self._build_recovery_page()
        self.unlock_page = self._build_unlock_page()
        self.recover_page = self._build_recover_page()
        for page in (self.create_page, self.recovery_page, self.unlock_page, self.recover_page):
            self.pages.addWidget(page)

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: the KDF has no progress to report
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.status.setStyleSheet("color: #b00020;")

        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        layout.addWidget(self.busy)
        layout.addWidget(self.status)
        self.show_start_page()

    # --- pages ------------------------------------------------------------------------------------------------
    def show_start_page(self) -> None:
        exists = (self.vault_dir / "vault.header").exists()
        self.pages.setCurrentWidget(self.unlock_page if exists else self.create_page)

    def _build_create_page(self) -> QWidget:
        page = QWidget()
        self.new_pass = _password_field(f"at least {MIN_PASSPHRASE_CHARS} characters; a few unrelated words work well")
        self.new_pass2 = _password_field("the same passphrase again")
        self.meter = QProgressBar()
        self.meter.setRange(0, 100)
        self.meter.setFormat("%v")
        self.meter_label = QLabel(strength_label("")[1])
        self.create_button = QPushButton("Create vault")
        self.create_button.setEnabled(False)
        self.create_button.setDefault(True)
        for field in (self.new_pass, self.new_pass2):
            field.textChanged.connect(self._update_create)
        self.create_button.clicked.connect(self._create)
        self.new_pass2.returnPressed.connect(self._create)
        meter_row = QHBoxLayout()
        meter_row.addWidget(self.meter, 1)
        meter_row.addWidget(self.meter_label)
        form = QFormLayout()
        form.addRow("Passphrase", self.new_pass)
        form.addRow("Strength", meter_row)
        form.addRow("Repeat", self.new_pass2)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Create your vault"))
        layout.addWidget(_para("Your records are kept encrypted on this computer. Choose a passphrase only you "
                               "know: medvault cannot read your records without it, and neither can anyone else."))
        layout.addLayout(form)
        layout.addWidget(self.create_button, alignment=Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return page

    def _build_recovery_page(self) -> QWidget:
        page = QWidget()
        self.key_label = QLabel()
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(mono.pointSize() + 3)
        self.key_label.setFont(mono)
        self.key_qr = QLabel()
        self.key_qr.setFixedSize(180, 180)
        self.key_qr.setScaledContents(True)
        self.confirm_group = QLineEdit()
        self.confirm_group.setPlaceholderText("the last group of 4 characters")
        self.confirm_box = QCheckBox("I have written down or printed my recovery key and put it somewhere safe")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setEnabled(False)
        self.confirm_group.textChanged.connect(self._update_confirm)
        self.confirm_box.toggled.connect(self._update_confirm)
        self.continue_button.clicked.connect(self._finish_create)
        row = QHBoxLayout()
        row.addWidget(self.key_label, 1)
        row.addWidget(self.key_qr)
        form = QFormLayout()
        form.addRow("Type the last group to confirm", self.confirm_group)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Your recovery key"))
        layout.addWidget(_para("If you forget your passphrase, this key is the only way back into your records. "
                               "It is shown only now. Write it down or print it and keep it away from this "
                               "computer. Anyone with this key and your vault folder can open your records."))
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.confirm_box)
        layout.addWidget(self.continue_button, alignment=Qt.AlignmentFlag.AlignRight)
        layout.addStretch(1)
        return page

    def _build_unlock_page(self) -> QWidget:
        page = QWidget()
        self.pass_field = _password_field("your vault passphrase")
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setDefault(True)
        self.forgot_button = QPushButton("Forgot your passphrase? Use your recovery key")
        self.forgot_button.setFlat(True)
        self.unlock_button.clicked.connect(self._unlock)
        self.pass_field.returnPressed.connect(self._unlock)
        self.forgot_button.clicked.connect(lambda: self._go(self.recover_page))
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Unlock your vault"))
        layout.addWidget(self.pass_field)
        buttons = QHBoxLayout()
        buttons.addWidget(self.forgot_button)
        buttons.addStretch(1)
        buttons.addWidget(self.unlock_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        return page

    def _build_recover_page(self) -> QWidget:
        page = QWidget()
        self.recovery_field = QLineEdit()
        self.recovery_field.setPlaceholderText("9 groups of 4 letters and digits, as on your recovery kit")
        self.recover_pass = _password_field("a new passphrase")
        self.recover_pass2 = _password_field("the new passphrase again")
        self.recover_button = QPushButton("Set new passphrase")
        back = QPushButton("Back")
        back.setFlat(True)
        back.clicked.connect(lambda: self._go(self.unlock_page))
        self.recover_button.clicked.connect(self._recover)
        form = QFormLayout()
        form.addRow("Recovery key", self.recovery_field)
        form.addRow("New passphrase", self.recover_pass)
        form.addRow("Repeat", self.recover_pass2)
        layout = QVBoxLayout(page)
        layout.addWidget(_title("Recover your vault"))
        layout.addWidget(_para("Type the recovery key from your recovery kit and choose a new passphrase. "
                               "Your records stay exactly as they are."))
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(back)
        buttons.addStretch(1)
        buttons.addWidget(self.recover_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        return page

    # --- behaviour --------------------------------------------------------------------------------------------
    def _go(self, page: QWidget) -> None:
        self.status.clear()
        self.pages.setCurrentWidget(page)

    def _set_busy(self, busy: bool, message: str = "") -> None:
        self.busy.setVisible(busy)
        self.pages.setEnabled(not busy)
        self.status.setStyleSheet("color: palette(text);" if busy else "color: #b00020;")
        self.status.setText(message)

    def _fail(self, exc: BaseException) -> None:
        self._set_busy(False)
        self.status.setText(user_message(exc))

    def _update_create(self) -> None:
        score, text = strength_label(self.new_pass.text())
        self.meter.setValue(score)
        self.meter_label.setText(text)
        ok = len(self.new_pass.text()) >= MIN_PASSPHRASE_CHARS and self.new_pass.text() == self.new_pass2.text()
        self.create_button.setEnabled(ok)
        if self.new_pass2.text() and self.new_pass.text() != self.new_pass2.text():
            self.status.setText("The two passphrases differ.")
        else:
            self.status.clear()

    def _create(self) -> None:
        if not self.create_button.isEnabled():
            return
        passphrase, folder, profile = self.new_pass.text(), self.vault_dir, self._kdf_profile
        self._set_busy(True, "Creating your vault…")
        self._runner.run(lambda: Vault.create(folder, passphrase, kdf_profile=profile), self._created_ok, self._fail)

    def _created_ok(self, result: tuple[Vault, str]) -> None:
        self._set_busy(False)
        self.new_pass.clear()
        self.new_pass2.clear()
        self._created, self._recovery_key = result
        self.key_label.setText("\n".join(" ".join(self._recovery_key.split("-")[i:i + 3]) for i in (0, 3, 6)))
        try:
            from sync.qr import png_bytes
            pixmap = QPixmap()
            pixmap.loadFromData(png_bytes(self._recovery_key), "PNG")
            self.key_qr.setPixmap(pixmap)
        except ImportError:
            self.key_qr.hide()
        self._go(self.recovery_page)

    def _update_confirm(self) -> None:
        last = self._recovery_key.rsplit("-", 1)[-1] if self._recovery_key else None
        typed = self.confirm_group.text().strip().upper()
        self.continue_button.setEnabled(bool(last) and typed == last and self.confirm_box.isChecked())

    def _finish_create(self) -> None:
        vault, self._created, self._recovery_key = self._created, None, ""
        self.key_label.clear()
        self.key_qr.clear()
        self.unlocked.emit(vault)

    def _unlock(self) -> None:
        passphrase, folder = self.pass_field.text(), self.vault_dir
        if not passphrase:
            return
        self._set_busy(True, "Unlocking…")
        self._runner.run(lambda: Vault.unlock(folder, passphrase), self._unlocked_ok, self._fail)

    def _unlocked_ok(self, vault: Vault) -> None:
        self._set_busy(False)
        self.pass_field.clear()
        self.unlocked.emit(vault)

    def _recover(self) -> None:
        key, new, again = self.recovery_field.text(), self.recover_pass.text(), self.recover_pass2.text()
        if new != again:
            self.status.setText("The two passphrases differ.")
            return
        folder = self.vault_dir
        self._set_busy(True, "Checking your recovery key…")
        self._runner.run(lambda: Vault.recover(folder, key, new), self._recovered_ok, self._fail)

    def _recovered_ok(self, vault: Vault) -> None:
        self._set_busy(False)
        for field in (self.recovery_field, self.recover_pass, self.recover_pass2):
            field.clear()
        self.unlocked.emit(vault)

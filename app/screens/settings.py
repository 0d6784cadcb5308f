"""Settings: where shares are kept (this computer, or an IPFS node, tested before use), this computer's gateway
(local network, serving while locked), the consent network (connect, deploy, send what waits), when the vault
locks itself, this identity's card as a QR, the passphrase and a new recovery key.

Every choice is saved in the vault (no health data: addresses and choices), through the application layer on the
task runner; each section says how its last action went right under its buttons.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPixmap
from PySide6.QtPrintSupport import QPrintDialog, QPrinter
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QRadioButton, QScrollArea,
                               QStackedWidget, QVBoxLayout, QWidget)

from app import recovery_kit
from app.errors import expected, user_message
from app.questions import ask
from app.screens import ScreenContext
from app.services.preferences import AUTOLOCK_CHOICES
from app.share_qr import QrView, modules_of, qr_image
from app.unlock_window import InlineMessage, NewPassphrase, _button, _para
from vault.errors import MalformedRecoveryKey, WrongRecoveryKey

PASSWD_RECOVERY_NOTE = ("This vault was made by an older version of medvault, so your recovery key cannot follow a "
                        "passphrase change by itself. To keep your printed recovery key working, type it here. "
                        "Left empty, medvault makes you a new recovery key and the printed one stops working.")
NEW_KEY_QUESTION = ("You did not type your recovery key.\n\nChange the passphrase and get a new recovery key? The "
                    "recovery key you have now will stop working; medvault shows you the new one at once, to print "
                    "or write down.")
NEW_KEY_SHOWN = ("Here is your new recovery key. Write it down or keep the recovery kit, then type its last group to "
                 "confirm; medvault will not show it again.")
REPLACED_BY_PASSWD = ("Your passphrase was changed. The recovery key you had could not follow the change and no "
                      "longer works.")
CARD_QR_PX = 400     # about 10 cm on a common screen: a webcam across a desk reads it


def _field(placeholder: str, name: str) -> QLineEdit:
    field = QLineEdit()
    field.setPlaceholderText(placeholder)
    field.setAccessibleName(name)
    return field


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    for widget in widgets:
        row.addWidget(widget)
    return row


def _align_labels(*forms: QFormLayout) -> None:
    """Forms stacked in one box start their fields at one edge: every label as wide as the widest."""
    labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole) for form in forms for row in range(form.rowCount())]
    widgets = [item.widget() for item in labels if item is not None and item.widget() is not None]
    widest = max(w.sizeHint().width() for w in widgets)
    for widget in widgets:
        widget.setMinimumWidth(widest)


def _minutes_words(minutes: int) -> str:
    if minutes == 0:
        return "Never"
    if minutes == 60:
        return "After 1 hour"
    return f"After {minutes} minute{'' if minutes == 1 else 's'}"


class SettingsScreen(QWidget):
    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.session = ctx.extras.get("session")
        self._loading = False
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(16, 8, 16, 16)
        column.addWidget(QLabel("<h2>Settings</h2>"))
        for box in (self._sharing_box(), self._serving_box(), self._chain_box(), self._locking_box(),
                    self._card_box(), self._passphrase_box(), self._recovery_box()):
            column.addWidget(box)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setAccessibleName("Settings")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.scroll = scroll
        serving = ctx.extras.get("serving")
        self.serving_label.hide()
        if serving is not None:
            serving.changed.connect(lambda text, _problem: self._show_serving(text))
            self._show_serving(serving.text)
        self.recovery_dialog: RecoveryKeyDialog | None = None

    def _show_serving(self, text: str) -> None:
        self.serving_label.setText(text)
        self.serving_label.setVisible(bool(text))

    # --- building ---------------------------------------------------------------------------------------------
    def _sharing_box(self) -> QGroupBox:
        box = QGroupBox("Where new shares are kept")
        self.embedded_radio = QRadioButton("On this computer: medvault serves them itself while it runs")
        self.embedded_radio.setAccessibleName("Keep new shares on this computer")
        self.ipfs_radio = QRadioButton("On an IPFS node")
        self.ipfs_radio.setAccessibleName("Keep new shares on an IPFS node")
        group = QButtonGroup(box)
        group.addButton(self.embedded_radio)
        group.addButton(self.ipfs_radio)
        self.embedded_radio.setChecked(True)
        self.api_field = _field("http://127.0.0.1:5001", "IPFS node API address")
        self.gateway_field = _field("http://127.0.0.1:8080", "IPFS gateway address receivers fetch from")
        self.test_button = _button("Test", "Test the IPFS node: add a test file and fetch it back")
        self.apply_backend_button = _button("Use for new shares", "Use this place for new shares")
        self.sharing_message = InlineMessage("Sharing place result")
        self.ipfs_radio.toggled.connect(self._backend_choice_changed)
        self.test_button.clicked.connect(self.test_ipfs)
        self.apply_backend_button.clicked.connect(self.apply_backend)
        form = QFormLayout()
        form.addRow("API", self.api_field)
        form.addRow("Gateway", self.gateway_field)
        layout = QVBoxLayout(box)
        layout.addWidget(self.embedded_radio)
        layout.addWidget(self.ipfs_radio)
        layout.addLayout(form)
        layout.addWidget(_para("Receivers fetch share files from the gateway; a node on this computer is reached "
                               "from this computer only unless its gateway listens on the network."))
        layout.addLayout(_row(self.test_button, self.apply_backend_button))
        layout.addWidget(self.sharing_message)
        self._backend_choice_changed(False)
        return box

    def _serving_box(self) -> QGroupBox:
        box = QGroupBox("This computer's gateway")
        self.serving_label = _para("")
        self.serving_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lan_box = QCheckBox("Also serve the local network, so a clinician's computer on the same network can "
                                 "open your shares")
        self.lan_box.setAccessibleName("Serve shares to the local network too")
        self.locked_box = QCheckBox("Keep serving shares while medvault is locked")
        self.locked_box.setAccessibleName("Keep serving shares while medvault is locked")
        self.serving_message = InlineMessage("Gateway setting result")
        self.lan_box.toggled.connect(self.set_local_network)
        self.locked_box.toggled.connect(self.set_serve_when_locked)
        layout = QVBoxLayout(box)
        layout.addWidget(self.serving_label)
        layout.addWidget(self.lan_box)
        layout.addWidget(_para("Links made while it is on carry this computer's network address; turned off, "
                               "they open on this computer only."))
        layout.addWidget(self.locked_box)
        layout.addWidget(_para("While locked, medvault keeps only the encrypted files of your active shares, "
                               "so the links you handed out keep working; nothing else of the vault can be read. "
                               "Turned off, locking stops serving."))
        layout.addWidget(self.serving_message)
        return box

    def _chain_box(self) -> QGroupBox:
        box = QGroupBox("Consent network")
        self.chain_label = _para("")
        self.chain_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rpc_field = _field("http://127.0.0.1:8545", "Consent network node address")
        self.contract_field = _field("0x… (leave empty to deploy a new registry)", "Consent registry contract address")
        self.pay_box = QCheckBox("The node's own account pays for transactions (test networks)")
        self.pay_box.setAccessibleName("Let the node's own account pay for transactions")
        self.connect_button = _button("Connect", "Connect to this consent registry")
        self.deploy_button = _button("Deploy a new registry", "Deploy a new consent registry on this network")
        self.sync_button = _button("Send what waits", "Send the consent changes waiting for the consent network")
        self.chain_message = InlineMessage("Consent network result")
        self.connect_button.clicked.connect(self.connect_chain)
        self.deploy_button.clicked.connect(self.deploy_chain)
        self.sync_button.clicked.connect(self.sync_chain)
        form = QFormLayout()
        form.addRow("Node", self.rpc_field)
        form.addRow("Registry", self.contract_field)
        layout = QVBoxLayout(box)
        layout.addWidget(self.chain_label)
        layout.addLayout(form)
        layout.addWidget(self.pay_box)
        layout.addLayout(_row(self.deploy_button, self.connect_button, self.sync_button))
        layout.addWidget(self.chain_message)
        return box

    def _locking_box(self) -> QGroupBox:
        box = QGroupBox("Locking")
        self.autolock_box = QComboBox()
        self.autolock_box.setAccessibleName("Lock the vault after this long without use")
        for minutes in AUTOLOCK_CHOICES:
            self.autolock_box.addItem(_minutes_words(minutes), minutes)
        self.autolock_box.activated.connect(self.set_autolock)
        self.locking_message = InlineMessage("Locking setting result")
        label = QLabel("Lock by itself")
        label.setBuddy(self.autolock_box)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow(label, self.autolock_box)
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addWidget(_para("medvault also locks when the screen locks or the computer goes to sleep."))
        layout.addWidget(self.locking_message)
        return box

    def _card_box(self) -> QGroupBox:
        box = QGroupBox("Your card")
        self.card_name = _field("Your name as others should see it", "Name on your card")
        self.card_name.editingFinished.connect(self.show_card)
        self.card_qr = QLabel()
        self.card_qr.setAccessibleName("QR code of your card")
        self.card_qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.copy_card_button = _button("Copy the card", "Copy your card as text")
        self.copy_card_button.clicked.connect(self.copy_card)
        self.card_text = ""
        self.card_message = InlineMessage("Card result")
        form = QFormLayout()
        form.addRow("Name", self.card_name)
        left = QVBoxLayout()
        left.addWidget(_para("Someone who wants to send you records scans this code or pastes the card: the "
                             "records are then sealed to you alone. It holds the name below and your public keys, "
                             "nothing else."))
        left.addLayout(form)
        left.addLayout(_row(self.copy_card_button))
        left.addWidget(self.card_message)
        left.addStretch(1)
        layout = QHBoxLayout(box)
        layout.addLayout(left, 1)
        layout.addWidget(self.card_qr)
        return box

    def _passphrase_box(self) -> QGroupBox:
        box = QGroupBox("Passphrase")
        self.old_passphrase = _field("", "Current passphrase")
        self.old_passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_passphrase = NewPassphrase("New passphrase")
        self.change_button = _button("Change passphrase", "Change the passphrase")
        self.change_button.setEnabled(False)
        self.passphrase_message = InlineMessage("Passphrase change result")
        self.new_passphrase.changed.connect(self._update_change_button)
        self.old_passphrase.textChanged.connect(self._update_change_button)
        self.change_button.clicked.connect(self.change_passphrase)
        # Only for a vault made by an older medvault, whose recovery key cannot follow the change unless typed in;
        # after the new passphrase, so the passphrase fields read in the order they are filled.
        self.passwd_recovery_note = _para(PASSWD_RECOVERY_NOTE)
        self.passwd_recovery = _field("9 groups of 4 letters and digits, as on your recovery kit",
                                      "Recovery key, to keep it working")
        self.passwd_recovery.textEdited.connect(lambda _text: self.passphrase_message.clear())
        form = QFormLayout()
        form.addRow("Current passphrase", self.old_passphrase)
        recovery_form = self._passwd_form = QFormLayout()
        recovery_form.addRow("Recovery key", self.passwd_recovery)
        _align_labels(form, self.new_passphrase.layout(), recovery_form)
        self._show_passwd_recovery()
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addWidget(self.new_passphrase)
        layout.addWidget(self.passwd_recovery_note)
        layout.addLayout(recovery_form)
        layout.addLayout(_row(self.change_button))
        layout.addWidget(self.passphrase_message)
        return box

    def _recovery_box(self) -> QGroupBox:
        box = QGroupBox("Recovery key")
        self.new_key_button = _button("Make a new recovery key…", "Make a new recovery key")
        self.new_key_button.clicked.connect(self.open_recovery_dialog)
        layout = QVBoxLayout(box)
        layout.addWidget(_para("If your recovery kit was lost, or someone else may have seen it, make a new "
                               "recovery key: the old one stops working at once."))
        layout.addLayout(_row(self.new_key_button))
        return box

    # --- loading ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        session = self.session
        if session is None:
            return

        def work() -> tuple[Any, Any, str]:
            owner = next((p for p in session.persons() if getattr(p, "is_primary", False)), None)
            return session.preferences(), session.chain_status(), getattr(owner, "display_name", None) or ""
        self.chain_label.setText("Asking the consent network…")
        self.ctx.runner.run(work, self._show, self._failed(self.sharing_message))

    def _show(self, result: tuple[Any, Any, str]) -> None:
        prefs, status, owner = result
        self._loading = True            # the boxes are set, not clicked: nothing to save
        try:
            ipfs = prefs.backend["kind"] == "ipfs"
            (self.ipfs_radio if ipfs else self.embedded_radio).setChecked(True)
            self.api_field.setText(prefs.backend.get("api", "") if ipfs else self.api_field.text())
            self.gateway_field.setText(prefs.backend.get("gateway", "") if ipfs else self.gateway_field.text())
            self.lan_box.setChecked(prefs.local_network)
            self.locked_box.setChecked(prefs.serve_when_locked)
            self.autolock_box.setCurrentIndex(max(0, self.autolock_box.findData(prefs.autolock_minutes)))
        finally:
            self._loading = False
        self._show_chain(status)
        if not self.card_name.text():
            self.card_name.setText(owner)
        if not self.card_text:
            self.show_card()

    def _show_chain(self, status: Any) -> None:
        from app.screens.activity import chain_line
        self.chain_label.setText(chain_line(status))
        if status.configured:
            self.rpc_field.setText(status.rpc or "")
            self.contract_field.setText(status.contract or "")
        self.sync_button.setEnabled(status.configured)

    def _failed(self, message: InlineMessage, button: QWidget | None = None) -> Any:
        def fail(exc: BaseException) -> None:
            if button is not None:
                button.setEnabled(True)
            message.say(user_message(exc))
            if not expected(exc):
                self.ctx.show_error(exc)
        return fail

    def _run(self, work: Any, done: Any, message: InlineMessage, button: QWidget | None, busy: str,
             on_error: Any = None) -> None:
        """``work`` on the runner with ``button`` (if any) disabled and ``busy`` said meanwhile; ``done(result)``
        returns the sentence to say. Boxes the user just ticked stay enabled, so the keyboard focus stays put."""
        if button is not None:
            button.setEnabled(False)
        message.say(busy, warning=False)
        report = self._failed(message, button)

        def finished(result: Any) -> None:
            if button is not None:
                button.setEnabled(True)
            sentence = done(result)
            if sentence:
                message.say(sentence, warning=False)

        def failed(exc: BaseException) -> None:
            if on_error is not None:
                on_error(exc)
            report(exc)
        self.ctx.runner.run(work, finished, failed)

    # --- sharing place ----------------------------------------------------------------------------------------
    def _backend_choice_changed(self, ipfs: bool) -> None:
        for widget in (self.api_field, self.gateway_field, self.test_button):
            widget.setEnabled(ipfs)

    def test_ipfs(self) -> None:
        api, gateway = self.api_field.text().strip(), self.gateway_field.text().strip()
        if not api or not gateway:
            self.sharing_message.say("Give both the node's API address and its gateway address.")
            return
        from app.services import Session
        self._run(lambda: Session.test_ipfs(api, gateway), lambda probe: probe.sentence(), self.sharing_message,
                  self.test_button, "Adding a test file to the node and fetching it back…")

    def apply_backend(self) -> None:
        session = self.session
        if self.ipfs_radio.isChecked():
            api, gateway = self.api_field.text().strip(), self.gateway_field.text().strip()
            if not api or not gateway:
                self.sharing_message.say("Give both the node's API address and its gateway address.")
                return
            self._run(lambda: session.use_ipfs_backend(api, gateway),
                      lambda version: f"New shares go to the IPFS node (version {version}).",
                      self.sharing_message, self.apply_backend_button, "Checking the node…")
        else:
            self._run(session.use_embedded_backend,
                      lambda _r: "New shares are kept on this computer; medvault serves them while it runs.",
                      self.sharing_message, self.apply_backend_button, "Saving…")

    # --- gateway ----------------------------------------------------------------------------------------------
    def set_local_network(self, on: bool) -> None:
        if self._loading:
            return
        session, serving = self.session, self.ctx.extras.get("serving")

        def done(address: str) -> str:
            if serving is not None:
                serving.start(session)      # listen where the new address says
            return (f"New links point to {address}; computers on your network can open them while medvault "
                    "runs." if on else f"New links point to {address}, on this computer only.")

        def failed(exc: BaseException) -> None:
            self._loading = True
            self.lan_box.setChecked(not on)     # the choice did not take
            self._loading = False
        self._run(lambda: session.set_local_network(on), done, self.serving_message, None,
                  "Finding this computer's address on the network…" if on else "Saving…", on_error=failed)

    def set_serve_when_locked(self, on: bool) -> None:
        if self._loading:
            return
        session = self.session
        self._run(lambda: session.set_serve_when_locked(on),
                  lambda _r: ("Your shares stay served while medvault is locked." if on else
                              "Locking will stop serving your shares until you unlock."),
                  self.serving_message, None, "Saving…")

    # --- consent network --------------------------------------------------------------------------------------
    def _chain_fields(self) -> tuple[str, str, bool] | None:
        rpc = self.rpc_field.text().strip()
        if not rpc:
            self.chain_message.say("Give the address of a node of the consent network.")
            self.rpc_field.setFocus()
            return None
        return rpc, self.contract_field.text().strip(), self.pay_box.isChecked()

    def connect_chain(self) -> None:
        fields = self._chain_fields()
        if fields is None:
            return
        rpc, contract, pay = fields
        if not contract:
            self.chain_message.say("Give the registry's contract address, or deploy a new registry.")
            self.contract_field.setFocus()
            return
        session = self.session

        def done(result: tuple[Any, bool]) -> str:
            settings, member = result
            self.refresh()
            return (f"Using the consent registry {settings.contract} on chain {settings.chain_id}."
                    + ("" if member or pay else " This vault's account is not a member, so a member institution "
                                                "must relay its consent changes."))
        self._run(lambda: session.chain_connect(rpc, contract, pay_with_node_account=pay), done,
                  self.chain_message, self.connect_button, "Connecting…")

    def deploy_chain(self) -> None:
        fields = self._chain_fields()
        if fields is None:
            return
        rpc, _contract, pay = fields
        session = self.session

        def done(settings: Any) -> str:
            self.refresh()
            return (f"Consent registry deployed at {settings.contract} on chain {settings.chain_id}; this vault's "
                    "account is its admin and a member.")
        self._run(lambda: session.chain_deploy(rpc, pay_with_node_account=pay), done, self.chain_message,
                  self.deploy_button, "Deploying the registry…")

    def sync_chain(self) -> None:
        session = self.session

        def done(report: Any) -> str:
            self.refresh()
            if report.unavailable is not None:
                return (f"The consent network could not be reached, so {report.remaining:,} change(s) still wait: "
                        f"{report.unavailable.user_message}")
            sent = len(report.anchored)
            words = f"{sent:,} change{'' if sent == 1 else 's'} recorded" if sent else "Nothing was waiting"
            if report.failed:
                words += f"; {len(report.failed):,} refused (see Activity for the reasons)"
            return words + "."
        self._run(session.sync_chain, done, self.chain_message, self.sync_button, "Sending…")

    # --- locking ----------------------------------------------------------------------------------------------
    def set_autolock(self, index: int) -> None:
        minutes = self.autolock_box.itemData(index)
        session, idle = self.session, self.ctx.extras.get("idle")

        def done(_r: Any) -> str:
            if idle is not None:
                idle.set_minutes(minutes)
            return ("medvault locks only when you lock it, the screen locks or the computer sleeps."
                    if minutes == 0 else f"medvault locks {_minutes_words(minutes).lower()} without use.")
        self._run(lambda: session.set_autolock_minutes(minutes), done, self.locking_message, None, "Saving…")

    # --- card -------------------------------------------------------------------------------------------------
    def show_card(self) -> None:
        session, name = self.session, self.card_name.text().strip() or None
        if session is None:
            return

        def work() -> tuple[str, Any]:
            text = session.card(name)
            return text, qr_image(text)

        def done(result: tuple[str, Any]) -> None:
            self.card_text, image = result
            # whole pixels per module, so the code stays sharp enough for a webcam at this size
            px = min(8, max(4, CARD_QR_PX // modules_of(image)))
            side = modules_of(image) * px
            self.card_qr.setPixmap(QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                                  Qt.TransformationMode.FastTransformation)))
            self.card_message.clear()
        self.ctx.runner.run(work, done, self._failed(self.card_message))

    def copy_card(self) -> None:
        if self.card_text:
            QGuiApplication.clipboard().setText(self.card_text)
            self.card_message.say("Your card is on the clipboard: it holds no health data, only how to send you "
                                  "records.", warning=False)

    # --- passphrase -------------------------------------------------------------------------------------------
    def _update_change_button(self) -> None:
        self.change_button.setEnabled(bool(self.old_passphrase.text()) and self.new_passphrase.value() is not None)

    def _show_passwd_recovery(self) -> None:
        needed = self.session is not None and self.session.passwd_needs_recovery_key
        self.passwd_recovery_note.setVisible(needed)
        self._passwd_form.setRowVisible(self.passwd_recovery, needed)

    def change_passphrase(self) -> None:
        old, new = self.old_passphrase.text(), self.new_passphrase.value()
        if not old or new is None:
            return
        session = self.session
        needs_key = session.passwd_needs_recovery_key
        recovery_key = self.passwd_recovery.text().strip() if needs_key else ""
        if needs_key and not recovery_key and not ask(
                self, NEW_KEY_QUESTION, "Change it and get a new key", "Go back",
                do_name="Change the passphrase and get a new recovery key",
                dont_name="Go back and type the recovery key"):
            self.passwd_recovery.setFocus()
            return

        def work() -> tuple[str | None, Any]:
            issued = session.change_passphrase(old, new, recovery_key or None)
            return issued, (qr_image(issued) if issued else None)

        def done(result: tuple[str | None, Any]) -> str:
            self.old_passphrase.clear()
            self.new_passphrase.clear()
            self.passwd_recovery.clear()
            self.change_button.setEnabled(False)
            self._show_passwd_recovery()
            if result[0] is None:
                return ("Passphrase changed, and your records moved to a new key. Use the new passphrase from now "
                        "on; your recovery key still works.")
            # the old recovery key stopped working: show the new one at once, to be kept and confirmed
            self.recovery_dialog = RecoveryKeyDialog(self.ctx, self)
            self.recovery_dialog.show_key(result, REPLACED_BY_PASSWD)
            self.recovery_dialog.open()
            return ("Passphrase changed, and your records moved to a new key. Your old recovery key no longer "
                    "works: keep the new one shown now.")

        def failed(exc: BaseException) -> None:
            self._failed(self.passphrase_message, self.change_button)(exc)
            # back to the field that was wrong, its text selected so typing replaces it
            field = (self.passwd_recovery if isinstance(exc, (WrongRecoveryKey, MalformedRecoveryKey))
                     else self.old_passphrase)
            field.setFocus()
            field.selectAll()
        self.change_button.setEnabled(False)
        self.passphrase_message.say("Changing the passphrase…", warning=False)
        self.ctx.runner.run(work, lambda r: self.passphrase_message.say(done(r), warning=False), failed)

    # --- recovery key -----------------------------------------------------------------------------------------
    def open_recovery_dialog(self) -> None:
        self.recovery_dialog = RecoveryKeyDialog(self.ctx, self)
        self.recovery_dialog.open()


Screen = SettingsScreen


class RecoveryKeyDialog(QDialog):
    """A new recovery key: made only when asked (the old one stops working then), shown once with its QR code,
    kept as a recovery kit (PDF or paper), and confirmed by typing its last group back."""

    def __init__(self, ctx: ScreenContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.extras.get("session")
        self.key = ""
        self.made_on = date.today()
        self.setWindowTitle("medvault")
        self.pages = QStackedWidget()

        ask = QWidget()
        self.make_button = _button("Make the new key", "Make the new recovery key")
        self.cancel_button = _button("Cancel", "Cancel: keep the current recovery key")
        self.make_button.clicked.connect(self.make_key)
        self.cancel_button.clicked.connect(self.reject)
        self.ask_message = InlineMessage("Problem making a new recovery key")
        ask_layout = QVBoxLayout(ask)
        ask_layout.addWidget(_para("A new recovery key replaces the one you have: the old one stops working at "
                                   "once, for this vault folder and any copy made from now on. Keep the new one "
                                   "safe, away from this computer."))
        ask_layout.addWidget(self.ask_message)
        ask_layout.addLayout(_row(self.cancel_button, self.make_button))

        show = QWidget()
        self.key_label = QLabel()
        font = self.key_label.font()
        font.setFamily("monospace")
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.key_label.setFont(font)
        self.key_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_qr = QrView()
        self.key_qr.setAccessibleName("QR code of the new recovery key")
        self.key_qr.setMinimumHeight(200)
        self.save_button = _button("Save as PDF…", "Save the recovery kit as a PDF")
        self.print_button = _button("Print…", "Print the recovery kit")
        self.save_button.clicked.connect(self._ask_where_to_save)
        self.print_button.clicked.connect(self._ask_printer)
        self.kit_message = InlineMessage("Recovery kit result")
        self.confirm_field = _field("the last group, e.g. 7K2D", "Last group of the new recovery key")
        self.confirm_field.textChanged.connect(self._update_done)
        self.done_button = _button("Done", "Done: I have kept the new recovery key")
        self.done_button.setEnabled(False)
        self.done_button.clicked.connect(self.confirm)
        self.done_message = InlineMessage("Problem confirming the recovery key")
        show_layout = QVBoxLayout(show)
        self.show_intro = _para(NEW_KEY_SHOWN)
        show_layout.addWidget(self.show_intro)
        show_layout.addWidget(self.key_label)
        show_layout.addWidget(self.key_qr, 1)
        show_layout.addLayout(_row(self.save_button, self.print_button))
        show_layout.addWidget(self.kit_message)
        confirm_form = QFormLayout()
        confirm_form.addRow("Type its last group", self.confirm_field)
        show_layout.addLayout(confirm_form)
        show_layout.addWidget(self.done_message)
        show_layout.addLayout(_row(self.done_button))
        self.show_page = show

        self.pages.addWidget(ask)
        self.pages.addWidget(show)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.resize(560, 640)
        self._save_dialog: QFileDialog | None = None
        self._print_dialog: QPrintDialog | None = None

    def make_key(self) -> None:
        session = self.session
        self.make_button.setEnabled(False)
        self.cancel_button.setEnabled(False)

        def failed(exc: BaseException) -> None:
            self.make_button.setEnabled(True)
            self.cancel_button.setEnabled(True)
            self.ask_message.say(user_message(exc))
            if not expected(exc):
                self.ctx.show_error(exc)

        def work() -> tuple[str, Any]:
            key = session.new_recovery_key()
            return key, qr_image(key)
        self.ctx.runner.run(work, self.show_key, failed)

    def show_key(self, result: tuple[str, Any], why: str = "") -> None:
        """Show a key just made (here, or by a passphrase change that had to replace it: ``why`` says so first)
        and ask to confirm it."""
        self.key, image = result
        self.show_intro.setText(f"{why} {NEW_KEY_SHOWN}" if why else NEW_KEY_SHOWN)
        self.key_label.setText("\n".join(" ".join(self.key.split("-")[i:i + 3]) for i in (0, 3, 6)))
        self.key_qr.set_image(image)
        self.pages.setCurrentWidget(self.show_page)
        self.confirm_field.setFocus()

    def _update_done(self) -> None:
        last = self.key.rsplit("-", 1)[-1] if self.key else None
        self.done_button.setEnabled(bool(last) and self.confirm_field.text().strip().upper() == last)

    def confirm(self) -> None:
        if not self.done_button.isEnabled():
            return
        session = self.session
        self.done_button.setEnabled(False)

        def failed(exc: BaseException) -> None:
            self.done_button.setEnabled(True)
            self.done_message.say(user_message(exc))
        self.ctx.runner.run(session.confirm_recovery_key, lambda _r: self._finish(), failed)

    def _finish(self) -> None:
        self.key = ""
        self.key_label.clear()
        self.key_qr.set_image(None)
        self.accept()

    def reject(self) -> None:
        """Closed before confirming: the new key stays unconfirmed, so the next unlock offers another one."""
        self.key = ""
        self.key_label.clear()
        self.key_qr.set_image(None)
        super().reject()

    # --- the kit ----------------------------------------------------------------------------------------------
    def _hint(self) -> str:
        return recovery_kit.vault_hint(self.session.vault.vault_id if self.session is not None else "")

    def _ask_where_to_save(self) -> None:
        self._save_dialog = recovery_kit.save_dialog(self, self.save_kit)

    def save_kit(self, path: str) -> None:
        """Drawn here (Qt painting), written on a worker (disk), owner-only and atomically."""
        if not self.key:
            return
        data = recovery_kit.pdf_bytes(self.key, self.made_on, self._hint())
        self.ctx.runner.run(lambda: recovery_kit.save_pdf(path, data),
                            lambda saved: self.kit_message.say(recovery_kit.SAVED.format(name=saved.name),
                                                               warning=False),
                            lambda exc: self.kit_message.say(user_message(exc)))

    def _ask_printer(self) -> None:
        self._print_dialog = recovery_kit.print_dialog(self, self.print_kit)

    def print_kit(self, printer: QPrinter) -> None:
        if not self.key:
            return
        try:
            said = recovery_kit.print_or_save(printer, self.key, self.made_on, self._hint(), self.save_kit)
        except recovery_kit.KitNotSaved as exc:
            self.kit_message.say(exc.user_message)
            return
        if said:
            self.kit_message.say(said, warning=False)

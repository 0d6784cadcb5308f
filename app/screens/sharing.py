"""Sharing: every share made from this vault, who it is for, what it holds, until when, whether it is still
active, and who opened it; its QR code shown again; and withdrawing it.

The list comes from the vault (``Session.list_shares``); who opened what comes from the consent network, read
afterwards so the list never waits for the network (``Session.share_accesses``), and the screen says plainly when
that cannot be known. Links are kept in the encrypted vault since shares-v2; older shares have none and the screen
says so. Revoking runs on the task runner and ends with the sentence every revoke must say: copies already
fetched cannot be recalled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.errors import expected, user_message
from app.questions import ask
from app.screens import ScreenContext
from app.share_qr import QrPanel
from app.unlock_window import InlineMessage

COLUMNS = ("Made", "What it holds", "For", "Until", "State", "Opened")
STATE_WORDS = {"active": "Active", "expired": "Expired", "revoked": "Revoked"}
ROW_ID = Qt.ItemDataRole.UserRole
REVOKE_QUESTION = ("Withdraw this share? Its link stops working at once.\n\nCopies already fetched cannot be "
                   "recalled: anyone who opened it before now may still have them.")
NO_LINK = ("This share was made before medvault kept share links, so its QR code cannot be shown again. If it is "
           "still needed, make a new share and withdraw this one.")


def _when(epoch: int | None, with_time: bool = True) -> str:
    from vault.records.describe import local_date
    if not epoch:
        return ""
    return local_date(datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds"), with_time)


def recipient_words(row: dict) -> str:
    if row["kind"] != "directed":
        return "Anyone with the link"
    return f"{row['recipient_name']} only" if row.get("recipient_name") else "One clinician only"


def holds_words(row: dict) -> str:
    n = row["resources"]
    count = f"{QLocale().toString(n)} record{'s' if n != 1 else ''}"
    return f"{row['what']} ({count})" if row.get("what") else count


def until_words(row: dict) -> str:
    if row["state"] == "revoked":
        return f"Withdrawn on {_when(row['revoked_at'])}"
    return _when(row["expires_at"]) if row["expires_at"] else "Until withdrawn"


def opened_words(opens: list[Any] | None, known: bool) -> str:
    if not opens:
        return "Not opened yet" if known else "Not known"
    last = opens[-1]
    head = f"By {last.who} on {_when(last.at)}"
    return head if len(opens) == 1 else f"{len(opens)} times; last by {last.who} on {_when(last.at)}"


def _confirm_revoke(parent: QWidget) -> bool:
    return ask(parent, REVOKE_QUESTION, "Withdraw it", "Keep it", do_name="Withdraw the share",
               dont_name="Keep the share")


class QrDialog(QDialog):
    """A share's code shown again."""

    def __init__(self, parent: QWidget | None, runner: Any, **panel_kwargs: Any) -> None:
        super().__init__(parent)
        self.setWindowTitle("medvault")
        layout = QVBoxLayout(self)
        self.panel = QrPanel(runner, **panel_kwargs)
        layout.addWidget(self.panel, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close")
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(960, 760)


class SharingScreen(QWidget):
    """The Sharing section: the list of shares and what can be done with each."""

    def __init__(self, ctx: ScreenContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.session = ctx.extras.get("session")
        self._confirm: Callable[[QWidget], bool] = ctx.extras.get("confirm_revoke", _confirm_revoke)
        self._panel_kwargs = {k: ctx.extras[k] for k in ("guard", "ask_save_path", "ask_printer") if k in ctx.extras}
        self.rows: list[dict] = []
        self.access: Any = None
        self.qr_dialog: QrDialog | None = None
        self.wizard: Any = None
        self._request = 0

        heading = QLabel("<h2>Sharing</h2>")
        self.new_button = QPushButton("&New share\u2026")
        self.new_button.setAccessibleName("Share records: make a new share")
        self.new_button.clicked.connect(lambda _checked=False: self.new_share())     # not the button's flag as ids
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addStretch(1)
        top.addWidget(self.new_button)
        intro = QLabel("Everything you have shared from this vault. A share works until it expires or you withdraw "
                       "it; withdrawing stops the link, but copies already fetched cannot be recalled.")
        intro.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("shares")
        self.table.setAccessibleName("Your shares")
        self.table.setAccessibleDescription("Choose a share, then show its QR code again or withdraw it.")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTabKeyNavigation(False)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        # one line a share; what does not fit is elided and said in full by the cell's tooltip
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(90)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemActivated.connect(lambda _item: self.show_qr_again())
        self.empty = QLabel("You have not shared anything yet. Choose \u201cNew share\u201d to show a QR code to a "
                            "clinician.")
        self.empty.setWordWrap(True)
        self.access_note = QLabel()
        self.access_note.setWordWrap(True)
        self.qr_button = QPushButton("Show &QR again")
        self.qr_button.setAccessibleName("Show the chosen share's QR code again")
        self.revoke_button = QPushButton("&Withdraw\u2026")
        self.revoke_button.setAccessibleName("Withdraw the chosen share")
        self.qr_button.clicked.connect(self.show_qr_again)
        self.revoke_button.clicked.connect(self.revoke)
        actions = QHBoxLayout()
        actions.addWidget(self.qr_button)
        actions.addWidget(self.revoke_button)
        actions.addStretch(1)
        self.message = InlineMessage("What happened")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(top)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addWidget(self.access_note)
        self._selection_changed()

    # --- reading ------------------------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()          # a share may have been made from another screen meanwhile

    def refresh(self) -> None:
        if self.session is None:
            return
        self._request += 1
        request, session = self._request, self.session
        self.ctx.runner.run(session.list_shares, lambda rows: self._listed(request, rows), self._read_failed)

    def _listed(self, request: int, rows: list[dict]) -> None:
        if request != self._request:
            return
        self.rows = sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)
        self._fill()
        if rows:
            session = self.session
            self.ctx.runner.run(session.share_accesses, lambda log: self._accessed(request, log),
                                lambda exc: self._access_failed(request, exc))

    def _accessed(self, request: int, log: Any) -> None:
        if request != self._request:
            return
        self.access = log
        self.access_note.setText(log.note)
        self._fill()

    def _access_failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.access_note.setText(f"Who opened your shares could not be read: {user_message(exc)}")
            if not expected(exc):
                self.ctx.show_error(exc)

    def _read_failed(self, exc: BaseException) -> None:
        self.message.say(user_message(exc))
        if not expected(exc):
            self.ctx.show_error(exc)

    def _fill(self) -> None:
        selected = self.selected()
        self.table.setRowCount(len(self.rows))
        known = bool(self.access and self.access.known)
        opened = self.access.opened if self.access is not None else {}
        for n, row in enumerate(self.rows):
            cells = (_when(row["created_at"]), holds_words(row), recipient_words(row), until_words(row),
                     STATE_WORDS.get(row["state"], row["state"]),
                     opened_words(opened.get(row["id"]), known) if self.access is not None else "Checking\u2026")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(ROW_ID, row["id"])
                item.setToolTip(text)
                self.table.setItem(n, column, item)
            if row["state"] == "active" and not row.get("has_link"):
                self.table.item(n, 1).setToolTip("Made before medvault kept share links: its QR code cannot be "
                                                  "shown again.")
        self.table.resizeRowsToContents()
        self.table.setVisible(bool(self.rows))
        self.empty.setVisible(not self.rows)
        if self.rows:
            self.select(selected["id"] if selected is not None else self.rows[0]["id"])
        self._selection_changed()

    # --- the chosen share ---------------------------------------------------------------------------------------
    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        share_id = self.table.item(rows[0].row(), 0).data(ROW_ID)
        return next((r for r in self.rows if r["id"] == share_id), None)

    def select(self, share_id: str) -> None:
        for n, row in enumerate(self.rows):
            if row["id"] == share_id:
                self.table.selectRow(n)
                return

    def _selection_changed(self) -> None:
        row = self.selected()
        self.qr_button.setEnabled(row is not None and row["state"] == "active")
        self.revoke_button.setEnabled(row is not None and row["state"] != "revoked")

    def show_qr_again(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row["state"] != "active":
            self.message.say("This share is no longer active, so its code would open nothing." if row["state"] ==
                             "revoked" else "This share has expired, so its code would open nothing.")
            return
        session, share_id = self.session, row["id"]

        def work() -> tuple[str | None, Any]:
            from sync.qr import make_image
            link = session.share_link(share_id)
            if link is None:
                return None, None
            pil = make_image(link)
            return link, (pil.tobytes(), pil.width, pil.height)

        self.ctx.runner.run(work, lambda result: self._show_qr(row, *result), self._read_failed)

    def _show_qr(self, row: dict, link: str | None, pixels: Any) -> None:
        from PySide6.QtGui import QImage

        from app.screens.share_wizard import LOCAL_ONLY, fit_to_code, share_warning
        from app.services.sharing import local_only
        if link is None:
            self.message.say(NO_LINK)
            return
        data, width, height = pixels
        image = QImage(data, width, height, width, QImage.Format.Format_Grayscale8).copy()
        if self.qr_dialog is None:
            self.qr_dialog = QrDialog(self, self.ctx.runner, **self._panel_kwargs)
        whom = f"For: {row['recipient_name']} only" if row["kind"] == "directed" else "For: anyone who has this code"
        lines = [whom, f"Holds: {holds_words(row)}", f"Until: {until_words(row)}"]
        from urllib.parse import urlsplit
        notice = LOCAL_ONLY.format(host=urlsplit(row["url"]).hostname) if local_only(row["url"]) else ""
        self.qr_dialog.panel.show_link(link, image, lines,
                                       share_warning(row["recipient_name"] if row["kind"] == "directed" else None),
                                       notice)
        self.qr_dialog.show()
        fit_to_code(self.qr_dialog)
        self.qr_dialog.raise_()
        self.qr_dialog.activateWindow()

    def revoke(self) -> None:
        row = self.selected()
        if row is None or row["state"] == "revoked" or not self._confirm(self):
            return
        session, share_id = self.session, row["id"]
        self.revoke_button.setEnabled(False)
        self.message.say("Withdrawing\u2026", warning=False)

        def done(outcome: Any) -> None:
            text = outcome.sentence
            if outcome.chain:
                text += f" On the consent network: {outcome.chain}."
            self.message.say(text, warning=False)
            self.refresh()

        def failed(exc: BaseException) -> None:
            self._read_failed(exc)
            self._selection_changed()

        self.ctx.runner.run(lambda: session.revoke_share(share_id), done, failed)

    def new_share(self, ids: Any = ()) -> Any:
        from app.screens.share_picked import open_share_wizard
        self.wizard = open_share_wizard(self.ctx, ids, self)
        self.wizard.shared.connect(lambda _id: self.refresh())
        return self.wizard


Screen = SharingScreen

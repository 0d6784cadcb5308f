"""The share wizard: what to share, a check of exactly what will leave the computer, who may open it, for how long
and from where, then the QR code.

Four steps in one dialog, driven from the keyboard (Enter goes on, Alt+B goes back, Escape leaves). Every read,
the preview and the share itself run on the task runner through the application layer (``Session``); a result
that arrives after the user moved on is dropped. Sensitive records (``vault.records.sensitive``) are left out
unless the patient ticks them back in; the share then sends the very bundle the check step showed.

Other screens open it with ``start_share(ctx, ids)``, ids being the "Type/id" of records the user picked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from PySide6.QtCore import QBuffer, QDate, QIODevice, QLocale, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QComboBox, QDateEdit, QDialog, QFileDialog,
                               QFrame, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QRadioButton, QStackedWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from app.errors import user_message
from app.screens import ScreenContext
from app.share_qr import QrPanel
from app.unlock_window import InlineMessage

EXPIRIES = (("1 hour", "1h"), ("1 day", "1d"), ("3 days", "3d"), ("7 days", "7d"), ("30 days", "30d"),
            ("90 days", "90d"))
DEFAULT_EXPIRY = "7d"
SHOWN_PER_GROUP = 500           # rows listed per category on the check step; the counts always cover all
PUT_BACK_DELAY_MS = 250         # ticks in a row make one new preview
STEP_TITLES = ("What do you want to share?", "Check what will leave this computer",
               "Who may open it, for how long, and from where", "Show this code")
UNCHECKED, CHECKED = Qt.CheckState.Unchecked, Qt.CheckState.Checked
KEY = Qt.ItemDataRole.UserRole

LOCAL_ONLY = ("This link will only open on this computer: its address ({host}) cannot be reached from a phone or "
              "another computer. To share with someone in the room, turn on local-network sharing in Settings, or "
              "keep shares on an IPFS node.")
WHAT_MAY_MISS = ("medvault recognises sensitive records by their codes, labels and words; it can miss some, for "
                 "example a note that only mentions them in passing. Look through the list above before you share.")


def _title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.35)
    font.setBold(True)
    label.setFont(font)
    return label


def _para(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _button(text: str, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    return button


def _radio(text: str, name: str | None = None) -> QRadioButton:
    radio = QRadioButton(text)
    radio.setAccessibleName(name or text.replace("&", ""))
    return radio


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{QLocale().toString(n)} {word if n == 1 else (plural or word + 's')}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text and not text[:2].isupper() else text


def _until(code: str, now: datetime | None = None) -> str:
    from sync.shares import parse_expiry
    from vault.records.describe import local_date
    end = (now or datetime.now(timezone.utc)) + parse_expiry(code)
    return local_date(end.isoformat(timespec="seconds"), True)


def _qdate(iso: str | None) -> QDate:
    if not iso:
        return QDate.currentDate()
    parsed = QDate.fromString(iso[:10], "yyyy-MM-dd")
    return parsed if parsed.isValid() else QDate.currentDate()


def _png(image: QImage) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data().data())


# --- step 1: what -------------------------------------------------------------------------------------------------

class WhatPage(QWidget):
    def __init__(self, picked: int) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addWidget(_title(STEP_TITLES[0]))
        self.group = QButtonGroup(self)
        self.summary_radio = _radio("Your health &summary", "Your health summary")
        self.kinds_radio = _radio("Records of some &kinds", "Records of some kinds")
        self.dates_radio = _radio("Your records from a &time", "Your records from a time")
        self.picked_radio = _radio(f"The {_plural(picked, 'record')} you &picked",
                                   f"The {_plural(picked, 'record')} you picked")
        for radio in (self.picked_radio, self.summary_radio, self.kinds_radio, self.dates_radio):
            self.group.addButton(radio)
        self.picked_radio.setVisible(picked > 0)
        layout.addWidget(self.picked_radio)
        layout.addWidget(self.summary_radio)
        layout.addWidget(self._indent(_para(
            "What a new doctor needs first: your problems, allergies, medicines, vaccinations, latest results "
            "and vital signs (an International Patient Summary).")))
        layout.addWidget(self.kinds_radio)
        self.kinds = QListWidget()
        self.kinds.setAccessibleName("Kinds of records to share")
        self.kinds.setMaximumHeight(210)
        layout.addWidget(self._indent(self.kinds))
        layout.addWidget(self.dates_radio)
        dates = QWidget()
        row = QHBoxLayout(dates)
        row.setContentsMargins(0, 0, 0, 0)
        self.date_from, self.date_to = QDateEdit(), QDateEdit()
        for edit, name in ((self.date_from, "From"), (self.date_to, "To")):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat(QLocale().dateFormat(QLocale.FormatType.LongFormat))
            edit.setAccessibleName(f"{name} this date")
        from_label, to_label = QLabel("&From"), QLabel("t&o")
        from_label.setBuddy(self.date_from)
        to_label.setBuddy(self.date_to)
        for w in (from_label, self.date_from, to_label, self.date_to):
            row.addWidget(w)
        row.addStretch(1)
        layout.addWidget(self._indent(dates))
        layout.addStretch(1)
        (self.picked_radio if picked else self.summary_radio).setChecked(True)
        self.kinds.itemChanged.connect(lambda _item: self.kinds_radio.setChecked(True))
        self.date_from.dateChanged.connect(lambda _d: self.dates_radio.setChecked(True))
        self.date_to.dateChanged.connect(lambda _d: self.dates_radio.setChecked(True))

    @staticmethod
    def _indent(widget: QWidget) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(26, 0, 0, 6)
        row.addWidget(widget)
        return box

    def fill(self, counts: list[tuple[str, str, int]], bounds: tuple[str | None, str | None]) -> None:
        """``counts``: (key, label, how many) per category the person has records in."""
        self.kinds.blockSignals(True)
        self.kinds.clear()
        for key, label, n in counts:
            item = QListWidgetItem(f"{label} ({QLocale().toString(n)})")
            item.setData(KEY, (key, label))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(UNCHECKED)
            self.kinds.addItem(item)
        self.kinds.blockSignals(False)
        for edit in (self.date_from, self.date_to):
            edit.blockSignals(True)
            edit.setDateRange(_qdate(bounds[0]), _qdate(bounds[1]))
        self.date_from.setDate(_qdate(bounds[0]))
        self.date_to.setDate(_qdate(bounds[1]))
        for edit in (self.date_from, self.date_to):
            edit.blockSignals(False)

    def chosen_kinds(self) -> list[tuple[str, str]]:
        return [self.kinds.item(i).data(KEY) for i in range(self.kinds.count())
                if self.kinds.item(i).checkState() == CHECKED]


# --- step 2: check ------------------------------------------------------------------------------------------------

class CheckPage(QWidget):
    put_back_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addWidget(_title(STEP_TITLES[1]))
        self.summary = _para()
        layout.addWidget(self.summary)
        self.shared = QTreeWidget()
        self.shared.setAccessibleName("Records that will be shared")
        self.shared.setHeaderLabels(["Record", "Date"])
        self.shared.setRootIsDecorated(True)
        self.shared.setUniformRowHeights(True)
        self.shared.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.shared.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.shared.header().setStretchLastSection(False)
        self.shared.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.shared, 3)
        self.left_out_label = _para()
        layout.addWidget(self.left_out_label)
        self.left_out = QTreeWidget()
        self.left_out.setAccessibleName("Sensitive records left out; tick one to share it too")
        self.left_out.setHeaderLabels(["Record", "Date", "Why it is sensitive"])
        self.left_out.setUniformRowHeights(True)
        header = self.left_out.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(0, 300)
        layout.addWidget(self.left_out, 2)
        self.may_miss = _para(WHAT_MAY_MISS)
        layout.addWidget(self.may_miss)
        self.left_out.itemChanged.connect(self._ticked)
        self._filling = False

    def show_preview(self, preview: Any) -> None:
        from app.services.share_preview import ABOUT_SUMMARY
        self._filling = True
        self.summary.setText(summary_sentence(preview))
        expanded = {self.shared.topLevelItem(i).text(0).rsplit(" (", 1)[0]
                    for i in range(self.shared.topLevelItemCount()) if self.shared.topLevelItem(i).isExpanded()}
        self.shared.clear()
        for group, records in preview.groups():
            top = QTreeWidgetItem([f"{group} ({QLocale().toString(len(records))})", ""])
            for r in records[:SHOWN_PER_GROUP]:
                title = r.title + ("  (sensitive, put back)" if r.sensitive else "")
                child = QTreeWidgetItem([title, r.date])
                child.setData(0, KEY, r.key)
                child.setToolTip(0, r.flag.sentence() if r.sensitive else r.kind)
                top.addChild(child)
            if len(records) > SHOWN_PER_GROUP:
                top.addChild(QTreeWidgetItem([f"\u2026 and {QLocale().toString(len(records) - SHOWN_PER_GROUP)} "
                                              "more, shared too", ""]))
            self.shared.addTopLevelItem(top)
            top.setExpanded(group in expanded or (len(records) <= 12 and group != ABOUT_SUMMARY))
        self._fill_left_out(preview)
        self._filling = False

    def _fill_left_out(self, preview: Any) -> None:
        from vault.records.sensitive import LABELS
        flagged = preview.flagged()
        self.left_out_label.setText(
            f"Left out because they may be sensitive: {_plural(len(preview.left_out), 'record')}. Tick one to "
            "share it too." if flagged else "No record of this choice looks sensitive.")
        self.left_out.setVisible(bool(flagged))
        self.left_out.clear()
        by_topic: dict[str, list[Any]] = {}
        for r in flagged:
            by_topic.setdefault(r.flag.topics[0], []).append(r)
        for topic, records in by_topic.items():
            top = QTreeWidgetItem([f"{LABELS[topic]} ({QLocale().toString(len(records))})", "", ""])
            top.setFlags(top.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate)
            for r in records:
                child = QTreeWidgetItem([r.title, r.date, r.flag.sentence()])
                child.setData(0, KEY, r.key)
                child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                child.setCheckState(0, CHECKED if r.key in preview.put_back else UNCHECKED)
                child.setToolTip(2, r.flag.sentence())
                top.addChild(child)
            self.left_out.addTopLevelItem(top)
            top.setExpanded(len(by_topic) == 1 or len(records) <= 8)

    def put_back(self) -> set[str]:
        out: set[str] = set()
        for i in range(self.left_out.topLevelItemCount()):
            top = self.left_out.topLevelItem(i)
            for j in range(top.childCount()):
                child = top.child(j)
                if child.checkState(0) == CHECKED:
                    out.add(child.data(0, KEY))
        return out

    def _ticked(self, _item: QTreeWidgetItem, column: int) -> None:
        if not self._filling and column == 0:
            self.put_back_changed.emit()


def summary_sentence(preview: Any) -> str:
    """"38 records will leave this computer, encrypted: 15 lab results, 8 immunizations, …, and your details."""
    from app.services.share_preview import ABOUT_SUMMARY, YOUR_DETAILS
    if not preview.records:
        return ("Every record of this choice may be sensitive, so nothing would be shared. Tick below the ones you "
                "want to share, or go back and choose other records.")
    parts = [f"{QLocale().toString(c)} {_lower_first(g)}" for g, c in preview.counts()
             if g not in (YOUR_DETAILS, ABOUT_SUMMARY)]
    groups = {g for g, _c in preview.counts()}
    if YOUR_DETAILS in groups:
        parts.append("your details (name, birth date, contact)")
    if ABOUT_SUMMARY in groups:
        parts.append("the summary's table of contents")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return (f"{_plural(len(preview.records), 'record')} will leave this computer, encrypted, for the person you "
            f"choose next: {listed}.")


# --- step 3: who, how long, from where ----------------------------------------------------------------------------

class WhoPage(QWidget):
    card_text_dropped = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.addWidget(_title(STEP_TITLES[2]))
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        grid.setVerticalSpacing(14)
        layout.addLayout(grid)

        who_heading = QLabel("<b>Who</b>")
        self.who = QButtonGroup(self)
        self.open_radio = _radio("&Anyone who has the link or this QR code",
                                 "Anyone who has the link or the QR code")
        self.directed_radio = _radio("Only &one clinician, whose medvault card you have",
                                     "Only one clinician, whose medvault card you have")
        self.who.addButton(self.open_radio)
        self.who.addButton(self.directed_radio)
        self.open_radio.setChecked(True)
        open_note = _para("A SMART Health Link: any compatible app opens it, so treat the code like the records "
                          "themselves.")
        card_box = QWidget()
        card_row = QHBoxLayout(card_box)
        card_row.setContentsMargins(26, 0, 0, 0)
        self.card_file_button = _button("Open card &image\u2026", "Open the clinician's card image")
        self.card_paste_button = _button("Pa&ste card", "Paste the clinician's card")
        self.drop_zone = QLabel("\u2026or drop the card's image or text here")
        self.drop_zone.setFrameShape(QFrame.Shape.StyledPanel)
        self.drop_zone.setFrameShadow(QFrame.Shadow.Sunken)
        self.drop_zone.setMinimumHeight(36)
        self.drop_zone.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card_row.addWidget(self.card_file_button)
        card_row.addWidget(self.card_paste_button)
        card_row.addWidget(self.drop_zone, 1)
        self.card_status = InlineMessage("The clinician's card")
        grid.addWidget(who_heading, 0, 0, Qt.AlignmentFlag.AlignTop)
        who_box = QVBoxLayout()
        for w in (self.open_radio, open_note, self.directed_radio, card_box, self.card_status):
            who_box.addWidget(w)
        grid.addLayout(who_box, 0, 1)

        how_long = QLabel("<b>For how &long</b>")
        self.expiry = QComboBox()
        self.expiry.setAccessibleName("For how long the link works")
        for text, code in EXPIRIES:
            self.expiry.addItem(text, code)
        self.expiry.setCurrentIndex([c for _t, c in EXPIRIES].index(DEFAULT_EXPIRY))
        how_long.setBuddy(self.expiry)
        self.until = QLabel()
        row = QHBoxLayout()
        row.setSpacing(10)
        row.addWidget(self.expiry)
        row.addWidget(self.until, 1)
        grid.addWidget(how_long, 1, 0)
        grid.addLayout(row, 1, 1)

        where_heading = QLabel("<b>From where</b>")
        self.where = QButtonGroup(self)
        self.embedded_radio = _radio("This &computer: the file stays in your vault, and medvault serves it",
                                     "From this computer")
        self.ipfs_radio = _radio("The &IPFS node", "From the IPFS node")
        self.where.addButton(self.embedded_radio)
        self.where.addButton(self.ipfs_radio)
        self.embedded_radio.setChecked(True)
        self.ipfs_note = _para()
        self.local_warning = InlineMessage("Warning about where the link opens")
        where_box = QVBoxLayout()
        for w in (self.embedded_radio, self.ipfs_radio, self.ipfs_note, self.local_warning):
            where_box.addWidget(w)
        grid.addWidget(where_heading, 2, 0, Qt.AlignmentFlag.AlignTop)
        grid.addLayout(where_box, 2, 1)
        layout.addStretch(1)
        self.places: dict = {}
        self.expiry.currentIndexChanged.connect(self._show_until)
        self.where.buttonToggled.connect(lambda *_a: self._show_warning())
        self._show_until()

    def _show_until(self) -> None:
        self.until.setText(f"until {_until(self.expiry.currentData())}")

    def show_places(self, places: dict) -> None:
        self.places = places
        has_ipfs = bool(places.get("ipfs"))
        self.ipfs_radio.setEnabled(has_ipfs)
        if has_ipfs:
            self.ipfs_radio.setText(f"The &IPFS node ({places['ipfs']})")
            self.ipfs_note.setText("Receivers fetch the encrypted file from the node's gateway; revoking removes "
                                   "it from this node.")
        else:
            self.ipfs_note.setText("No IPFS node is set up; you can choose one in Settings.")
        (self.ipfs_radio if places.get("backend") == "ipfs" and has_ipfs else self.embedded_radio).setChecked(True)
        self._show_warning()

    def backend(self) -> str:
        return "ipfs" if self.ipfs_radio.isChecked() else "embedded"

    def local_only_notice(self) -> str:
        from urllib.parse import urlsplit
        if self.backend() == "ipfs":
            url, local = self.places.get("ipfs") or "", self.places.get("ipfs_local_only", False)
        else:
            url, local = self.places.get("embedded") or "", self.places.get("embedded_local_only", False)
        return LOCAL_ONLY.format(host=urlsplit(url).hostname or url) if local else ""

    def _show_warning(self) -> None:
        notice = self.local_only_notice()
        if notice:
            self.local_warning.say(notice)
        else:
            self.local_warning.clear()

    # a card dropped anywhere on the page: a file (its image or text) or the text itself
    def dragEnterEvent(self, event: Any) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasText():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        mime = event.mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        text = files[0] if files else (mime.text().strip() if mime.hasText() else "")
        if text:
            event.acceptProposedAction()
            self.card_text_dropped.emit(text)


# --- the wizard ---------------------------------------------------------------------------------------------------

def _ask_card_file(parent: QWidget, callback: Callable[[str], None]) -> None:
    dialog = QFileDialog(parent, "Open the clinician's card", "",
                         "Card images or text (*.png *.jpg *.jpeg *.gif *.bmp *.webp *.txt);;All files (*)")
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
    dialog.fileSelected.connect(callback)
    parent._card_dialog = dialog            # type: ignore[attr-defined]
    dialog.open()


def _warm_up() -> None:
    import sync.consent_service  # noqa: F401
    import sync.qr  # noqa: F401


class ShareWizard(QDialog):
    """Four steps from a choice of records to a QR code on screen. ``shared(share_id)`` once the share exists."""

    shared = Signal(str)

    def __init__(self, ctx: ScreenContext, ids: Sequence[str] = (), parent: QWidget | None = None, *,
                 guard: Any = None, ask_card_file: Callable[[QWidget, Callable[[str], None]], None] | None = None,
                 ask_save_path: Any = None, ask_printer: Any = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.extras["session"]
        self.ids = [i for i in dict.fromkeys(ids) if isinstance(i, str) and "/" in i]
        self._ask_card_file = ask_card_file or _ask_card_file
        self.setWindowTitle("Share records")     # never anything from the records
        self.setAccessibleName("Share records")
        self.preview: Any = None
        self.card: Any = None
        self.outcome: Any = None
        self.busy = False
        self._request = 0

        self.what_page = WhatPage(len(self.ids))
        self.check_page = CheckPage()
        self.who_page = WhoPage()
        qr_page = QWidget()
        qr_layout = QVBoxLayout(qr_page)
        self.qr_title = _title(STEP_TITLES[3])
        self.qr_panel = QrPanel(ctx.runner, guard=guard, ask_save_path=ask_save_path, ask_printer=ask_printer)
        qr_layout.addWidget(self.qr_title)
        qr_layout.addWidget(self.qr_panel, 1)
        self.qr_page = qr_page
        self.stack = QStackedWidget()
        for page in (self.what_page, self.check_page, self.who_page, qr_page):
            self.stack.addWidget(page)

        self.message = InlineMessage("What went wrong")
        self.status = QLabel()
        self.back_button = _button("&Back", "Back")
        self.next_button = _button("&Next", "Next")
        self.cancel_button = _button("Cancel", "Cancel")
        self.next_button.setDefault(True)
        self.next_button.setAutoDefault(True)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.forward)
        self.cancel_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)

        self.check_page.put_back_changed.connect(self._put_back_soon)
        self._put_back_timer = QTimer(self)
        self._put_back_timer.setSingleShot(True)
        self._put_back_timer.setInterval(PUT_BACK_DELAY_MS)
        self._put_back_timer.timeout.connect(self._update_put_back)
        self.who_page.card_file_button.clicked.connect(lambda: self._ask_card_file(self, self.read_card))
        self.who_page.card_paste_button.clicked.connect(self.paste_card)
        self.who_page.card_text_dropped.connect(self.read_card)
        self.who_page.directed_radio.toggled.connect(lambda _on: self._show_buttons())
        self.resize(900, 760)
        self._go(0)
        self._load()
        # What Share needs but the first steps do not (the consent network's libraries take a second to load):
        # loaded while the patient reads the check step, so the first share of a session is as quick as the next.
        ctx.runner.run(_warm_up, lambda _r: None, lambda _e: None)

    # --- moving between steps -----------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.stack.currentIndex()

    def _go(self, step: int) -> None:
        self.stack.setCurrentIndex(step)
        self.message.clear()
        self._show_buttons()
        focus = {0: self.what_page.group.checkedButton(), 1: self.check_page.shared,
                 2: self.who_page.who.checkedButton(), 3: self.qr_panel.copy_button}.get(step)
        if focus is not None:
            focus.setFocus(Qt.FocusReason.OtherFocusReason)

    def _show_buttons(self) -> None:
        step = self.step
        done = step == 3
        self.back_button.setVisible(not done)
        self.back_button.setEnabled(step > 0 and not self.busy)
        self.next_button.setText("&Share" if step == 2 else ("&Done" if done else "&Next"))
        self.next_button.setAccessibleName("Share" if step == 2 else ("Done" if done else "Next"))
        nothing = step == 1 and (self.preview is None or not self.preview.records)
        no_card = step == 2 and self.who_page.directed_radio.isChecked() and self.card is None
        self.next_button.setEnabled(not self.busy and not nothing and not no_card)
        self.cancel_button.setVisible(not done)

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self.busy = busy
        self.status.setText(text)
        self._show_buttons()

    def back(self) -> None:
        if self.step in (1, 2) and not self.busy:
            self._request += 1      # whatever was on its way is for a step the user left
            self._go(self.step - 1)

    def forward(self) -> None:
        if self.busy:
            return
        if self.step == 0:
            self.make_preview()
        elif self.step == 1:
            self._go(2)
        elif self.step == 2:
            self.share()
        else:
            self.accept()

    def _failed(self, request: int) -> Callable[[BaseException], None]:
        def fail(exc: BaseException) -> None:
            if request != self._request:
                return
            self._set_busy(False)
            self.message.say(user_message(exc))
            from app.errors import expected
            if not expected(exc):
                self.ctx.show_error(exc)        # a bug: the presenter writes the crash report
        return fail

    # --- step 1 -------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        from app.services import sharing
        session, person = self.session, self.ctx.person

        def work(conn: Any) -> tuple[list, tuple, dict]:
            from vault.records import describe, query
            totals: dict[str, int] = {}
            for (rtype, category), n in query.kind_counts(conn, person=person).items():
                key = describe.category_key(rtype, category)
                if key is not None:
                    totals[key] = totals.get(key, 0) + n
            counts = [(c.key, c.label, totals[c.key]) for c in (*describe.CATEGORIES, describe.INSURANCE)
                      if totals.get(c.key)]
            return counts, query.date_bounds(conn, person=person), sharing.places(session.vault)

        def done(result: tuple[list, tuple, dict]) -> None:
            counts, bounds, places = result
            self.what_page.fill(counts, bounds)
            self.who_page.show_places(places)
        self.ctx.query(work, done, lambda exc: self.message.say(user_message(exc)))

    def _choice(self) -> tuple[str, dict]:
        page = self.what_page
        if page.picked_radio.isChecked() and self.ids:
            return f"{_plural(len(self.ids), 'record')} you picked", {"ids": list(self.ids)}
        if page.kinds_radio.isChecked():
            kinds = page.chosen_kinds()
            if not kinds:
                raise _Refused("Tick at least one kind of record, or choose another way.")
            labels = [label for _k, label in kinds]
            words = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
            return words, {"categories": [k for k, _l in kinds]}
        if page.dates_radio.isChecked():
            start, end = page.date_from.date(), page.date_to.date()
            if start > end:
                raise _Refused("The first date is after the second; swap them.")
            fmt = QLocale().toString
            long = QLocale.FormatType.LongFormat
            return (f"Your records from {fmt(start, long)} to {fmt(end, long)}",
                    {"date_from": start.toString("yyyy-MM-dd"), "date_to": end.toString("yyyy-MM-dd")})
        return "", {"ips": True}

    def make_preview(self) -> None:
        from app.services import sharing
        try:
            words, choice = self._choice()
        except _Refused as exc:
            self.message.say(str(exc))
            return
        session, person = self.session, self.ctx.person
        self._request += 1
        request = self._request

        def work() -> Any:
            from sync.shares import NothingToShare
            if choice.get("ips"):
                what = sharing.selection(ips=True)
            else:
                ids = choice.get("ids") or session.choose_records(
                    categories=choice.get("categories", ()), date_from=choice.get("date_from"),
                    date_to=choice.get("date_to"), person=person)
                if not ids:
                    raise NothingToShare("None of your records match that choice; choose other kinds or dates.")
                what = sharing.selection(ids=ids)
            return session.preview_share(what, describe=words or None, person=person)

        self._set_busy(True, "Gathering the records\u2026")
        self.ctx.runner.run(work, lambda preview: self._previewed(request, preview), self._failed(request))

    def _previewed(self, request: int, preview: Any) -> None:
        if request != self._request:
            return
        self.preview = preview
        self.check_page.show_preview(preview)
        self._set_busy(False)
        self._go(1)
        if not preview.records:
            self.check_page.left_out.setFocus()

    # --- step 2 -------------------------------------------------------------------------------------------------
    def _put_back_soon(self) -> None:
        self._request += 1              # the preview on its way no longer matches the ticks
        self._set_busy(True, "Updating the list\u2026")
        self._put_back_timer.start()

    def _update_put_back(self) -> None:
        from app.services import share_preview
        preview, put_back, vault = self.preview, self.check_page.put_back(), self.session.vault
        request = self._request
        self.ctx.runner.run(lambda: share_preview.with_put_back(vault, preview, put_back),
                            lambda p: self._put_back_done(request, p), self._failed(request))

    def _put_back_done(self, request: int, preview: Any) -> None:
        if request != self._request:
            return
        self.preview = preview
        self.check_page.show_preview(preview)
        self._set_busy(False)

    # --- step 3 -------------------------------------------------------------------------------------------------
    def read_card(self, source: str) -> None:
        """A card from a file (its QR image or text) or pasted/dropped text, read on the runner."""
        from app.services import sharing
        if not source:
            return
        self._read_card_with(lambda: sharing.read_card(source))

    def paste_card(self) -> None:
        from app.services import sharing
        clipboard = QGuiApplication.clipboard()
        image = clipboard.image() if clipboard.mimeData() and clipboard.mimeData().hasImage() else QImage()
        if not image.isNull():
            data = _png(image)
            self._read_card_with(lambda: sharing.read_card_image(data))
            return
        text = clipboard.text().strip()
        if not text:
            self.who_page.card_status.say("The clipboard holds no card: copy the clinician's card (its text or its "
                                          "QR image) first.")
            return
        self.read_card(text)

    def _read_card_with(self, reader: Callable[[], Any]) -> None:
        self.who_page.directed_radio.setChecked(True)
        self.who_page.card_status.say("Reading the card\u2026", warning=False)
        self._request += 1
        request = self._request

        def failed(exc: BaseException) -> None:
            if request != self._request:
                return
            self.card = None
            self.who_page.card_status.say(user_message(exc))
            self._show_buttons()

        self.ctx.runner.run(reader, lambda card: self._card_read(request, card), failed)

    def _card_read(self, request: int, card: Any) -> None:
        if request != self._request:
            return
        self.card = card
        self.who_page.directed_radio.setChecked(True)
        self.who_page.card_status.say(f"Only {card.name} can open it, with the medvault that holds this card "
                                      f"(key \u2026{card.did[-8:]}).", warning=False)
        self._show_buttons()

    # --- sharing ------------------------------------------------------------------------------------------------
    def share(self) -> None:
        """Create the share from the previewed bundle on the runner, then draw its code there too."""
        if self.preview is None or self.busy:
            return
        directed = self.who_page.directed_radio.isChecked()
        if directed and self.card is None:
            self.who_page.card_status.say("Open, paste or drop the clinician's card first.")
            return
        session, preview = self.session, self.preview
        card = self.card if directed else None
        expiry, backend = self.who_page.expiry.currentData(), self.who_page.backend()
        self._request += 1
        request = self._request

        def work() -> tuple[Any, bytes, int, int]:
            from sync.qr import make_image
            outcome = session.create_share(preview, expires=expiry, recipient=card, backend=backend)
            pil = make_image(outcome.link)
            return outcome, pil.tobytes(), pil.width, pil.height

        self._set_busy(True, "Sharing\u2026")
        self.ctx.runner.run(work, lambda result: self._shared(request, result), self._failed(request))

    def _shared(self, request: int, result: tuple[Any, bytes, int, int]) -> None:
        outcome, pixels, width, height = result
        self.outcome = outcome
        image = QImage(pixels, width, height, width, QImage.Format.Format_Grayscale8).copy()
        lines, warning = self.describe_share()
        self.qr_panel.show_link(outcome.link, image, lines, warning, self.who_page.local_only_notice())
        self._set_busy(False)
        self._go(3)
        fit_to_code(self)
        self.shared.emit(outcome.created.id)

    def describe_share(self) -> tuple[list[str], str]:
        """The lines under the code (and on the printed page), and the page's warning."""
        from vault.records.describe import local_date
        created = self.outcome.created
        whom = (f"For: {self.outcome.recipient.name} only" if self.outcome.recipient is not None
                else "For: anyone who has this code")
        until = (local_date(datetime.fromtimestamp(created.expires_at, timezone.utc).isoformat(), True)
                 if created.expires_at else "until you withdraw it")
        lines = [whom, f"Holds: {self.preview.what} ({_plural(len(created.resource_ids), 'record')})",
                 f"Until: {until}"]
        return lines, share_warning(self.outcome.recipient.name if self.outcome.recipient is not None else None)


def fit_to_code(window: QWidget) -> None:
    """Grow the window, within the screen, to the room the code asks for: 8 pixels a module where the screen
    allows, never less than its smallest scannable size."""
    window.layout().activate()
    want = window.sizeHint().expandedTo(window.minimumSizeHint()).expandedTo(window.size())
    screen = window.screen().availableGeometry().size() if window.screen() is not None else want
    window.resize(want.boundedTo(screen).expandedTo(window.minimumSizeHint()))


def share_warning(recipient: str | None) -> str:
    if recipient:
        return (f"Only {recipient}'s medvault can open this code, until it expires or you withdraw it in medvault. "
                "Copies already opened cannot be recalled.")
    return ("Anyone who scans this code can open these records until it expires or you withdraw it in medvault. "
            "Keep it safe, and destroy it when it is no longer needed.")


class _Refused(Exception):
    """A choice the wizard cannot go on with, said in one sentence on the step itself."""


def start_share(ctx: ScreenContext, ids: Sequence[str] = (), parent: QWidget | None = None,
                **kwargs: Any) -> ShareWizard:
    """Open the share wizard, with ``ids`` ("Type/id" of records the user picked in a list or search) chosen
    when given. Returns the (window-modal) wizard; its ``shared`` signal gives the new share's id."""
    wizard = ShareWizard(ctx, ids, parent, **kwargs)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    wizard.open()
    return wizard



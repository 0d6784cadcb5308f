"""The share wizard on a real vault (Juliette Padberg's Synthea records, with a depression diagnosis, an HIV test
and an antidepressant added as Synthea would write them), run on the real task runner: the QR it draws is read
back with zxing-cpp, opened through the embedded gateway by ``receiving.open_link`` (another vault for a directed
share) and must hold exactly the records the check step listed and none of the sensitive ones left out. Then the
clipboard, the saved PNG and the printed PDF, keyboard and accessible names, and the screenshots of each step."""

from __future__ import annotations

import stat
import subprocess

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtPrintSupport import QPrinter
from PySide6.QtWidgets import QApplication

from app.screens import vault_context
from app.screens.share_wizard import LOCAL_ONLY, ShareWizard, start_share
from app.services import Session
from app.services.receiving import open_link
from app.share_qr import CLEAR_AFTER_MS, MIN_MODULE_PX, ClipboardGuard
from tests.conftest import PASSPHRASE, TEST_PROFILE, run_cli
from tests.gui.share_support import (CRAFTED, DEPRESSION, HIV_TEST, SERTRALINE, decode, drawn_link, gateway,
                                     received, sensitive_vault, serving_session)
from tests.gui.test_accessibility import offenders

WAIT = 60_000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("share-wizard") / "vault"
    sensitive_vault(path).close()
    return path


@pytest.fixture
def session(folder):
    with serving_session(folder) as opened:
        yield opened


class FakeTimers:
    """The clipboard guard's timer, fired by the test instead of after a minute."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, object]] = []

    def __call__(self, ms: int, fn) -> None:
        self.pending.append((ms, fn))

    def fire_all(self) -> None:
        pending, self.pending = self.pending, []
        for _ms, fn in pending:
            fn()


def _wizard(qtbot, session, runner, ids=(), **kwargs) -> ShareWizard:
    errors: list[BaseException] = []
    ctx = vault_context(session.vault, runner, extras={"session": session}, show_error=errors.append)
    wizard = ShareWizard(ctx, ids, **kwargs)
    wizard.errors = errors
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitExposed(wizard)
    qtbot.waitUntil(lambda: wizard.what_page.kinds.count() > 0, timeout=WAIT)
    return wizard


def _settled(qtbot, wizard, step: int) -> None:
    qtbot.waitUntil(lambda: wizard.step == step and not wizard.busy, timeout=WAIT)
    assert not wizard.message.isVisible(), wizard.message.text()
    assert not wizard.errors


def _press_enter(qtbot, wizard) -> None:
    """Enter on the dialog presses its default button, as a keyboard user would go on."""
    qtbot.keyClick(wizard, Qt.Key.Key_Return)


def test_summary_share_opens_to_exactly_the_previewed_records_and_no_sensitive_one(qtbot, session, runner,
                                                                                   screenshot):
    wizard = _wizard(qtbot, session, runner)
    assert wizard.what_page.summary_radio.isChecked()           # the summary is the default choice
    screenshot(wizard, "30-share-what")
    _press_enter(qtbot, wizard)
    _settled(qtbot, wizard, 1)
    preview = wizard.preview
    shown = [r.key for r in preview.records]
    left_out = {r.key for r in preview.left_out}
    # the crafted records are all sensitive and the summary would hold them; each is left out and flagged
    assert set(CRAFTED) <= left_out and not set(CRAFTED) & set(shown)
    flags = {r.key: r.flag for r in preview.left_out}
    assert "Mental health" in flags[DEPRESSION].labels and "F32.9" in flags[DEPRESSION].sentence()
    assert flags[HIV_TEST].labels == ["HIV"] and "75622-1" in flags[HIV_TEST].sentence()
    assert "Mental health" in flags[SERTRALINE].labels
    # what the check step lists is what the preview holds, record for record
    tree = wizard.check_page.shared
    listed = [tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole)
              for i in range(tree.topLevelItemCount()) for j in range(tree.topLevelItem(i).childCount())]
    assert sorted(listed) == sorted(shown)
    assert f"{len(shown)} records will leave this computer" in wizard.check_page.summary.text()
    sensitive_tree = wizard.check_page.left_out
    ticked_off = [sensitive_tree.topLevelItem(i).child(j)
                  for i in range(sensitive_tree.topLevelItemCount())
                  for j in range(sensitive_tree.topLevelItem(i).childCount())]
    assert {c.data(0, Qt.ItemDataRole.UserRole) for c in ticked_off} == left_out
    assert all(c.checkState(0) == Qt.CheckState.Unchecked for c in ticked_off)
    screenshot(wizard, "31-share-check")

    _press_enter(qtbot, wizard)
    _settled(qtbot, wizard, 2)
    assert wizard.who_page.open_radio.isChecked() and wizard.who_page.expiry.currentData() == "7d"
    assert wizard.next_button.text() == "&Share"
    assert wizard.who_page.local_warning.isVisible()
    assert wizard.who_page.local_warning.text() == LOCAL_ONLY.format(host="127.0.0.1")
    screenshot(wizard, "32-share-who")
    _press_enter(qtbot, wizard)
    _settled(qtbot, wizard, 3)
    view = wizard.qr_panel.view
    assert view.px >= MIN_MODULE_PX
    link = drawn_link(view)
    assert link == wizard.outcome.link and link.startswith("shlink:/")
    screenshot(wizard, "33-share-qr")
    result = open_link(link, allow_local_http=True)
    got = received(result)
    assert got == shown                          # the very bundle the check step showed, in its order
    assert not set(got) & left_out
    row = next(r for r in session.list_shares() if r["id"] == wizard.outcome.created.id)
    assert row["what"] == "Your health summary" and row["resources"] == len(shown) and row["has_link"]
    assert row["expires_at"] - row["created_at"] == 7 * 86400


def test_a_record_put_back_is_shared_and_the_rest_stay_out(qtbot, session, runner):
    wizard = _wizard(qtbot, session, runner)
    wizard.what_page.kinds_radio.setChecked(True)
    kinds = wizard.what_page.kinds
    for i in range(kinds.count()):
        if kinds.item(i).data(Qt.ItemDataRole.UserRole)[0] in ("conditions", "labs"):
            kinds.item(i).setCheckState(Qt.CheckState.Checked)
    wizard.forward()
    _settled(qtbot, wizard, 1)
    assert wizard.preview.what == "Conditions and Lab results"
    tree = wizard.check_page.left_out
    hiv = next(tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
               for j in range(tree.topLevelItem(i).childCount())
               if tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole) == HIV_TEST)
    tree.setFocus()
    tree.setCurrentItem(hiv)
    qtbot.keyClick(tree.viewport(), Qt.Key.Key_Space)             # put back from the keyboard
    assert hiv.checkState(0) == Qt.CheckState.Checked
    assert wizard.busy and not wizard.next_button.isEnabled()   # no going on with a list that is changing
    qtbot.waitUntil(lambda: not wizard.busy and HIV_TEST in wizard.preview.shared_keys, timeout=WAIT)
    assert DEPRESSION in {r.key for r in wizard.preview.left_out}
    assert "(sensitive, put back)" in wizard.check_page.shared.findItems(
        "HIV", Qt.MatchFlag.MatchContains | Qt.MatchFlag.MatchRecursive)[0].text(0)
    shown = wizard.preview.shared_keys
    wizard.forward()
    _settled(qtbot, wizard, 2)
    wizard.forward()
    _settled(qtbot, wizard, 3)
    got = received(open_link(drawn_link(wizard.qr_panel.view), allow_local_http=True))
    assert got == shown and HIV_TEST in got and DEPRESSION not in got
    assert all(k.split("/")[0] in ("Condition", "Observation", "DiagnosticReport") for k in got)


def test_picked_records_start_the_wizard_and_a_directed_share_opens_only_for_the_card(
        qtbot, session, runner, tmp_path):
    from vault.store import Vault
    clinic = tmp_path / "clinic"
    Vault.create(clinic, PASSPHRASE, kdf_profile=TEST_PROFILE)[0].close()
    card_png = tmp_path / "card.png"
    made = run_cli(["card", "--name", "Dr Ada Clinic", "--qr", str(card_png)],
                   env={"MEDVAULT_PASSPHRASE": PASSPHRASE, "MEDVAULT_VAULT": str(clinic)})
    assert made.code == 0, made.err
    stranger = tmp_path / "stranger"
    Vault.create(stranger, PASSPHRASE, kdf_profile=TEST_PROFILE)[0].close()

    pregnancy = "Condition/cf07d060-ebe8-4cac-95f3-721b4f838e0a"       # one of Juliette's own
    picked = [DEPRESSION, pregnancy, HIV_TEST]
    errors: list[BaseException] = []
    ctx = vault_context(session.vault, runner, extras={"session": session}, show_error=errors.append)
    wizard = start_share(ctx, picked)
    wizard.errors = errors
    qtbot.addWidget(wizard)
    qtbot.waitUntil(lambda: wizard.what_page.kinds.count() > 0, timeout=WAIT)
    assert wizard.isVisible() and wizard.what_page.picked_radio.isChecked()
    assert wizard.what_page.picked_radio.text() == "The 3 records you &picked"
    wizard.forward()
    _settled(qtbot, wizard, 1)
    # all three are sensitive (a depression, a pregnancy, an HIV test): left out until put back, so nothing would
    # be shared yet and the wizard does not go on
    assert {r.key for r in wizard.preview.left_out} == set(picked) and not wizard.preview.records
    assert "nothing would be shared" in wizard.check_page.summary.text() and not wizard.next_button.isEnabled()
    tree = wizard.check_page.left_out
    for i in range(tree.topLevelItemCount()):
        tree.topLevelItem(i).setCheckState(0, Qt.CheckState.Checked)     # a whole topic at once
    qtbot.waitUntil(lambda: not wizard.busy and len(wizard.preview.records) == 3, timeout=WAIT)
    wizard.forward()
    _settled(qtbot, wizard, 2)
    wizard.who_page.directed_radio.setChecked(True)
    assert not wizard.next_button.isEnabled()                 # no card yet: nothing to share to
    not_a_card = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(not_a_card)
    wizard.read_card(str(not_a_card))
    qtbot.waitUntil(lambda: "Reading" not in wizard.who_page.card_status.text(), timeout=WAIT)
    assert wizard.card is None and "No readable QR code" in wizard.who_page.card_status.text()
    assert not wizard.next_button.isEnabled()
    wizard.read_card(str(card_png))
    qtbot.waitUntil(lambda: wizard.card is not None, timeout=WAIT)
    assert "Only Dr Ada Clinic can open it" in wizard.who_page.card_status.text()
    assert wizard.next_button.isEnabled()
    wizard.forward()
    _settled(qtbot, wizard, 3)
    # a directed link is long (its key is sealed and signed): on a screen as small as the test's 800 by 800 the
    # code may not fit at full size, and then the panel says so
    link = drawn_link(wizard.qr_panel.view, wizard.qr_panel.small)
    assert link.startswith("medvault:/")
    assert "For: Dr Ada Clinic only" in wizard.qr_panel.caption.text()
    with Vault.unlock(clinic, PASSPHRASE) as theirs:
        got = received(open_link(link, vault=theirs, allow_local_http=True))
    with Vault.unlock(stranger, PASSPHRASE) as other:
        from sync.errors import ShareNotForYou
        with pytest.raises(ShareNotForYou):
            open_link(link, vault=other, allow_local_http=True)
    assert got == wizard.preview.shared_keys and sorted(got) == sorted(picked)
    row = next(r for r in session.list_shares() if r["id"] == wizard.outcome.created.id)
    assert row["kind"] == "directed" and row["recipient_name"] == "Dr Ada Clinic"
    assert row["what"] == "3 records you picked" and row["resources"] == 3


def test_copy_link_is_cleared_after_a_minute_unless_something_else_was_copied(qtbot, session, runner):
    timers = FakeTimers()
    guard = ClipboardGuard(schedule=timers)
    wizard = _wizard(qtbot, session, runner, guard=guard)
    wizard.forward()
    _settled(qtbot, wizard, 1)
    wizard.forward()
    _settled(qtbot, wizard, 2)
    wizard.forward()
    _settled(qtbot, wizard, 3)
    clipboard = QApplication.clipboard()
    link = wizard.outcome.link
    qtbot.mouseClick(wizard.qr_panel.copy_button, Qt.MouseButton.LeftButton)
    assert clipboard.text() == link
    assert [ms for ms, _fn in timers.pending] == [CLEAR_AFTER_MS] and CLEAR_AFTER_MS == 60_000
    timers.fire_all()
    assert clipboard.text() == ""

    wizard.qr_panel.copy_link()
    clipboard.setText("the pharmacy's phone number")    # the user copied something else meanwhile
    timers.fire_all()
    assert clipboard.text() == "the pharmacy's phone number"

    wizard.qr_panel.copy_link()                          # copied twice: the first minute does not cut the second
    wizard.qr_panel.copy_link()
    first, second = timers.pending
    first[1]()
    assert clipboard.text() == link
    second[1]()
    assert clipboard.text() == ""


def test_saved_png_and_printed_pdf_decode_to_the_link_and_are_owner_only(qtbot, session, runner, tmp_path):
    wizard = _wizard(qtbot, session, runner)
    for step in (1, 2, 3):
        wizard.forward()
        _settled(qtbot, wizard, step)
    link = wizard.outcome.link
    panel = wizard.qr_panel

    png = tmp_path / "share.png"
    panel.save_to(str(png))
    qtbot.waitUntil(lambda: png.exists() and "Saved as" in panel.message.text(), timeout=WAIT)
    assert stat.S_IMODE(png.stat().st_mode) == 0o600
    assert decode(Image.open(png)) == [link]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temp file left behind
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"keep me")
    trap = tmp_path / "trap.png"
    trap.symlink_to(elsewhere)
    panel.save_to(str(trap))
    qtbot.waitUntil(lambda: "is a link or a folder" in panel.message.text(), timeout=WAIT)
    assert elsewhere.read_bytes() == b"keep me" and trap.is_symlink()

    pdf = tmp_path / "share.pdf"
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(pdf))
    panel.print_to(printer)
    qtbot.waitUntil(lambda: pdf.exists() and "Saved as" in panel.message.text(), timeout=WAIT)
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 1
    assert decode(Image.open(pages[0])) == [link]
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    assert "Anyone who scans this code can open these records" in text
    assert "Padberg" not in text and "Juliette" not in text     # the page names no one

    # what a real printer is sent: the same drawing through QPrinter's own painter
    from app.share_qr import print_on
    sent = tmp_path / "printer.pdf"
    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(sent))
    print_on(printer, link, panel.lines, panel.warning)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(sent), str(tmp_path / "printed")], check=True, timeout=60)
    printed = sorted(tmp_path.glob("printed-*.png"))
    assert len(printed) == 1 and decode(Image.open(printed[0])) == [link]


def test_the_warning_goes_when_the_gateway_is_on_the_local_network(qtbot, session, runner):
    from sync.shares import DEFAULT_GATEWAY, set_gateway_setting
    set_gateway_setting(session.vault, "http://192.168.1.20:8421")
    try:
        wizard = _wizard(qtbot, session, runner)
        qtbot.waitUntil(lambda: bool(wizard.who_page.places), timeout=WAIT)
        assert wizard.who_page.local_only_notice() == ""
        assert not wizard.who_page.ipfs_radio.isEnabled() and wizard.who_page.embedded_radio.isChecked()
        assert "No IPFS node is set up" in wizard.who_page.ipfs_note.text()
    finally:
        set_gateway_setting(session.vault, DEFAULT_GATEWAY)


def test_an_incomplete_choice_says_what_is_missing_and_stays_on_the_step(qtbot, session, runner):
    before = len(session.list_shares())
    wizard = _wizard(qtbot, session, runner)
    wizard.what_page.kinds_radio.setChecked(True)
    wizard.forward()
    assert wizard.step == 0 and "Tick at least one kind" in wizard.message.text()
    page = wizard.what_page
    page.date_to.setDate(page.date_to.minimumDate())
    page.date_from.setDate(page.date_from.maximumDate())
    assert page.dates_radio.isChecked()              # touching a date chooses that way
    wizard.forward()
    assert wizard.step == 0 and "The first date is after the second" in wizard.message.text()
    page.date_from.setDate(page.date_from.minimumDate())
    page.date_to.setDate(page.date_to.maximumDate())
    wizard.forward()
    _settled(qtbot, wizard, 1)
    assert wizard.preview.what.startswith("Your records from ")
    assert not {k.split("/")[0] for k in wizard.preview.shared_keys} & {"Claim", "ExplanationOfBenefit",
                                                                         "Patient", "Organization"}
    assert len(session.list_shares()) == before      # looking is not sharing


def test_every_focusable_widget_on_every_step_has_a_name(qtbot, session, runner):
    wizard = _wizard(qtbot, session, runner)
    problems = offenders(wizard, "step 1")
    for step in (1, 2, 3):
        wizard.forward()
        _settled(qtbot, wizard, step)
        problems += offenders(wizard, f"step {step + 1}")
    assert not problems, "\n".join(problems)
    assert "Padberg" not in wizard.windowTitle()


def test_shares_kept_on_a_real_ipfs_node_or_on_this_computer_whichever_is_chosen(qtbot, session, runner):
    from tests.peers.ipfs import running_ipfs_node
    from tests.share_cli.test_share_ipfs import _pinned
    with running_ipfs_node() as node:
        session.use_ipfs_backend(node.api_url, node.gateway_url)
        try:
            wizard = _wizard(qtbot, session, runner)
            qtbot.waitUntil(lambda: bool(wizard.who_page.places), timeout=WAIT)
            assert wizard.who_page.ipfs_radio.isEnabled() and wizard.who_page.ipfs_radio.isChecked()
            assert node.gateway_url in wizard.who_page.ipfs_radio.text()
            for step in (1, 2):
                wizard.forward()
                _settled(qtbot, wizard, step)
            # the node's gateway is on loopback here too, and the wizard says so whichever place is chosen
            assert wizard.who_page.local_warning.isVisible()
            wizard.forward()
            _settled(qtbot, wizard, 3)
            on_node = wizard.outcome.created
            assert on_node.url == f"{node.gateway_url}/ipfs/{on_node.cid}"
            got = received(open_link(drawn_link(wizard.qr_panel.view), allow_local_http=True))
            assert got == wizard.preview.shared_keys

            here = _wizard(qtbot, session, runner)
            qtbot.waitUntil(lambda: bool(here.who_page.places), timeout=WAIT)
            here.who_page.embedded_radio.setChecked(True)
            for step in (1, 2, 3):
                here.forward()
                _settled(qtbot, here, step)
            local = here.outcome.created
            assert local.url.startswith(f"http://127.0.0.1:{session.port}/ipfs/")
            assert received(open_link(local.link, allow_local_http=True)) == here.preview.shared_keys
            rows = {r["id"]: r for r in session.list_shares()}
            assert rows[on_node.id]["backend"] == "ipfs" and rows[local.id]["backend"] == "embedded"
            # each is withdrawn where it is kept, though new shares now go to the node
            assert "cannot be recalled" in session.revoke_share(local.id).sentence
            from sync.errors import SyncError
            with pytest.raises(SyncError):
                open_link(local.link, allow_local_http=True)
            # the node only unpins: the sentence says it may go on serving the file until it clears its store
            said = session.revoke_share(on_node.id).sentence
            assert "may go on serving it" in said and "cannot be recalled" in said
            assert not _pinned(node, on_node.cid)
        finally:
            session.use_embedded_backend()


def test_a_card_pasted_as_text_or_as_a_picture_and_a_pasted_mistake(qtbot, session, runner, tmp_path):
    from PySide6.QtGui import QImage

    from sync.links import card_from_link
    from sync.qr import write_png
    from vault.store import Vault
    clinic, _key = Vault.create(tmp_path / "clinic", PASSPHRASE, kdf_profile=TEST_PROFILE)
    with clinic:
        card_text = Session(clinic).card("Dr Grace Ward")
    expected = card_from_link(card_text)
    wizard = _wizard(qtbot, session, runner)
    clipboard = QApplication.clipboard()
    page = wizard.who_page

    clipboard.setText("this is not a card")
    wizard.paste_card()
    qtbot.waitUntil(lambda: "Reading" not in page.card_status.text(), timeout=WAIT)
    said = page.card_status.text()
    assert wizard.card is None and said.endswith(".") and len(said) > 20, said
    assert "\n" not in page.card_status.text() and "Traceback" not in page.card_status.text()
    assert "--to" not in page.card_status.text()

    clipboard.setText(card_text)
    wizard.paste_card()
    qtbot.waitUntil(lambda: wizard.card is not None, timeout=WAIT)
    assert wizard.card.did == expected.did and page.directed_radio.isChecked()

    wizard.card = None
    png = write_png(card_text, tmp_path / "card.png")
    clipboard.setImage(QImage(str(png)))
    wizard.paste_card()
    qtbot.waitUntil(lambda: wizard.card is not None, timeout=WAIT)
    assert wizard.card.did == expected.did and "Dr Grace Ward" in page.card_status.text()
    clipboard.clear()

    # dropped on the step: the image file, as a file manager drops it (Qt delivers drop events only during a real
    # drag, so the page's handlers get them directly)
    from PySide6.QtCore import QMimeData, QPoint, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    wizard.card = None
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    page.dragEnterEvent(enter)
    assert enter.isAccepted() and page.acceptDrops()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    page.dropEvent(drop)
    qtbot.waitUntil(lambda: wizard.card is not None, timeout=WAIT)
    assert wizard.card.did == expected.did

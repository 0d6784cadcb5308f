"""The Sharing screen on a real vault (Juliette Padberg's Synthea records): every share with whom it is for, what
it holds, until when and its state; its QR code shown again, read back with zxing-cpp, is the same link; withdrawing
it stops the receiver, with the sentence that copies already fetched cannot be recalled; a share made before links
were kept says so; and, on a real consent chain (ganache), who opened a share and when."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from app.screens import vault_context
from app.screens.sharing import NO_LINK, QrDialog, SharingScreen
from app.services import Session, sharing
from app.services.receiving import open_link
from app.tasks import SyncRunner, TaskRunner
from tests.conftest import PASSPHRASE, TEST_PROFILE
from tests.gui.share_support import drawn_link, gateway, received, serving_session
from tests.gui.synthea_vault import JULIETTE, synthea_vault
from tests.gui.test_accessibility import offenders

WAIT = 60_000


class Clock:
    """The vault's clock, moved on by the test (a share expires without waiting a week)."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("shares-list") / "vault"
    synthea_vault(path, JULIETTE).close()
    return path


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def session(folder, clock):
    with serving_session(folder, clock=clock) as opened:
        yield opened


@pytest.fixture
def clinician(tmp_path):
    """Another person's vault, and their card as the patient receives it."""
    from sync.links import card_from_link
    from vault.store import Vault
    vault, _key = Vault.create(tmp_path / "clinic", PASSPHRASE, kdf_profile=TEST_PROFILE)
    theirs = Session(vault)
    yield theirs, card_from_link(theirs.card("Dr Ada Clinic"))
    if vault.is_open:
        vault.close()


def _screen(qtbot, session, runner=None, **extras) -> SharingScreen:
    errors: list[BaseException] = []
    ctx = vault_context(session.vault, runner or SyncRunner(), extras={"session": session, **extras},
                        show_error=errors.append)
    screen = SharingScreen(ctx)
    screen.errors = errors
    qtbot.addWidget(screen)
    screen.resize(1100, 520)
    screen.show()
    qtbot.waitExposed(screen)
    return screen


def _cells(screen: SharingScreen) -> dict[str, list[str]]:
    table = screen.table
    return {table.item(r, 0).data(Qt.ItemDataRole.UserRole): [table.item(r, c).text()
                                                              for c in range(table.columnCount())]
            for r in range(table.rowCount())}


def _summary(session, **kwargs):
    return session.create_share(session.preview_share(sharing.selection(ips=True)), **kwargs)


def test_each_share_says_whom_what_until_and_its_state(qtbot, session, clinician, clock, screenshot):
    _theirs, card = clinician
    clock.now += timedelta(days=1)              # after whatever the module's other tests shared
    open_share = _summary(session)
    clock.now += timedelta(minutes=1)
    allergies = sharing.selection(ids=session.choose_records(categories=["allergies"]))
    directed = session.create_share(session.preview_share(allergies, describe="Allergies"), recipient=card,
                                    expires="30d")
    clock.now += timedelta(minutes=1)
    short = _summary(session, expires="1h")
    clock.now += timedelta(minutes=1)
    gone = _summary(session)
    session.revoke_share(gone.created.id)
    clock.now += timedelta(hours=2)             # the one-hour share has expired

    screen = _screen(qtbot, session)
    rows = _cells(screen)
    by_id = {c.created.id: rows[c.created.id] for c in (open_share, directed, short, gone)}
    made, holds, whom, until, state, opened = by_id[open_share.created.id]
    assert holds == f"Your health summary ({len(open_share.created.resource_ids)} records)"
    assert (whom, state) == ("Anyone with the link", "Active")
    assert opened == "Not known"                 # no consent network: nobody can tell
    assert "none is set up" in screen.access_note.text()
    made, holds, whom, until, state, _ = by_id[directed.created.id]
    assert holds == "Allergies (2 records)" and whom == "Dr Ada Clinic only" and state == "Active"
    assert by_id[short.created.id][4] == "Expired"
    assert by_id[gone.created.id][4] == "Revoked" and by_id[gone.created.id][3].startswith("Withdrawn on ")
    assert not re.search(r"\d{9,}", " ".join(" ".join(r) for r in rows.values()))   # dates in words
    # newest first, the newest chosen, and only what makes sense for it offered
    assert screen.table.item(0, 0).data(Qt.ItemDataRole.UserRole) == gone.created.id
    assert screen.selected()["id"] == gone.created.id
    assert not screen.qr_button.isEnabled() and not screen.revoke_button.isEnabled()
    screen.select(short.created.id)
    assert not screen.qr_button.isEnabled() and screen.revoke_button.isEnabled()
    screen.select(open_share.created.id)
    assert screen.qr_button.isEnabled() and screen.revoke_button.isEnabled()
    screenshot(screen, "34-shares-list")
    assert not offenders(screen, "sharing screen")


def test_show_qr_again_is_the_same_link_and_revoke_stops_the_receiver(qtbot, session, screenshot):
    created = _summary(session)
    link = created.link
    asked: list[bool] = []
    screen = _screen(qtbot, session, TaskRunner(), confirm_revoke=lambda parent: asked.append(True) or True)
    qtbot.waitUntil(lambda: bool(screen.rows), timeout=WAIT)
    screen.select(created.created.id)
    screen.show_qr_again()
    qtbot.waitUntil(lambda: screen.qr_dialog is not None and screen.qr_dialog.isVisible(), timeout=WAIT)
    dialog: QrDialog = screen.qr_dialog
    qtbot.addWidget(dialog)
    assert drawn_link(dialog.panel.view) == link
    assert "Holds: Your health summary" in dialog.panel.caption.text()
    assert dialog.panel.notice.isVisible()          # 127.0.0.1: the link opens on this computer only
    assert not offenders(dialog, "QR shown again")
    screenshot(dialog, "35-share-qr-again")
    dialog.close()
    assert received(open_link(link, allow_local_http=True))      # it works before

    screen.revoke()
    qtbot.waitUntil(lambda: "cannot be recalled" in screen.message.text(), timeout=WAIT)
    assert asked == [True]
    assert "Copies already fetched cannot be recalled" in screen.message.text()
    qtbot.waitUntil(lambda: _cells(screen)[created.created.id][4] == "Revoked", timeout=WAIT)
    assert session.share_link(created.created.id) is None     # the key to it is not kept any more
    from sync.errors import SyncError
    with pytest.raises(SyncError) as refused:
        open_link(link, allow_local_http=True)
    assert refused.value.user_message
    screen.select(created.created.id)
    assert not screen.qr_button.isEnabled() and not screen.revoke_button.isEnabled()


def test_withdraw_asks_first_and_keep_it_changes_nothing(qtbot, session):
    created = _summary(session)
    screen = _screen(qtbot, session, confirm_revoke=lambda parent: False)
    screen.select(created.created.id)
    screen.revoke()
    assert _cells(screen)[created.created.id][4] == "Active"
    assert received(open_link(created.link, allow_local_http=True))


def test_a_share_made_before_links_were_kept_says_so(qtbot, session):
    created = _summary(session)
    with session.vault.transaction() as conn:   # what the shares-v2 migration leaves for an older share
        conn.execute("UPDATE shares SET link = NULL WHERE id = ?", (created.created.id,))
    screen = _screen(qtbot, session)
    screen.select(created.created.id)
    assert "cannot be shown again" in screen.table.item(screen.table.currentRow(), 1).toolTip()
    screen.show_qr_again()
    assert screen.message.text() == NO_LINK
    assert screen.qr_dialog is None


def test_the_main_window_opens_the_sharing_screen_and_new_share_opens_the_wizard(qtbot, session, tmp_path):
    from PySide6.QtCore import QSettings
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(session, SyncRunner(), settings=settings, tell=lambda _s: None)
    qtbot.addWidget(window)
    window.show()
    window.show_screen("sharing")
    screen = window.screens["sharing"]
    assert isinstance(screen, SharingScreen)
    wizard = screen.new_share()
    qtbot.addWidget(wizard)
    assert wizard.isVisible() and wizard.what_page.summary_radio.isChecked()


def test_who_opened_a_share_comes_from_the_chain(qtbot, clinician, tmp_path, screenshot):
    """A vault of its own, so the list pictured in the user guide holds just these shares."""
    theirs, card = clinician
    with contextlib.closing(synthea_vault(tmp_path / "patient", JULIETTE)) as vault:
        session = Session(vault)
        with gateway(session):
            _opened_from_the_chain(qtbot, session, theirs, card, tmp_path, screenshot)


def _opened_from_the_chain(qtbot, session, theirs, card, tmp_path, screenshot):
    from app.services import chain
    from tests.peers.ganache import Ganache
    with Ganache(tmp_path / "chain", free_gas=True) as node:
        settings = chain.deploy(session.vault, node.url)
        chain.connect(theirs.vault, node.url, settings.contract)
        chain.register_practitioner(session.vault, card)
        chain.add_member(session.vault, card.address)
        created = session.create_share(session.preview_share(sharing.selection(ips=True)), recipient=card)
        assert created.chain == "recorded"
        unopened = _summary(session)
        screen = _screen(qtbot, session)
        assert _cells(screen)[created.created.id][5] == "Not opened yet"
        assert "receivers' medvault recorded" in screen.access_note.text()

        result = open_link(created.link, vault=theirs.vault, allow_local_http=True, check_chain=True)
        assert result.chain_checked
        screen.refresh()
        opened = _cells(screen)[created.created.id][5]
        assert opened.startswith("By Dr Ada Clinic on "), opened
        assert _cells(screen)[unopened.created.id][5] == "Not opened yet"
        screen.select(created.created.id)
        screenshot(screen, "36-shares-opened")
    screen.refresh()                               # the chain is gone: the list still shows, and says why
    assert _cells(screen)[created.created.id][5] == "Not known"
    assert "could not be read from the consent network" in screen.access_note.text()

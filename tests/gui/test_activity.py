"""Activity: the audit log in words for imports, shares and revokes (Synthea data imported through the application
layer), read a page at a time; the integrity check, intact, with a damaged page in a copy of the vault, and with
an edited log entry; each consent's state on a real chain node (ganache): recorded in block N with its transaction,
waiting while the node is down, recorded once it is back and the waiting changes are sent; who opened a share."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
from PySide6.QtCore import Qt

from app.screens.activity import ActivityScreen
from app.services import Session, sharing
from app.services import chain as chain_service
from app.tasks import SyncRunner, TaskRunner
from sync import shares as sync_shares
from sync.links import card_from_link
from tests.conftest import PASSPHRASE, TEST_PROFILE
from tests.gui.synthea_vault import JULIETTE, SYNTHEA, directory_files, synthea_vault
from tests.gui.serving_support import free_port, settle, window_on
from tests.peers.ganache import Ganache
from vault.header import read_header
from vault.outbox_store import SqlOutboxStore
from vault.store import Vault


def _day(epoch: int) -> str:
    local = datetime.fromtimestamp(epoch).astimezone()
    return f"{local.day} {local:%B} {local.year}"


def _rows(screen: ActivityScreen) -> list[tuple[str, str]]:
    model = screen.model
    return [(model.index(r, 1).data(), model.index(r, 2).data()) for r in range(model.rowCount())]


def test_imports_shares_and_revokes_in_words(qtbot, tmp_path):
    vault, _key = Vault.create(tmp_path / "v", PASSPHRASE, kdf_profile=TEST_PROFILE)
    session = Session(vault)
    outcomes = session.import_sources([*directory_files(), SYNTHEA / JULIETTE])
    assert all(o.ok for o in outcomes)
    opened = session.create_share(sharing.selection(ips=True))
    with Session(Vault.create(tmp_path / "dr", PASSPHRASE, kdf_profile=TEST_PROFILE)[0]) as doctor:
        card = doctor.card("Dr Ada Lovelace")
    directed = session.create_share(sharing.selection(types=["AllergyIntolerance"]), recipient=card, expires="3d")
    session.revoke_share(opened.created.id)
    session.import_sources([SYNTHEA / JULIETTE])      # again: nothing new

    window = window_on(qtbot, tmp_path, session, SyncRunner(), "activity")
    screen = window.screens["activity"]
    words = [w for w, _chain in _rows(screen)]
    expected = [
        "Imported a file again: it was imported before, so nothing changed",
        f"Revoked the share of {len(opened.created.resource_ids):,} records with anyone holding the link",
        f"Shared {len(directed.created.resource_ids)} records with Dr Ada Lovelace, until "
        f"{_day(directed.created.expires_at)}",
        f"Shared {len(opened.created.resource_ids):,} records with anyone holding the link, until "
        f"{_day(opened.created.expires_at)}",
    ]
    for outcome in reversed(outcomes):
        report = outcome.report
        extra = f" ({report.updated:,} updated)" if report.updated else ""
        expected.append(f"Imported {report.added:,} records from a file{extra}")
    expected.append("Created this vault")
    assert words == expected
    assert all(chain == "" for _w, chain in _rows(screen))      # no consent network: nothing to say there
    assert screen.table.isColumnHidden(2)
    assert screen.chain_label.text().startswith("No consent network is set up")
    # the log in words holds what the encrypted database knows, and the file on disk still holds none of it
    assert b"Lovelace" not in (tmp_path / "v" / "vault.db").read_bytes()
    window.close()


def test_a_long_log_is_read_a_page_at_a_time(qtbot, tmp_path, unlocked_vault):
    for n in range(430):
        unlocked_vault.audit("settings", setting="app.autolock_minutes")
    session = Session(unlocked_vault)
    runner = TaskRunner()
    window = window_on(qtbot, tmp_path, session, runner, "activity")
    screen = ActivityScreen(window.ctx, page_size=100)
    qtbot.addWidget(screen)
    screen.show()
    screen.refresh()
    settle(qtbot, runner)
    assert screen.model.rowCount() == 100 and screen.model.canFetchMore()
    while screen.model.canFetchMore() or screen.model.loading:
        screen.table.scrollToBottom()
        settle(qtbot, runner)
    entries = screen.model.entries
    assert [e.seq for e in entries] == list(range(len(entries), 0, -1))    # newest first, none twice, none lost
    assert len(entries) == 431 and entries[-1].words == "Created this vault"
    assert entries[0].words == "Changed when the vault locks itself"
    window.close()


def test_integrity_intact_with_its_steps(qtbot, tmp_path):
    session = Session(synthea_vault(tmp_path / "v"))
    runner = TaskRunner()
    window = window_on(qtbot, tmp_path, session, runner, "activity")
    screen = window.screens["activity"]
    steps: list[int] = []
    screen.check_progress.valueChanged.connect(steps.append)
    screen.check_button.click()
    qtbot.waitUntil(lambda: screen.check_button.isEnabled(), timeout=60000)
    entries = len(session.audit_entries())
    assert screen.check_result.text() == (f"Intact: every page of the database and all {entries} entries of the "
                                          "audit log were checked.")
    assert steps == [0, 1, 2, 3]            # each step reached the window as it started, then the end
    window.close()


def test_integrity_broken_says_where(qtbot, tmp_path):
    folder = tmp_path / "v"
    synthea_vault(folder).close()
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    db = copy / "vault.db"
    page = read_header(folder).db_page_size                  # the vault's own cipher page size
    pages = db.stat().st_size // page
    damaged = pages // 2                                     # a page of records, not the header or the schema
    with open(db, "r+b") as f:
        f.seek((damaged - 1) * page + 200)
        f.write(b"\x5a" * 24)
    session = Session(Vault.unlock(copy, PASSPHRASE))
    runner = TaskRunner()
    window = window_on(qtbot, tmp_path, session, runner, "activity")
    screen = window.screens["activity"]
    screen.check_button.click()
    qtbot.waitUntil(lambda: screen.check_button.isEnabled(), timeout=60000)
    assert screen.check_result.text() == (f"Not intact. The database file was damaged or tampered with at page "
                                          f"{damaged:,}; restore it from a backup.")
    assert screen.check_result.icon.isVisibleTo(screen)
    window.close()


def test_integrity_broken_in_the_log_says_which_entry(qtbot, tmp_path, unlocked_vault):
    for n in range(5):
        unlocked_vault.audit("settings", setting="app.autolock_minutes")
    with unlocked_vault.transaction() as conn:           # someone with the key rewrites what entry 3 says
        conn.execute("UPDATE audit SET details = '{\"setting\":\"chain\"}' WHERE seq = 3")
    window = window_on(qtbot, tmp_path, Session(unlocked_vault), SyncRunner(), "activity")
    screen = window.screens["activity"]
    screen.check_integrity()
    assert screen.check_result.text() == "Not intact. Audit log broken at entry 3: its content was changed."
    window.close()


@pytest.fixture
def chain_node(tmp_path):
    """A real consent network node (ganache) with free gas, as a consortium runs it."""
    node = Ganache(tmp_path / "chain", free_gas=True)
    node.start()
    yield node
    node.stop()


def test_consent_states_from_the_real_chain(qtbot, tmp_path, chain_node, screenshot):
    patient = Session(synthea_vault(tmp_path / "patient"))
    port = free_port()
    sync_shares.set_gateway_setting(patient.vault, f"http://127.0.0.1:{port}")
    settings = patient.chain_deploy(chain_node.url)
    clinician = Session(Vault.create(tmp_path / "clinician", PASSPHRASE, kdf_profile=TEST_PROFILE)[0])
    clinician.chain_connect(chain_node.url, settings.contract)
    card = card_from_link(clinician.card("Dr Grace Hopper"))
    chain_service.register_practitioner(patient.vault, card)
    chain_service.add_member(patient.vault, card.address)     # her clinic may send receipts

    shared = patient.create_share(sharing.selection(types=["Condition"]), recipient=card)
    assert shared.chain == "recorded"
    gateway = patient.serve()
    try:
        clinician.open_link(shared.link, allow_local_http=True, check_chain=True)
    finally:
        gateway.stop()

    runner = TaskRunner()
    window = window_on(qtbot, tmp_path, patient, runner, "activity")
    screen = window.screens["activity"]
    settle(qtbot, runner)
    with patient.vault.read() as conn:
        grant = SqlOutboxStore(conn).all()[0]
    assert grant.kind == "grant" and grant.block_number
    top = screen.model.index(0, 2)
    assert _rows(screen)[0] == (f"Shared {len(shared.created.resource_ids)} records with Dr Grace Hopper, until "
                                f"{_day(shared.created.expires_at)}",
                                f"Consent recorded in block {grant.block_number:,}")
    assert grant.tx_hash in top.data(Qt.ItemDataRole.ToolTipRole)
    assert not screen.table.isColumnHidden(2)
    assert "reachable; this vault is a member" in screen.chain_label.text()
    assert not screen.send_button.isVisible()
    opened = [screen.opened.item(n).text() for n in range(screen.opened.count())]
    with clinician.vault.read() as conn:
        receipt = SqlOutboxStore(conn).all()[0]
    assert receipt.kind == "access" and receipt.state == "anchored"
    assert len(opened) == 1 and opened[0].endswith(
        f": Dr Grace Hopper opened your share of {len(shared.created.resource_ids)} records from "
        f"{_day(patient.list_shares()[0]['created_at'])} (recorded in block {receipt.block_number:,})"), opened
    screen.check_button.click()
    qtbot.waitUntil(screen.check_button.isEnabled, timeout=60000)
    assert screen.check_result.text().startswith("Intact: every page of the database and all ")
    screenshot(window, "40-activity")

    # the node stops: a new share still works, its consent waits, and the window says so
    chain_node.stop()
    waiting = patient.create_share(sharing.selection(types=["AllergyIntolerance"]))
    assert waiting.chain.startswith("queued")
    screen.refresh()
    settle(qtbot, runner)
    assert _rows(screen)[0][1] == "Consent waiting to be sent"
    assert screen.chain_label.text() == (f"Consent network at {chain_node.url}: The consent network cannot be "
                                         "reached right now; the change is saved and will be sent later. Consent "
                                         "changes: 1 waiting to be sent, 1 recorded.")
    assert screen.send_button.isVisible()

    # back: "Send what waits", and the consent is recorded
    chain_node.start()
    screen.send_button.click()
    settle(qtbot, runner)
    with patient.vault.read() as conn:
        sent = [e for e in SqlOutboxStore(conn).all() if e.kind != "anchor"][-1]   # not the audit anchor after it
    assert sent.state == "anchored"
    assert _rows(screen)[0][1] == f"Consent recorded in block {sent.block_number:,}"
    assert not screen.send_button.isVisible()

    # the clinician's side: her opening, and its receipt on the chain
    clinician_window = window_on(qtbot, tmp_path, clinician, runner, "activity")
    settle(qtbot, runner)
    rows = _rows(clinician_window.screens["activity"])
    assert rows[0][0] == "Opened a share sent to you; a receipt of the opening is kept for the consent network"
    assert rows[0][1].startswith("Receipt recorded in block ")
    clinician_window.close()
    window.close()

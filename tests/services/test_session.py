"""The application layer as the desktop app drives it: a Session on a real vault, imports with progress and cancel
from worker threads, reads that never wait for an import, persons, and the share round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from app.services import CancelToken, PastedText, Session
from app.services import sharing
from tests.conftest import FIXTURES, ROOT
from vault.records import query
from vault.records.errors import ImportCancelled, PersonNotFound
from tests.records.records_support import row_counts, type_counts

SYNTHEA = FIXTURES / "synthea"
SUPPORT = sorted(SYNTHEA.glob("*Information*.json"))
NED = SYNTHEA / "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"
BUSTER = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
LARGE = SYNTHEA / "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"


@pytest.fixture
def session(unlocked_vault):
    return Session(unlocked_vault)


def test_import_reports_progress_as_one_rising_fraction(session):
    seen: list[float] = []
    outcomes = session.import_sources([*map(str, SUPPORT), str(NED)], progress=seen.append)
    assert [o.ok for o in outcomes] == [True, True, True]
    assert [o.name for o in outcomes] == [p.name for p in (*SUPPORT, NED)]
    assert seen == sorted(seen) and 0 <= seen[0] and seen[-1] == 1.0 and len(seen) > 3


def test_cancel_leaves_the_vault_as_it_was(session):
    token = CancelToken()
    with session.read() as conn:
        before = row_counts(conn)

    def progress(fraction: float) -> None:
        token.cancel()      # the user presses Cancel as soon as the bar moves

    outcomes = session.import_sources([str(p) for p in SUPPORT], progress=progress, cancel=token)
    assert all(isinstance(o.error, ImportCancelled) for o in outcomes)
    with session.read() as conn:
        assert row_counts(conn) == before


def test_reads_proceed_while_an_import_holds_its_transaction(session):
    session.import_sources([str(p) for p in SUPPORT])
    with session.read() as conn:
        before = sum(type_counts(conn).values())
    in_transaction, read_done = threading.Event(), threading.Event()

    def progress(fraction: float) -> None:
        # past half-way the importer is writing inside its one transaction
        if fraction > 0.6 and not in_transaction.is_set():
            in_transaction.set()
            assert read_done.wait(30)

    worker = threading.Thread(target=lambda: session.import_files([LARGE], progress=progress))
    worker.start()
    try:
        assert in_transaction.wait(120)
        counted: list[int] = []
        reader = threading.Thread(target=lambda: counted.append(_count(session)))
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), "the read waited for the import"
        assert counted == [before]           # the import is not committed yet, so none of it shows
    finally:
        read_done.set()
        worker.join(300)
    assert _count(session) > before


def _count(session: Session) -> int:
    with session.read() as conn:
        return sum(type_counts(conn).values())


def test_the_other_person_decision_and_the_current_person(session, tmp_path):
    session.import_sources([*map(str, SUPPORT), str(NED)])
    assert session.current_person().display_name == "Ned Hintz"
    first = session.import_files([BUSTER])
    assert first[0].other_person and not first[0].ok
    again = session.import_files([p for p, o in zip([BUSTER], first) if o.other_person], other_person=True)
    assert again[0].ok and again[0].report.added > 0
    people = session.persons()
    assert [(p.display_name, p.is_primary) for p in people] == [("Ned Hintz", True), ("Buster Hoeger", False)]

    with pytest.raises(PersonNotFound):
        session.set_person(99)
    assert session.person is None
    session.set_person(people[1].id)
    assert session.current_person().display_name == "Buster Hoeger"
    out = tmp_path / "current.json"
    session.export("bundle", out)        # the current person's records, as the window shows them
    names = [e["resource"]["name"][0]["family"] for e in json.loads(out.read_text())["entry"]
             if e["resource"]["resourceType"] == "Patient"]
    assert names == ["Hoeger"]
    session.set_person(None)
    assert session.current_person().display_name == "Ned Hintz"


def test_pasted_card_text_imports(session):
    text = (FIXTURES / "shl-shc" / "spec" / "example-00-d-jws.txt").read_text().strip()
    outcomes = session.import_sources([PastedText("\n" + text + "\n")])
    assert len(outcomes) == 1 and outcomes[0].ok and outcomes[0].name == "text"
    assert outcomes[0].report.cards[0]["status"] == "unverified"
    assert session.current_person() is not None     # the card's patient became the vault's person


def test_share_open_and_revoke_round_trip(session):
    from sync.errors import SyncError
    session.import_sources([*map(str, SUPPORT), str(NED)])
    with session.read() as conn:
        conditions = {f"Condition/{r.id}" for r in query.list_records(conn, rtype="Condition", limit=1000)}
    gateway = session.serve(port=0)
    try:
        outcome = session.create_share(sharing.selection(types=["Condition"]), expires="1d", label="For my GP",
                                       gateway=gateway.base_url)
        assert outcome.chain == "not configured" and set(outcome.created.resource_ids) == conditions
        assert [s["id"] for s in session.list_shares()] == [outcome.created.id]
        opened = session.open_link(outcome.link, allow_local_http=True)
        got = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for b in opened.bundles for e in b["entry"]
               if e["resource"]["resourceType"] != "Consent"}
        assert got == conditions and opened.label == "For my GP"
        revoked = session.revoke_share(outcome.created.id)
        assert revoked.chain is None and outcome.created.id in revoked.sentence
        with pytest.raises(SyncError):
            session.open_link(outcome.link, allow_local_http=True)
    finally:
        gateway.stop()


def test_chain_status_without_a_network_and_verify(session):
    status = session.chain_status()
    assert (status.configured, status.reachable, status.detail) == (False, False, "no consent network is set up")
    assert session.verify().intact
    assert "init" in [e.event for e in session.audit_entries(10)]


def test_closing_the_session_locks_the_vault(unlocked_vault):
    from vault.errors import VaultLocked
    with Session(unlocked_vault) as s:
        s.persons()
    assert not unlocked_vault.is_open
    with pytest.raises(VaultLocked):
        with s.read():
            pass


def test_the_services_never_import_qt():
    code = ("import sys, app.services, app.services.session, app.services.sharing, app.services.receiving, "
            "app.services.chain, app.services.importing; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

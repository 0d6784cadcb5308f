"""The outbox on the in-process EVM: ordered, idempotent submission and visible states, on both stores."""

from __future__ import annotations

import sqlite3

import pytest
from web3 import HTTPProvider, Web3

from sync import consent_sign as cs
from sync import merkle
from sync.chain import Chain, ConsentRegistry, Sender
from sync.errors import ChainMismatch, ConsentSignatureInvalid
from sync.outbox import ACCESS, BATCH, GRANT, REVOKE, Outbox
from vault.outbox_store import ANCHORED, FAILED, PENDING, SqlOutboxStore, create_tables

from conftest import advance, new_party, signed_grant, signed_receipt, signed_revoke
from tests.chain.chain_support import MemoryOutboxStore, proofs_of, queue_batch, receipt_anchored_at


@pytest.fixture(params=["memory", "sqlite"])
def store(request):
    if request.param == "memory":
        yield MemoryOutboxStore()
        return
    conn = sqlite3.connect(":memory:")
    create_tables(conn)
    create_tables(conn)  # the vault runs migrations on every open: must be idempotent
    yield SqlOutboxStore(conn)
    conn.close()


@pytest.fixture
def outbox(store):
    return Outbox(store, clock=lambda: 1_700_000_000)


def test_queued_operations_anchor_in_order(registry, admin, outbox, patient, clinician):
    grant, gsig = signed_grant(registry, patient)
    ids = [
        outbox.queue_grant(registry.domain, grant, gsig),
        outbox.queue_access(registry.domain,
                            *signed_receipt(registry, clinician, grant.consent_id, patient=patient.address)),
        outbox.queue_revoke(registry.domain, *signed_revoke(registry, patient, grant.consent_id)),
    ]
    assert [e.state for e in outbox.entries()] == [PENDING] * 3
    report = outbox.sync(registry, admin)
    assert report.anchored == ids and not report.failed and report.unavailable is None
    entries = outbox.entries()
    assert [e.kind for e in entries] == [GRANT, ACCESS, REVOKE]
    assert all(e.state == ANCHORED and e.block_number and e.tx_hash for e in entries)
    blocks = [e.block_number for e in entries]
    assert blocks == sorted(blocks) and len(set(blocks)) == 3
    granted = registry.events("ConsentGranted", consentId=grant.consent_id)[0]
    assert entries[0].tx_hash == "0x" + granted["tx_hash"].hex()
    assert registry.get_consent(grant.consent_id, patient=patient.address).revoked
    assert outbox.sync(registry, admin).anchored == []  # nothing left to do


def test_grant_already_on_chain_is_recognised_not_duplicated(registry, admin, outbox, patient):
    grant, gsig = signed_grant(registry, patient)
    outbox.queue_grant(registry.domain, grant, gsig)
    # Another relayer (or a previous run that lost the answer) already sent the same signed grant.
    sent = registry.grant(admin, grant, gsig)
    report = outbox.sync(registry, admin)
    assert report.already_on_chain == report.anchored == [1]
    entry = outbox.entries()[0]
    assert entry.state == ANCHORED and entry.tx_hash == "0x" + sent.tx_hash.hex()
    assert entry.block_number == sent.block_number
    assert len(registry.events("ConsentGranted", consentId=grant.consent_id)) == 1


def test_same_grant_queued_twice_lands_once(registry, admin, outbox, patient):
    grant, gsig = signed_grant(registry, patient)
    outbox.queue_grant(registry.domain, grant, gsig)
    outbox.queue_grant(registry.domain, grant, gsig)
    report = outbox.sync(registry, admin)
    assert report.anchored == [1, 2] and report.already_on_chain == [2]
    assert len(registry.events("ConsentGranted", consentId=grant.consent_id)) == 1


def test_refused_operation_fails_with_reason_and_the_rest_continue(evm, registry, admin, outbox, patient):
    stale, ssig = signed_grant(registry, patient, deadline_in=10)
    fresh, fsig = signed_grant(registry, patient, deadline_in=10_000)
    outbox.queue_grant(registry.domain, stale, ssig)
    outbox.queue_grant(registry.domain, fresh, fsig)
    advance(evm, 100)
    report = outbox.sync(registry, admin)
    assert report.failed == [1] and report.anchored == [2]
    failed = outbox.entries()[0]
    assert failed.state == FAILED and failed.reason == "SignatureExpired"
    assert failed.message and "signed again" in failed.message
    assert failed.payload["typed"]["consent_id"] == "0x" + stale.consent_id.hex()  # kept, not lost


def test_revoke_by_non_patient_fails_in_outbox_without_losing_it(registry, admin, outbox, patient, clinician):
    grant, gsig = signed_grant(registry, patient)
    registry.grant(admin, grant, gsig)
    revoke = cs.Revoke(grant.consent_id, clinician.address, 1, registry.chain.block_timestamp() + 600)
    outbox.queue_revoke(registry.domain, revoke, cs.sign(clinician.key, registry.domain, revoke))
    report = outbox.sync(registry, admin)
    assert report.failed == [1]
    # The clinician can only sign a revoke naming themself, and they recorded no consent under this id: the
    # patient's consent is out of their reach.
    assert outbox.entries()[0].reason == "UnknownConsent"
    assert not registry.get_consent(grant.consent_id, patient=patient.address).revoked


def test_non_member_sender_fails_with_reason(evm, registry, outbox, patient):
    outsider = Sender(node_account=evm.node_accounts()[2])
    outbox.queue_grant(registry.domain, *signed_grant(registry, patient))
    report = outbox.sync(registry, outsider)
    assert report.failed == [1] and outbox.entries()[0].reason == "NotMember"


def test_forged_signature_is_refused_before_queueing(registry, outbox, patient):
    grant, _ = signed_grant(registry, patient)
    with pytest.raises(ConsentSignatureInvalid):
        outbox.queue_grant(registry.domain, grant, cs.sign(new_party().key, registry.domain, grant))
    assert outbox.entries() == []


def test_unreachable_node_keeps_everything_pending(registry, outbox, patient, closed_port_url):
    grant, gsig = signed_grant(registry, patient)
    outbox.queue_grant(registry.domain, grant, gsig)
    outbox.queue_revoke(registry.domain, *signed_revoke(registry, patient, grant.consent_id))
    dead = Chain(Web3(HTTPProvider(closed_port_url, request_kwargs={"timeout": 2},
                                   exception_retry_configuration=None)))
    unreachable = ConsentRegistry(dead, registry.address)
    report = outbox.sync(unreachable, Sender(private_key=patient.key))
    assert report.unavailable is not None and report.remaining == 2
    assert "saved" in report.unavailable.user_message
    assert [e.state for e in outbox.entries()] == [PENDING, PENDING]


def test_entries_for_another_network_stop_sync_unchanged(evm, admin, registry, outbox, patient):
    other = evm.deploy(admin)
    outbox.queue_grant(registry.domain, *signed_grant(registry, patient))
    with pytest.raises(ChainMismatch):
        outbox.sync(other, admin)
    assert outbox.entries()[0].state == PENDING


def test_batch_of_receipts_anchors_once_with_provable_receipts(registry, admin, outbox, patient):
    grant, gsig = signed_grant(registry, patient)
    registry.grant(admin, grant, gsig)
    receipts = [signed_receipt(registry, new_party(), grant.consent_id, nonce=i, patient=patient.address)
                for i in range(7)]
    queue_batch(outbox, registry.domain, receipts)
    queue_batch(outbox, registry.domain, receipts)  # the same batch again is recognised as anchored
    report = outbox.sync(registry, admin)
    assert report.anchored == [1, 2] and report.already_on_chain == [2]
    entry = outbox.entries()[0]
    assert entry.kind == BATCH and entry.state == ANCHORED
    root = bytes.fromhex(entry.payload["root"][2:])
    for item in proofs_of(entry):
        digest = bytes.fromhex(item["digest"][2:])
        proof = [bytes.fromhex(p[2:]) for p in item["proof"]]
        assert merkle.verify(root, digest, proof)
        assert receipt_anchored_at(registry, root, digest, proof) > 0
    assert len(registry.events("BatchAnchored")) == 1


def test_sql_store_survives_reopen(tmp_path, registry, admin, patient):
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path)
    create_tables(conn)
    grant, gsig = signed_grant(registry, patient)
    Outbox(SqlOutboxStore(conn)).queue_grant(registry.domain, grant, gsig)
    conn.close()

    conn = sqlite3.connect(path)
    create_tables(conn)
    outbox = Outbox(SqlOutboxStore(conn))
    assert [e.state for e in outbox.entries()] == [PENDING]
    outbox.sync(registry, admin)
    conn.close()
    conn = sqlite3.connect(path)
    entry = SqlOutboxStore(conn).get(1)
    assert entry.state == ANCHORED and entry.block_number > 0
    conn.close()


def test_sql_store_rejects_unknown_entries_and_bad_states():
    conn = sqlite3.connect(":memory:")
    create_tables(conn)
    store = SqlOutboxStore(conn)
    with pytest.raises(KeyError):
        store.mark_failed(99, "x", "y")
    with pytest.raises(KeyError):
        store.get(99)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO chain_outbox (kind, payload, created_at, state) VALUES ('grant', '{}', 0, 'lost')")


def test_sql_store_can_join_the_callers_transaction(registry, patient):
    # The vault's connection style: autocommit mode, explicit BEGIN IMMEDIATE ... COMMIT/ROLLBACK.
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_tables(conn)
    store = SqlOutboxStore(conn, own_transactions=False)
    grant, gsig = signed_grant(registry, patient)
    conn.execute("BEGIN IMMEDIATE")
    Outbox(store).queue_grant(registry.domain, grant, gsig)
    assert conn.in_transaction  # the store did not commit the caller's transaction half way
    conn.execute("ROLLBACK")
    assert store.all() == []  # rolled back together with whatever else the caller wrote

    conn.execute("BEGIN IMMEDIATE")
    Outbox(store).queue_grant(registry.domain, grant, gsig)
    conn.execute("COMMIT")
    assert [e.state for e in store.all()] == [PENDING]

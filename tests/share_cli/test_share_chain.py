"""Share create/revoke queue the patient's EIP-712 grant and revoke in the vault's outbox; synced to a real
in-process EVM, the consent is active for the link's holders, then revoked, and the receiver refuses the link."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sync import consent_sign as cs
from sync import receiver, shares
from sync.chain import Chain, Sender
from sync.errors import ShareRevoked
from sync.gateway import Gateway
from sync.links import parse_shlink
from sync.outbox import Outbox
from vault.outbox_store import ANCHORED, SqlOutboxStore
from vault.shares_store import VaultBlobStorage
from vault.store import Vault
from tests.conftest import PASSPHRASE


def test_grant_and_revoke_go_through_the_outbox_to_the_chain(patient_vault):
    evm = Chain.in_process()
    admin = Sender(node_account=evm.node_accounts()[0])
    registry = evm.deploy(admin)
    with Vault.unlock(patient_vault, PASSPHRASE) as vault:
        gateway = Gateway(shares.gateway_lookup(vault)).start()
        try:
            created = shares.create_share(vault, shares.Selection(types=("Condition",)), expires=timedelta(days=7),
                                          gateway_base=gateway.base_url, chain_domain=registry.domain)
            assert created.outbox_id is not None
            with vault.read() as conn:
                entry = SqlOutboxStore(conn).get(created.outbox_id)
            assert entry.kind == "grant"
            grant = cs.from_jsonable(entry.payload["typed"])
            sig = cs.Signature.from_bytes(bytes.fromhex(entry.payload["signature"][2:]))
            assert cs.recover(registry.domain, grant, sig) == vault.identity.eth_address
            # scopeHash is the SHA-256 of the canonical FHIR Consent that travels inside the encrypted share.
            key = parse_shlink(created.link).key
            assert grant.consent_id.hex() == created.consent_id
            from sync import jwe
            bundle = json.loads(jwe.decrypt(VaultBlobStorage(vault).get(created.cid), key).plaintext)
            consent = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent")
            assert grant.scope_hash == cs.scope_hash(consent)
            assert grant.expires_at == created.expires_at

            with vault.read() as conn:
                report = Outbox(SqlOutboxStore(conn)).sync(registry, admin)
            assert report.anchored == [created.outbox_id] and report.failed == []

            def checker(consent_id: bytes, patient: str) -> bool:
                return registry.is_active(consent_id, cs.ZERO_ADDRESS, patient=patient)

            opened = receiver.open_link(created.link, recipient="test", allow_local_http=True,
                                        consent_checker=checker)
            assert opened.chain_checked and opened.patient == vault.identity.eth_address

            sentence = shares.revoke_share(vault, created.id, chain_domain=registry.domain)
            assert "cannot be recalled" in sentence
            with vault.read() as conn:
                store = SqlOutboxStore(conn)
                revoke = [e for e in store.all() if e.kind == "revoke"]
                assert len(revoke) == 1
                report = Outbox(store).sync(registry, admin)
                assert report.anchored == [revoke[0].id]
                assert store.get(revoke[0].id).state == ANCHORED
            assert registry.get_consent(bytes.fromhex(created.consent_id), patient=vault.identity.eth_address).revoked
            with pytest.raises(ShareRevoked):
                receiver.open_link(created.link, recipient="test", allow_local_http=True, consent_checker=checker)
        finally:
            gateway.stop()


def test_without_a_chain_nothing_is_queued(patient_vault):
    with Vault.unlock(patient_vault, PASSPHRASE) as vault:
        with vault.read() as conn:
            before = len(SqlOutboxStore(conn).all())
        created = shares.create_share(vault, shares.Selection(ids=("Patient/" + _patient_id(vault),)),
                                      expires=timedelta(hours=1), gateway_base="http://127.0.0.1:8421")
        shares.revoke_share(vault, created.id)
        with vault.read() as conn:
            assert len(SqlOutboxStore(conn).all()) == before
        assert created.outbox_id is None and created.resource_ids[0].startswith("Patient/")


def _patient_id(vault) -> str:
    with vault.read() as conn:
        return conn.execute("SELECT id FROM rec_resources WHERE rtype = 'Patient' LIMIT 1").fetchone()[0]

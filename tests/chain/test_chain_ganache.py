"""Against a real JSON-RPC node (ganache on loopback): the whole consent life cycle, free gas, failures, and an
outbox that fills while the node is stopped and drains once it is back."""

from __future__ import annotations

import os

import pytest

from sync import consent_sign as cs
from sync import merkle
from sync.chain import Chain, Sender
from sync.errors import ChainMismatch, ChainUnavailable, ConsentRejected, ConsentSignatureInvalid, NotAMember
from sync.outbox import Outbox
from vault.outbox_store import ANCHORED, PENDING
from tests.peers.ganache import CHAIN_ID, Ganache

from conftest import new_party, signed_grant, signed_receipt, signed_revoke
from tests.chain.chain_support import MemoryOutboxStore, history, receipt_anchored_at

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node_chain(ganache_node):
    return Chain.connect(ganache_node.url, expected_chain_id=CHAIN_ID, timeout=10)


@pytest.fixture(scope="module")
def member(ganache_keys):
    return Sender(private_key=ganache_keys[0])  # a funded member who pays for gas


@pytest.fixture(scope="module")
def node_registry(node_chain, member):
    return node_chain.deploy(member)


def test_life_cycle_on_a_real_node(node_chain, node_registry, member):
    reg = node_registry
    patient, clinician = new_party(), new_party()
    assert node_chain.registry(reg.address).address == reg.address  # binding re-checks the deployed code

    reg.register_practitioner(member, clinician.address, "did:key:z6MkDrX")
    grant, gsig = signed_grant(reg, patient, grantee=clinician.address)
    result = reg.grant(member, grant, gsig)
    assert result.gas_used <= 100_000
    assert reg.is_active(grant.consent_id, clinician.address, patient=patient.address)
    assert not reg.is_active(grant.consent_id, new_party().address, patient=patient.address)

    receipt, rsig = signed_receipt(reg, clinician, grant.consent_id, patient=patient.address)
    reg.log_access(member, receipt, rsig)
    assert reg.find_access(grant.consent_id, cs.digest(reg.domain, receipt)) is not None

    batch = [signed_receipt(reg, clinician, grant.consent_id, nonce=i, patient=patient.address) for i in range(2, 6)]
    digests = [cs.digest(reg.domain, r) for r, _ in batch]
    tree = merkle.MerkleTree.from_digests(digests)
    reg.anchor_batch(member, tree.root, len(digests))
    assert receipt_anchored_at(reg, tree.root, digests[3], tree.proof(3)) == reg.anchored_at(tree.root) > 0

    reg.revoke(member, *signed_revoke(reg, patient, grant.consent_id))
    assert not reg.is_active(grant.consent_id, clinician.address, patient=patient.address)
    kinds = [e["event"] for e in history(reg) if e["event"].startswith(("Consent", "Access", "Batch"))]
    assert kinds[-4:] == ["ConsentGranted", "AccessLogged", "BatchAnchored", "ConsentRevoked"]


def test_node_managed_member_account(node_chain, node_registry, ganache_keys):
    funded = Sender(node_account=node_chain.node_accounts()[1])
    admin = Sender(private_key=ganache_keys[0])
    node_registry.add_member(admin, funded.address)
    patient = new_party()
    grant, gsig = signed_grant(node_registry, patient)
    node_registry.grant(funded, grant, gsig)
    assert node_registry.get_consent(grant.consent_id, patient=patient.address) is not None


def test_reverts_are_typed_on_a_real_node(node_registry, member):
    reg = node_registry
    patient = new_party()
    grant, gsig = signed_grant(reg, patient)
    reg.grant(member, grant, gsig)
    with pytest.raises(ConsentRejected) as err:
        reg.grant(member, grant, gsig)
    assert err.value.reason == "ConsentExists"
    with pytest.raises(ConsentSignatureInvalid) as err:
        reg.revoke(member, *signed_revoke(reg, new_party(), grant.consent_id, patient=patient.address))
    assert err.value.reason == "NotPatient"
    with pytest.raises(NotAMember):
        reg.grant(Sender(private_key=os.urandom(32)), *signed_grant(reg, patient))
    with pytest.raises(ConsentSignatureInvalid) as err:
        reg.grant(member, *signed_grant(reg, patient, deadline_in=-10))
    assert err.value.reason == "SignatureExpired"


def test_wrong_chain_id(ganache_node):
    with pytest.raises(ChainMismatch) as err:
        Chain.connect(ganache_node.url, expected_chain_id=CHAIN_ID + 1)
    assert str(CHAIN_ID) in err.value.user_message


def test_signature_for_another_chain_is_refused(node_registry, member):
    patient = new_party()
    grant, _ = signed_grant(node_registry, patient)
    wrong = cs.Domain(CHAIN_ID + 1, node_registry.address)
    with pytest.raises(ConsentSignatureInvalid):
        node_registry.grant(member, grant, cs.sign(patient.key, wrong, grant))


def test_no_contract_at_configured_address(node_chain):
    with pytest.raises(ChainMismatch) as err:
        node_chain.registry("0x" + "ab" * 20)
    assert "no consent registry" in err.value.user_message


def test_closed_port_is_unavailable(closed_port_url):
    with pytest.raises(ChainUnavailable) as err:
        Chain.connect(closed_port_url, timeout=2)
    assert err.value.user_message.endswith(".")


@pytest.mark.timeout(60)
def test_silent_node_times_out_as_unavailable(silent_server):
    with pytest.raises(ChainUnavailable):
        Chain.connect(silent_server, timeout=1)


def test_free_gas_network_with_the_vault_account_as_sender(tmp_path, ganache_keys):
    with Ganache(tmp_path / "free-db", free_gas=True) as node:
        chain = Chain.connect(node.url, expected_chain_id=CHAIN_ID)
        admin = Sender(private_key=ganache_keys[0])
        reg = chain.deploy(admin)
        vault = new_party()  # the patient's own vault account: never funded
        reg.add_member(admin, vault.address)
        sender = Sender(private_key=vault.key)
        grant, gsig = signed_grant(reg, vault)
        reg.grant(sender, grant, gsig)
        reg.revoke(sender, *signed_revoke(reg, vault, grant.consent_id))
        assert reg.get_consent(grant.consent_id, patient=vault.address).revoked
        assert chain.w3.eth.get_balance(vault.address) == 0


def test_outbox_fills_while_node_is_down_and_drains_after_restart(tmp_path, ganache_keys):
    node = Ganache(tmp_path / "db")
    node.start()
    try:
        chain = Chain.connect(node.url, expected_chain_id=CHAIN_ID, timeout=3)
        member = Sender(private_key=ganache_keys[0])
        reg = chain.deploy(member)
        domain = reg.domain
        outbox = Outbox(MemoryOutboxStore())
        patient, clinician = new_party(), new_party()
        now = chain.block_timestamp()
        first = cs.Grant(os.urandom(32), patient.address, cs.ZERO_ADDRESS, now + 86_400, os.urandom(32), 1,
                         now + 86_400)
        outbox.queue_grant(domain, first, cs.sign(patient.key, domain, first))
        assert outbox.sync(reg, member).anchored == [1]

        node.stop()
        # Offline: everything is signed and queued with the domain remembered from before.
        second = cs.Grant(os.urandom(32), patient.address, cs.ZERO_ADDRESS, now + 86_400, os.urandom(32), 2,
                          now + 86_400)
        outbox.queue_grant(domain, second, cs.sign(patient.key, domain, second))
        revoke = cs.Revoke(first.consent_id, patient.address, 3, now + 86_400)
        outbox.queue_revoke(domain, revoke, cs.sign(patient.key, domain, revoke))
        receipt = cs.AccessReceipt(second.consent_id, patient.address, clinician.address, now + 5, 1)
        outbox.queue_access(domain, receipt, cs.sign(clinician.key, domain, receipt))
        report = outbox.sync(reg, member)
        assert isinstance(report.unavailable, ChainUnavailable) and report.remaining == 3
        assert [e.state for e in outbox.entries()] == [ANCHORED, PENDING, PENDING, PENDING]
        assert outbox.entries()[1].attempts == 1

        node.start()  # same port, same database: the chain state survived
        report = outbox.sync(reg, member)
        assert report.anchored == [2, 3, 4] and report.unavailable is None
        assert all(e.state == ANCHORED for e in outbox.entries())
        assert reg.get_consent(first.consent_id, patient=patient.address).revoked
        assert reg.is_active(second.consent_id, clinician.address, patient=patient.address)
        assert reg.find_access(second.consent_id, cs.digest(domain, receipt)) is not None
    finally:
        node.stop()


def _admin_tool():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "packaging" / "consortium" / "registry_admin.py"
    spec = importlib.util.spec_from_file_location("registry_admin", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["registry_admin"] = module
    spec.loader.exec_module(module)
    return module


def test_consortium_admin_tool_on_a_real_node(ganache_node, ganache_keys, tmp_path, capsys):
    import json

    tool = _admin_tool()
    key_file = tmp_path / "admin.key"
    key_file.write_text("0x" + ganache_keys[0].hex() + "\n")
    key_file.chmod(0o600)
    base = ["--rpc", ganache_node.url, "--chain-id", str(CHAIN_ID), "--key-file", str(key_file)]

    assert tool.main(base + ["deploy"]) == 0
    address = json.loads(capsys.readouterr().out)["registry"]
    hospital, doctor = new_party(), new_party()
    assert tool.main(base + ["--registry", address, "add-member", hospital.address]) == 0
    assert tool.main(base + ["--registry", address, "register-practitioner", doctor.address, "did:key:zDoc"]) == 0
    capsys.readouterr()
    assert tool.main(base + ["--registry", address, "status", doctor.address]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["practitioner_active"] is True and status["admin"] == Sender(private_key=ganache_keys[0]).address

    chain = Chain.connect(ganache_node.url, expected_chain_id=CHAIN_ID)
    assert chain.registry(address).is_member(hospital.address)

    key_file.chmod(0o644)
    assert tool.main(base + ["--registry", address, "add-member", doctor.address]) == 2
    assert "chmod 600" in capsys.readouterr().err
    key_file.chmod(0o600)
    wrong = ["--rpc", ganache_node.url, "--chain-id", "1", "--key-file", str(key_file), "deploy"]
    assert tool.main(wrong) == 1
    assert "chain" in capsys.readouterr().err


def test_unfunded_relayer_keeps_outbox_pending_until_funded(node_chain, node_registry, member):
    poor = Sender(private_key=os.urandom(32))
    node_registry.add_member(member, poor.address)
    outbox = Outbox(MemoryOutboxStore())
    outbox.queue_grant(node_registry.domain, *signed_grant(node_registry, new_party(), deadline_in=86_400))
    report = outbox.sync(node_registry, poor)
    assert isinstance(report.unavailable, ChainUnavailable) and "no funds" in report.unavailable.user_message
    assert outbox.entries()[0].state == PENDING

    w3 = node_chain.w3
    tx = w3.eth.send_transaction({"from": node_chain.node_accounts()[0], "to": poor.address, "value": 10**18})
    w3.eth.wait_for_transaction_receipt(tx)
    report = outbox.sync(node_registry, poor)
    assert report.anchored == [1] and outbox.entries()[0].state == ANCHORED


def test_lost_confirmation_is_recognised_on_the_next_sync(tmp_path, ganache_keys):
    import time

    # Blocks every 3 s and a 0.5 s wait for inclusion: the first sync sends the grant but gives up waiting.
    with Ganache(tmp_path / "slow-db", block_time=3) as node:
        chain = Chain.connect(node.url, expected_chain_id=CHAIN_ID, receipt_timeout=0.5)
        member = Sender(private_key=ganache_keys[0])
        patient = new_party()
        deployer = Chain.connect(node.url, expected_chain_id=CHAIN_ID, receipt_timeout=30)
        reg = chain.registry(deployer.deploy(member).address)
        outbox = Outbox(MemoryOutboxStore())
        grant, gsig = signed_grant(reg, patient, deadline_in=86_400)
        outbox.queue_grant(reg.domain, grant, gsig)

        first = outbox.sync(reg, member)
        assert isinstance(first.unavailable, ChainUnavailable) and "not confirmed" in first.unavailable.user_message
        assert outbox.entries()[0].state == PENDING

        for _ in range(100):  # until the sent transaction is in a block
            if reg.get_consent(grant.consent_id, patient=patient.address) is not None:
                break
            time.sleep(0.2)
        second = outbox.sync(reg, member)
        assert second.anchored == [1] and second.already_on_chain == [1]
        assert len(reg.events("ConsentGranted", consentId=grant.consent_id)) == 1

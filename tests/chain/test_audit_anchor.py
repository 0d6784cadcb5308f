"""With a consent network configured, the vault anchors its audit head there, so putting the whole vault folder
back from an older backup (undetectable from the folder alone) is reported at unlock."""

from __future__ import annotations

import shutil
import uuid

import pytest

from app.services import chain as chain_service
from sync import audit_anchor, consent_service
from sync.chain import Chain
from tests.conftest import PASSPHRASE
from vault.errors import VaultRolledBack
from vault.store import Vault


@pytest.fixture
def networked(vault_factory):
    name = f"anchor-{uuid.uuid4().hex[:8]}"
    evm = Chain.in_process(publish_as=name)
    vault = vault_factory()
    consent_service.deploy(vault, f"eth-tester:{name}", pay_with_node_account=True)
    yield vault, name, evm
    Chain.withdraw_in_process(name)


def _sync(vault) -> None:
    report = chain_service.sync(vault)
    assert report.unavailable is None and not report.failed


def test_a_whole_folder_put_back_from_an_older_backup_is_reported_at_unlock(networked, tmp_path, cli):
    vault, name, evm = networked
    folder = vault.folder
    _sync(vault)
    assert audit_anchor.check(vault).status == audit_anchor.CURRENT
    vault.close()
    shutil.copytree(folder, tmp_path / "backup")

    with Vault.unlock(folder, PASSPHRASE) as again:
        again.audit("settings", setting="x")
        _sync(again)                       # the newer state is anchored on the chain
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "backup", folder)

    restored = Vault.unlock(folder, PASSPHRASE)   # locally it is consistent: header, database, state file
    try:
        found = audit_anchor.check(restored)
        assert found.status == audit_anchor.OLDER
        assert "older than the state it anchored on the consent network" in found.sentence
    finally:
        restored.close()

    refused = cli(["--vault", str(folder), "audit", "--verify"])
    assert refused.code == 1 and "consent network" in refused.err and "Traceback" not in refused.err
    assert "--accept-older-backup" in refused.err
    accepted = cli(["--vault", str(folder), "--accept-older-backup", "audit", "--verify"])
    assert accepted.code == 0, accepted.err
    again = cli(["--vault", str(folder), "audit", "--verify"])  # accepted once, on record: no longer refused
    assert again.code == 0 and "intact" in again.out
    with Vault.unlock(folder, PASSPHRASE) as vault:
        assert [e.details["action"] for e in vault.audit_entries() if e.event == "restore"] == [
            "accepted_older_than_anchor"]


def test_an_unreachable_network_is_said_and_does_not_block(networked, cli):
    vault, name, evm = networked
    _sync(vault)
    folder = vault.folder
    vault.close()
    Chain.withdraw_in_process(name)
    with Vault.unlock(folder, PASSPHRASE) as again:
        found = audit_anchor.check(again)
        assert found.status == audit_anchor.NOT_CHECKED and "could not be checked" in found.sentence
    result = cli(["--vault", str(folder), "audit", "--verify"])
    assert result.code == 0 and "intact" in result.out and "could not be checked" in result.err


def test_anchors_are_unlinkable_markers_not_the_audit_head(networked):
    vault, name, evm = networked
    _sync(vault)
    with vault.read() as conn:
        head = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()[0].split(":")[1]
    registry = consent_service.connect(consent_service.load_settings(vault))
    roots = [bytes(e["args"]["root"]).hex() for e in registry.events("BatchAnchored")]
    assert len(roots) == 1 and head not in roots
    assert roots[0] == audit_anchor.marker(vault, 1).hex()
    _sync(vault)                          # nothing new since: no second anchor
    assert len(registry.events("BatchAnchored")) == 1

"""Every released vault format still opens, migrates forward, and keeps its records and audit chain."""

from __future__ import annotations

import shutil
from pathlib import Path

from vault.header import FORMAT_VERSION
from vault.schema import SCHEMA_VERSION
from vault.store import Vault

DATA = Path(__file__).resolve().parents[1] / "data"
FROZEN = {1: ("vault-format1", "frozen vault passphrase", "9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC"),
          2: ("vault-format2", "frozen vault passphrase", "9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC")}


def test_every_released_format_has_a_frozen_vault():
    assert set(FROZEN) == set(range(1, FORMAT_VERSION + 1))
    for name, _, _ in FROZEN.values():
        assert (DATA / name / "vault.header").exists() and (DATA / name / "vault.db").exists()


def test_frozen_vaults_open_and_keep_their_records(tmp_path):
    for version, (name, passphrase, recovery_key) in FROZEN.items():
        folder = tmp_path / name
        shutil.copytree(DATA / name, folder)
        with Vault.unlock(folder, passphrase) as vault:
            with vault.read() as conn:
                assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
                ids = {(t, i) for t, i in conn.execute("SELECT rtype, id FROM rec_resources")}
            assert ("Patient", "example") in ids and ("Condition", "condition-duodenal-ulcer") in ids
            assert vault.verify().intact
        with Vault.recover(folder, recovery_key, "a new passphrase for it"):
            pass
        Vault.unlock(folder, "a new passphrase for it").close()
        with Vault.unlock(folder, "a new passphrase for it") as vault:
            assert vault.change_passphrase("and a third passphrase") is None   # the recovery key follows passwd
        Vault.recover(folder, recovery_key, "recovered once more").close()


def test_migration_order_is_the_released_one():
    from vault.schema import MIGRATIONS
    assert [name for name, _ in MIGRATIONS] == ["core-v1", "records-v1", "outbox-v1", "shares-v1",
                                                "persons-v1", "shares-v2"]

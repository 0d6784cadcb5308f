"""Changing the passphrase moves the records to a new vault key, so an old header and the old passphrase open
nothing current; the recovery key keeps working (format 2) or is replaced knowingly (format 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from vault.errors import VaultCorrupt, VaultError, WrongRecoveryKey
from vault.header import HEADER_NAME, read_header
from vault.store import Vault

DATA = Path(__file__).resolve().parents[1] / "data"
FROZEN_PASSPHRASE = "frozen vault passphrase"
FROZEN_KEY = "9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC"
NEW = "a brand new passphrase"


def test_an_old_header_and_the_old_passphrase_no_longer_open_the_current_database(unlocked_vault, tmp_path):
    folder = unlocked_vault.folder
    old_header = (folder / HEADER_NAME).read_bytes()
    unlocked_vault.change_passphrase(NEW)
    unlocked_vault.close()
    (folder / HEADER_NAME).write_bytes(old_header)          # the attacker's copy, taken before passwd
    with pytest.raises(VaultError) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert isinstance(refused.value, VaultCorrupt)
    assert not (folder / "vault.db-rekey").exists()


def test_an_old_database_copy_does_not_open_under_the_new_header(unlocked_vault, tmp_path):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    shutil.copy2(folder / "vault.db", tmp_path / "old.db")
    with Vault.unlock(folder, PASSPHRASE) as vault:
        vault.change_passphrase(NEW)
    assert (folder / "vault.db").read_bytes()[:4096] != (tmp_path / "old.db").read_bytes()[:4096]
    (folder / "vault.db").unlink()
    shutil.copy2(tmp_path / "old.db", folder / "vault.db")
    with pytest.raises(VaultError):
        Vault.unlock(folder, NEW)


def test_after_passwd_the_recovery_key_opens_and_the_audit_log_verifies(unlocked_vault, cli):
    folder, key = unlocked_vault.folder, unlocked_vault.recovery_key
    with unlocked_vault.read() as conn:
        before = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert unlocked_vault.change_passphrase(NEW) is None   # nothing new to show: the recovery key is unchanged
    assert unlocked_vault.verify().intact
    unlocked_vault.close()
    result = cli(["--vault", str(folder), "audit", "--verify"], env={"MEDVAULT_PASSPHRASE": NEW})
    assert result.code == 0 and "intact" in result.out, result.err
    with Vault.recover(folder, key, "the passphrase after recovery") as vault:
        assert vault.verify().intact
        with vault.read() as conn:
            assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] > before  # same log, carried over


def test_passwd_with_a_wrong_old_passphrase_changes_nothing(unlocked_vault):
    folder = unlocked_vault.folder
    header, db = (folder / HEADER_NAME).read_bytes(), (folder / "vault.db").stat().st_size
    from vault.errors import WrongPassphrase
    with pytest.raises(WrongPassphrase):
        unlocked_vault.change_passphrase(NEW, old_passphrase="not the passphrase at all")
    assert (folder / HEADER_NAME).read_bytes() == header


def test_a_new_vault_seals_its_recovery_slot_to_a_public_key(unlocked_vault):
    body = json.loads((unlocked_vault.folder / HEADER_NAME).read_text())
    assert body["format"] == 2
    slot = body["slots"]["recovery"]
    assert slot["kdf"] == "x25519-sealed" and set(slot) == {"kdf", "salt", "public", "ephemeral", "wrapped"}


def test_rotating_the_recovery_key_gives_a_sealed_slot_that_survives_passwd(unlocked_vault):
    folder, old_key = unlocked_vault.folder, unlocked_vault.recovery_key
    new_key = unlocked_vault.rotate_recovery_key()
    unlocked_vault.change_passphrase(NEW)
    unlocked_vault.close()
    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, old_key, "a passphrase nobody should set")
    Vault.recover(folder, new_key, "after the rotation and passwd").close()


def test_frozen_format1_passwd_with_its_recovery_key_keeps_the_printed_kit(tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(DATA / "vault-format1", folder)
    with Vault.unlock(folder, FROZEN_PASSPHRASE) as vault:
        assert read_header(folder).recovery_kind == "blake2b-keyed"   # still the old slot: it needs the key
        with pytest.raises(WrongRecoveryKey):
            vault.change_passphrase(NEW, recovery_key=_other_key())   # a key, but not this vault's
        assert vault.change_passphrase(NEW, recovery_key=FROZEN_KEY) is None
    assert read_header(folder).recovery_kind == "x25519-sealed"
    Vault.recover(folder, FROZEN_KEY, "recovered after passwd").close()


def test_frozen_format1_passwd_without_its_recovery_key_issues_a_new_one(tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(DATA / "vault-format1", folder)
    with Vault.unlock(folder, FROZEN_PASSPHRASE) as vault:
        new_key = vault.change_passphrase(NEW)
        assert new_key and new_key != FROZEN_KEY
        assert vault.recovery_key_confirmed is False          # shown once, then to be confirmed
    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, FROZEN_KEY, "the old kit should not work")
    Vault.recover(folder, new_key, "the new kit works").close()


def test_recover_also_moves_to_a_new_vault_key(unlocked_vault):
    folder, key = unlocked_vault.folder, unlocked_vault.recovery_key
    old_header = (folder / HEADER_NAME).read_bytes()
    unlocked_vault.close()
    Vault.recover(folder, key, "after a forgotten passphrase").close()
    (folder / HEADER_NAME).write_bytes(old_header)
    with pytest.raises(VaultCorrupt):
        Vault.unlock(folder, PASSPHRASE)


def test_cli_passwd_on_a_format1_vault_says_what_happened_to_the_recovery_key(cli, tmp_path):
    for given_key in (True, False):
        folder = tmp_path / f"v{given_key}"
        shutil.copytree(DATA / "vault-format1", folder)
        env = {"MEDVAULT_PASSPHRASE": FROZEN_PASSPHRASE, "MEDVAULT_NEW_PASSPHRASE": NEW}
        if given_key:
            env["MEDVAULT_RECOVERY_KEY"] = FROZEN_KEY
        result = cli(["--vault", str(folder), "passwd"], env=env)
        assert result.code == 0, result.err
        if given_key:
            assert "recovery key still works" in result.out
        else:
            assert "old recovery key no longer works" in result.out and FROZEN_KEY not in result.out
            assert result.out.count("-") >= 8   # the new key is printed once
        assert cli(["--vault", str(folder), "audit", "--verify"],
                   env={"MEDVAULT_PASSPHRASE": NEW}).code == 0


def _other_key() -> str:
    from vault import recovery
    return recovery.format_key(bytes(20))


def test_a_leftover_copy_under_another_key_is_dropped_without_sqlcipher_writing_to_the_terminal(
        unlocked_vault, tmp_path, capfd):
    """A kill during passwd can leave a copy under a key the header never got to name; the next unlock tries it,
    drops it, and the terminal shows nothing but medvault's own words (SQLCipher logged "hmac check failed")."""
    folder = unlocked_vault.folder
    unlocked_vault.close()
    shutil.copy2(folder / "vault.db", tmp_path / "before.db")
    with Vault.unlock(folder, PASSPHRASE) as vault:
        vault.change_passphrase(NEW)
    shutil.copy2(tmp_path / "before.db", folder / "vault.db-rekey")     # under the old key: not this header's
    capfd.readouterr()
    with Vault.unlock(folder, NEW) as vault:
        assert vault.verify().intact
    assert not (folder / "vault.db-rekey").exists()
    assert capfd.readouterr().err == ""

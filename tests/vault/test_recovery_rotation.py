"""The recovery key: confirmed or not, and rotated so the old key stops opening the vault."""

from __future__ import annotations

import pytest

from tests.conftest import PASSPHRASE
from vault.errors import WrongRecoveryKey
from vault.store import Vault


def test_a_vault_made_to_be_confirmed_starts_unconfirmed_and_confirming_is_audited(vault_factory):
    assert vault_factory("cli-made").recovery_key_confirmed is True  # the CLI prints the key and asks nothing
    vault = vault_factory("v", recovery_key_confirmed=False)
    assert vault.recovery_key_confirmed is False
    vault.confirm_recovery_key()
    assert vault.recovery_key_confirmed is True
    folder = vault.folder
    vault.close()
    with Vault.unlock(folder, PASSPHRASE) as again:
        assert again.recovery_key_confirmed is True  # kept in the encrypted database, not in memory
        assert [e.details for e in again.audit_entries() if e.event == "recovery_key"] == [{"action": "confirmed"}]


def test_a_vault_without_the_marker_counts_as_confirmed(vault_factory):
    vault = vault_factory("v")
    with vault.transaction() as conn:  # as a vault made before the marker existed
        conn.execute("DELETE FROM meta WHERE key = 'recovery_key_confirmed'")
    assert vault.recovery_key_confirmed is True


def test_rotating_replaces_the_recovery_key_and_the_old_one_stops_working(vault_factory, tmp_path):
    vault = vault_factory("v")
    old_key = vault.recovery_key
    vault.confirm_recovery_key()
    header_before = (vault.folder / "vault.header").read_bytes()
    new_key = vault.rotate_recovery_key()
    assert new_key != old_key
    assert vault.recovery_key_confirmed is False  # a new key must be confirmed again
    assert (vault.folder / "vault.header").read_bytes() != header_before
    actions = [e.details["action"] for e in vault.audit_entries() if e.event == "recovery_key"]
    assert sorted(actions) == ["confirmed", "rotated", "rotating"]
    folder = vault.folder
    vault.close()

    with pytest.raises(WrongRecoveryKey):
        Vault.recover(folder, old_key, "a passphrase nobody should set")
    Vault.unlock(folder, PASSPHRASE).close()  # the old key changed nothing: the passphrase still opens it
    with Vault.recover(folder, new_key, "the passphrase after recovery") as recovered:
        assert recovered.verify().intact
    Vault.unlock(folder, "the passphrase after recovery").close()


def test_passwd_keeps_the_rotated_recovery_key(vault_factory):
    vault = vault_factory("v")
    new_key = vault.rotate_recovery_key()
    vault.change_passphrase("another long passphrase")
    folder = vault.folder
    vault.close()
    Vault.recover(folder, new_key, "and yet another passphrase").close()

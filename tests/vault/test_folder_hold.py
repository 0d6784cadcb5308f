"""The vault folder's lock: a second process is told who holds the vault, and a hold kept past ``close()`` (the
desktop app serving while locked) keeps other processes out until it is released, while the same process may
open the vault again."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import PASSPHRASE, ROOT
from vault import fsutil
from vault.errors import VaultInUse, VaultLocked, WrongPassphrase
from vault.store import Vault


def _other_process_opens(folder) -> str:
    """What a second process gets when it tries to unlock the vault: "open" or its one sentence."""
    script = textwrap.dedent(f"""
        from vault.errors import VaultError
        from vault.store import Vault
        try:
            Vault.unlock({str(folder)!r}, {PASSPHRASE!r}).close()
            print("open")
        except VaultError as exc:
            print(exc.user_message)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def role():
    yield fsutil.set_holder_role
    fsutil.set_holder_role(fsutil.HOLDER_COMMAND)


def test_second_process_is_told_the_app_has_the_vault(unlocked_vault, role):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    role(fsutil.HOLDER_APP)
    vault = Vault.unlock(folder, PASSPHRASE)
    try:
        assert _other_process_opens(folder) == fsutil.IN_USE[fsutil.HOLDER_APP]
    finally:
        vault.close()
    assert _other_process_opens(folder) == "open"


def test_kept_hold_outlasts_close_and_names_the_locked_app(unlocked_vault, role):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    role(fsutil.HOLDER_APP)
    vault = Vault.unlock(folder, PASSPHRASE)
    hold = vault.keep_folder_locked(fsutil.HOLDER_APP_LOCKED)
    vault.close()
    try:
        assert _other_process_opens(folder) == fsutil.IN_USE[fsutil.HOLDER_APP_LOCKED]
        # the same process unlocks again through the hold (the app's unlock window), and a wrong passphrase
        # leaves the hold as it was
        with pytest.raises(WrongPassphrase):
            Vault.unlock(folder, "not the passphrase at all")
        assert _other_process_opens(folder) == fsutil.IN_USE[fsutil.HOLDER_APP_LOCKED]
        again = Vault.unlock(folder, PASSPHRASE)
        assert _other_process_opens(folder) == fsutil.IN_USE[fsutil.HOLDER_APP]
    finally:
        hold.release()
    try:
        assert _other_process_opens(folder) == fsutil.IN_USE[fsutil.HOLDER_APP]  # the reopened vault still holds
    finally:
        again.close()
    assert _other_process_opens(folder) == "open"


def test_a_second_vault_in_the_same_process_is_still_refused_without_a_hold(unlocked_vault):
    with pytest.raises(VaultInUse):
        Vault.unlock(unlocked_vault.folder, PASSPHRASE)


def test_keeping_the_lock_of_a_closed_vault_is_refused(unlocked_vault):
    unlocked_vault.close()
    with pytest.raises(VaultLocked):
        unlocked_vault.keep_folder_locked()


def test_change_passphrase_checks_the_old_one(unlocked_vault):
    folder = unlocked_vault.folder
    header = (folder / "vault.header").read_bytes()
    with pytest.raises(WrongPassphrase):
        unlocked_vault.change_passphrase("a brand new passphrase here", old_passphrase="wrong old passphrase")
    assert (folder / "vault.header").read_bytes() == header
    unlocked_vault.change_passphrase("a brand new passphrase here", old_passphrase=PASSPHRASE)
    unlocked_vault.close()
    with Vault.unlock(folder, "a brand new passphrase here") as vault:
        assert [e.event for e in vault.audit_entries()].count("passwd") == 1   # the refused attempt left none

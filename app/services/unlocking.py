"""Opening a vault: unlock with the passphrase, or recover with the recovery key, and the rollback checks that come
with it, once for the command line and the desktop app alike.

An unlock is two checks besides the passphrase: the vault's state file (a database older than its last saved state
is refused inside ``Vault.unlock``) and, with a consent network configured, the audit anchors there (a whole folder
put back from an older backup is refused by ``audit_anchor.refuse_if_older``). ``accept_older`` is the user's
deliberate choice of an older copy; both checks then let it through and put the choice in the audit log. When the
network could not be asked, the vault opens and ``Opened.note`` says so: each face shows it its own way.

A recovery runs the state-file check only: it re-keys the vault as it opens, so refusing afterwards on the chain's
word would leave a changed vault behind a sentence that says nothing was changed; the next unlock checks the chain.

No Qt here; these run on the caller's thread (the window's task runner, the CLI's main thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vault import state as saved_state
from vault.errors import VaultRolledBack
from vault.store import Clock, Vault, utc_now


@dataclass(frozen=True)
class Opened:
    """An unlocked vault; ``note``: the sentence to show when the consent network could not be asked (else
    empty); ``recovery_key_confirmed``: read here, off the window's thread, so the window can offer a new key."""

    vault: Vault
    note: str = ""
    recovery_key_confirmed: bool = True


def open_vault(folder: Path | str, passphrase: str, *, accept_older: bool = False,
               clock: Clock = utc_now) -> Opened:
    """Unlock with the passphrase; ``VaultRolledBack`` (nothing changed, the vault closed) for an older copy,
    unless ``accept_older``."""
    from sync import audit_anchor
    vault = Vault.unlock(folder, passphrase, clock=clock, accept_older=accept_older)
    found = audit_anchor.refuse_if_older(vault, accept=accept_older)     # closes the vault when it refuses
    try:
        return Opened(vault, found.sentence if found.status == audit_anchor.NOT_CHECKED else "",
                      vault.recovery_key_confirmed)
    except BaseException:
        vault.close()
        raise


def recover_vault(folder: Path | str, recovery_key: str, new_passphrase: str, *, accept_older: bool = False,
                  clock: Clock = utc_now) -> Opened:
    """Set a new passphrase with the recovery key. The key just opened the vault, so it was kept: a vault whose
    key was never confirmed counts it as confirmed from now on."""
    vault = Vault.recover(folder, recovery_key, new_passphrase, clock=clock, accept_older=accept_older)
    try:
        if not vault.recovery_key_confirmed:
            vault.confirm_recovery_key()
    except BaseException:
        vault.close()
        raise
    return Opened(vault)


def older_copy_explanation(exc: VaultRolledBack) -> str:
    """What a refused older copy means, for someone who cannot add a command-line flag: the window offers its own
    way to open the copy, so the CLI's sentence (which names ``--accept-older-backup``) is not shown there."""
    message = exc.user_message
    if message in (saved_state.MISSING, saved_state.EDITED):
        what = ("This vault's record of its last saved state is missing or was changed, so medvault cannot tell "
                "whether this copy is the newest.")
    elif message == saved_state.FORKED:
        what = "This copy of your vault does not match the last state medvault saved for it."
    else:
        what = ("This copy of your vault is older than the last state medvault saved for it: changes made since "
                "(new records, shares you revoked) are not in it.")
    return (f"{what} If you did not restore a backup yourself, someone may have replaced your vault with an old "
            "copy: do not open it; put back your newest backup of the vault folder. medvault did not open it and "
            "nothing was changed.")

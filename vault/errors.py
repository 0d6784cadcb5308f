"""Typed errors of the vault.

Every error carries ``user_message``: one plain sentence naming what was wrong and, where there is one, what to do.
It never holds PHI, a passphrase, a key or a path inside the user's records. The CLI prints it on one line with exit
status 1; the GUI shows it in a dialog (one place in ``app`` does that).
"""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error raised by ``vault``."""

    default_message = "The vault could not complete this operation."

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


class VaultNotFound(VaultError):
    default_message = "There is no medvault vault in this folder; create one with 'medvault init'."


class VaultExists(VaultError):
    default_message = "A vault already exists in this folder; nothing was changed."


class WrongPassphrase(VaultError):
    default_message = "The passphrase is wrong; the vault is unchanged. Try again, or use your recovery key."


class WrongRecoveryKey(VaultError):
    default_message = "That recovery key does not open this vault; check it against your printed recovery kit."


class MalformedRecoveryKey(VaultError):
    default_message = "That is not a medvault recovery key: it should be 9 groups of 4 letters and digits."


class WeakPassphrase(VaultError):
    default_message = "Choose a longer passphrase: at least 10 characters (a few unrelated words work well)."


class HeaderInvalid(VaultError):
    default_message = "The vault's header file is damaged or was edited; restore it from a backup."


class FormatTooNew(VaultError):
    default_message = "This vault was written by a newer version of medvault; update medvault to open it."


class VaultCorrupt(VaultError):
    default_message = ("The vault's database is damaged or was tampered with; medvault changed nothing. "
                       "Restore it from a backup.")


class VaultInUse(VaultError):
    default_message = "This vault is already open in another medvault window or command; close that first."


class VaultLocked(VaultError):
    default_message = "The vault is locked; unlock it first."


class StorageUnavailable(VaultError):
    default_message = "medvault could not write to the vault folder; nothing was changed."


class RecordNotFound(VaultError):
    default_message = "No record with that id is in the vault."


class VaultRolledBack(VaultError):
    """The database is older than the vault's last saved state (or that state's record is missing or edited)."""

    default_message = ("This vault's database is older than its last saved state: it may have been replaced with "
                       "an old copy, so medvault did not open it and nothing was changed. Put back the newest copy "
                       "of the whole vault folder; if this older copy is the one you mean to use (a backup you "
                       "restored yourself), open it with --accept-older-backup.")

"""The one error hierarchy of medvault, and the vault's own errors.

``MedvaultError`` is the base of every error medvault explains to its user: each carries ``user_message``, one
plain sentence naming what was wrong and, where there is one, what to do. It never holds PHI, a passphrase, a key or
a path inside the user's records. The CLI prints it on one line with exit status 1; the GUI shows it in a dialog
(``app.errors``). Anything else that reaches the user is a bug: exit status 70 and a crash report (``app.crash``).

``vault`` errors derive from ``VaultError``, ``sync`` errors from ``sync.errors.SyncError``; both from
``MedvaultError``. This module imports nothing, so ``sync`` and ``app`` can import it without cycles.

A few low-level exceptions stay outside on purpose, because they carry no sentence for the user and each caller
turns them into one: ``vault.crypto.CryptoError`` (a failed authentication: the caller knows whether that means a
wrong passphrase or a damaged file), ``vault.jsonsafe.JsonRefused`` (a ``ValueError``: the caller names the file or
link) and ``vault.fsutil.NotARegularFile`` (an ``OSError``: handled with the other OS errors of a path). One of
them reaching the user unconverted is a bug, and is reported as one.
"""

from __future__ import annotations


class MedvaultError(Exception):
    """Base of every error medvault explains to the user; ``user_message`` is that explanation."""

    default_message = "medvault could not complete this operation."

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


class SignatureInvalid(MedvaultError):
    """A signature does not verify: what it signs was altered, forged, or signed by someone else.

    The one class for every signature refusal, so "was it a bad signature?" has one answer. What it refuses differs:
    a health card's signature refuses an import (``vault.records.errors.CardSignatureInvalid``, an
    ``ImportRejected``: the importer rolls the file back), a consent's refuses a chain change
    (``sync.errors.ConsentSignatureInvalid``, a ``ConsentRejected`` with the contract's reason, which the outbox
    records), a medvault link's refuses the link (``sync.errors.LinkSignatureInvalid``, a ``LinkInvalid``). Those
    derive from this class and from their family, and are what code raises.
    """

    default_message = "A signature does not verify, so what it signs may have been altered or forged."


class VaultError(MedvaultError):
    """Base of every error raised by ``vault``."""

    default_message = "The vault could not complete this operation."


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


class VaultRolledBack(VaultError):
    """The database is older than the vault's last saved state (or that state's record is missing or edited)."""

    default_message = ("This vault's database is older than its last saved state: it may have been replaced with "
                       "an old copy, so medvault did not open it and nothing was changed. Put back the newest copy "
                       "of the whole vault folder; if this older copy is the one you mean to use (a backup you "
                       "restored yourself), open it with --accept-older-backup.")

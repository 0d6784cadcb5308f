"""Typed errors for everything that leaves the laptop.

Each error carries ``user_message``: one plain sentence a patient or clinician can act on. It never holds PHI,
keys or a traceback; ``app`` shows it as is and the CLI prints it on one line.
"""

from __future__ import annotations

from vault.errors import MedvaultError, SignatureInvalid


class SyncError(MedvaultError):
    """Base of every error raised by ``sync`` (``MedvaultError`` is the base of all of medvault's, vault's too)."""

    default_message = "Something went wrong while sharing or receiving records."


# --- content addressing and storage backends (sync/cid.py, sync/ipfs_*.py, sync/gateway.py) ---------------


class ContentUnavailable(SyncError):
    """The file is not held by the store or node asked, or it did not arrive in time."""

    default_message = "The shared file could not be found; it may have been revoked or removed."


class StorageNodeUnavailable(SyncError):
    """The IPFS node is down, refused the request, or did not answer within the timeout."""

    default_message = "The IPFS node could not be reached; check that it is running."


class ShareFileTooLarge(SyncError):
    """A file to publish, or one read back from a store, is larger than the limit set for it."""

    default_message = "The shared file is larger than medvault allows, so it was refused."


# CidMismatch (bytes that do not hash to the CID naming them) is defined once, in the sharing section below,
# and raised by this section's modules too.


class InvalidCid(SyncError):
    """Text that should be a CID is not one medvault accepts."""

    default_message = "The link does not contain a valid content identifier."


# --- Sharing: links, JWE, QR codes, fetching, receiving (sync/links.py, jwe.py, qr.py, fetch.py, receiver.py) ---

class LinkInvalid(SyncError):
    """The link text is not a well-formed share, card or return link."""

    default_message = "This link is damaged or incomplete."


class LinkSignatureInvalid(LinkInvalid, SignatureInvalid):
    """A medvault link whose signature does not verify: altered after signing, or forged."""

    default_message = "This link's signature does not match its sender, so it may have been altered or forged."


class LinkUnsupported(SyncError):
    """Well formed, but a scheme, version or content type this app does not handle."""

    default_message = "This kind of link is not supported by this version of medvault."


class LinkExpired(SyncError):
    default_message = "This share has expired; ask the sender for a new one."


class LinkInactive(SyncError):
    """The server says the link no longer exists: revoked, expired, or locked after too many passcode attempts."""

    default_message = "This share is no longer available; it may have been revoked or locked."


class ShareRevoked(SyncError):
    default_message = "The patient has revoked this share."


class ShareNotForYou(SyncError):
    """A directed share sealed to someone else's key."""

    default_message = "This share was sent to someone else and cannot be opened with your identity."


class DecryptionFailed(SyncError):
    default_message = "The shared file could not be decrypted: the key is wrong or the file was altered."


class ContentTooLarge(DecryptionFailed):
    """Compressed content that inflates beyond the allowed size (a zip bomb, or simply too much)."""

    default_message = "The shared file expands to more data than medvault accepts."


class ContentInvalid(SyncError):
    """Decrypted fine, but the content is not what the link promised (not JSON, not a FHIR Bundle, ...)."""

    default_message = "The shared file decrypted but does not contain valid health records."


class CidMismatch(SyncError):
    default_message = "The file received does not match the one that was shared, so it was refused."


class FetchFailed(SyncError):
    default_message = "The shared file could not be downloaded."


class FetchTimeout(FetchFailed):
    default_message = "The server holding the share did not answer in time."


class FetchTooLarge(FetchFailed):
    default_message = "The server sent more data than a share may contain, so the download was stopped."


class FetchRefused(SyncError):
    """A fetch medvault will not make or an answer it will not accept (plain http, redirect elsewhere, HTML)."""

    default_message = "medvault refused to download this share because the address or answer is unsafe."


class PasscodeRequired(SyncError):
    default_message = "This share is protected by a passcode; enter it to open the share."


class PasscodeWrong(SyncError):
    default_message = "The passcode is wrong."

    def __init__(self, user_message: str | None = None, remaining_attempts: int | None = None) -> None:
        self.remaining_attempts = remaining_attempts
        if user_message is None and remaining_attempts is not None:
            user_message = f"The passcode is wrong; {remaining_attempts} attempts remain."
        super().__init__(user_message)


class PasscodeLocked(PasscodeWrong):
    default_message = "Too many wrong passcodes: this share is now locked; ask the sender for a new one."


class QrNotFound(SyncError):
    default_message = "No readable QR code was found in this image."


class QrUnreadable(QrNotFound):
    """The file is not an image at all (or not one this app can read)."""

    default_message = "This file is not an image medvault can read."


class QrNotWritten(SyncError):
    """The QR image could not be written where asked (a missing folder, no permission, or a link or folder there)."""

    default_message = "The QR image could not be written there; check that the folder exists and is writable."

# --- end of sharing section ---


# ---- consent chain (issue 5: sync/chain.py, sync/outbox.py, sync/consent_sign.py) ----------------------------------


class ChainError(SyncError):
    """Base of the consent-chain errors."""

    default_message = "The consent network could not complete the request."


class ChainUnavailable(ChainError):
    """The node is down, refused the connection or did not answer in time. The outbox keeps the operation."""

    default_message = "The consent network cannot be reached right now; the change is saved and will be sent later."


class ChainMismatch(ChainError):
    """Wrong chain id, or no (or not our) contract at the configured address: a configuration problem."""

    default_message = "The consent network settings do not match this network; check the chain settings."


class ConsentRejected(ChainError):
    """The contract refused the operation (a revert); ``reason`` is the contract's error name."""

    default_message = "The consent network refused this change."

    def __init__(self, user_message: str | None = None, reason: str = "") -> None:
        super().__init__(user_message)
        self.reason = reason


class NotAMember(ConsentRejected):
    """The sending account is not a member of the consortium."""

    default_message = "This account is not allowed to write to the consent network; ask its administrator."


class ConsentSignatureInvalid(ConsentRejected, SignatureInvalid):
    """A consent or access signature is forged, malformed, expired or was made by the wrong person."""

    default_message = "The signature on this consent is not valid."

"""Typed errors of record import, query and export.

Each carries one plain sentence (``user_message``) naming what was wrong. They never hold PHI: no patient names,
no record content, no file names (file names often contain the patient's name). Positions (entry 12, line 40),
resource type names and FHIR element paths are fine: they describe the shape, not the person.
"""

from __future__ import annotations

from vault.errors import SignatureInvalid, VaultError


def shown_name(part: object, limit: int = 64) -> str:
    """An element name or path from a file as it may appear in a sentence: a control character (a line break, a
    terminal escape) or a name of thousands of characters is not echoed as it is."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(part))
    return text if len(text) <= limit else text[:limit - 3] + "..."


class RecordsError(VaultError):
    default_message = "The records could not be processed; the vault is unchanged."


class ImportRejected(RecordsError):
    """A file was refused as a whole; nothing from it was stored."""

    default_message = "The file was not imported; the vault is unchanged."

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason or self.default_message
        super().__init__(self.reason)


class FileTooLarge(ImportRejected):
    default_message = "The file is larger than medvault imports; nothing was imported."


class NotFhir(ImportRejected):
    default_message = "The file is not FHIR JSON, NDJSON, a SMART Health Card, a PDF or an image; nothing was imported."


class WouldReplace(ImportRejected):
    """A clinician's write-back may add records, never replace one the vault already holds."""

    default_message = ("This note would replace a record already in your vault, which a note someone sent you may "
                       "not do; nothing was imported.")


class MalformedJson(NotFhir):
    default_message = "The file is not valid JSON; nothing was imported."


class NestingTooDeep(NotFhir):
    default_message = "The file's JSON is nested too deeply to be a medical record; nothing was imported."


class UnknownResourceType(ImportRejected):
    default_message = "The file holds a resource type that FHIR R4 does not define; nothing was imported."


class ResourceInvalid(ImportRejected):
    default_message = "A resource in the file does not have the shape FHIR R4 requires; nothing was imported."


class VersionNotConvertible(ImportRejected):
    """A file in an older FHIR version (STU3, DSTU2) that medvault cannot turn into R4: mixed versions, a version it
    cannot tell, or only resource types it has no map for."""

    default_message = "The file is in an older FHIR version that medvault cannot convert to R4; nothing was imported."


class DanglingReference(ImportRejected):
    default_message = ("The file refers to records that are neither in it nor in the vault; import the files they "
                       "are in together with it. Nothing was imported.")


class CardSignatureInvalid(ImportRejected, SignatureInvalid):
    """A SMART Health Card whose signature does not verify (``vault.errors.SignatureInvalid`` says why two)."""

    default_message = "The health card's signature does not verify, so it may have been altered; nothing was imported."


class CardInvalid(ImportRejected):
    default_message = "The SMART Health Card is malformed; nothing was imported."


class DocumentInvalid(ImportRejected):
    default_message = "The document is not the kind of file its name says; nothing was imported."


class UnsupportedInput(ImportRejected):
    default_message = "medvault cannot import this kind of input here; nothing was imported."


class ImportCancelled(RecordsError):
    default_message = "The import was cancelled; nothing from that file was stored."


class IssuerInvalid(RecordsError):
    default_message = "That file is not a usable issuer key set (JWKS with ES256 signing keys); no issuer was added."


class ExportFailed(RecordsError):
    default_message = "The export could not be written; no file was created."


class OtherPerson(ImportRejected):
    """The file's Patient is not the vault's person (nor anyone kept in it). Never names the person: no PHI."""

    default_message = ("This file is about someone other than the person this vault belongs to, so nothing was "
                       "imported.")


class PersonNotFound(RecordsError):
    default_message = "There is no such person in this vault; 'medvault persons' lists them."

"""The vault header: the one small file that turns a passphrase or a recovery key into the vault key.

It holds no secret in clear: the format version, the vault id, the Argon2id parameters and salt, and the vault key
wrapped twice with XChaCha20-Poly1305: under the passphrase, and for the recovery key either under a key derived
from it (format 1) or sealed to an X25519 public key the recovery key derives (format 2), which lets a passphrase
change seal a new vault key for the recovery key without knowing it. Each wrapping authenticates the header fields
that matter for it (format, vault id, slot, KDF parameters, public keys) as associated data, so editing any of them
makes unwrapping fail instead of silently weakening the vault; in particular a format-2 header cannot be turned
back into format 1 (which has no state file) without breaking its passphrase slot. A SHA-256 checksum of the whole
body tells accidental damage or editing apart from a wrong passphrase. The byte format is in
``docs/vault-format.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from vault import crypto, jsonsafe
from vault.errors import FormatTooNew, HeaderInvalid, StorageUnavailable, VaultNotFound
from vault.fsutil import NotARegularFile, atomic_write, read_private

HEADER_NAME = "vault.header"
MAGIC = "medvault-vault-header"
FORMAT_VERSION = 2
# Format 2 (a) has a state file beside the database (``vault.state``) that must be present, and (b) may carry the
# recovery slot sealed to a public key. A format-1 header is moved to format 2 at its first passphrase unlock; its
# symmetric recovery slot is carried over unchanged until the recovery key is next entered or replaced.
STATE_FORMAT = 2
RECOVERY_SYMMETRIC = "blake2b-keyed"
RECOVERY_SEALED = "x25519-sealed"
# SQLCipher's page size must be known before the database can be read at all, so it is kept here. Vaults made
# before the field existed use SQLCipher's default; the field is written only when it differs from that, so their
# headers keep their exact bytes until the database is moved to the larger pages.
LEGACY_DB_PAGE_SIZE = 4096
DB_PAGE_SIZES = (4096, 65536)

# Parameters outside these bounds are refused before running the KDF: a header asking for 1 TiB of memory is an
# attack (or damage), not a setting.
_OPS_RANGE = (1, 20)
_MEM_RANGE = (8 * 1024 * 1024, 4 * 1024 * 1024 * 1024)
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class KdfProfile:
    name: str
    opslimit: int
    memlimit: int


# The default meets the design's floor (Argon2id, 256 MiB, 3 passes). The test profile exists so the test suite can
# create hundreds of vaults; its name says what it is, and nothing selects it unless asked by name.
KDF_PROFILES = {
    "default": KdfProfile("default", 3, 256 * 1024 * 1024),
    "strong": KdfProfile("strong", 4, 1024 * 1024 * 1024),
    "test-insecure": KdfProfile("test-insecure", 1, 8 * 1024 * 1024),
}


@dataclass(frozen=True)
class KdfParams:
    profile: str
    opslimit: int
    memlimit: int
    salt: bytes

    def to_json(self) -> dict:
        return {"alg": "argon2id13", "profile": self.profile, "opslimit": self.opslimit,
                "memlimit": self.memlimit, "salt": _b64(self.salt)}


@dataclass(frozen=True)
class Header:
    vault_id: str
    kdf: KdfParams
    passphrase_slot: bytes
    recovery_salt: bytes
    recovery_slot: bytes
    format_version: int = FORMAT_VERSION
    db_page_size: int = LEGACY_DB_PAGE_SIZE
    recovery_kind: str = RECOVERY_SYMMETRIC
    recovery_public: bytes = b""        # sealed slot only: the X25519 public key the recovery key derives
    recovery_ephemeral: bytes = b""     # sealed slot only: the sender's one-time public key

    @property
    def requires_state(self) -> bool:
        """Whether ``vault.state`` belongs to this vault: missing, it was deleted, and the vault is refused."""
        return self.format_version >= STATE_FORMAT

    # --- key wrapping -----------------------------------------------------------------------------------------
    def _aad(self, slot: str, ephemeral: bytes | None = None) -> bytes:
        fields: dict = {"magic": MAGIC, "format": self.format_version, "vault_id": self.vault_id, "slot": slot}
        if slot == "passphrase":
            fields["kdf"] = self.kdf.to_json()
        elif self.recovery_kind == RECOVERY_SYMMETRIC:
            # a format-1 slot carried into format 2 keeps the bytes it was sealed with
            fields.update(format=1, salt=_b64(self.recovery_salt))
        else:
            fields.update(kdf=RECOVERY_SEALED, salt=_b64(self.recovery_salt), public=_b64(self.recovery_public),
                          ephemeral=_b64(self.recovery_ephemeral if ephemeral is None else ephemeral))
        return _canonical(fields)

    def unwrap_with_kek(self, kek: bytes, slot: str) -> bytes:
        """The passphrase slot (or a format-1 recovery slot) opened with a key; crypto.CryptoError when wrong."""
        sealed = self.passphrase_slot if slot == "passphrase" else self.recovery_slot
        return crypto.open_with_key(kek, sealed, self._aad(slot))

    def unwrap_with_recovery(self, secret: bytes) -> bytes:
        """The vault key from the recovery key's secret, whichever kind the slot is; crypto.CryptoError when wrong."""
        if self.recovery_kind == RECOVERY_SYMMETRIC:
            return self.unwrap_with_kek(recovery_kek(secret, self.recovery_salt), "recovery")
        private, public = recovery_keypair(secret, self.recovery_salt)
        if not crypto.mac_equal(public, self.recovery_public):
            raise crypto.CryptoError("not this vault's recovery key")
        return crypto.x25519_open(private, self.recovery_ephemeral, self.recovery_slot, self._aad("recovery"))

    def with_passphrase_kek(self, kek: bytes, vault_key: bytes, kdf: KdfParams) -> "Header":
        draft = replace(self, kdf=kdf, passphrase_slot=b"")
        return replace(draft, passphrase_slot=crypto.seal_with_key(kek, vault_key, draft._aad("passphrase")))

    def with_recovery_secret(self, secret: bytes, vault_key: bytes) -> "Header":
        """A sealed recovery slot for a recovery key (new, or just entered), with a fresh salt."""
        if self.format_version < FORMAT_VERSION:
            # the passphrase slot of a format-1 header is sealed under format 1: only a passphrase rewrap moves it
            raise ValueError("move the header to format 2 with the passphrase first")
        salt = crypto.random_bytes(16)
        _private, public = recovery_keypair(secret, salt)
        draft = replace(self, recovery_kind=RECOVERY_SEALED, recovery_salt=salt, recovery_public=public)
        return draft.with_recovery_resealed(vault_key)

    def with_recovery_resealed(self, vault_key: bytes) -> "Header":
        """The (new) vault key sealed again to the recovery key's public key: no recovery key needed."""
        if self.recovery_kind != RECOVERY_SEALED:
            raise ValueError("a format-1 recovery slot cannot be sealed again without its recovery key")
        ephemeral, sealed = crypto.x25519_seal(self.recovery_public, vault_key,
                                               lambda e: self._aad("recovery", ephemeral=e))
        return replace(self, recovery_ephemeral=ephemeral, recovery_slot=sealed)

    # --- serialisation ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        body = {
            "magic": MAGIC,
            "format": self.format_version,
            "vault_id": self.vault_id,
            "kdf": self.kdf.to_json(),
            "slots": {
                "passphrase": {"wrapped": _b64(self.passphrase_slot)},
                "recovery": {"kdf": self.recovery_kind, "salt": _b64(self.recovery_salt),
                             "wrapped": _b64(self.recovery_slot)},
            },
        }
        if self.recovery_kind == RECOVERY_SEALED:
            body["slots"]["recovery"].update(public=_b64(self.recovery_public),
                                             ephemeral=_b64(self.recovery_ephemeral))
        if self.db_page_size != LEGACY_DB_PAGE_SIZE:
            body["database"] = {"cipher_page_size": self.db_page_size}
        body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
        return json.dumps(body, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Header":
        if len(raw) > MAX_HEADER_BYTES:
            raise HeaderInvalid()
        try:
            body = jsonsafe.loads(raw.decode("utf-8"), max_depth=16)  # a deep nest would overflow the parser
            if not isinstance(body, dict) or body.get("magic") != MAGIC:
                raise HeaderInvalid("This is not a medvault vault header; choose the folder that holds your vault.")
            version = body.get("format")
            if not isinstance(version, int) or version < 1:
                raise HeaderInvalid()
            if version > FORMAT_VERSION:
                raise FormatTooNew()
            checksum = body.pop("checksum", None)
            if checksum != hashlib.sha256(_canonical(body)).hexdigest():
                raise HeaderInvalid()
            kdf = body["kdf"]
            if kdf.get("alg") != "argon2id13":
                raise HeaderInvalid()
            params = KdfParams(str(kdf["profile"]), int(kdf["opslimit"]), int(kdf["memlimit"]),
                               _unb64(kdf["salt"]))
            if not (_OPS_RANGE[0] <= params.opslimit <= _OPS_RANGE[1]
                    and _MEM_RANGE[0] <= params.memlimit <= _MEM_RANGE[1]
                    and len(params.salt) == crypto.SALT_BYTES):
                raise HeaderInvalid()
            page_size = body.get("database", {}).get("cipher_page_size", LEGACY_DB_PAGE_SIZE)
            if type(page_size) is not int or page_size not in DB_PAGE_SIZES:
                raise HeaderInvalid()
            slots = body["slots"]
            recovery = slots["recovery"]
            kind = recovery.get("kdf", RECOVERY_SYMMETRIC)
            if kind not in (RECOVERY_SYMMETRIC, RECOVERY_SEALED) or (version == 1 and kind != RECOVERY_SYMMETRIC):
                raise HeaderInvalid()
            public = _unb64(recovery["public"]) if kind == RECOVERY_SEALED else b""
            ephemeral = _unb64(recovery["ephemeral"]) if kind == RECOVERY_SEALED else b""
            if kind == RECOVERY_SEALED and (len(public) != 32 or len(ephemeral) != 32):
                raise HeaderInvalid()
            return cls(vault_id=str(body["vault_id"]), kdf=params,
                       passphrase_slot=_unb64(slots["passphrase"]["wrapped"]),
                       recovery_salt=_unb64(recovery["salt"]),
                       recovery_slot=_unb64(recovery["wrapped"]), format_version=version,
                       db_page_size=page_size, recovery_kind=kind, recovery_public=public,
                       recovery_ephemeral=ephemeral)
        except (HeaderInvalid, FormatTooNew):
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise HeaderInvalid() from None


def new_kdf_params(profile_name: str) -> KdfParams:
    profile = KDF_PROFILES[profile_name]
    return KdfParams(profile.name, profile.opslimit, profile.memlimit, crypto.random_bytes(crypto.SALT_BYTES))


def passphrase_kek(passphrase: str, params: KdfParams) -> bytes:
    return crypto.argon2id(passphrase.encode("utf-8"), params.salt, params.opslimit, params.memlimit)


def recovery_kek(secret: bytes, salt: bytes) -> bytes:
    return crypto.stretch_high_entropy(secret, salt, "recovery-kek")


def recovery_keypair(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
    return crypto.x25519_keypair(crypto.stretch_high_entropy(secret, salt, "recovery-x25519"))


def read_header(folder: Path) -> Header:
    path = Path(folder) / HEADER_NAME
    try:
        raw = read_private(path, MAX_HEADER_BYTES + 1)  # one byte over the limit is enough to refuse
    except FileNotFoundError:
        raise VaultNotFound() from None
    except NotARegularFile:
        raise HeaderInvalid("The vault header is a link or a folder, not a file; medvault opens only its own "
                            "files. Put the vault's real header file back in the vault folder.") from None
    except OSError as exc:
        raise StorageUnavailable(f"medvault could not read the vault header ({os.strerror(exc.errno or 0)}); "
                                 "check that the vault folder is readable.") from None
    return Header.from_bytes(raw)


def write_header(folder: Path, header: Header) -> None:
    atomic_write(Path(folder) / HEADER_NAME, header.to_bytes())


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)

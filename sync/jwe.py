"""SMART Health Links JWE: compact serialization, ``alg: dir``, ``enc: A256GCM``, optional ``zip: DEF``.

This is the only module that imports ``joserfc``. The SHL specification fixes the algorithms, so nothing here is
negotiable by the sender: a file whose header names any other ``alg``/``enc``/``zip`` is refused before any
decryption is attempted.

Bounds are ours, not the library's: joserfc's defaults (64 KiB of ciphertext, 250 KiB inflated) are too small for a
real patient record, and an unbounded inflate would let a few kilobytes of hostile ciphertext expand to gigabytes,
so both limits are explicit parameters and inflation stops as soon as it passes the limit.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

from joserfc import jwe as _jwe
from joserfc.errors import ExceededSizeError, JoseError
from joserfc.jwk import OctKey
from joserfc._rfc7516.models import JWEZipModel

from sync.errors import ContentTooLarge, DecryptionFailed, LinkUnsupported
from vault import jsonsafe
from vault.crypto import random_bytes

KEY_BYTES = 32
CTY_FHIR = "application/fhir+json"
CTY_SHC = "application/smart-health-card"
CTY_API_ACCESS = "application/smart-api-access"

# A large Synthea patient is about 4 MB of JSON; these leave an order of magnitude of room without letting one share
# exhaust memory.
DEFAULT_MAX_COMPACT = 64 * 1024 * 1024
DEFAULT_MAX_PLAINTEXT = 64 * 1024 * 1024

_ALLOWED_HEADER = {"alg", "enc", "cty", "zip", "kid"}
# zlib level for zip: DEF. Level 1 is several times faster than the default 6 and about 40% larger here (a Synthea
# patient: 10 ms and 195 KB instead of 17 ms and 137 KB), which a link's file can afford.
DEFAULT_LEVEL = 1


@dataclass(frozen=True)
class Decrypted:
    plaintext: bytes
    cty: str | None
    header: dict


def new_key() -> bytes:
    """A fresh 32-byte content key: one per share, never reused."""
    return random_bytes(KEY_BYTES)


class _BoundedDeflate(JWEZipModel):
    """Raw DEFLATE (RFC 1951) as JWE ``zip: DEF`` requires, inflating at most ``max_size`` bytes."""

    name = "DEF"
    description = "DEFLATE, bounded"

    def __init__(self, max_size: int, level: int = DEFAULT_LEVEL) -> None:
        self.max_size = max_size
        self.level = level

    def compress(self, s: bytes) -> bytes:
        c = zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS)
        return c.compress(s) + c.flush()

    def decompress(self, s: bytes) -> bytes:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = d.decompress(s, self.max_size + 1)
        except zlib.error as exc:
            raise DecryptionFailed("The shared file decrypted but its compressed content is damaged.") from exc
        if len(out) > self.max_size or d.unconsumed_tail:
            raise ContentTooLarge()
        if not d.eof:
            raise DecryptionFailed("The shared file decrypted but its compressed content is cut short.")
        return out


class _ShlRegistry(_jwe.JWERegistry):
    def __init__(self, max_compact: int, max_plaintext: int, level: int = DEFAULT_LEVEL) -> None:
        super().__init__(algorithms=["dir", "A256GCM", "DEF"])
        self.max_ciphertext_length = max_compact
        self.max_aad_length = max_compact
        self._zip = _BoundedDeflate(max_plaintext, level)

    def get_zip(self, name: str) -> JWEZipModel:
        self._check_algorithm(name, self.algorithms["zip"])
        return self._zip


def encrypt(plaintext: bytes, *, cty: str, key: bytes | None = None, compress: bool = True,
            level: int = DEFAULT_LEVEL, kid: str | None = None) -> tuple[str, bytes]:
    """Encrypt ``plaintext`` for an SHL. Returns ``(jwe_compact, key)``; the key is generated when not given.

    ``level`` is the zlib level for ``zip: DEF``.
    """
    if key is None:
        key = new_key()
    if len(key) != KEY_BYTES:
        raise ValueError("SHL keys are exactly 32 bytes")
    header: dict = {"alg": "dir", "enc": "A256GCM", "cty": cty}
    if compress:
        header["zip"] = "DEF"
    if kid is not None:
        header["kid"] = kid
    registry = _ShlRegistry(max(len(plaintext) * 2 + 1024, 1024), DEFAULT_MAX_PLAINTEXT, level)
    token = _jwe.encrypt_compact(header, plaintext, OctKey.import_key(key), registry=registry)
    return token, key


def encrypt_bundle(bundle: dict, *, key: bytes | None = None, level: int = DEFAULT_LEVEL) -> tuple[bytes, bytes]:
    """A FHIR resource (normally the share Bundle) as an SHL file: ``(ascii_jwe_bytes, key)``, ready to publish.

    The JSON is encoded once, straight to UTF-8 bytes; DEFLATE makes the only other full-size pass over it, and
    everything after that (AES-GCM, base64url) works on the compressed bytes."""
    token, key = encrypt(jsonsafe.dumps(bundle), cty=CTY_FHIR, key=key, compress=True, level=level)
    return token.encode("ascii"), key


def _header_of(token: str) -> dict:
    head = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        header = jsonsafe.loads(raw, max_depth=8)  # a real header is one flat object
    except ValueError as exc:
        raise DecryptionFailed("The shared file is not an encrypted SMART Health Link file.") from exc
    if not isinstance(header, dict):
        raise DecryptionFailed("The shared file is not an encrypted SMART Health Link file.")
    return header


def decrypt(token: str | bytes, key: bytes, *, max_compact: int = DEFAULT_MAX_COMPACT,
            max_plaintext: int = DEFAULT_MAX_PLAINTEXT) -> Decrypted:
    """Decrypt an SHL JWE compact serialization; every failure is a typed ``SyncError``."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecryptionFailed("The shared file is not an encrypted SMART Health Link file.") from exc
    token = token.strip()
    if len(token) > max_compact:
        raise ContentTooLarge("The shared file is larger than medvault accepts.")
    if token.count(".") != 4:
        raise DecryptionFailed("The shared file is not an encrypted SMART Health Link file.")
    header = _header_of(token)
    if header.get("alg") != "dir" or header.get("enc") != "A256GCM" or header.get("zip", "DEF") != "DEF":
        raise LinkUnsupported("The shared file uses an encryption method SMART Health Links do not allow.")
    if not set(header) <= _ALLOWED_HEADER:
        # ``crit`` or unknown parameters would change how the file must be read; refuse rather than guess.
        raise LinkUnsupported("The shared file's encryption header has fields medvault does not understand.")
    if len(key) != KEY_BYTES:
        raise DecryptionFailed("The share key is not 32 bytes long, so the link is damaged.")
    registry = _ShlRegistry(max_compact, max_plaintext)
    try:
        obj = _jwe.decrypt_compact(token, OctKey.import_key(key), registry=registry)
    except (ContentTooLarge, DecryptionFailed):
        raise
    except ExceededSizeError as exc:
        raise ContentTooLarge() from exc
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise DecryptionFailed() from exc
    return Decrypted(plaintext=obj.plaintext, cty=header.get("cty"), header=dict(obj.protected))

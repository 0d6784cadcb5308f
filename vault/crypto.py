"""All of medvault's symmetric and Ed25519/X25519 cryptography, in one small module.

This is the only module that imports PyNaCl (libsodium). Everything else asks for an operation by purpose, in the
spirit of magic-wormhole: every derived key names what it is for, so a key made for one purpose can never be
confused with another.

Python cannot reliably wipe memory (``bytes`` are immutable and may be copied by the interpreter), so keys held here
live as long as the objects holding them; ``docs/threat-model.md`` says so plainly.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
import hashlib

import nacl.bindings as _sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.public
import nacl.signing
import nacl.utils

KEY_BYTES = 32
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES  # 16
_AEAD_NONCE_BYTES = _sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24: random nonces never collide
_SUBKEY_PERSON = b"medvault.subkey1"  # BLAKE2b personalisation: exactly 16 bytes, versioned


class CryptoError(Exception):
    """An authentication check failed: wrong key, or data that was altered."""


def random_bytes(n: int) -> bytes:
    return nacl.utils.random(n)


def argon2id(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Stretch a passphrase into a 32-byte key-encryption key."""
    return nacl.pwhash.argon2id.kdf(KEY_BYTES, passphrase, salt, opslimit=opslimit, memlimit=memlimit)


def subkey(root: bytes, purpose: str) -> bytes:
    """Derive an independent 32-byte key for one named purpose (keyed BLAKE2b, a PRF)."""
    if len(root) != KEY_BYTES:
        raise ValueError("root key must be 32 bytes")
    return nacl.hash.blake2b(purpose.encode("utf-8"), digest_size=KEY_BYTES, key=root,
                             person=_SUBKEY_PERSON, encoder=nacl.encoding.RawEncoder)


def stretch_high_entropy(secret: bytes, salt: bytes, purpose: str) -> bytes:
    """Key from a secret that is already random (a recovery key): keyed, salted BLAKE2b, no slow KDF needed."""
    if len(salt) != 16:
        raise ValueError("salt must be 16 bytes")
    return nacl.hash.blake2b(purpose.encode("utf-8"), digest_size=KEY_BYTES, key=secret, salt=salt,
                             person=_SUBKEY_PERSON, encoder=nacl.encoding.RawEncoder)


def seal_with_key(key: bytes, plaintext: bytes, associated: bytes = b"") -> bytes:
    """XChaCha20-Poly1305: returns nonce || ciphertext. ``associated`` is authenticated, not encrypted."""
    nonce = random_bytes(_AEAD_NONCE_BYTES)
    return nonce + _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, key)


def open_with_key(key: bytes, sealed: bytes, associated: bytes = b"") -> bytes:
    if len(sealed) < _AEAD_NONCE_BYTES + 16:
        raise CryptoError("ciphertext too short")
    nonce, ct = sealed[:_AEAD_NONCE_BYTES], sealed[_AEAD_NONCE_BYTES:]
    try:
        return _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, associated, nonce, key)
    except nacl.exceptions.CryptoError as exc:
        raise CryptoError("authentication failed") from exc


def mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def mac_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# --- Ed25519 / X25519 -------------------------------------------------------------------------------------------

def ed25519_new_seed() -> bytes:
    return random_bytes(32)


def ed25519_public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(message).signature


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False


def x25519_public_from_ed25519(public: bytes) -> bytes:
    """The Montgomery form of an Ed25519 public key, so one identity key can also receive sealed boxes."""
    return _sodium.crypto_sign_ed25519_pk_to_curve25519(public)


def x25519_private_from_ed25519(seed: bytes) -> bytes:
    sk = _sodium.crypto_sign_seed_keypair(seed)[1]
    return _sodium.crypto_sign_ed25519_sk_to_curve25519(sk)


def seal_to(x25519_public: bytes, plaintext: bytes) -> bytes:
    """Anonymous sealed box: only the holder of the matching X25519 private key can open it."""
    return nacl.public.SealedBox(nacl.public.PublicKey(x25519_public)).encrypt(plaintext)


def unseal(x25519_private: bytes, sealed: bytes) -> bytes:
    try:
        return nacl.public.SealedBox(nacl.public.PrivateKey(x25519_private)).decrypt(sealed)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise CryptoError("sealed box could not be opened") from exc


# --- the recovery slot sealed to a public key (header format 2) -------------------------------------------------
# The recovery key derives an X25519 key pair; the header keeps only the public half. Sealing the vault key to it
# needs no secret, so a passphrase change can re-seal a new vault key without asking for the recovery key.

def x25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """(private, public) from 32 bytes that are already a uniformly random secret."""
    if len(seed) != KEY_BYTES:
        raise ValueError("seed must be 32 bytes")
    return seed, _sodium.crypto_scalarmult_base(seed)


def _sealing_key(shared: bytes, ephemeral: bytes, public: bytes) -> bytes:
    return nacl.hash.blake2b(b"medvault/x25519-seal/v1" + ephemeral + public, digest_size=KEY_BYTES, key=shared,
                             person=_SUBKEY_PERSON, encoder=nacl.encoding.RawEncoder)


def _shared(private: bytes, public: bytes) -> bytes:
    try:
        return _sodium.crypto_scalarmult(private, public)
    except (RuntimeError, ValueError, TypeError, nacl.exceptions.CryptoError) as exc:
        raise CryptoError("not a usable public key") from exc   # libsodium refuses points of small order


def x25519_seal(public: bytes, plaintext: bytes, associated: Callable[[bytes], bytes]) -> tuple[bytes, bytes]:
    """Seal to ``public`` with a fresh ephemeral key; returns (ephemeral public key, nonce || ciphertext).

    ``associated(ephemeral)`` gives the associated data, so the caller can authenticate the ephemeral key too."""
    ephemeral_private = random_bytes(KEY_BYTES)
    ephemeral = _sodium.crypto_scalarmult_base(ephemeral_private)
    key = _sealing_key(_shared(ephemeral_private, public), ephemeral, public)
    return ephemeral, seal_with_key(key, plaintext, associated(ephemeral))


def x25519_open(private: bytes, ephemeral: bytes, sealed: bytes, associated: bytes) -> bytes:
    public = _sodium.crypto_scalarmult_base(private)
    return open_with_key(_sealing_key(_shared(private, ephemeral), ephemeral, public), sealed, associated)

"""A vault's identity: an Ed25519 key (its did:key), the X25519 key derived from it, and a secp256k1 account.

The Ed25519 key signs medvault links and cards; its X25519 form receives sealed share keys; the secp256k1 account
signs consents as EIP-712 typed data for the chain. Private halves exist only inside the encrypted database; this
module turns them into public forms. ``eth_keys`` (secp256k1 + Keccak) is imported here and nowhere else in vault.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys import keys as _eth_keys

from vault import crypto
from vault.multiformats import b58encode, varint

_ED25519_PUB = varint(0xED)
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def did_key_ed25519(public: bytes) -> str:
    return "did:key:z" + b58encode(_ED25519_PUB + public)


def new_secp256k1_private() -> bytes:
    while True:
        candidate = crypto.random_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < _SECP256K1_ORDER:
            return candidate


def eth_address(private: bytes) -> str:
    return _eth_keys.PrivateKey(private).public_key.to_checksum_address()


@dataclass(frozen=True)
class PublicIdentity:
    """What others may know about this vault's owner. No private material."""

    did: str
    ed25519_public: bytes
    x25519_public: bytes
    eth_address: str


@dataclass(frozen=True, repr=False)
class IdentityKeys:
    """Private keys, loaded from the encrypted database only while the vault is unlocked."""

    ed25519_seed: bytes
    secp256k1_private: bytes

    def __repr__(self) -> str:  # keys must never reach a log or a traceback
        return "IdentityKeys(<private>)"

    @classmethod
    def generate(cls) -> "IdentityKeys":
        return cls(crypto.ed25519_new_seed(), new_secp256k1_private())

    @property
    def public(self) -> PublicIdentity:
        ed_pub = crypto.ed25519_public(self.ed25519_seed)
        return PublicIdentity(did=did_key_ed25519(ed_pub), ed25519_public=ed_pub,
                              x25519_public=crypto.x25519_public_from_ed25519(ed_pub),
                              eth_address=eth_address(self.secp256k1_private))

    @property
    def x25519_private(self) -> bytes:
        return crypto.x25519_private_from_ed25519(self.ed25519_seed)

    def sign(self, message: bytes) -> bytes:
        return crypto.ed25519_sign(self.ed25519_seed, message)

"""EIP-712 typed data for consents and access receipts, and the consent id.

The patient signs Grant and Revoke, the clinician signs AccessReceipt; a consortium member relays the signature, so
neither needs a funded account. The types here must match ``ConsentRegistry.sol`` exactly: a test recomputes every
digest on the contract itself.

Keys are passed in by the caller as raw 32-byte secp256k1 private keys (the vault holds them); nothing here reads
keys from anywhere else or keeps them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address

from sync.errors import ConsentSignatureInvalid
from vault import jsonsafe

DOMAIN_NAME = "medvault ConsentRegistry"
DOMAIN_VERSION = "1"
ZERO_ADDRESS = "0x" + "00" * 20
# "Until revoked": the largest expiry the contract stores (uint40 seconds, the year 36812).
NO_EXPIRY = 2**40 - 1

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

TYPES: dict[str, list[dict[str, str]]] = {
    "Grant": [
        {"name": "consentId", "type": "bytes32"},
        {"name": "patient", "type": "address"},
        {"name": "grantee", "type": "address"},
        {"name": "expiresAt", "type": "uint64"},
        {"name": "scopeHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "Revoke": [
        {"name": "consentId", "type": "bytes32"},
        {"name": "patient", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "AccessReceipt": [
        {"name": "consentId", "type": "bytes32"},
        {"name": "patient", "type": "address"},
        {"name": "accessor", "type": "address"},
        {"name": "accessedAt", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
    ],
    "CancelNonces": [
        {"name": "patient", "type": "address"},
        {"name": "nonceFloor", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same FHIR Consent always hashes the same (the same bytes
    as the standard library's sorted compact form; a Consent holds no floats, where orjson's could differ)."""
    return jsonsafe.canonical(obj)


def scope_hash(fhir_consent: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical FHIR Consent JSON; the only trace of the share's scope that goes on chain."""
    return hashlib.sha256(canonical_json(fhir_consent)).digest()


def address_of(private_key: bytes) -> str:
    return Account.from_key(_check_key(private_key)).address


@dataclass(frozen=True)
class Domain:
    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@dataclass(frozen=True)
class Grant:
    consent_id: bytes
    patient: str
    grantee: str
    expires_at: int
    scope_hash: bytes
    nonce: int
    deadline: int

    primary_type = "Grant"

    def message(self) -> dict[str, Any]:
        return {
            "consentId": self.consent_id,
            "patient": to_checksum_address(self.patient),
            "grantee": to_checksum_address(self.grantee),
            "expiresAt": self.expires_at,
            "scopeHash": self.scope_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class Revoke:
    consent_id: bytes
    patient: str
    nonce: int
    deadline: int

    primary_type = "Revoke"

    def message(self) -> dict[str, Any]:
        return {
            "consentId": self.consent_id,
            "patient": to_checksum_address(self.patient),
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class AccessReceipt:
    consent_id: bytes
    # Whose consent was used: an id alone may name several patients' entries (anyone holding a link can register
    # its id under their own key), so a receipt says which one it is about.
    patient: str
    accessor: str
    accessed_at: int
    nonce: int

    primary_type = "AccessReceipt"

    def message(self) -> dict[str, Any]:
        return {
            "consentId": self.consent_id,
            "patient": to_checksum_address(self.patient),
            "accessor": to_checksum_address(self.accessor),
            "accessedAt": self.accessed_at,
            "nonce": self.nonce,
        }


@dataclass(frozen=True)
class CancelNonces:
    patient: str
    nonce_floor: int
    deadline: int

    primary_type = "CancelNonces"

    def message(self) -> dict[str, Any]:
        return {
            "patient": to_checksum_address(self.patient),
            "nonceFloor": self.nonce_floor,
            "deadline": self.deadline,
        }


Typed = Grant | Revoke | AccessReceipt | CancelNonces


@dataclass(frozen=True)
class Signature:
    """A 65-byte secp256k1 signature; ``compact()`` gives the EIP-2098 (r, vs) pair the contract takes."""

    r: bytes
    s: bytes
    v: int  # 27 or 28

    def compact(self) -> tuple[bytes, bytes]:
        vs = int.from_bytes(self.s, "big") | ((self.v - 27) << 255)
        return self.r, vs.to_bytes(32, "big")

    def to_bytes(self) -> bytes:
        return self.r + self.s + bytes([self.v])

    @classmethod
    def from_bytes(cls, raw: bytes) -> Signature:
        if len(raw) != 65:
            raise ConsentSignatureInvalid("The signature is malformed.")
        v = raw[64]
        if v in (0, 1):
            v += 27
        if v not in (27, 28):
            raise ConsentSignatureInvalid("The signature is malformed.")
        return cls(r=raw[:32], s=raw[32:64], v=v)


def full_message(domain: Domain, typed: Typed) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            typed.primary_type: TYPES[typed.primary_type],
        },
        "primaryType": typed.primary_type,
        "domain": domain.as_dict(),
        "message": typed.message(),
    }


def _signable(domain: Domain, typed: Typed) -> SignableMessage:
    return encode_typed_data(full_message=full_message(domain, typed))


def digest(domain: Domain, typed: Typed) -> bytes:
    """The 32-byte EIP-712 hash that is signed (for receipts: the value logged and used as the Merkle leaf input).

    EIP-191 defines it as keccak256(0x19 || version || header || body); ``encode_typed_data`` returns exactly those
    three parts (version 0x01, the domain separator, the struct hash), so only public API is used."""
    message = _signable(domain, typed)
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign(private_key: bytes, domain: Domain, typed: Typed) -> Signature:
    signed = Account.sign_message(_signable(domain, typed), _check_key(private_key))
    return Signature(r=signed.r.to_bytes(32, "big"), s=signed.s.to_bytes(32, "big"), v=signed.v)


def recover(domain: Domain, typed: Typed, signature: Signature) -> str:
    """The address that made ``signature``; raises ConsentSignatureInvalid for malformed or malleable signatures."""
    s = int.from_bytes(signature.s, "big")
    if not 0 < s <= _SECP256K1_N // 2:
        raise ConsentSignatureInvalid("The signature is malformed.")
    try:
        return Account.recover_message(_signable(domain, typed), vrs=(signature.v, signature.r, signature.s))
    except Exception as exc:  # eth_keys raises several unrelated types for junk input
        raise ConsentSignatureInvalid("The signature is malformed.") from exc


def verify(domain: Domain, typed: Typed, signature: Signature, expected_signer: str) -> None:
    if recover(domain, typed, signature).lower() != expected_signer.lower():
        raise ConsentSignatureInvalid()


def _check_key(private_key: bytes) -> bytes:
    if not isinstance(private_key, (bytes, bytearray)) or len(private_key) != 32:
        raise ValueError("a secp256k1 private key is 32 raw bytes")
    if not 0 < int.from_bytes(private_key, "big") < _SECP256K1_N:
        raise ValueError("not a valid secp256k1 private key")
    return bytes(private_key)


def to_jsonable(typed: Typed) -> dict[str, Any]:
    """Plain JSON form (bytes as hex) for the outbox."""
    out: dict[str, Any] = {"type": typed.primary_type}
    for key, value in asdict(typed).items():
        out[key] = "0x" + value.hex() if isinstance(value, bytes) else value
    return out


def from_jsonable(data: dict[str, Any]) -> Typed:
    cls = {"Grant": Grant, "Revoke": Revoke, "AccessReceipt": AccessReceipt, "CancelNonces": CancelNonces}[
        data["type"]
    ]
    kwargs = {}
    for key, value in data.items():
        if key == "type":
            continue
        if key in ("consent_id", "scope_hash"):
            value = bytes.fromhex(value[2:])
        kwargs[key] = value
    return cls(**kwargs)

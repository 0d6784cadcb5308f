"""Identity keys against the W3C CCG did:key test vectors in the shared fixtures' did-key folder."""

from __future__ import annotations

import base64
import json

import pytest

from sync.errors import LinkInvalid, LinkUnsupported
from sync.links import ed25519_from_did_key
from vault import crypto
from vault.identity import did_key_ed25519
from vault.multiformats import b58decode, b58encode, varint


# medvault names its owner only by an Ed25519 did:key; the X25519 form is built here to read the vectors' key
# agreement ids, which check the X25519 key medvault derives from the Ed25519 one.
def did_key_x25519(public: bytes) -> str:
    return "did:key:z" + b58encode(varint(0xEC) + public)


def _vectors(fixtures_dir, name):
    return json.loads((fixtures_dir / "did-key" / name).read_text())


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_ed25519_seeds_give_the_published_did_and_x25519_keys(fixtures_dir):
    vectors = _vectors(fixtures_dir, "ed25519-x25519.json")
    assert len(vectors) >= 5
    for did, v in vectors.items():
        seed = bytes.fromhex(v["seed"])
        public = crypto.ed25519_public(seed)
        assert did_key_ed25519(public) == did
        assert ed25519_from_did_key(did) == public
        agreement = v["keyAgreementKeyPair"]
        x_pub = crypto.x25519_public_from_ed25519(public)
        x_priv = crypto.x25519_private_from_ed25519(seed)
        if "publicKeyBase58" in agreement:
            assert b58encode(x_pub) == agreement["publicKeyBase58"]
            assert b58encode(x_priv) == agreement["privateKeyBase58"]
        else:
            assert x_pub == _b64url(agreement["publicKeyJwk"]["x"])
            assert x_priv == _b64url(agreement["privateKeyJwk"]["d"])
        assert agreement["id"].split("#")[-1] == did_key_x25519(x_pub)[len("did:key:"):]


def test_x25519_dids_decode(fixtures_dir):
    docs = _vectors(fixtures_dir, "x25519.json")["didDocument"]
    for did, doc in docs.items():
        method = doc["verificationMethod"][0]
        if "publicKeyBase58" in method:
            key = b58decode(method["publicKeyBase58"])
        else:
            key = _b64url(method["publicKeyJwk"]["x"])
        assert did_key_x25519(key) == did


def test_a_vault_identity_signs_and_seals(unlocked_vault):
    keys = unlocked_vault.identity_keys
    ident = unlocked_vault.identity
    assert ident.did.startswith("did:key:z6Mk")
    assert ident.eth_address.startswith("0x") and len(ident.eth_address) == 42
    signature = keys.sign(b"consent")
    assert crypto.ed25519_verify(ident.ed25519_public, b"consent", signature)
    assert not crypto.ed25519_verify(ident.ed25519_public, b"consenT", signature)
    sealed = crypto.seal_to(ident.x25519_public, b"share key")
    assert crypto.unseal(keys.x25519_private, sealed) == b"share key"
    assert "private" in repr(keys) and keys.ed25519_seed.hex() not in repr(keys)


def test_identity_private_keys_live_only_in_the_database(unlocked_vault):
    seed = unlocked_vault.identity_keys.ed25519_seed
    eth = unlocked_vault.identity_keys.secp256k1_private
    for path in unlocked_vault.folder.iterdir():
        data = path.read_bytes()
        assert seed not in data and eth not in data and seed.hex().encode() not in data


def test_not_an_ed25519_did_is_refused():
    with pytest.raises(LinkUnsupported):
        ed25519_from_did_key("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme")
    with pytest.raises(LinkInvalid):
        ed25519_from_did_key("did:web:example")

"""EIP-712 encoding, consent ids and Merkle proofs agree with the contract, and reject what they must."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from eth_utils import keccak

from sync import consent_sign as cs
from sync import links, merkle
from sync.errors import ConsentSignatureInvalid

from conftest import signed_grant, signed_receipt
from tests.chain.chain_support import receipt_digest_onchain


def test_consent_id_is_hmac_of_the_purpose_under_the_share_key():
    key = bytes(range(32))
    expected = hmac.new(key, b"medvault/consent/v1", hashlib.sha256).digest()
    assert links.consent_id(key) == expected
    # Known answer computed independently with openssl dgst -sha256 -mac HMAC.
    assert links.consent_id(key).hex() == "9511686547e5fe9a9e40c8bfa2fe73ec181356f5b27e4949cb9be8ef787ea061"
    assert links.consent_id(os.urandom(32)) != expected


def test_scope_hash_ignores_key_order_and_whitespace_but_not_content():
    a = {"resourceType": "Consent", "status": "active", "scope": {"text": "x"}}
    b = {"scope": {"text": "x"}, "status": "active", "resourceType": "Consent"}
    assert cs.scope_hash(a) == cs.scope_hash(b) == hashlib.sha256(cs.canonical_json(a)).digest()
    assert cs.scope_hash({**a, "status": "inactive"}) != cs.scope_hash(a)


def test_typehashes_match_the_contract(registry):
    f = registry.contract.functions
    for name, fn in [("Grant", f.GRANT_TYPEHASH), ("Revoke", f.REVOKE_TYPEHASH),
                     ("AccessReceipt", f.RECEIPT_TYPEHASH), ("CancelNonces", f.CANCEL_TYPEHASH)]:
        encoded = f"{name}(" + ",".join(f"{t['type']} {t['name']}" for t in cs.TYPES[name]) + ")"
        assert bytes(fn().call()) == keccak(text=encoded), name


def test_receipt_digest_matches_the_contract(registry, patient, clinician):
    receipt, _ = signed_receipt(registry, clinician, os.urandom(32), nonce=42, patient=patient.address)
    assert cs.digest(registry.domain, receipt) == receipt_digest_onchain(registry, receipt)


def test_sign_and_recover_round_trip(registry, patient):
    grant, sig = signed_grant(registry, patient)
    assert cs.recover(registry.domain, grant, sig) == patient.address
    cs.verify(registry.domain, grant, sig, patient.address)
    assert cs.Signature.from_bytes(sig.to_bytes()) == sig


def test_signature_for_other_chain_or_contract_does_not_verify(registry, patient):
    grant, sig = signed_grant(registry, patient)
    other_chain = cs.Domain(registry.domain.chain_id + 1, registry.address)
    other_contract = cs.Domain(registry.domain.chain_id, "0x" + "11" * 20)
    for domain in (other_chain, other_contract):
        with pytest.raises(ConsentSignatureInvalid):
            cs.verify(domain, grant, sig, patient.address)


def test_tampered_message_does_not_verify(registry, patient):
    grant, sig = signed_grant(registry, patient)
    longer = cs.Grant(**{**grant.__dict__, "expires_at": grant.expires_at + 1})
    with pytest.raises(ConsentSignatureInvalid):
        cs.verify(registry.domain, longer, sig, patient.address)


def test_malformed_and_malleable_signatures_are_refused(registry, patient):
    grant, sig = signed_grant(registry, patient)
    with pytest.raises(ConsentSignatureInvalid):
        cs.Signature.from_bytes(b"\x00" * 64)
    with pytest.raises(ConsentSignatureInvalid):
        cs.Signature.from_bytes(sig.to_bytes()[:64] + b"\x05")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(sig.s, "big")).to_bytes(32, "big")
    twin = cs.Signature(sig.r, high_s, 55 - sig.v)
    with pytest.raises(ConsentSignatureInvalid):
        cs.recover(registry.domain, grant, twin)


def test_keys_must_be_32_raw_bytes():
    with pytest.raises(ValueError):
        cs.address_of(b"\x01" * 31)
    with pytest.raises(ValueError):
        cs.address_of(b"\x00" * 32)


def test_typed_data_json_round_trip(registry, patient):
    grant, _ = signed_grant(registry, patient)
    assert cs.from_jsonable(cs.to_jsonable(grant)) == grant


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100])
def test_every_merkle_proof_verifies_and_a_wrong_leaf_does_not(size):
    digests = [os.urandom(32) for _ in range(size)]
    tree = merkle.MerkleTree.from_digests(digests)
    for i, d in enumerate(digests):
        proof = tree.proof(i)
        assert merkle.verify(tree.root, d, proof)
        assert not merkle.verify(tree.root, os.urandom(32), proof)
        if proof:
            assert not merkle.verify(tree.root, d, proof[:-1])


def test_an_inner_node_cannot_pass_as_a_leaf():
    digests = [os.urandom(32) for _ in range(4)]
    tree = merkle.MerkleTree.from_digests(digests)
    inner = tree.levels[1][0]
    assert not merkle.verify(tree.root, inner, [tree.levels[1][1]])


def test_empty_tree_is_refused():
    with pytest.raises(ValueError):
        merkle.MerkleTree.from_digests([])

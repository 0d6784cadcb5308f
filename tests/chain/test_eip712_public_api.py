"""EIP-712 through eth_account's public API only, with signatures byte-identical to those made before the change.

The pinned values were computed by the earlier code, which hashed with ``eth_account.messages._hash_eip191_message``
and recovered with ``Account._recover_hash``; the contract checks the same digests on chain in
test_chain_signing.py.
"""

from __future__ import annotations

import ast

from sync import consent_sign as cs
from tests.conftest import ROOT

KEY = bytes(range(1, 33))
DOMAIN = cs.Domain(1337, "0x" + "ab" * 20)
ADDRESS = "0x6370eF2f4Db3611D657b90667De398a2Cc2a370C"
PINNED = [
    (cs.CancelNonces(patient=ADDRESS, nonce_floor=7, deadline=1_900_000_000),
     "00eb202a5e26ab90c90ed782808e7255fe7b9fe721b6e5c66abf6dfdc15523a3",
     "34cffff17fdbe87607ddd94e94cdf0dce6b6cba8d05f92a67cff83f80ce772ca0d6e51d34911afb71bdef2dcd5094dcc8a286295658454bf"
     "f9e68377c01fc8051b"),
    (cs.Revoke(consent_id=bytes(range(32)), patient=ADDRESS, nonce=3, deadline=1_900_000_000),
     "08849a32bd9005a999cf18ba0e7f3709776f7d8de1755ee409f4f566de6d24e5",
     "9ec14275b9c309b9e0852c92b14a61fe0db6c79a4361366df60700806dc2df215b4ba00b7e1470bbc06f1a7bae80476e628159fb7099f7b4"
     "23766b3516b54c301b"),
]


def test_digests_and_signatures_are_those_made_before():
    assert cs.address_of(KEY) == ADDRESS
    for typed, digest, signature in PINNED:
        assert cs.digest(DOMAIN, typed).hex() == digest, typed.primary_type
        made = cs.sign(KEY, DOMAIN, typed)
        assert made.to_bytes().hex() == signature, typed.primary_type
        assert cs.recover(DOMAIN, typed, made) == ADDRESS


def _private_uses(tree: ast.AST) -> list[str]:
    """Underscored names taken from the Ethereum libraries: imports of them, and attributes of their objects."""
    eth_names: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("eth_", "web3")):
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(node.module)
            for alias in node.names:
                eth_names.add(alias.asname or alias.name)
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(("eth_", "web3")):
                    eth_names.add((alias.asname or alias.name).split(".")[0])
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in eth_names
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_eth_account_or_web3_calls():
    offenders = {}
    for package in ("vault", "sync", "app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            uses = _private_uses(ast.parse(path.read_text(encoding="utf-8")))
            if uses:
                offenders[str(path.relative_to(ROOT))] = uses
    assert offenders == {}


def test_the_check_sees_what_the_earlier_code_did():
    earlier = ("from eth_account import Account\n"
               "def digest(m):\n"
               "    from eth_account.messages import _hash_eip191_message\n"
               "    return _hash_eip191_message(m), Account._recover_hash(b'', vrs=(27, 1, 1))\n")
    assert sorted(_private_uses(ast.parse(earlier))) == ["Account._recover_hash",
                                                          "eth_account.messages._hash_eip191_message"]

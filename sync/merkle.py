"""Merkle trees over access receipts, verifiable by ``ConsentRegistry.receiptAnchoredAt``.

Same construction as OpenZeppelin's MerkleProof: each internal node is keccak256 of its two children in sorted
order, so a proof is just the list of siblings (no left/right flags). A leaf is keccak256 of the receipt's 32-byte
EIP-712 digest: hashing a 32-byte value can never equal hashing a 64-byte pair, so an internal node cannot be passed
off as a leaf (second-preimage). Odd nodes are promoted unchanged to the next level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak


def leaf(receipt_digest: bytes) -> bytes:
    if len(receipt_digest) != 32:
        raise ValueError("a receipt digest is 32 bytes")
    return keccak(receipt_digest)


def _node(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    levels: tuple[tuple[bytes, ...], ...]  # levels[0] = leaves in input order, levels[-1] = (root,)

    @classmethod
    def from_digests(cls, receipt_digests: Sequence[bytes]) -> MerkleTree:
        if not receipt_digests:
            raise ValueError("a Merkle tree needs at least one receipt")
        level = tuple(leaf(d) for d in receipt_digests)
        levels = [level]
        while len(level) > 1:
            nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = tuple(nxt)
            levels.append(level)
        return cls(tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def __len__(self) -> int:
        return len(self.levels[0])

    def proof(self, index: int) -> list[bytes]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof


def verify(root: bytes, receipt_digest: bytes, proof: Sequence[bytes]) -> bool:
    node = leaf(receipt_digest)
    for sibling in proof:
        node = _node(node, sibling)
    return node == root

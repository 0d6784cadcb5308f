"""Gas per consent operation on the in-process EVM (gas is deterministic, so one run is the measurement).

    .venv/bin/python bench/bench_gas.py

Prints gas for a grant (target at most 100k), a revoke, a single logged access receipt, and the share of one
receipt in an anchored batch of 100, as a ratio to the single one (target at most 0.05x). Exits 1 if a target is
missed.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync import consent_sign as cs  # noqa: E402
from sync import merkle  # noqa: E402
from sync.chain import Chain, Sender  # noqa: E402

GRANT_TARGET = 100_000
BATCH_RATIO_TARGET = 0.05
BATCH_SIZE = 100


@dataclass
class GasReport:
    grant: int
    grant_directed: int
    revoke: int
    access_single: int
    batch_total: int
    batch_size: int

    @property
    def per_batched_receipt(self) -> float:
        return self.batch_total / self.batch_size

    @property
    def batch_ratio(self) -> float:
        return self.per_batched_receipt / self.access_single


def _key(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def measure(batch_size: int = BATCH_SIZE) -> GasReport:
    chain = Chain.in_process()
    relayer = Sender(node_account=chain.node_accounts()[0])
    reg = chain.deploy(relayer)
    patient, clinician = _key("bench patient"), _key("bench clinician")
    clinician_addr = cs.address_of(clinician)
    reg.register_practitioner(relayer, clinician_addr, "did:key:bench")
    now = chain.block_timestamp()

    def grant(i: int, grantee: str) -> tuple[cs.Grant, int]:
        g = cs.Grant(_key(f"consent {i}"), cs.address_of(patient), grantee, now + 86_400 * 30,
                     _key(f"scope {i}"), i, now + 3600)
        return g, reg.grant(relayer, g, cs.sign(patient, reg.domain, g)).gas_used

    bearer, gas_grant = grant(1, cs.ZERO_ADDRESS)
    _, gas_directed = grant(2, clinician_addr)
    rv = cs.Revoke(bearer.consent_id, cs.address_of(patient), 3, now + 3600)
    gas_revoke = reg.revoke(relayer, rv, cs.sign(patient, reg.domain, rv)).gas_used

    receipt = cs.AccessReceipt(bearer.consent_id, bearer.patient, clinician_addr, now, 1)
    gas_single = reg.log_access(relayer, receipt, cs.sign(clinician, reg.domain, receipt)).gas_used

    digests = [cs.digest(reg.domain, cs.AccessReceipt(bearer.consent_id, bearer.patient, clinician_addr, now + i,
                                                      100 + i))
               for i in range(batch_size)]
    tree = merkle.MerkleTree.from_digests(digests)
    gas_batch = reg.anchor_batch(relayer, tree.root, batch_size).gas_used
    return GasReport(gas_grant, gas_directed, gas_revoke, gas_single, gas_batch, batch_size)


def main() -> int:
    r = measure()
    ok_grant = max(r.grant, r.grant_directed) <= GRANT_TARGET
    ok_batch = r.batch_ratio <= BATCH_RATIO_TARGET
    print(f"grant (bearer link)         {r.grant:>8} gas   {r.grant / GRANT_TARGET:.3f}x of the 100k target")
    print(f"grant (directed)            {r.grant_directed:>8} gas   "
          f"{r.grant_directed / GRANT_TARGET:.3f}x of the 100k target")
    print(f"revoke                      {r.revoke:>8} gas   {r.revoke / r.grant:.3f}x of a grant")
    print(f"access receipt, single      {r.access_single:>8} gas   1.000x (baseline)")
    print(f"access receipt, batch of {r.batch_size} {r.per_batched_receipt:>8.0f} gas   "
          f"{r.batch_ratio:.4f}x of a single one (target <= {BATCH_RATIO_TARGET}x)")
    print(f"targets: grant {'met' if ok_grant else 'MISSED'}, batch {'met' if ok_batch else 'MISSED'}")
    return 0 if ok_grant and ok_batch else 1


if __name__ == "__main__":
    sys.exit(main())

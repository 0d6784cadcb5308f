"""Property-based, stateful test of the contract on the in-process EVM.

Random sequences of member changes, practitioner registrations, grants (some forged, late or from non-members),
revocations (some by the wrong person), nonce cancellations, access receipts, receipt batches, replays of earlier
signatures, time jumps and a squatter (someone who saw a link or a pending grant and registers its consent id first
under their own key) are run against the real contract and a plain-Python model of the rules. In the model a consent
belongs to its patient: it is keyed by (patient, consent id). After every step the chain must agree with the model:
who is a member, every consent's fields, and whether each consent is active for each accessor.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sync import consent_sign as cs
from sync import merkle
from sync.chain import Chain, Sender
from sync.errors import ConsentRejected

from conftest import Party
from tests.chain.chain_support import receipt_anchored_at

# Time steps and expiries keep clear of each other by minutes, so the few seconds a block's timestamp may move
# while the test runs never decide an outcome.
MARGIN = 120


@dataclass
class ModelConsent:
    patient: str
    grantee: str
    expires_at: int
    scope_hash: bytes
    revoked: bool = False


class ConsentRegistryMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.chain = Chain.in_process()
        accounts = self.chain.node_accounts()
        self.senders = [Sender(node_account=a) for a in accounts[:4]]
        self.admin = self.senders[0]
        self.reg = self.chain.deploy(self.admin)
        self.members = {self.admin.address}
        self.counter = 0
        self.patients = [Party(self.fresh()) for _ in range(3)]
        self.squatters = [Party(self.fresh()) for _ in range(2)]
        self.clinicians = [Party(self.fresh()) for _ in range(3)]
        self.practitioners: dict[str, bool] = {}
        self.consents: dict[tuple[str, bytes], ModelConsent] = {}  # (patient address, consent id) -> consent
        self.announced: list[bytes] = []  # ids a squatter saw in a link before the patient's grant landed
        self.floors: dict[str, int] = {}
        self.landed: list[tuple[str, object, cs.Signature]] = []  # successful signed operations, for replays
        self.roots: list[bytes] = []

    # ---- helpers -----------------------------------------------------------------------------------------

    def fresh(self) -> bytes:
        """Deterministic 32-byte values (keys, ids, scopes), so Hypothesis can replay and shrink a failure."""
        self.counter += 1
        return hashlib.sha256(b"stateful-%d" % self.counter).digest()

    def now(self) -> int:
        return self.chain.block_timestamp()

    def expect(self, fn, reason: str | set[str] | None) -> None:
        """Run ``fn``; it must succeed when ``reason`` is None, otherwise revert with that reason (or one of them)."""
        if reason is None:
            fn()
            return
        allowed = {reason} if isinstance(reason, str) else reason
        try:
            fn()
        except ConsentRejected as exc:
            assert exc.reason in allowed, (exc.reason, allowed)
        else:
            raise AssertionError(f"expected the contract to refuse with {reason}")

    # ---- rules -------------------------------------------------------------------------------------------

    @rule(who=st.integers(0, 3), add=st.booleans(), by=st.integers(0, 3))
    def change_member(self, who: int, add: bool, by: int) -> None:
        target, sender = self.senders[who], self.senders[by]
        fn = self.reg.add_member if add else self.reg.remove_member
        reason = None if sender is self.admin else "NotAdmin"
        self.expect(lambda: fn(sender, target.address), reason)
        if reason is None:
            (self.members.add if add else self.members.discard)(target.address)
        for s in self.senders:
            assert self.reg.is_member(s.address) == (s.address in self.members)

    @rule(data=st.data(), c=st.integers(0, 2), active=st.booleans(), non_member=st.booleans())
    def practitioner(self, data, c: int, active: bool, non_member: bool) -> None:
        sender, clinician = self.pick_sender(data, member=not non_member), self.clinicians[c]
        if sender is None:
            return
        reason = None if sender.address in self.members else "NotMember"
        if active:
            self.expect(lambda: self.reg.register_practitioner(sender, clinician.address, f"did:key:{c}"), reason)
        else:
            self.expect(lambda: self.reg.deactivate_practitioner(sender, clinician.address), reason)
        if reason is None:
            self.practitioners[clinician.address] = active

    def party(self, address: str) -> Party:
        return next(p for p in self.patients + self.squatters if p.address == address)

    def pick_sender(self, data, member: bool) -> Sender | None:
        pool = [s for s in self.senders if (s.address in self.members) == member]
        return data.draw(st.sampled_from(pool)) if pool else None

    # Each attempt carries at most one fault, so most attempts succeed and build up state worth checking.
    @rule(
        data=st.data(),
        p=st.integers(0, 2),
        grantee=st.integers(-1, 2),
        expires_in=st.sampled_from([5 * MARGIN, 40 * MARGIN]),
        nonce=st.integers(0, 12),
        fault=st.sampled_from([None, None, None, "forged", "late", "past", "reuse_id", "non_member", "squatted"]),
    )
    def grant(self, data, p, grantee, expires_in, nonce, fault) -> None:
        patient, now = self.patients[p], self.now()
        sender = self.pick_sender(data, member=fault != "non_member")
        if sender is None:
            return
        grantee_addr = cs.ZERO_ADDRESS if grantee < 0 else self.clinicians[grantee].address
        own = [cid for (who, cid) in self.consents if who == patient.address]
        if fault == "reuse_id" and own:
            cid = data.draw(st.sampled_from(own))
        elif fault == "squatted" and self.announced:
            # The squatter got there first with this id; the patient's grant must land all the same.
            cid = data.draw(st.sampled_from(self.announced))
        else:
            cid = self.fresh()
        expires_at = now - 10 * MARGIN if fault == "past" else now + expires_in
        deadline = now - 10 * MARGIN if fault == "late" else now + 40 * MARGIN
        g = cs.Grant(cid, patient.address, grantee_addr, expires_at, self.fresh(), nonce, deadline)
        signer = Party(self.fresh()) if fault == "forged" else patient
        sig = cs.sign(signer.key, self.reg.domain, g)
        if sender.address not in self.members:
            reason = "NotMember"
        elif fault == "late":
            reason = "SignatureExpired"
        elif fault == "past":
            reason = "ExpiryInPast"
        elif (patient.address, cid) in self.consents:
            reason = "ConsentExists"
        elif nonce < self.floors.get(patient.address, 0):
            reason = "NonceCancelled"
        elif fault == "forged":
            reason = "InvalidSignature"
        else:
            reason = None
        self.expect(lambda: self.reg.grant(sender, g, sig), reason)
        if reason is None:
            self.consents[(patient.address, cid)] = ModelConsent(patient.address, grantee_addr, g.expires_at,
                                                                 g.scope_hash)
            self.landed.append(("grant", g, sig))

    @rule(data=st.data(), s=st.integers(0, 1), ahead=st.booleans(), expires_in=st.sampled_from([5 * MARGIN,
                                                                                              40 * MARGIN]))
    def squat(self, data, s, ahead, expires_in) -> None:
        """A squatter registers, under their own key, the id of a patient's consent they saw in a link: one already
        granted, or (``ahead``) one whose grant is still pending, announced here for the patient to grant later."""
        sender = self.pick_sender(data, member=True)
        if sender is None:
            return
        squatter, now = self.squatters[s], self.now()
        taken = [cid for (who, cid) in self.consents if who != squatter.address]
        if ahead or not taken:
            cid = self.fresh()
            self.announced.append(cid)
        else:
            cid = data.draw(st.sampled_from(taken))
        g = cs.Grant(cid, squatter.address, cs.ZERO_ADDRESS, now + expires_in, self.fresh(), 0, now + 40 * MARGIN)
        sig = cs.sign(squatter.key, self.reg.domain, g)
        reason = "ConsentExists" if (squatter.address, cid) in self.consents else None
        self.expect(lambda: self.reg.grant(sender, g, sig), reason)
        if reason is None:
            self.consents[(squatter.address, cid)] = ModelConsent(squatter.address, cs.ZERO_ADDRESS, g.expires_at,
                                                                  g.scope_hash)

    @rule(
        data=st.data(),
        nonce=st.integers(0, 12),
        fault=st.sampled_from([None, None, None, "other_signer", "unknown", "non_member"]),
    )
    def revoke(self, data, nonce, fault) -> None:
        sender = self.pick_sender(data, member=fault != "non_member")
        if sender is None:
            return
        if fault == "unknown" or not self.consents:
            owner, cid = self.patients[0], self.fresh()
        else:
            address, cid = data.draw(st.sampled_from(list(self.consents)))
            owner = self.party(address)  # a patient, or a squatter revoking their own entry
        model = self.consents.get((owner.address, cid))
        signer = owner
        if fault == "other_signer":
            # A stranger, or a squatter who holds the same id trying to revoke the patient's consent.
            signer = data.draw(st.sampled_from([Party(self.fresh()),
                                                *(q for q in self.squatters if q.address != owner.address)]))
        rv = cs.Revoke(cid, owner.address, nonce, self.now() + 40 * MARGIN)
        sig = cs.sign(signer.key, self.reg.domain, rv)
        if sender.address not in self.members:
            reason = "NotMember"
        elif model is None:
            reason = "UnknownConsent"
        elif model.revoked:
            reason = "AlreadyRevoked"
        elif nonce < self.floors.get(owner.address, 0):
            reason = "NonceCancelled"
        elif fault == "other_signer":
            reason = "NotPatient"
        else:
            reason = None
        self.expect(lambda: self.reg.revoke(sender, rv, sig), reason)
        if reason is None:
            model.revoked = True
            self.landed.append(("revoke", rv, sig))

    @rule(data=st.data(), p=st.integers(0, 2), raise_by=st.integers(1, 4), non_member=st.booleans())
    def cancel_nonces(self, data, p, raise_by, non_member) -> None:
        patient, sender = self.patients[p], self.pick_sender(data, member=not non_member)
        if sender is None:
            return
        floor = self.floors.get(patient.address, 0) + raise_by
        c = cs.CancelNonces(patient.address, floor, self.now() + 40 * MARGIN)
        sig = cs.sign(patient.key, self.reg.domain, c)
        reason = None if sender.address in self.members else "NotMember"
        self.expect(lambda: self.reg.cancel_nonces(sender, c, sig), reason)
        if reason is None:
            self.floors[patient.address] = floor

    @rule(data=st.data())
    def replay(self, data) -> None:
        if not self.landed:
            return
        kind, typed, sig = data.draw(st.sampled_from(self.landed))
        sender = next((s for s in self.senders if s.address in self.members), None)
        if sender is None:
            return
        # A replay must never succeed. Which check refuses it first depends on how much time has passed: the
        # signature's deadline and the consent's expiry are checked before the consent's existence.
        if kind == "grant":
            refusals = {"ConsentExists", "SignatureExpired", "ExpiryInPast"}
            self.expect(lambda: self.reg.grant(sender, typed, sig), refusals)
        else:
            self.expect(lambda: self.reg.revoke(sender, typed, sig), {"AlreadyRevoked", "SignatureExpired"})
        self.consents_agree()

    @rule(data=st.data(), fault=st.sampled_from([None, None, "forged", "unknown", "non_member"]))
    def log_access(self, data, fault) -> None:
        """Receipts are facts: accepted for any recorded consent (even revoked or expired) if the accessor signed."""
        sender = self.pick_sender(data, member=fault != "non_member")
        if sender is None:
            return
        known = list(self.consents)
        if known and fault != "unknown":
            patient, cid = data.draw(st.sampled_from(known))
        else:
            patient, cid = data.draw(st.sampled_from(self.patients)).address, self.fresh()
        accessor = data.draw(st.sampled_from(self.clinicians))
        receipt = cs.AccessReceipt(cid, patient, accessor.address, self.now(), self.counter)
        signer = Party(self.fresh()) if fault == "forged" else accessor
        sig = cs.sign(signer.key, self.reg.domain, receipt)
        if sender.address not in self.members:
            reason = "NotMember"
        elif (patient, cid) not in self.consents:
            reason = "UnknownConsent"
        elif fault == "forged":
            reason = "InvalidSignature"
        else:
            reason = None
        self.expect(lambda: self.reg.log_access(sender, receipt, sig), reason)
        if reason is None:
            assert self.reg.find_access(cid, cs.digest(self.reg.domain, receipt)) is not None

    @rule(data=st.data(), size=st.integers(1, 9), again=st.booleans())
    def anchor_batch(self, data, size, again) -> None:
        sender = self.pick_sender(data, member=True)
        if sender is None:
            return
        if again and self.roots:
            root = data.draw(st.sampled_from(self.roots))
            self.expect(lambda: self.reg.anchor_batch(sender, root, size), "RootAlreadyAnchored")
            return
        digests = [self.fresh() for _ in range(size)]
        tree = merkle.MerkleTree.from_digests(digests)
        self.expect(lambda: self.reg.anchor_batch(sender, tree.root, size), None)
        self.roots.append(tree.root)
        i = data.draw(st.integers(0, size - 1))
        assert receipt_anchored_at(self.reg, tree.root, digests[i], tree.proof(i)) > 0
        assert receipt_anchored_at(self.reg, tree.root, self.fresh(), tree.proof(i)) == 0

    @rule(seconds=st.sampled_from([2 * MARGIN, 10 * MARGIN, 30 * MARGIN]))
    def advance_time(self, seconds) -> None:
        before = self.now()
        self.chain.tester.time_travel(before + seconds)
        assert self.now() >= before + seconds - 1

    # ---- invariants --------------------------------------------------------------------------------------

    @invariant()
    def consents_agree(self) -> None:
        if not hasattr(self, "reg"):
            return
        now = self.now()
        for (patient, cid), m in self.consents.items():
            rec = self.reg.get_consent(cid, patient=patient)
            assert rec is not None
            assert (rec.patient, rec.grantee, rec.expires_at, rec.revoked) == (
                m.patient, m.grantee, m.expires_at, m.revoked)
            assert rec.scope_matches(m.scope_hash)
            if abs(m.expires_at - now) < MARGIN:
                continue  # too close to call on a clock that moves while the test runs
            # The grantee (or, for a bearer link, any clinician) and one clinician who is not the grantee.
            first = m.grantee if m.grantee != cs.ZERO_ADDRESS else self.clinicians[0].address
            other = next(c.address for c in self.clinicians if c.address != first)
            for who in (first, other):
                live = not m.revoked and now < m.expires_at
                if m.grantee != cs.ZERO_ADDRESS:
                    live = live and who == m.grantee and self.practitioners.get(m.grantee, False)
                assert self.reg.is_active(cid, who, patient=patient) == live, (cid.hex(), who)
        # An id nobody granted for a patient is not active for them, whoever else holds it.
        for cid in self.announced:
            for p in self.patients:
                if (p.address, cid) not in self.consents:
                    assert self.reg.get_consent(cid, patient=p.address) is None
                    assert not self.reg.is_active(cid, self.clinicians[0].address, patient=p.address)


TestConsentRegistryStateful = ConsentRegistryMachine.TestCase
TestConsentRegistryStateful.settings = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

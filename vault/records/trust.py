"""How far a record can be believed, as a word stored with it and with the source it came from.

- ``issuer-verified``: a SMART Health Card whose issuer's signature was checked against an issuer the user trusts.
- ``clinician-signed``: a note or measurement signed by a clinician whose key the patient can tie to a person: a
  practitioner registered on the consent network, or a card the patient confirmed.
- ``unknown-signer``: signed, the signature holds, but nobody the patient knows holds that key. Anyone can make a
  key, so this says no more about the content than ``unverified`` does; it only names what was checked.
- ``patient-entered``: written or added by the patient.
- ``unverified``: from a file, with nothing to check it against.

A record already in the vault takes a higher word from a later source only when that source's check covers that
exact content: a health card's issuer signs the records inside it. A clinician's signature covers what the clinician
wrote, so a copy of some other record inside their note (or inside anything claiming to be one) never raises that
record's trust.
"""

from __future__ import annotations

ISSUER_VERIFIED = "issuer-verified"
CLINICIAN_SIGNED = "clinician-signed"
UNKNOWN_SIGNER = "unknown-signer"
PATIENT_ENTERED = "patient-entered"
UNVERIFIED = "unverified"

LEVELS = (ISSUER_VERIFIED, CLINICIAN_SIGNED, UNKNOWN_SIGNER, PATIENT_ENTERED, UNVERIFIED)
RANK = {ISSUER_VERIFIED: 3, CLINICIAN_SIGNED: 3, PATIENT_ENTERED: 1, UNKNOWN_SIGNER: 0, UNVERIFIED: 0}
# the levels whose check vouches for a copy of the same content seen in an earlier source
VOUCHES_FOR_COPIES = frozenset({ISSUER_VERIFIED})


def rank(level: object) -> int:
    return RANK.get(level, 0) if isinstance(level, str) else 0


def raises_copies(level: str | None) -> bool:
    """Whether a source with this level may raise the trust of a record already in the vault with the same content."""
    return level in VOUCHES_FOR_COPIES


def rank_sql(column: str = "trust") -> str:
    """The rank of ``column`` as an SQL expression, so comparisons in queries follow ``RANK``."""
    cases = " ".join(f"WHEN '{level}' THEN {n}" for level, n in RANK.items())
    return f"(CASE {column} {cases} ELSE 0 END)"

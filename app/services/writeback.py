"""The write-back: a clinician's note or measurement handed back to the patient, signed, and how the patient's app
decides how far to believe it. No Qt here.

The clinician's side: ``Recipient.from_opened`` names the patient of a share just opened (their did:key, hence their
encryption key, and the ``Patient/<id>`` the records use), ``Note`` and ``Measurement`` (one of ``VITALS``) are what
is written, ``create`` builds FHIR R4 resources about that patient, signs them (a ``Provenance`` naming the
clinician's did:key and carrying an Ed25519 signature over the canonical resources), encrypts them for the patient,
publishes the file like a share (the embedded gateway or the IPFS node) and returns the ``return`` link for a QR.

The patient's side: ``import_return`` opens a ``return`` link, checks the signature (``check_signature``) and then
who holds the key (``assess``): a practitioner registered on the consent network (asked when one is set up) or a
card the patient confirmed (``confirm_card``) makes the note ``clinician-signed``; any other key, however valid its
signature, only ``unknown-signer``; a signature that does not hold, ``unverified``. The note is imported as a
source of its own that may add records but never replace or vouch for one already in the vault.

The signed bytes and the resources' shapes are described in ``docs/clinician.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sync.errors import SyncError

SIGNATURE_CONTEXT = b"medvault/writeback/v1\n"
DID_SYSTEM = "urn:ietf:rfc:3986"                       # a did:key is a URI
ADDRESS_SYSTEM = "urn:medvault:chain-address"           # the signer's consent-network account
SIG_FORMAT = "application/vnd.medvault.ed25519"         # the raw 64-byte Ed25519 signature in Signature.data
AUTHOR_SIGNATURE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1",
                    "display": "Author's Signature"}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NOTE_KIND = "clinician-note"
CONFIRMED_SETTING = "clinicians.confirmed"
MAX_NOTE_CHARS = 20_000
MAX_ITEMS = 20
DEFAULT_EXPIRY = timedelta(days=7)

# --- how the note's signer was tied to a person ---------------------------------------------------------------
REGISTRY, CONFIRMED_CARD = "registry", "confirmed-card"
NOT_REGISTERED, DEACTIVATED, UNREACHABLE, NO_NETWORK = "not-registered", "deactivated", "unreachable", "no-network"
BAD_SIGNATURE, NO_SIGNATURE = "bad-signature", "no-signature"


class WriteBackError(SyncError):
    """Bad input to a write-back (an empty note, a value out of range): one sentence, nothing published."""

    default_message = "The note could not be written back; nothing was sent."


def _invalid(sentence: str) -> Exception:
    from sync.errors import LinkInvalid
    return LinkInvalid(sentence)


# --- what a clinician writes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    code: str
    display: str
    low: float                  # a value outside low..high is refused as a typing mistake
    high: float


@dataclass(frozen=True)
class Vital:
    key: str
    label: str                  # what the code picker shows
    code: str                   # LOINC
    display: str
    unit: str                   # UCUM
    unit_label: str             # how the unit is written for people
    parts: tuple[Part, ...]     # one value, or the two of a blood pressure
    also: tuple[tuple[str, str], ...] = ()      # further LOINC codings the vital-signs profile expects

    @property
    def panel(self) -> bool:
        return len(self.parts) > 1


VITALS: dict[str, Vital] = {v.key: v for v in (
    Vital("blood-pressure", "Blood pressure", "85354-9", "Blood pressure panel with all children optional",
          "mm[Hg]", "mmHg", (Part("8480-6", "Systolic blood pressure", 40, 300),
                             Part("8462-4", "Diastolic blood pressure", 20, 200))),
    Vital("heart-rate", "Heart rate", "8867-4", "Heart rate", "/min", "beats per minute",
          (Part("8867-4", "Heart rate", 20, 300),)),
    Vital("body-weight", "Body weight", "29463-7", "Body weight", "kg", "kg", (Part("29463-7", "Body weight", 0.2, 500),)),
    Vital("body-height", "Height", "8302-2", "Body height", "cm", "cm", (Part("8302-2", "Body height", 20, 280),)),
    Vital("body-temperature", "Temperature", "8310-5", "Body temperature", "Cel", "\u00b0C",
          (Part("8310-5", "Body temperature", 25, 45),)),
    Vital("oxygen-saturation", "Oxygen saturation (SpO\u2082)", "59408-5",
          "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%",
          (Part("59408-5", "Oxygen saturation", 50, 100),), also=(("2708-6", "Oxygen saturation in Arterial blood"),)),
)}


@dataclass(frozen=True)
class Note:
    text: str
    title: str = "Clinical note"


@dataclass(frozen=True)
class Measurement:
    vital: str                          # a key of VITALS
    values: tuple[float, ...]           # one per part, in the parts' order
    taken: datetime | None = None       # default: when the write-back is made


def check_items(items: list[Any]) -> None:
    """Refuse, with one sentence, what cannot be sent: nothing at all, an empty or huge note, an unknown vital, a
    value missing or outside what a body can measure."""
    if not items:
        raise WriteBackError("Write a note or add a measurement first; nothing was sent.")
    if len(items) > MAX_ITEMS:
        raise WriteBackError(f"One write-back holds at most {MAX_ITEMS} notes and measurements; nothing was sent.")
    for item in items:
        if isinstance(item, Note):
            if not item.text.strip():
                raise WriteBackError("The note is empty; nothing was sent.")
            if len(item.text) > MAX_NOTE_CHARS:
                raise WriteBackError(f"The note is longer than {MAX_NOTE_CHARS:,} characters; nothing was sent.")
            if not item.title.strip() or len(item.title) > 120:
                raise WriteBackError("The note's title must be 1 to 120 characters; nothing was sent.")
        elif isinstance(item, Measurement):
            vital = VITALS.get(item.vital)
            if vital is None:
                raise WriteBackError("That measurement is not one medvault knows; nothing was sent.")
            if len(item.values) != len(vital.parts):
                raise WriteBackError(f"{vital.label} needs {len(vital.parts)} value(s); nothing was sent.")
            for part, value in zip(vital.parts, item.values):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value \
                        or not part.low <= value <= part.high:
                    raise WriteBackError(f"{part.display} must be between {_number(part.low)} and "
                                         f"{_number(part.high)} {vital.unit_label}; nothing was sent.")
        else:
            raise WriteBackError("Only notes and measurements can be written back; nothing was sent.")


def _number(value: float) -> int | float:
    """A value as the signed JSON carries it: whole numbers as integers, others to two decimals, so the canonical
    bytes are the same in any JSON library (no exponent, no trailing ".0")."""
    return int(value) if float(value).is_integer() else round(float(value), 2)


# --- who the write-back is for ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """The patient a write-back is for: their identity (the encryption key is derived from it) and how the records
    name them. ``how`` says where the identity came from, for the dialog."""

    did: str
    subject: dict                       # {"reference": "Patient/<id>"}, or a display when the share had no Patient
    how: str                            # "signed share", "card" or "share's consent record"
    display: str | None = None          # the patient's name from the share, shown in the dialog only

    @property
    def card(self) -> Any:
        """A ``sync.links.Card`` to seal the return key to (name and address are not needed for that)."""
        from sync import links
        from vault import crypto
        public = links.ed25519_from_did_key(self.did)
        return links.Card(did=self.did, ed25519_public=public, x25519_public=crypto.x25519_public_from_ed25519(public),
                          address=None, name="patient")

    @classmethod
    def from_opened(cls, opened: Any) -> "Recipient":
        """From a share just opened (``sync.receiver.OpenResult`` or ``app.services.received.Received``): the
        patient who signed a directed share, else the did:key in the share's FHIR Consent (authenticated by the
        link's key, not signed: a directed share or the patient's card is the stronger source)."""
        bundles = list(getattr(opened, "bundles", None) or [])
        subject, display = _patient_of(bundles)
        sender = getattr(opened, "sender", None)
        if getattr(opened, "kind", "") == "medvault-share" and isinstance(sender, str):
            return cls(sender, subject, "signed share", display)
        did = _consent_performer(bundles)
        if did is None:
            raise _invalid("This share does not say who the patient is (no signed sender, no consent record naming "
                           "them); ask the patient for their medvault card.")
        return cls(did, subject, "share's consent record", display)

    @classmethod
    def from_card(cls, card: Any, opened: Any = None) -> "Recipient":
        """From the patient's own card (``sync.links.Card``), with the records' subject from ``opened`` if given."""
        subject, display = _patient_of(list(getattr(opened, "bundles", None) or []))
        return cls(card.did, subject, "card", display or card.name)


def _resources(bundles: list[dict]) -> list[dict]:
    return [e["resource"] for b in bundles if isinstance(b, dict) for e in b.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _patient_of(bundles: list[dict]) -> tuple[dict, str | None]:
    """How the shared records name their patient: the share's Patient, else the ``Patient/<id>`` the records are
    about (a share of conditions carries no Patient record, but each condition names its subject)."""
    from vault.records.persons import display_name, subject_id
    resources = _resources(bundles)
    for r in resources:
        if r.get("resourceType") == "Patient" and isinstance(r.get("id"), str):
            return {"reference": f"Patient/{r['id']}"}, display_name(r)
    about = [subject_id(r) for r in resources if r.get("resourceType") != "Consent"]
    named = sorted({a for a in about if a}, key=about.count, reverse=True)
    if named:
        return {"reference": f"Patient/{named[0]}"}, None
    return {"display": "the patient who shared their records"}, None


def _consent_performer(bundles: list[dict]) -> str | None:
    for r in _resources(bundles):
        if r.get("resourceType") != "Consent":
            continue
        for p in r.get("performer") or []:
            ident = p.get("identifier") if isinstance(p, dict) else None
            value = ident.get("value") if isinstance(ident, dict) else None
            if isinstance(value, str) and value.startswith("did:key:"):
                return value
    return None


# --- building and signing -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Author:
    did: str
    address: str
    name: str
    organisation: str | None


def author_of(vault: Any) -> Author:
    from app.services import clinician
    profile = clinician.load(vault)
    return Author(vault.identity.did, vault.identity.eth_address, profile.name or "A medvault clinician",
                  profile.organisation)


def _stable_id(*parts: str) -> str:
    # the same clinician with the same profile is the same Practitioner record in the patient's vault, and anything
    # that changes its content changes its id: a note may not replace a record (``adds_only``)
    return "mv-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def build_resources(author: Author, recipient: Recipient, items: list[Any], now: datetime) -> list[dict]:
    """The FHIR R4 resources of a write-back, Provenance not included: the clinician (Practitioner, and their
    Organization), then each note (DocumentReference with the text inline) and measurement (Observation)."""
    check_items(items)
    when = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    practitioner = {"resourceType": "Practitioner",
                    "id": _stable_id("practitioner", author.did, author.address, author.name,
                                     author.organisation or ""),
                    "identifier": [{"system": DID_SYSTEM, "value": author.did},
                                   {"system": ADDRESS_SYSTEM, "value": author.address}],
                    "name": [{"text": author.name}]}
    out = [practitioner]
    by = {"reference": f"Practitioner/{practitioner['id']}", "display": author.name}
    org_ref = None
    if author.organisation:
        org = {"resourceType": "Organization", "id": _stable_id("organization", author.did, author.organisation),
               "name": author.organisation}
        out.append(org)
        org_ref = {"reference": f"Organization/{org['id']}", "display": author.organisation}
    for item in items:
        if isinstance(item, Note):
            text = item.text.strip()
            doc = {"resourceType": "DocumentReference", "id": str(uuid.uuid4()), "status": "current",
                   "docStatus": "final",
                   "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}],
                            "text": item.title.strip()},
                   "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/"
                                                       "us-core-documentreference-category",
                                             "code": "clinical-note", "display": "Clinical Note"}]}],
                   "subject": recipient.subject, "date": when, "author": [by],
                   "description": item.title.strip(),
                   "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                               "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                                               "title": item.title.strip(), "creation": when}}]}
            if org_ref:
                doc["custodian"] = org_ref
            out.append(doc)
        else:
            out.append(_observation(item, recipient, by, when))
    return out


def _observation(m: Measurement, recipient: Recipient, by: dict, when: str) -> dict:
    vital = VITALS[m.vital]
    taken = m.taken.astimezone(timezone.utc).isoformat(timespec="seconds") if m.taken else when
    codings = [{"system": LOINC, "code": vital.code, "display": vital.display}]
    codings += [{"system": LOINC, "code": c, "display": d} for c, d in vital.also]
    obs = {"resourceType": "Observation", "id": str(uuid.uuid4()), "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "vital-signs", "display": "Vital Signs"}]}],
           "code": {"coding": codings, "text": vital.label},
           "subject": recipient.subject, "effectiveDateTime": taken, "issued": when, "performer": [by]}

    def quantity(value: float) -> dict:
        return {"value": _number(value), "unit": vital.unit_label, "system": UCUM, "code": vital.unit}

    if vital.panel:
        obs["component"] = [{"code": {"coding": [{"system": LOINC, "code": p.code, "display": p.display}]},
                             "valueQuantity": quantity(v)} for p, v in zip(vital.parts, m.values)]
    else:
        obs["valueQuantity"] = quantity(m.values[0])
    return obs


def signed_bytes(signer: str, resources: list[dict], provenance: dict) -> bytes:
    """What the signature covers: the purpose string, then the canonical JSON of the signer, every resource of the
    write-back in order, and the Provenance without its signature."""
    from sync.links import canonical_json
    unsigned = {k: v for k, v in provenance.items() if k != "signature"}
    return SIGNATURE_CONTEXT + canonical_json({"signer": signer, "resources": resources, "provenance": unsigned})


def sign(seed: bytes, author: Author, resources: list[dict], now: datetime) -> dict:
    """The write-back as a FHIR collection Bundle: ``resources`` and a Provenance whose signature (by the
    clinician's Ed25519 key) covers them all."""
    from vault import crypto
    when = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    practitioner = resources[0]
    who = {"reference": f"Practitioner/{practitioner['id']}", "display": author.name}
    targets = [{"reference": f"{r['resourceType']}/{r['id']}"} for r in resources
               if r["resourceType"] in ("DocumentReference", "Observation")]
    provenance = {"resourceType": "Provenance", "id": str(uuid.uuid4()), "target": targets, "recorded": when,
                  "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                           "code": "CREATE", "display": "create"}]},
                  "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                            "provenance-participant-type",
                                                  "code": "author", "display": "Author"}]},
                             "who": who}]}
    signature = crypto.ed25519_sign(seed, signed_bytes(author.did, resources, provenance))
    provenance["signature"] = [{"type": [AUTHOR_SIGNATURE], "when": when,
                                "who": {**who, "identifier": {"system": DID_SYSTEM, "value": author.did}},
                                "targetFormat": "application/fhir+json", "sigFormat": SIG_FORMAT,
                                "data": base64.b64encode(signature).decode("ascii")}]
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in [*resources, provenance]]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection", "timestamp": when,
            "entry": entries}


# --- handing it over ----------------------------------------------------------------------------------------------

@dataclass
class WriteBack:
    id: str                     # the row in the clinician's list of shares (withdraw it like a share)
    link: str                   # the medvault:/ return link, for the QR
    url: str
    cid: str
    expires_at: int | None
    resources: list[str]        # "Type/id" of the notes and measurements
    recipient: Recipient

    def as_json(self) -> dict:
        return {"id": self.id, "link": self.link, "url": self.url, "cid": self.cid, "expires_at": self.expires_at,
                "resources": self.resources, "recipient": self.recipient.did}


WHAT = "A note for the patient"


def create(vault: Any, recipient: Recipient, items: list[Any], *, expires: timedelta | None = DEFAULT_EXPIRY,
           gateway: str | None = None, backend: str | None = None) -> WriteBack:
    """Sign ``items`` for ``recipient``, encrypt them to the patient's key, publish the file where shares go (or
    ``backend``: "embedded" or "ipfs"), and return the ``return`` link. The file is served like a share (the
    clinician's embedded gateway serves it while active) and is listed with the shares, so it can be withdrawn."""
    from sync import jwe, links, shares
    from sync.errors import SyncError
    from vault import shares_store
    author = author_of(vault)
    now_dt = vault.now()
    resources = build_resources(author, recipient, items, now_dt)
    bundle = sign(vault.identity_keys.ed25519_seed, author, resources, now_dt)
    data, key = jwe.encrypt_bundle(bundle, key=jwe.new_key())
    if gateway:
        from app.services.sharing import check_gateway
        check_gateway(gateway)
        shares.set_gateway_setting(vault, gateway.rstrip("/"))
    store, kind = shares.store_named(vault, backend) if backend else shares.store_for(vault)
    now = int(now_dt.timestamp())
    exp = now + int(expires.total_seconds()) if expires is not None else None
    label = _label(author)
    # A file kept in this vault is written in the transaction that records the write-back, so a crash leaves both
    # or neither. An IPFS node cannot join that transaction: the file goes to it first, so a crash in between
    # leaves no row (nothing listed, no link anyone was given) and only a file no link names, which nobody can read:
    # its key existed only in this process. The other order would leave a listed write-back whose file no node has.
    in_vault = shares.kept_in_vault(vault, store)
    cid = store.cid_for(data) if in_vault else store.add(data)
    url = store.gateway_url(cid)
    share_id = uuid.uuid4().hex[:12]
    targets = [f"{r['resourceType']}/{r['id']}" for r in resources if r["resourceType"] != "Practitioner"
               and r["resourceType"] != "Organization"]
    try:
        link = links.build_return(vault.identity_keys.ed25519_seed, recipient.card, url=url, key=key, exp=exp,
                                  label=label, iat=now)
        with vault.transaction() as conn:
            if in_vault:
                shares_store.put_blob(conn, cid, data)
            # a return is a directed share from the clinician to the patient: no consent is asked of the chain for
            # it (the records are the clinician's), but it is served, listed and withdrawn like one
            shares_store.insert(conn, shares_store.ShareRow(
                id=share_id, created_at=now, expires_at=exp, kind="directed", recipient=recipient.did,
                recipient_name=None, label=label, cid=cid, backend=kind, url=url,
                consent_id=links.consent_id(key).hex(), resources=len(targets), state=shares_store.ACTIVE,
                revoked_at=None, link=link, what=WHAT))
            vault.audit("writeback", conn=conn, share=share_id, resources=len(targets),
                        notes=sum(isinstance(i, Note) for i in items),
                        measurements=sum(isinstance(i, Measurement) for i in items))
    except BaseException:
        # a file kept in the vault went with the rolled-back transaction; a node's copy must not stay published
        if not in_vault:
            try:
                store.unpin(cid)
            except SyncError:
                pass
        raise
    return WriteBack(share_id, link, url, cid, exp, targets, recipient)


def withdraw(vault: Any, writeback_id: str) -> str:
    """Stop serving a write-back the patient has not fetched yet (no consent on the chain to revoke)."""
    from sync import shares
    return shares.revoke_share(vault, writeback_id, chain_domain=None)


def _label(author: Author) -> str:
    from sync.links import MAX_LABEL
    label = f"Note from {author.name}"
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "\u2026"


# --- the patient's side: checking ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signature:
    """What the write-back's own signature says, before asking who holds the key."""

    status: str                 # "valid", BAD_SIGNATURE or NO_SIGNATURE
    did: str | None = None
    address: str | None = None
    name: str | None = None     # as the signer wrote it: believe it only once the key is known
    organisation: str | None = None
    reason: str = ""


def check_signature(bundles: list[dict], sender: str | None) -> Signature:
    """Verify a received write-back: exactly one Provenance, its signature by ``sender`` (the link's signer) over
    every other resource, and a Practitioner with that did:key naming its chain account."""
    if len(bundles) != 1:
        return Signature(NO_SIGNATURE, reason="it is not one signed note")
    resources = _resources(bundles)
    if len(resources) != len((bundles[0].get("entry") or [])):
        return Signature(NO_SIGNATURE, reason="it holds entries that are not records")
    provenances = [r for r in resources if r.get("resourceType") == "Provenance"]
    if len(provenances) != 1:
        return Signature(NO_SIGNATURE, reason="it carries no signature record (Provenance)")
    provenance = provenances[0]
    others = [r for r in resources if r is not provenance]
    sigs = provenance.get("signature")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        return Signature(NO_SIGNATURE, reason="its Provenance carries no signature")
    sig = sigs[0]
    who = sig.get("who") if isinstance(sig.get("who"), dict) else {}
    ident = who.get("identifier") if isinstance(who.get("identifier"), dict) else {}
    did = ident.get("value")
    if not isinstance(did, str) or sig.get("sigFormat") != SIG_FORMAT or not isinstance(sig.get("data"), str):
        return Signature(NO_SIGNATURE, reason="its signature is not one medvault can check")
    if did != sender:
        return Signature(BAD_SIGNATURE, did=did, reason="its signature is not by the person who signed the link")
    from sync import links
    from sync.errors import SyncError
    from vault import crypto
    try:
        public = links.ed25519_from_did_key(did)
        raw = base64.b64decode(sig["data"], validate=True)
        message = signed_bytes(did, others, provenance)
    except (SyncError, ValueError):
        return Signature(BAD_SIGNATURE, did=did, reason="its signature is damaged")
    if len(raw) != 64 or not crypto.ed25519_verify(public, message, raw):
        return Signature(BAD_SIGNATURE, did=did, reason="its signature does not match its content")
    signer = next((r for r in others if r.get("resourceType") == "Practitioner"
                   and {"system": DID_SYSTEM, "value": did} in (r.get("identifier") or [])), None)
    if signer is None:
        return Signature(BAD_SIGNATURE, did=did, reason="it names no clinician with the signing key")
    address = next((i.get("value") for i in signer.get("identifier") or []
                    if isinstance(i, dict) and i.get("system") == ADDRESS_SYSTEM), None)
    names = [n.get("text") for n in signer.get("name") or [] if isinstance(n, dict)]
    org = next((r.get("name") for r in others if r.get("resourceType") == "Organization"), None)
    return Signature("valid", did=did, address=address if isinstance(address, str) else None,
                     name=names[0] if names and isinstance(names[0], str) else None,
                     organisation=org if isinstance(org, str) else None)


@dataclass(frozen=True)
class Assessment:
    """How far to believe a received write-back: the trust its records get and, in words, why."""

    trust: str                  # vault.records.trust: clinician-signed, unknown-signer or unverified
    checked: str                # REGISTRY, CONFIRMED_CARD, NOT_REGISTERED, DEACTIVATED, UNREACHABLE, NO_NETWORK,
                                # BAD_SIGNATURE or NO_SIGNATURE
    signature: Signature
    sentence: str

    def provenance(self) -> dict:
        """What the source is marked with (the clinician's name only once their key is known)."""
        out = {"kind": "medvault-return", "signer": self.signature.did, "checked": self.checked,
               "signature": self.signature.status}
        if self.trust == "clinician-signed":
            out["signer_name"] = _who(self.signature)
        return out


def _said(text: str | None, limit: int = 80) -> str | None:
    """Text a note's signer wrote, fit to be printed: no control or format characters (a terminal escape could
    rewrite what the user reads), one line, at most ``limit`` characters."""
    if not isinstance(text, str):
        return None
    import unicodedata
    clean = " ".join("".join(ch if not unicodedata.category(ch).startswith("C") else " " for ch in text).split())
    return (clean if len(clean) <= limit else clean[:limit - 1] + "\u2026") or None


def _who(sig: Signature) -> str:
    name = _said(sig.name) or "a clinician"
    org = _said(sig.organisation)
    return f"{name} ({org})" if org else name


def assess(vault: Any, bundles: list[dict], sender: str | None) -> Assessment:
    """Check the signature, then who holds the key: a card the patient confirmed (no network needed), else the
    practitioner registry on the consent network when one is set up."""
    from vault.records import trust
    sig = check_signature(bundles, sender)
    if sig.status != "valid":
        return Assessment(trust.UNVERIFIED, sig.status, sig,
                          f"Not verified: {sig.reason}, so it is imported as unverified.")
    if any(c.get("did") == sig.did for c in confirmed(vault)):
        return Assessment(trust.CLINICIAN_SIGNED, CONFIRMED_CARD, sig,
                          f"Signed by {_who(sig)}, whose card you confirmed.")
    checked, detail = _registry_state(vault, sig)
    if checked == REGISTRY:
        return Assessment(trust.CLINICIAN_SIGNED, REGISTRY, sig,
                          f"Signed by {_who(sig)}, a practitioner registered on the consent network.")
    unknown = ("Signed by an unknown key: the signer calls themselves "
               f"\u201c{_who(sig)}\u201d, but {detail}. Treat it as unverified.")
    return Assessment(trust.UNKNOWN_SIGNER, checked, sig, unknown)


def _registry_state(vault: Any, sig: Signature) -> tuple[str, str]:
    from sync import consent_service
    from sync.errors import ChainError
    try:
        settings = consent_service.load_settings(vault)
    except ChainError:
        settings = None
    if settings is None:
        return NO_NETWORK, ("no consent network is set up to look them up and you have not confirmed their card")
    if not sig.address:
        return NOT_REGISTERED, "the note names no consent-network account to look up"
    try:
        state = consent_service.connect(settings).practitioner_state(sig.address, sig.did)
    except ChainError:
        return UNREACHABLE, ("the consent network could not be reached to look them up (medvault checks again "
                             "when it can)")
    if state == "active":
        return REGISTRY, ""
    if state == "inactive":
        return DEACTIVATED, "their registration as a practitioner was withdrawn"
    return NOT_REGISTERED, "no registered practitioner holds this key and you have not confirmed their card"


# --- the patient's side: cards they confirmed ------------------------------------------------------------------

def confirmed(vault: Any) -> list[dict]:
    """The clinicians' cards the patient confirmed (did, name, organisation, address, when)."""
    raw = vault.setting(CONFIRMED_SETTING)
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        value = []
    return [c for c in value if isinstance(c, dict) and isinstance(c.get("did"), str)] \
        if isinstance(value, list) else []


def confirm_card(vault: Any, card: Any) -> None:
    """Trust notes signed with this card's key as the clinician's (the patient checked the card in person)."""
    kept = [c for c in confirmed(vault) if c["did"] != card.did]
    kept.append({"did": card.did, "name": card.name, "organisation": getattr(card, "organisation", None),
                 "address": card.address, "confirmed_at": vault.now().isoformat(timespec="seconds")})
    vault.set_setting(CONFIRMED_SETTING, json.dumps(kept, sort_keys=True), change="confirm-card")


def forget_card(vault: Any, did: str) -> bool:
    kept = [c for c in confirmed(vault) if c["did"] != did]
    if len(kept) == len(confirmed(vault)):
        return False
    vault.set_setting(CONFIRMED_SETTING, json.dumps(kept, sort_keys=True), change="forget-card")
    return True


# --- the patient's side: importing --------------------------------------------------------------------------------

@dataclass
class Imported:
    reports: list[Any]
    assessment: Assessment
    audited: bool = False


def import_return(vault: Any, text: str, *, opts: Any, allow_local_http: bool = False, progress: Any = None,
                  cancel: Any = None) -> Imported:
    """Open a ``return`` link sealed to this vault, assess it and import it as a note of its own: its records get
    the assessed trust, it may add records but not replace any, and nothing it repeats gains trust from it."""
    from sync.receiver import open_link
    from vault.records.importer import ImportService
    keys = vault.identity_keys
    result = open_link(text.strip(), recipient="medvault", x25519_private=keys.x25519_private,
                       my_did=vault.identity.did, allow_local_http=allow_local_http)
    assessment = assess(vault, result.bundles, result.sender)
    options = replace(opts, trust=assessment.trust, received=assessment.provenance(), source_kind=NOTE_KIND,
                      adds_only=True)
    service = ImportService(vault, options)
    # the decrypted bytes as they came: nothing encoded again, and the source's hash is of the sender's bytes
    reports = [service.import_data(data, "note.json", progress, cancel) for data in result.payloads()]
    outcome = Imported(reports, assessment)
    fresh = [r for r in reports if not r.already_imported]
    if fresh:
        vault.audit("writeback_received", sources=[r.source_id for r in fresh], trust=assessment.trust,
                    checked=assessment.checked, added=sum(r.added for r in fresh))
        outcome.audited = True
    return outcome


@dataclass
class Recheck:
    checked: int = 0                                    # notes looked at again
    raised: list[int] = field(default_factory=list)     # sources now clinician-signed
    unreachable: bool = False


def recheck(vault: Any) -> Recheck:
    """Look up again the signers of notes imported as signed by an unknown key (the network was down, or the
    practitioner registered since): a signer now known makes that note's own records clinician-signed. The
    signature is checked again on the note as stored, never taken from what was noted at import."""
    from vault.records import store, trust
    out = Recheck()
    with vault.read() as conn:
        rows = conn.execute("SELECT id FROM rec_sources WHERE kind = ? AND trust = ?",
                            (NOTE_KIND, trust.UNKNOWN_SIGNER)).fetchall()
    for (source_id,) in rows:
        with vault.read() as conn:
            src = store.get_source(conn, source_id)
            bundle = json.loads(b"".join(store.read_payload(conn, source_id)))
        noted = ((src.verification or {}).get("received") or {}) if src else {}
        out.checked += 1
        now = assess(vault, [bundle], noted.get("signer"))
        if now.checked == UNREACHABLE:
            out.unreachable = True
        if now.trust != trust.CLINICIAN_SIGNED:
            continue
        verification = {**(src.verification or {}), "received": now.provenance()}
        with vault.transaction() as conn:
            conn.execute("UPDATE rec_sources SET trust = ?, verification = ? WHERE id = ?",
                         (now.trust, json.dumps(verification), source_id))
            # only what this note itself added: a record it merely repeated keeps the trust it had
            conn.execute("UPDATE rec_resources SET trust = ? WHERE source_id = ? AND trust = ?",
                         (now.trust, source_id, trust.UNKNOWN_SIGNER))
            vault.audit("writeback_recheck", conn=conn, source=source_id, trust=now.trust, checked=now.checked)
        out.raised.append(source_id)
    return out

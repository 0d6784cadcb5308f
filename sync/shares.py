"""Share create / list / revoke: the wiring from a selection of records to a published, recorded, revocable link.

One share = one FHIR Bundle (the selected records or an IPS document, plus the FHIR ``Consent`` describing the
grant), encrypted as an SHL JWE under a fresh key, published to a ``ContentStore`` under its CID, and handed over as
an open ``shlink:/`` (flag ``U``) or a ``medvault:/`` share sealed to one clinician's card. The vault keeps a row
per share (ids, dates, CID, consent id, what it holds in words, and the link itself so its QR can be shown again:
all inside the encrypted database, the link wiped at revoke) and audits "share"/"revoke" with ids only.

The consent chain is optional: with a ``chain_domain`` the patient's EIP-712 grant/revoke is signed and queued in
the vault's outbox in the same transaction as the share row; without one, nothing is queued and the link still
works (its receivers report that the chain could not be checked).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sync import jwe, links
from sync.errors import SyncError
from sync.ipfs_backend import ContentStore, EmbeddedContentStore
from vault import eventlog, jsonsafe, shares_store
from vault.shares_store import ACTIVE, BEARER, REVOKED, ShareRow, VaultBlobStorage
from vault.outbox_store import SqlOutboxStore

DEFAULT_GATEWAY = "http://127.0.0.1:8421"
GATEWAY_SETTING = "sharing.gateway_base"
ZERO_ADDRESS = "0x" + "00" * 20
# A revoke may sit in the outbox while the chain is unreachable; a year is long enough for it to be sent.
REVOKE_SIGNATURE_LIFETIME = 365 * 24 * 3600
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ShareError(SyncError):
    default_message = "The share could not be created."


class NothingToShare(ShareError):
    default_message = "Nothing in the vault matches that selection, so no share was created."


class ShareNotFound(ShareError):
    default_message = "There is no share with that id in this vault; 'medvault share list' shows them."


class BadExpiry(ShareError):
    default_message = "The expiry must be a number followed by s, m, h, d or w (for example 7d); nothing was shared."


@dataclass(frozen=True)
class Selection:
    """What to share: the IPS document, or records by type and/or by id (``Type/id`` or a bare id); ``exclude``
    ("Type/id") leaves records out whatever else chose them (the sensitive ones the patient did not put back)."""

    ips: bool = False
    types: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.ips == bool(self.types or self.ids):
            raise ValueError("a selection is either the IPS or types/ids, exactly one of the two")


@dataclass(frozen=True)
class Prepared:
    """A share's content before it is encrypted: what a preview shows is exactly what ``create_share`` sends."""

    bundle: dict
    resource_ids: list[str]      # "Type/id" of every record in the bundle
    refs: list[str]              # what the Consent's ``provision.data`` names


@dataclass(frozen=True)
class CreatedShare:
    id: str
    link: str
    cid: str
    url: str
    expires_at: int | None
    consent_id: str
    resource_ids: list[str]  # "Type/id" of every shared record (the Consent not included)
    outbox_id: int | None  # the queued chain grant, if a chain is configured


def parse_expiry(text: str) -> timedelta:
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise BadExpiry()
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def kept_in_vault(vault: Any, store: ContentStore) -> bool:
    """Whether ``store`` keeps its files in this vault's database, so a share's file can be written and deleted in
    the same transaction as the share's row (all or nothing, whatever moment the process dies)."""
    return (isinstance(store, EmbeddedContentStore) and isinstance(store.storage, VaultBlobStorage)
            and store.storage.vault is vault)


def embedded_store(vault: Any, gateway_base: str | None = None) -> EmbeddedContentStore:
    """The default backend: encrypted files in the vault's own database, served by ``medvault serve``."""
    return EmbeddedContentStore(VaultBlobStorage(vault), gateway_base or gateway_setting(vault))


BACKEND_SETTING = "sharing.backend"


def backend_setting(vault: Any) -> dict:
    """Where new share files go: ``{"kind": "embedded"}`` (the default) or ``{"kind": "ipfs", "api", "gateway"}``."""
    raw = vault.setting(BACKEND_SETTING)
    if raw is None:
        return {"kind": "embedded"}
    try:
        value = jsonsafe.loads(raw)
        if value.get("kind") in ("embedded", "ipfs"):
            return value
    except (ValueError, AttributeError):
        pass
    raise ShareError("The saved sharing backend setting is damaged; set it again with 'medvault share backend'.")


def set_backend_setting(vault: Any, value: dict) -> None:
    vault.set_setting(BACKEND_SETTING, jsonsafe.canonical(value).decode("utf-8"), kind=value["kind"])


def store_for(vault: Any, gateway_base: str | None = None) -> tuple[ContentStore, str]:
    """The configured backend's store and its name (kept with each share, so revoking unpins in the right place)."""
    setting = backend_setting(vault)
    if setting["kind"] == "ipfs":
        from sync.ipfs_node import IpfsNodeStore
        return IpfsNodeStore(setting["api"], gateway_base or setting["gateway"]), "ipfs"
    return embedded_store(vault, gateway_base), "embedded"


def gateway_setting(vault: Any) -> str:
    return vault.setting(GATEWAY_SETTING) or DEFAULT_GATEWAY


def set_gateway_setting(vault: Any, base: str) -> None:
    vault.set_setting(GATEWAY_SETTING, base)


# --- the content ------------------------------------------------------------------------------------------------

def prepare(vault: Any, selection: Selection, person: int | None = None) -> Prepared:
    """The bundle a share of ``selection`` would carry, from ``person``'s records only (None: the vault's own
    person), so one share never mixes two people."""
    return Prepared(*_selected_bundle(vault, selection, person))


def _selected_bundle(vault: Any, selection: Selection, person: int | None = None) -> tuple[dict, list[str], list[str]]:
    """(bundle, shared "Type/id" list, the references the Consent's ``provision.data`` names)."""
    from vault.records.export import _select, full_url
    with vault.read() as conn:
        if selection.ips:
            from vault.records.ips import build_ips
            from vault.records.errors import RecordsError
            try:
                doc = build_ips(conn, person=person, now=vault.now(), exclude=selection.exclude)
            except RecordsError as exc:
                raise NothingToShare(exc.user_message) from exc
            ids = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in doc["entry"]]
            refs = [e["fullUrl"] for e in doc["entry"]]
            return doc, ids, refs
        rows = [r for r in _select(conn, selection.types, selection.ids, person)
                if f"{r[0]}/{r[1]}" not in selection.exclude]
    if not rows:
        raise NothingToShare()
    entries = [{"fullUrl": full_url(t, i), "resource": jsonsafe.loads_stored(raw)} for t, i, raw in rows]
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection",
              "timestamp": vault.now().isoformat(timespec="seconds"), "entry": entries}
    return bundle, [f"{t}/{i}" for t, i, _ in rows], [f"{t}/{i}" for t, i, _ in rows]


def _patient_reference(bundle: dict) -> dict:
    for e in bundle.get("entry", []):
        r = e.get("resource", {})
        if r.get("resourceType") == "Patient":
            return {"reference": e.get("fullUrl") or f"Patient/{r.get('id')}"}
    for e in bundle.get("entry", []):
        subject = e.get("resource", {}).get("subject") or e.get("resource", {}).get("patient")
        if isinstance(subject, dict) and isinstance(subject.get("reference"), str):
            return {"reference": subject["reference"]}
    return {"display": "the vault's owner"}


def build_consent(*, share_id: str, patient_ref: dict, patient_did: str, grantee_did: str | None,
                  grantee_name: str | None, created: int, expires: int | None, refs: Iterable[str]) -> dict:
    """The FHIR R4 ``Consent`` describing the grant; its canonical JSON's SHA-256 is the on-chain scope hash."""
    if grantee_did:
        grantee: dict = {"identifier": {"system": "urn:ietf:rfc:3986", "value": grantee_did}}
        if grantee_name:
            grantee["display"] = grantee_name
    else:
        grantee = {"display": "Anyone holding this link (bearer)"}
    period: dict = {"start": _iso(created)}
    if expires is not None:
        period["end"] = _iso(expires)
    return {
        "resourceType": "Consent", "id": share_id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent Document"}]}],
        "patient": patient_ref,
        "dateTime": _iso(created),
        "performer": [{"identifier": {"system": "urn:ietf:rfc:3986", "value": patient_did}}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit", "period": period,
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                             "code": "IRCP"}]}, "reference": grantee}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                    "code": "access"}]}],
            "data": [{"meaning": "instance", "reference": {"reference": r}} for r in refs],
        },
    }


# --- the chain outbox -------------------------------------------------------------------------------------------

def _queue_grant(vault: Any, conn: Any, domain: Any, *, cid_bytes: bytes, grantee: str, expires: int | None,
                 scope: bytes, now: int) -> int:
    from sync import consent_sign as cs
    from sync.outbox import Outbox
    keys = vault.identity_keys
    grant = cs.Grant(consent_id=cid_bytes, patient=vault.identity.eth_address, grantee=grantee,
                     expires_at=expires if expires is not None else 2**64 - 1, scope_hash=scope,
                     nonce=_nonce(now), deadline=expires if expires is not None else now + REVOKE_SIGNATURE_LIFETIME)
    sig = cs.sign(keys.secp256k1_private, domain, grant)
    return Outbox(SqlOutboxStore(conn, own_transactions=False), clock=lambda: now).queue_grant(domain, grant, sig)


def _queue_revoke(vault: Any, conn: Any, domain: Any, *, cid_bytes: bytes, now: int) -> int:
    from sync import consent_sign as cs
    from sync.outbox import Outbox
    revoke = cs.Revoke(consent_id=cid_bytes, patient=vault.identity.eth_address, nonce=_nonce(now),
                       deadline=now + REVOKE_SIGNATURE_LIFETIME)
    sig = cs.sign(vault.identity_keys.secp256k1_private, domain, revoke)
    return Outbox(SqlOutboxStore(conn, own_transactions=False), clock=lambda: now).queue_revoke(domain, revoke, sig)


def _nonce(now: int) -> int:
    # The contract only needs nonces at or above the patient's floor; microseconds plus randomness keep a
    # patient's signatures distinct without a counter that a restored backup could rewind.
    return now * 1_000_000 + int.from_bytes(uuid.uuid4().bytes[:2], "big")


# --- create / list / revoke -------------------------------------------------------------------------------------

def create_share(vault: Any, selection: Selection, *, expires: timedelta | None, label: str | None = None,
                 recipient_card: links.Card | None = None, store: ContentStore | None = None,
                 gateway_base: str | None = None, backend: str = "embedded",
                 chain_domain: Any = None, person: int | None = None, prepared: Prepared | None = None,
                 what: str | None = None) -> CreatedShare:
    """Build, encrypt, publish and record one share; returns the link to hand over.

    ``prepared`` (from ``prepare``) is sent as it is, so what the patient previewed is what leaves; ``what``
    says in words what the share holds, for the patient's list of shares.

    ``store`` defaults to the embedded one (files inside the vault). ``gateway_base`` is where receivers fetch
    from (``<gateway_base>/ipfs/<cid>``); by default the store's own gateway URL. ``chain_domain``
    (``sync.consent_sign.Domain``) queues the patient-signed grant in the outbox; None means no chain configured.
    ``person`` is whose records are shared (None: the vault's own person; see ``vault.records.persons``).
    """
    if label is not None and len(label) > links.MAX_LABEL:
        raise ShareError(f"The label is longer than {links.MAX_LABEL} characters; nothing was shared.")
    now = _epoch(vault.now())
    exp = now + int(expires.total_seconds()) if expires is not None else None
    share_id = uuid.uuid4().hex[:12]
    bundle, resource_ids, refs = ((prepared.bundle, list(prepared.resource_ids), list(prepared.refs))
                                  if prepared is not None else _selected_bundle(vault, selection, person))
    if not resource_ids:
        raise NothingToShare()
    consent = build_consent(share_id=share_id, patient_ref=_patient_reference(bundle), patient_did=vault.identity.did,
                            grantee_did=recipient_card.did if recipient_card else None,
                            grantee_name=recipient_card.name if recipient_card else None,
                            created=now, expires=exp, refs=refs)
    bundle = dict(bundle, entry=[*bundle["entry"], {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": consent}])
    data, key = jwe.encrypt_bundle(bundle, key=jwe.new_key())

    if store is None:
        store, backend = store_for(vault, gateway_base)
    elif gateway_base and isinstance(store, EmbeddedContentStore):
        store.gateway_base = gateway_base
    in_vault = kept_in_vault(vault, store)
    cid = store.cid_for(data) if in_vault else store.add(data)
    url = f"{gateway_base.rstrip('/')}/ipfs/{cid}" if gateway_base else store.gateway_url(cid)
    try:
        # The link names the patient only when a consent is queued for the chain: receivers look the consent up
        # under that patient, never by its id alone.
        patient = vault.identity.eth_address if chain_domain is not None else None
        if recipient_card is None:
            link = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U", exp=exp, label=label,
                                                       patient=patient))
        else:
            link = links.build_directed_share(vault.identity_keys.ed25519_seed, recipient_card, url=url, key=key,
                                              exp=exp, label=label, iat=now, patient=patient)
        cid_bytes = links.consent_id(key)
        outbox_id = None
        with vault.transaction() as conn:
            if in_vault:
                shares_store.put_blob(conn, cid, data)
            shares_store.insert(conn, ShareRow(
                id=share_id, created_at=now, expires_at=exp, kind="directed" if recipient_card else "open",
                recipient=recipient_card.did if recipient_card else BEARER,
                recipient_name=recipient_card.name if recipient_card else None, label=label, cid=cid,
                backend=backend, url=url, consent_id=cid_bytes.hex(), resources=len(resource_ids), state=ACTIVE,
                revoked_at=None, link=link, what=what))
            if chain_domain is not None:
                from sync.consent_sign import scope_hash
                grantee = (recipient_card.address if recipient_card and recipient_card.address else ZERO_ADDRESS)
                outbox_id = _queue_grant(vault, conn, chain_domain, cid_bytes=cid_bytes, grantee=grantee,
                                         expires=exp, scope=scope_hash(consent), now=now)
            vault.audit("share", conn=conn, share=share_id, resources=len(resource_ids),
                        kind="directed" if recipient_card else "open", consent_id=cid_bytes.hex(),
                        queued=outbox_id is not None)
    except BaseException:
        # A file nobody can be given a link to must not stay published (one kept in the vault went with the
        # rolled-back transaction).
        if not in_vault:
            try:
                store.unpin(cid)
            except SyncError:
                pass
        raise
    eventlog.event("share_created", share_id=share_id, kind="directed" if recipient_card else "open",
                   resources=len(resource_ids))
    return CreatedShare(id=share_id, link=link, cid=cid, url=url, expires_at=exp, consent_id=cid_bytes.hex(),
                        resource_ids=resource_ids, outbox_id=outbox_id)


def list_shares(vault: Any) -> list[dict]:
    now = _epoch(vault.now())
    with vault.read() as conn:
        return [r.as_json(now) for r in shares_store.all_rows(conn)]


REVOKE_SENTENCE = ("Share {id} is revoked: its file is no longer served, so the link stops working. "
                   "Copies already fetched cannot be recalled: anyone who opened it before now may still have them.")
# An IPFS node drops an unpinned file only when it next clears its store, and other nodes may keep copies: the
# link can go on working from there, except for receivers that check the consent chain.
REVOKE_SENTENCE_IPFS = ("Share {id} is revoked: the IPFS node no longer keeps its file, but it may go on serving "
                        "it until the node clears unpinned files, and other IPFS nodes may hold copies; receivers "
                        "that check the consent network refuse it now. Copies already fetched cannot be recalled: "
                        "anyone who opened it before now may still have them.")


def revoke_share(vault: Any, share_id: str, *, store: ContentStore | None = None, chain_domain: Any = None) -> str:
    """Unpin, mark revoked, audit, queue the chain revoke when a chain is configured. Returns the sentence to show."""
    with vault.read() as conn:
        row = shares_store.get(conn, share_id)
    if row is None:
        raise ShareNotFound()
    if row.state == REVOKED:
        return (f"Share {share_id} was already revoked. "
                "Copies already fetched cannot be recalled: anyone who opened it before may still have them.")
    if store is None and row.backend == "embedded":
        store = embedded_store(vault)   # its files are in this vault whatever new shares now use
    if store is None:
        store, configured = store_for(vault)
        if row.backend != configured:
            raise ShareError(f"This share's file is kept by the {row.backend} backend, but medvault is now set to "
                             f"the {configured} one; switch back with 'medvault share backend' to revoke it. "
                             "Nothing was changed.")
    in_vault = kept_in_vault(vault, store)
    if not in_vault:
        # Another node's copy cannot join the vault's transaction: it goes first, so a crash in between leaves a
        # share that no longer serves (revoking again finishes it), never a revoked one still served.
        store.unpin(row.cid)
    now = _epoch(vault.now())
    with vault.transaction() as conn:
        if in_vault:
            shares_store.delete_blob(conn, row.cid)
        shares_store.mark_revoked(conn, share_id, now)
        outbox_id = None
        if chain_domain is not None:
            outbox_id = _queue_revoke(vault, conn, chain_domain, cid_bytes=bytes.fromhex(row.consent_id), now=now)
        vault.audit("revoke", conn=conn, share=share_id, consent_id=row.consent_id, queued=outbox_id is not None)
    eventlog.event("share_revoked", share_id=share_id)
    return (REVOKE_SENTENCE_IPFS if row.backend == "ipfs" else REVOKE_SENTENCE).format(id=share_id)


def share_link(vault: Any, share_id: str) -> str | None:
    """The link of a share, to show its QR again; None for a revoked share or one made before links were kept."""
    with vault.read() as conn:
        if shares_store.get(conn, share_id) is None:
            raise ShareNotFound()
        return shares_store.link(conn, share_id)


def store_named(vault: Any, kind: str) -> tuple[ContentStore, str]:
    """The store of the backend ``kind`` ("embedded" or "ipfs") for one share, whichever new shares use."""
    if kind == "embedded":
        return embedded_store(vault), "embedded"
    setting = backend_setting(vault)
    if kind != "ipfs" or setting["kind"] != "ipfs":
        raise ShareError("No IPFS node is set up for sharing; choose one in Settings, or share from this computer.")
    from sync.ipfs_node import IpfsNodeStore
    return IpfsNodeStore(setting["api"], setting["gateway"]), "ipfs"


def gateway_lookup(vault: Any):
    """``lookup(cid)`` for ``sync.gateway.Gateway``: only files of active, unexpired shares of this vault."""
    storage = VaultBlobStorage(vault)

    def lookup(cid: str) -> bytes | None:
        with vault.read() as conn:
            if not shares_store.servable(conn, cid, _epoch(vault.now())):
                return None
        return storage.get(cid)

    return lookup

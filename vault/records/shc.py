"""SMART Health Cards: ``.smart-health-card`` files, ``$health-card-issue`` Parameters, compact JWS text and
``shc:/`` numeric QR text (single or chunked ``shc:/i/n/...``).

All JOSE for cards lives here, done with ``cryptography`` directly: a card is ES256 over P-256 with a raw 64-byte
r||s signature and a raw-DEFLATE payload (``zip: DEF``), a profile narrow enough that checking each rule by hand is
clearer than configuring a general JOSE library to be that strict.

Trust: an issuer is trusted only if the user added its JWKS to the vault's trust store. A card from a trusted
issuer must verify, or it is refused (``CardSignatureInvalid``). A card from an unknown issuer cannot be checked: it is
stored as ``unverified`` and never shown as verified. Expiry and revocation (the issuer's CRL for the signing key,
matched on ``vc.rid``) are flags on the stored card; a revoked card's records are not counted as issuer-verified.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vault import jsonsafe
from vault.records import bundle, jsonutil, store
from vault.records.errors import CardInvalid, CardSignatureInvalid, ImportRejected, IssuerInvalid

MAX_JWS_CHARS = 1 << 20          # far above any real card; bounds work before any parsing
MAX_INFLATED = 4 << 20           # a DEFLATE bomb stops here
MAX_CARDS_PER_FILE = 100
# All the cards of one import together: a real card inflates to a few kilobytes, so 100 honest cards fit many times
# over, while 100 cards each just under MAX_INFLATED (and their millions of parsed values) do not.
MAX_INFLATED_PER_IMPORT = 16 << 20
HEALTH_CARD_TYPE = "https://smarthealth.cards#health-card"
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_SHC_CHUNK = re.compile(r"^shc:/(?:(\d+)/(\d+)/)?(\d*)$")
# A card is at most MAX_JWS_CHARS, and one QR code holds over a thousand of its characters.
MAX_QR_CHUNKS = 1000


def _b64d(part: str, what: str) -> bytes:
    if not _B64URL.match(part):
        raise CardInvalid(f"The health card's {what} is not base64url text; nothing was imported.")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, TypeError):
        raise CardInvalid(f"The health card's {what} is not base64url text; nothing was imported.") from None


# --- the trust store ------------------------------------------------------------------------------------------

class TrustStore:
    """Issuers the user trusts, with their signing keys and revocation lists, kept inside the vault."""

    def __init__(self, vault) -> None:
        self.vault = vault

    def issuer(self, iss: str) -> tuple[dict, dict] | None:
        with self.vault.read() as conn:
            row = conn.execute("SELECT jwks, crls FROM rec_issuers WHERE iss = ?", (iss,)).fetchone()
        return (jsonsafe.loads_stored(row[0]), jsonsafe.loads_stored(row[1])) if row else None

    def list(self) -> list[str]:
        with self.vault.read() as conn:
            return [r[0] for r in conn.execute("SELECT iss FROM rec_issuers ORDER BY iss")]

    def add(self, iss: str, jwks: bytes, crls: list[bytes] = ()) -> int:
        """Trust ``iss``; returns how many ES256 keys were taken. CRLs are matched to keys by their ``kid``."""
        if not re.match(r"^https://[^\s/]+(/[^\s]*)?$", iss) or iss.endswith("/"):
            raise IssuerInvalid("An issuer is named by its https URL without a trailing slash (the card's 'iss'); "
                                "no issuer was added.")
        keys = parse_jwks(jwks)
        crl_map: dict[str, dict] = {}
        for raw in crls:
            crl = jsonutil.loads(raw, "The revocation list")
            if not (isinstance(crl, dict) and isinstance(crl.get("kid"), str) and crl.get("method") == "rid"
                    and isinstance(crl.get("rids"), list) and all(isinstance(r, str) for r in crl["rids"])):
                raise IssuerInvalid("That revocation list is not a SMART Health Cards CRL (kid, method 'rid', "
                                    "rids); no issuer was added.")
            if crl["kid"] not in keys:
                raise IssuerInvalid("That revocation list is for a key the issuer's JWKS does not have; "
                                    "no issuer was added.")
            crl_map[crl["kid"]] = {"ctr": crl.get("ctr"), "rids": crl["rids"]}
        with self.vault.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO rec_issuers (iss, jwks, crls, added_at) VALUES (?, ?, ?, ?)",
                         (iss, jsonsafe.dumps_text(keys), jsonsafe.dumps_text(crl_map), store.utc_now()))
            self.vault.audit("settings", conn=conn, action="issuer_add", iss_sha256=hashlib.sha256(iss.encode()).hexdigest(),
                             keys=len(keys), crls=len(crl_map))
        return len(keys)

    def add_folder(self, iss: str, folder: str | Path) -> int:
        """An issuer's published layout: ``.well-known/jwks.json`` and ``.well-known/crl/<kid>.json``."""
        folder = Path(folder)
        wk = folder / ".well-known" if (folder / ".well-known").is_dir() else folder
        try:
            jwks = (wk / "jwks.json").read_bytes()
            crls = [p.read_bytes() for p in sorted((wk / "crl").glob("*.json"))] if (wk / "crl").is_dir() else []
        except OSError:
            raise IssuerInvalid("The issuer folder has no readable .well-known/jwks.json; no issuer was added.") \
                from None
        return self.add(iss, jwks, crls)


def parse_jwks(raw: bytes) -> dict[str, dict]:
    """kid -> public JWK, keeping only keys usable for SMART Health Cards (EC P-256, ES256, signing)."""
    doc = jsonutil.loads(raw, "The key set")
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise IssuerInvalid()
    keys: dict[str, dict] = {}
    for k in doc["keys"]:
        if not isinstance(k, dict) or "d" in k:
            if isinstance(k, dict) and "d" in k:
                raise IssuerInvalid("That key set holds a private key; add the issuer's public JWKS only.")
            continue
        if (k.get("kty"), k.get("crv"), k.get("alg", "ES256"), k.get("use", "sig")) != ("EC", "P-256", "ES256", "sig"):
            continue
        if not isinstance(k.get("kid"), str) or not isinstance(k.get("x"), str) or not isinstance(k.get("y"), str):
            continue
        try:
            _public_key(k)
        except (ValueError, CardInvalid):
            continue
        keys[k["kid"]] = {f: k[f] for f in ("kty", "crv", "x", "y", "kid") if f in k} | (
            {"crlVersion": k["crlVersion"]} if isinstance(k.get("crlVersion"), int) else {})
    if not keys:
        raise IssuerInvalid()
    return keys


def _public_key(jwk: dict) -> ec.EllipticCurvePublicKey:
    x, y = _b64d(jwk["x"], "key"), _b64d(jwk["y"], "key")
    if len(x) != 32 or len(y) != 32:
        raise ValueError("not a P-256 point")
    return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                         ec.SECP256R1()).public_key()


# --- reading cards --------------------------------------------------------------------------------------------

def jws_from_numeric(text: str) -> list[str]:
    """Decode ``shc:/`` lines (one card, or the chunks of one card in any order) into compact JWS strings."""
    lines = [ln.strip() for ln in text.replace("\ufeff", "").splitlines() if ln.strip()]
    if not lines:
        raise CardInvalid("The QR text is empty; nothing was imported.")
    singles: list[str] = []
    chunks: dict[int, str] = {}
    total = None
    for line in lines:
        m = _SHC_CHUNK.match(line)
        if not m:
            raise CardInvalid("The QR text is not a SMART Health Card ('shc:/' followed by digits only); "
                              "nothing was imported.")
        digits = m.group(3)
        if not digits or len(digits) % 2:
            raise CardInvalid("The QR text has an odd number of digits, so it was cut or altered; "
                              "nothing was imported.")
        decoded = []
        for i in range(0, len(digits), 2):
            v = int(digits[i:i + 2])
            if v > 77:
                raise CardInvalid("The QR text holds a number outside the SMART Health Card alphabet; "
                                  "nothing was imported.")
            decoded.append(chr(v + 45))
        part = "".join(decoded)
        if m.group(1) is None:
            singles.append(part)
            continue
        if len(m.group(1)) > 4 or len(m.group(2)) > 4:
            raise CardInvalid("The QR chunk numbering is not that of a health card split over a few QR codes; "
                              "nothing was imported.")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 2 or count > MAX_QR_CHUNKS or not 1 <= index <= count or (total is not None and count != total):
            raise CardInvalid("The QR chunk numbering is inconsistent (like 'shc:/4/3/...'); nothing was imported.")
        if index in chunks:
            raise CardInvalid("The same QR chunk was given twice; nothing was imported.")
        total = count
        chunks[index] = part
    if chunks:
        if singles:
            raise CardInvalid("The QR text mixes a whole card with chunks of another; nothing was imported.")
        missing = [i for i in range(1, (total or 0) + 1) if i not in chunks]
        if missing:
            raise CardInvalid(f"The card was split over {total} QR codes but {len(missing)} of them are missing; "
                              "scan all of them. Nothing was imported.")
        return ["".join(chunks[i] for i in range(1, (total or 0) + 1))]
    return singles


@dataclass
class Card:
    jws: str
    payload: dict
    payload_sha256: str
    issuer: str
    kid: str
    status: str                          # verified | unverified
    flags: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        what = {"verified": "verified from a trusted issuer", "unverified": "NOT verified"}[self.status]
        notes = {"unknown-issuer": "its issuer is not in your trusted issuers", "expired": "it has expired",
                 "revoked": "the issuer has revoked it", "not-yet-valid": "it is dated in the future"}
        extra = [notes[f] for f in self.flags if f in notes]
        sentence = f"Health card {what}" + (f" ({'; '.join(extra)})" if extra else "") + "."
        return {"status": self.status, "flags": list(self.flags), "issuer": self.issuer, "kid": self.kid,
                "sentence": sentence, "_jws": self.jws}


def verify_jws(jws: str, trust: TrustStore, now: datetime, budget: jsonsafe.Budget | None = None) -> Card:
    """Check one card. ``budget`` is shared by every card of one import: what each inflates to and the values
    parsed from it are charged to it before the next card is read."""
    budget = budget or _card_budget()
    jws = jws.strip().lstrip("\ufeff").strip()
    if len(jws) > MAX_JWS_CHARS:
        raise CardInvalid("The health card is far larger than any real card; nothing was imported.")
    parts = jws.split(".")
    if len(parts) != 3:
        raise CardInvalid("The health card is not a compact JWS (three dot-separated parts); nothing was imported.")
    header = jsonutil.loads(_b64d(parts[0], "header"), "The health card's header")
    if not isinstance(header, dict):
        raise CardInvalid("The health card's header is not a JSON object; nothing was imported.")
    if header.get("alg") != "ES256":
        raise CardInvalid("The health card is not signed with ES256 as SMART Health Cards require; "
                          "nothing was imported.")
    if header.get("zip") != "DEF":
        raise CardInvalid("The health card's payload is not marked as compressed ('zip': 'DEF'), as SMART Health "
                          "Cards require; nothing was imported.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CardInvalid("The health card does not say which key signed it (no 'kid'); nothing was imported.")
    compressed = _b64d(parts[1], "payload")
    room = min(MAX_INFLATED, budget.remaining_bytes)
    too_much = ("The health card's payload expands to more than a card can hold; nothing was imported."
                if room == MAX_INFLATED else
                "The health cards in this import expand to more than medvault accepts at once; nothing was imported.")
    if room <= 0:  # (zlib reads a max_length of 0 as "no limit")
        raise CardInvalid(too_much)
    try:
        d = zlib.decompressobj(-15)
        raw = d.decompress(compressed, room)
        if d.unconsumed_tail:
            raise CardInvalid(too_much)
    except zlib.error:
        raise CardInvalid("The health card's payload is not DEFLATE-compressed as declared; "
                          "nothing was imported.") from None
    budget.take_bytes(len(raw))
    payload = jsonutil.loads(raw, "The health card's payload", budget=budget)
    if not isinstance(payload, dict) or not isinstance(payload.get("iss"), str):
        raise CardInvalid("The health card's payload has no issuer ('iss'); nothing was imported.")
    vc = payload.get("vc")
    if not isinstance(vc, dict) or not isinstance(vc.get("type"), list) or HEALTH_CARD_TYPE not in vc["type"]:
        raise CardInvalid("The card is not marked as a SMART Health Card (vc.type); nothing was imported.")
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict) or not isinstance(subject.get("fhirBundle"), dict):
        raise CardInvalid("The health card holds no FHIR Bundle; nothing was imported.")
    signature = _b64d(parts[2], "signature")
    iss = payload["iss"]
    flags: list[str] = []
    known = trust.issuer(iss)
    if known is None:
        status = "unverified"
        flags.append("unknown-issuer")
    else:
        keys, crls = known
        if kid not in keys:
            raise CardSignatureInvalid("The health card names its issuer but was signed with a key that issuer does not "
                                   "publish, so it may be forged; nothing was imported.")
        if len(signature) != 64:
            raise CardSignatureInvalid("The health card's signature is not a raw ES256 signature (64 bytes), so it "
                                   "does not verify; nothing was imported.")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            _public_key(keys[kid]).verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise CardSignatureInvalid() from None
        status = "verified"
        rid = vc.get("rid")
        crl = crls.get(kid)
        if isinstance(rid, str) and crl:
            for entry in crl["rids"]:
                base, _, _ts = entry.partition(".")
                # A timestamp suffix narrows a revocation to cards signed before it. We still flag a later card
                # with a revoked id: a false "revoked" costs a patient a question, a false "valid" costs trust.
                if base == rid:
                    flags.append("revoked")
                    break
    now_ts = now.timestamp()
    exp, nbf = payload.get("exp"), payload.get("nbf")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp < now_ts:
        flags.append("expired")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now_ts + 300:
        flags.append("not-yet-valid")
    if "revoked" in flags or "not-yet-valid" in flags:
        status = "unverified"
    return Card(jws, payload, hashlib.sha256(raw).hexdigest(), iss, kid, status, flags)


def _card_budget() -> jsonsafe.Budget:
    return jsonsafe.Budget(max_bytes=MAX_INFLATED_PER_IMPORT)


def _entries_of_card(card: Card, offset: int) -> list[bundle.Entry]:
    fb = card.payload["vc"]["credentialSubject"]["fhirBundle"]
    entries, _ = bundle.entries_of(fb)
    if fb.get("resourceType") != "Bundle" or not entries:
        raise CardInvalid("The health card's FHIR Bundle is empty; nothing was imported.")
    # ids from the card's own payload, so the same card from a file, a QR or a link dedupes
    bundle.assign_ids(entries, card.payload_sha256)
    bundle.resolve_references(entries, lambda _u: None, lambda *_a: [])
    for n, e in enumerate(entries):
        e.index = offset + n + 1
        e.full_url = None  # resource:N names are card-local and must not resolve later imports
    return entries


def _prepare(jws_list: list[str], trust: TrustStore, now: datetime) -> bundle.Prepared:
    if not jws_list:
        raise CardInvalid("The file holds no health card; nothing was imported.")
    if len(jws_list) > MAX_CARDS_PER_FILE:
        raise CardInvalid("The file holds more health cards than medvault imports at once; nothing was imported.")
    budget = _card_budget()
    cards = [verify_jws(j, trust, now, budget) for j in jws_list]
    entries: list[bundle.Entry] = []
    for card in cards:
        entries.extend(_entries_of_card(card, len(entries)))
    all_verified = all(c.status == "verified" for c in cards)
    verification = {"cards": [{k: v for k, v in c.summary().items() if k not in ("_jws", "sentence")}
                              for c in cards]}
    return bundle.Prepared("smart-health-card", entries, "issuer-verified" if all_verified else "unverified",
                     verification=verification, cards=[c.summary() for c in cards])


def prepare_card_file(doc: dict, trust: TrustStore, now: datetime, _payload_sha: str = ""):
    """A ``.smart-health-card`` file, or the Parameters a ``$health-card-issue`` operation returns."""
    if doc.get("resourceType") == "Parameters":
        params = doc.get("parameter") if isinstance(doc.get("parameter"), list) else []
        vcs = [p.get("valueString") for p in params
               if isinstance(p, dict) and p.get("name") == "verifiableCredential"]
    else:
        vcs = doc.get("verifiableCredential")
    if not isinstance(vcs, list) or not all(isinstance(v, str) for v in vcs):
        raise CardInvalid("The health card file's 'verifiableCredential' is not a list of JWS strings; "
                          "nothing was imported.")
    return _prepare(vcs, trust, now)


def prepare_text(data: bytes, trust: TrustStore, now: datetime, _payload_sha: str = ""):
    """Pasted or scanned text: ``shc:/`` numeric QR content, or bare compact JWS (one per line)."""
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise CardInvalid("The card text is not UTF-8; nothing was imported.") from None
    if text[:5].lower() == "shc:/":
        return _prepare(jws_from_numeric(text), trust, now)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return _prepare(lines, trust, now)


def is_card_json(doc: object) -> bool:
    return isinstance(doc, dict) and ("verifiableCredential" in doc or (
        doc.get("resourceType") == "Parameters" and any(
            isinstance(p, dict) and p.get("name") == "verifiableCredential"
            for p in (doc.get("parameter") if isinstance(doc.get("parameter"), list) else []))))


__all__ = ["TrustStore", "Card", "verify_jws", "jws_from_numeric", "parse_jwks", "prepare_card_file",
           "prepare_text", "is_card_json", "ImportRejected"]

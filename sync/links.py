"""Share links: SMART Health Links (``shlink:/``) and medvault's own signed links (``medvault:/``).

``shlink:/`` follows the SHL specification exactly so any SHL viewer can open an open share. ``medvault:/`` exists
because a directed share needs the recipient's private key to open, which no SHL viewer has: it carries the share key
sealed to the recipient and is signed by its sender, so a forged or altered link is refused before any network
access. Formats are described byte by byte in ``docs/share-formats.md``.

Parsing never checks expiry (that needs the caller's clock; see ``sync.receiver``) and never touches the network.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Union
from urllib.parse import urlsplit

from sync.errors import LinkInvalid, LinkSignatureInvalid, LinkUnsupported, ShareNotForYou
from vault import crypto, jsonsafe
from vault.identity import did_key_ed25519
from vault.multiformats import b58decode

SHL_PREFIX = "shlink:/"
MV_PREFIX = "medvault:/"
SHL_VERSION = 1
MV_VERSION = 1
MAX_URL = 128
MAX_LABEL = 80
KEY_B64U_LEN = 43
# Bounds the work a pasted or scanned link can cause; a QR code holds at most about 3 KB anyway.
MAX_LINK_CHARS = 8192
# Distinct purpose string so a link signature can never be confused with any other Ed25519 signature we make.
SIGNATURE_CONTEXT = b"medvault/link/v1\n"
MV_TYPES = ("share", "card", "return")
_FLAG_LETTERS = set("LPU")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
# Epoch seconds beyond this are far-future dates; the SHL spec's own example writes milliseconds, which land here.
_MS_THRESHOLD = 10**11
# The SHL payload member naming the patient whose consent the link's id refers to on the consent chain. It is a
# medvault extension (other SHL viewers ignore members they do not know), namespaced so that a future member of the
# specification cannot collide with it.
SHL_PATIENT_MEMBER = "medvaultPatient"


CONSENT_PURPOSE = b"medvault/consent/v1"


def consent_id(share_key: bytes) -> bytes:
    """How a link finds its consent on chain without the CID being there: only link holders can compute it."""
    return crypto.mac(share_key, CONSENT_PURPOSE)


# --- encodings ---------------------------------------------------------------------------------------------------

def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(obj: dict) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte string signatures cover (the same bytes the standard library's
    ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` gives; links hold no floats)."""
    return jsonsafe.canonical(obj)


_ED25519_MULTICODEC = b"\xed\x01"


def did_key_from_ed25519(public: bytes) -> str:
    return did_key_ed25519(public)


def ed25519_from_did_key(did: str) -> bytes:
    if not isinstance(did, str) or not did.startswith("did:key:z") or len(did) > 80:
        raise LinkInvalid("The sender's identity in this link is not a valid did:key.")
    try:
        raw = b58decode(did[len("did:key:z"):])
    except ValueError as exc:
        raise LinkInvalid("The sender's identity in this link is not a valid did:key.") from exc
    if len(raw) != 34 or raw[:2] != _ED25519_MULTICODEC:
        raise LinkUnsupported("The identity in this link is not an Ed25519 did:key, which medvault requires.")
    return raw[2:]


# --- SMART Health Links ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShlPayload:
    url: str
    key: bytes
    flag: str = ""
    exp: int | None = None
    label: str | None = None
    v: int = SHL_VERSION
    # The chain address of the patient whose consent covers this share; None when the share has no consent on
    # a chain. Link holders can compute the consent id, so the id is only ever looked up together with this.
    patient: str | None = None

    @property
    def direct_file(self) -> bool:
        return "U" in self.flag

    @property
    def needs_passcode(self) -> bool:
        return "P" in self.flag



def _check_flag(flag: object) -> str:
    if not isinstance(flag, str):
        raise LinkInvalid("This link's flags are not text, so the link is damaged.")
    if not set(flag) <= _FLAG_LETTERS or len(set(flag)) != len(flag):
        raise LinkUnsupported("This link uses options (flags) that medvault does not understand.")
    if "U" in flag and "P" in flag:
        raise LinkInvalid("This link is invalid: a direct-file link cannot also require a passcode.")
    return "".join(sorted(flag))


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise LinkInvalid("This link has no address for the shared file.")
    if len(url) > MAX_URL:
        raise LinkInvalid("This link's address is longer than SMART Health Links allow.")
    if not (url.startswith("https://") or url.startswith("http://")):
        raise LinkUnsupported("This link's address is not a web address medvault can fetch.")
    if not fetch_address_ok(url):
        raise LinkInvalid("This link's address is not a valid web address, so the link is damaged.")
    return url


def fetch_address_ok(url: str) -> bool:
    """Printable ASCII without spaces (RFC 3986), and a host part that parses: the HTTP client refuses anything
    else with its own exceptions, after the link was already accepted."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return False
    try:
        urlsplit(url).port
    except ValueError:
        return False
    return True


def check_url(url: str) -> str:
    """Validate a share URL exactly as links do (http(s), at most 128 characters); raises ``LinkInvalid``."""
    return _check_url(url)


def _check_label(label: object) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str):
        raise LinkInvalid("This link's label is not text, so the link is damaged.")
    if len(label) > MAX_LABEL:
        raise LinkInvalid("This link's label is longer than SMART Health Links allow.")
    return label


def _check_exp(exp: object) -> int | None:
    if exp is None:
        return None
    if isinstance(exp, bool):
        raise LinkInvalid("This link's expiry time is not a number, so the link is damaged.")
    if isinstance(exp, str):
        if not re.fullmatch(r"[0-9]{1,20}(\.[0-9]+)?", exp):
            raise LinkInvalid("This link's expiry time is not a number, so the link is damaged.")
        exp = float(exp) if "." in exp else int(exp)
    if not isinstance(exp, (int, float)) or exp < 0 or (isinstance(exp, float) and not math.isfinite(exp)):
        raise LinkInvalid("This link's expiry time is not a number, so the link is damaged.")
    value = int(exp)
    if value >= _MS_THRESHOLD:
        value //= 1000
    if value >= _MS_THRESHOLD:
        # still this large in seconds (after the year 5138): written back into a link it would read as
        # milliseconds, a different date, so it is no expiry a link can carry
        raise LinkInvalid("This link's expiry time is not a date medvault can show, so the link is damaged.")
    return value


def _check_patient(patient: object) -> str | None:
    if patient is None:
        return None
    if not isinstance(patient, str) or not _ADDRESS_RE.match(patient):
        raise LinkInvalid("This link names its patient with something that is not a chain address, so the link "
                          "is damaged.")
    return patient


def _check_key(key: object) -> bytes:
    if not isinstance(key, str) or len(key) != KEY_B64U_LEN:
        raise LinkInvalid("This link's key is not 43 base64url characters, so the link is damaged.")
    try:
        raw = b64u_decode(key)
    except (ValueError, binascii.Error) as exc:
        raise LinkInvalid("This link's key is not valid base64url, so the link is damaged.") from exc
    if len(raw) != 32:
        raise LinkInvalid("This link's key is not 32 bytes, so the link is damaged.")
    return raw


def build_shlink(payload: ShlPayload) -> str:
    """``shlink:/`` + base64url(minified JSON). Validates exactly as parsing does, so we never emit a link we refuse."""
    obj: dict = {"url": _check_url(payload.url), "key": b64u_encode(payload.key)}
    _check_key(obj["key"])
    if payload.exp is not None:
        if isinstance(payload.exp, bool) or not isinstance(payload.exp, int) or not 0 <= payload.exp < _MS_THRESHOLD:
            raise ValueError("exp must be integer epoch seconds (before the year 5138)")
        obj["exp"] = payload.exp
    if payload.flag:
        obj["flag"] = _check_flag(payload.flag)
    if payload.label is not None:
        obj["label"] = _check_label(payload.label)
    if payload.patient is not None:
        obj[SHL_PATIENT_MEMBER] = _check_patient(payload.patient)
    obj["v"] = SHL_VERSION
    return SHL_PREFIX + b64u_encode(jsonsafe.dumps(obj))


def _decode_json_payload(encoded: str, what: str) -> dict:
    try:
        obj = jsonsafe.loads(b64u_decode(encoded))
    except jsonsafe.JsonRefused as exc:
        if "too large" in exc.reason:
            # the only numbers a link carries are times: one past any float is no date
            raise LinkInvalid(f"This {what}'s expiry time is not a number, so the link is damaged.") from exc
        raise LinkInvalid(f"This {what} is damaged: its content cannot be decoded.") from exc
    except (ValueError, binascii.Error) as exc:
        raise LinkInvalid(f"This {what} is damaged: its content cannot be decoded.") from exc
    if not isinstance(obj, dict):
        raise LinkInvalid(f"This {what} is damaged: its content is not a JSON object.")
    return obj


def parse_shlink(text: str) -> ShlPayload:
    """Parse a bare ``shlink:/...`` or a viewer link ending in ``#shlink:/...``."""
    text = _bounded(text)
    if text.startswith(SHL_PREFIX):
        encoded = text[len(SHL_PREFIX):]
    elif "#" + SHL_PREFIX in text:
        encoded = text.split("#" + SHL_PREFIX, 1)[1]
    else:
        raise LinkUnsupported("This is not a SMART Health Link.")
    obj = _decode_json_payload(encoded, "SMART Health Link")
    v = obj.get("v", SHL_VERSION)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise LinkInvalid("This SMART Health Link has an invalid version number.")
    if v > SHL_VERSION:
        raise LinkUnsupported("This SMART Health Link uses a newer version than medvault supports; update medvault.")
    return ShlPayload(url=_check_url(obj.get("url")), key=_check_key(obj.get("key")),
                      flag=_check_flag(obj.get("flag", "")),
                      exp=_check_exp(obj.get("exp")), label=_check_label(obj.get("label")), v=v,
                      patient=_check_patient(obj.get(SHL_PATIENT_MEMBER)))


def _bounded(text: str) -> str:
    if not isinstance(text, str):
        raise LinkInvalid("This link is not text.")
    text = text.strip()
    if len(text) > MAX_LINK_CHARS:
        raise LinkInvalid("This link is far longer than any share link, so it was not read.")
    return text


# --- medvault:/ links --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Card:
    """An identity: who a directed share can be sealed to, and who signed a link."""

    did: str
    ed25519_public: bytes
    x25519_public: bytes
    address: str | None
    name: str
    organisation: str | None = None     # a clinician's practice or hospital, as they wrote it on their card


@dataclass(frozen=True)
class SealedShare:
    """A directed share or a return note: where the file is, and its key sealed to one recipient."""

    to: str
    url: str
    exp: int | None
    label: str | None
    sealed_key: bytes
    patient: str | None = None  # as in ShlPayload: whose consent on the chain covers the share


@dataclass(frozen=True)
class MedvaultLink:
    type: str
    v: int
    sender: str
    iat: int
    body: Union[Card, SealedShare]


def _sign(seed: bytes, link_type: str, body: dict, iat: int) -> str:
    sender = did_key_from_ed25519(crypto.ed25519_public(seed))
    envelope = {"t": link_type, "v": MV_VERSION, "from": sender, "iat": int(iat), "body": body}
    sig = crypto.ed25519_sign(seed, SIGNATURE_CONTEXT + canonical_json(envelope))
    envelope["sig"] = b64u_encode(sig)
    return MV_PREFIX + b64u_encode(canonical_json(envelope))


def build_card(seed: bytes, *, name: str, address: str | None, iat: int, organisation: str | None = None) -> str:
    """A self-signed identity card: did:key, its X25519 key, chain address, display name, and optionally the
    organisation a clinician works for (``org``; cards without it stay byte-identical to older ones)."""
    if not isinstance(name, str) or not name or len(name) > MAX_LABEL:
        raise ValueError(f"card name must be 1..{MAX_LABEL} characters")
    if organisation is not None and (not isinstance(organisation, str) or not organisation
                                     or len(organisation) > MAX_LABEL):
        raise ValueError(f"card organisation must be 1..{MAX_LABEL} characters")
    if address is not None and not _ADDRESS_RE.match(address):
        raise ValueError("chain address must be 0x followed by 40 hex digits")
    x_pub = crypto.x25519_public_from_ed25519(crypto.ed25519_public(seed))
    body = {"name": name, "address": address, "x25519": b64u_encode(x_pub)}
    if organisation is not None:
        body["org"] = organisation
    return _sign(seed, "card", body, iat)


def _build_sealed(link_type: str, seed: bytes, recipient: Card, *, url: str, key: bytes, exp: int | None,
                  label: str | None, iat: int, patient: str | None = None) -> str:
    if len(key) != 32:
        raise ValueError("share keys are 32 bytes")
    body = {"to": recipient.did, "url": _check_url(url), "exp": exp, "label": _check_label(label),
            "key": b64u_encode(crypto.seal_to(recipient.x25519_public, key))}
    if patient is not None:
        body["patient"] = _check_patient(patient)
    return _sign(seed, link_type, body, iat)


def build_directed_share(seed: bytes, recipient: Card, *, url: str, key: bytes, exp: int | None,
                         label: str | None, iat: int, patient: str | None = None) -> str:
    """A share only ``recipient`` can open: the SHL file key sealed to their card's X25519 key. ``patient`` is
    the chain address whose consent covers it, when one was queued."""
    return _build_sealed("share", seed, recipient, url=url, key=key, exp=exp, label=label, iat=iat,
                         patient=patient)


def build_return(seed: bytes, recipient: Card, *, url: str, key: bytes, exp: int | None, label: str | None,
                 iat: int) -> str:
    """A clinician's signed note handed back to the patient; same shape as a directed share."""
    return _build_sealed("return", seed, recipient, url=url, key=key, exp=exp, label=label, iat=iat)


def _field(body: dict, name: str, kind: type, *, optional: bool = False):
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise LinkInvalid(f"This medvault link is damaged: its '{name}' field is missing or of the wrong kind.")
    return value


def parse_medvault(text: str) -> MedvaultLink:
    """Parse and verify a ``medvault:/`` link. The signature is checked before any field is trusted."""
    text = _bounded(text)
    if not text.startswith(MV_PREFIX):
        raise LinkUnsupported("This is not a medvault link.")
    envelope = _decode_json_payload(text[len(MV_PREFIX):], "medvault link")
    v = envelope.get("v")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise LinkInvalid("This medvault link has an invalid version number.")
    if v > MV_VERSION:
        raise LinkUnsupported("This medvault link comes from a newer version of medvault; update to open it.")
    link_type = envelope.get("t")
    if link_type not in MV_TYPES:
        raise LinkUnsupported("This medvault link is of a kind this version does not know.")
    sender = _field(envelope, "from", str)
    sig_text = _field(envelope, "sig", str)
    iat = _field(envelope, "iat", int)
    body = _field(envelope, "body", dict)
    if set(envelope) != {"t", "v", "from", "iat", "body", "sig"}:
        raise LinkInvalid("This medvault link is damaged: it has unexpected fields.")
    public = ed25519_from_did_key(sender)
    try:
        sig = b64u_decode(sig_text)
    except (ValueError, binascii.Error) as exc:
        raise LinkSignatureInvalid() from exc
    unsigned = {k: envelope[k] for k in ("t", "v", "from", "iat", "body")}
    try:
        signed_bytes = SIGNATURE_CONTEXT + canonical_json(unsigned)
    except ValueError as exc:
        raise LinkInvalid("This medvault link is damaged: it contains numbers that cannot be signed.") from exc
    if len(sig) != 64 or not crypto.ed25519_verify(public, signed_bytes, sig):
        raise LinkSignatureInvalid()

    if link_type == "card":
        x_text = _field(body, "x25519", str)
        try:
            x_pub = b64u_decode(x_text)
        except (ValueError, binascii.Error) as exc:
            raise LinkInvalid("This identity card is damaged: its encryption key is not base64url.") from exc
        # The X25519 key must be the one derived from the signing key; otherwise a card could redirect shares.
        if x_pub != crypto.x25519_public_from_ed25519(public):
            raise LinkSignatureInvalid("This identity card's encryption key does not belong to its signer.")
        address = _field(body, "address", str, optional=True)
        if address is not None and not _ADDRESS_RE.match(address):
            raise LinkInvalid("This identity card's chain address is not a valid address.")
        name = _field(body, "name", str)
        if not name or len(name) > MAX_LABEL:
            raise LinkInvalid("This identity card's name is empty or too long.")
        org = _field(body, "org", str, optional=True)
        if org is not None and (not org or len(org) > MAX_LABEL):
            raise LinkInvalid("This identity card's organisation is empty or too long.")
        parsed: Union[Card, SealedShare] = Card(did=sender, ed25519_public=public, x25519_public=x_pub,
                                                address=address, name=name, organisation=org)
    else:
        to = _field(body, "to", str)
        ed25519_from_did_key(to)
        try:
            sealed = b64u_decode(_field(body, "key", str))
        except (ValueError, binascii.Error) as exc:
            raise LinkInvalid("This share link is damaged: its sealed key is not base64url.") from exc
        if len(sealed) != 32 + 48:  # ephemeral X25519 key + Poly1305 tag + 32-byte share key
            raise LinkInvalid("This share link is damaged: its sealed key has the wrong length.")
        parsed = SealedShare(to=to, url=_check_url(body.get("url")), exp=_check_exp(body.get("exp")),
                             label=_check_label(body.get("label")), sealed_key=sealed,
                             patient=_check_patient(body.get("patient")))
    return MedvaultLink(type=link_type, v=v, sender=sender, iat=iat, body=parsed)


def card_from_link(text: str) -> Card:
    link = parse_medvault(text)
    if link.type != "card":
        raise LinkInvalid("This medvault link is not an identity card.")
    assert isinstance(link.body, Card)
    return link.body


def unseal_share_key(share: SealedShare, x25519_private: bytes, *, my_did: str | None = None) -> bytes:
    """Open the sealed share key with the recipient's X25519 private key."""
    if my_did is not None and share.to != my_did:
        raise ShareNotForYou()
    try:
        key = crypto.unseal(x25519_private, share.sealed_key)
    except crypto.CryptoError as exc:
        raise ShareNotForYou() from exc
    if len(key) != 32:
        raise LinkInvalid("This share link is damaged: its sealed key is not a share key.")
    return key


def parse_link(text: str) -> Union[ShlPayload, MedvaultLink]:
    """Any link a user may paste or scan: bare or viewer-prefixed ``shlink:/``, or ``medvault:/``."""
    text = _bounded(text)
    if text.startswith(MV_PREFIX):
        return parse_medvault(text)
    if text.startswith(SHL_PREFIX) or "#" + SHL_PREFIX in text:
        return parse_shlink(text)
    raise LinkUnsupported("This is not a SMART Health Link or a medvault link.")

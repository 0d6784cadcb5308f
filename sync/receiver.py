"""Open any share: a ``shlink:/`` link (bare or behind a viewer), a ``medvault:/`` share or return link, or a QR image.

The receiver fetches, verifies and decrypts, and returns what it verified alongside the records. It writes nothing
anywhere: saving into a vault is the caller's decision, after the user has seen the result.

Order of checks (cheapest and most decisive first, and nothing fetched before the link itself is trusted):
link syntax and version -> medvault signature -> expiry -> sealed key (directed shares) -> consent on chain (when a
checker is given) -> fetch (bounded) -> CID of the fetched bytes (when the URL names one) -> decryption -> content.
"""

from __future__ import annotations

import base64
import re
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Union
from urllib.parse import urlsplit

from vault import jsonsafe
from sync import fetch, jwe, links, qr
from sync.errors import (
    ChainUnavailable, CidMismatch, ContentInvalid, ContentTooLarge, FetchFailed, FetchRefused, LinkExpired, LinkInactive,
    LinkUnsupported, PasscodeLocked, PasscodeRequired, PasscodeWrong, ShareNotForYou, ShareRevoked,
)

MAX_MANIFEST_FILES = 64
MAX_PASSCODE_PROMPTS = 10
# Per share, across all its files and cards (the byte bound is ``open_link``'s ``max_plaintext``). A real patient is
# about a thousand entries per 4 MB, so these stop only content built to exhaust memory.
MAX_SHARE_ENTRIES = 100_000
MAX_SHARE_HEALTH_CARDS = 100

PasscodeProvider = Callable[[Union[int, None]], Union[str, None]]
"""Asked for a passcode; gets the server's ``remainingAttempts`` (None before the first try); None means cancel."""

ConsentChecker = Callable[[bytes, str], bool]
"""Given ``consent_id`` (32 bytes) and the chain address of the patient the link names, True when that patient's
consent is active on chain, False when revoked or unknown. It may raise a ``SyncError`` (chain unreachable); that
propagates unchanged."""

CidMatcher = Callable[[bytes, str], bool]
"""``cid_matches(data, cid_text)``: whether ``data`` has that CID (``sync.cid.cid_matches``)."""

PASSED, NOT_CHECKED, NOT_APPLICABLE = "passed", "not_checked", "not_applicable"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class ReceivedFile:
    content_type: str
    source: str  # "direct", "embedded" or "location"
    url: str | None
    cid: str | None  # the CID that was recomputed and matched, if any
    bundles: list[dict]
    # The compact JWS of each SMART Health Card, unverified: saving passes them to the records importer, whose
    # trust store checks the issuer's signature (the receiver has no access to the user's trusted issuers).
    health_cards: list[str] = field(default_factory=list)
    # The decrypted FHIR JSON exactly as it came (for FHIR content): what saving imports, so nothing is encoded
    # again and the importer's hash is of the sender's bytes. Parsed once, into ``bundles``, for showing.
    plaintext: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OpenResult:
    kind: str  # "shlink", "medvault-share" or "medvault-return"
    label: str | None
    exp: int | None
    url: str
    sender: str | None  # did:key of a medvault link's signer
    consent_id: str  # hex; lets the caller look the consent up later
    files: list[ReceivedFile]
    checks: list[Check] = field(default_factory=list)
    patient: str | None = None  # chain address whose consent the link names; None when it names none

    @property
    def bundles(self) -> list[dict]:
        return [b for f in self.files for b in f.bundles]

    @property
    def chain_checked(self) -> bool:
        return self.check("consent").status == PASSED

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict:
        out = asdict(self)
        out["bundles"] = self.bundles
        for f in out["files"]:
            f.pop("bundles")
            f.pop("plaintext")
        return out

    def payloads(self) -> list[bytes]:
        """What saving the share into a vault imports, one item per Bundle: a FHIR file's decrypted bytes as they
        are; a health card file's Bundles (their signatures are not part of what the receiver checked)."""
        out: list[bytes] = []
        for f in self.files:
            if f.plaintext is not None:
                out.append(f.plaintext)
            else:
                out.extend(jsonsafe.dumps(b) for b in f.bundles)
        return out


def _verify_cid(url: str, data: bytes, cid_matches: CidMatcher | None) -> tuple[Check, str | None]:
    named = cid_named_by(url)
    if named is None:
        return Check("cid", NOT_APPLICABLE, "The address does not name a content identifier."), None
    matcher = cid_matches or _default_cid_matches()
    if matcher is None:
        return Check("cid", NOT_CHECKED, "No content-identifier implementation is available."), None
    if not matcher(data, named):
        raise CidMismatch()
    return Check("cid", PASSED, f"The fetched file's CID matches the address ({named})."), named


def cid_named_by(url: str) -> str | None:
    """The CID in a gateway path ``.../ipfs/<cid>``, or None."""
    path = urlsplit(url).path
    m = re.search(r"/ipfs/([A-Za-z0-9]+)(?:/|$)", path)
    return m.group(1) if m else None


def _default_cid_matches() -> CidMatcher | None:
    try:
        from sync.cid import cid_matches  # the content-addressing module's public check
    except ImportError:
        return None
    return cid_matches


_TOO_LARGE = {
    "bytes": "The shared files expand to more data than medvault accepts, so the share was not opened.",
    "values": "The share holds far more data than health records do, so it was not opened.",
    "entries": "The share holds more records than medvault accepts at once, so it was not opened.",
    "cards": "The share holds more health cards than medvault accepts at once, so it was not opened.",
}


def _too_large(exc: jsonsafe.JsonTooLarge) -> ContentTooLarge:
    return ContentTooLarge(_TOO_LARGE[exc.what])


def _share_budget(max_plaintext: int) -> jsonsafe.Budget:
    return jsonsafe.Budget(max_bytes=max_plaintext, max_entries=MAX_SHARE_ENTRIES, max_cards=MAX_SHARE_HEALTH_CARDS)


def _inflated(data: bytes, budget: jsonsafe.Budget) -> bytes:
    """Charge decrypted or inflated bytes to the share's budget."""
    try:
        budget.take_bytes(len(data))
    except jsonsafe.JsonTooLarge as exc:
        raise _too_large(exc) from None
    return data


def _loads_bounded(data: bytes, budget: jsonsafe.Budget | None = None) -> object:
    """One parse of the decrypted bytes: its values are counted against the share's budget on the bytes, before a
    single Python object is built, and orjson bounds the nesting while it parses."""
    budget = budget or _share_budget(jwe.DEFAULT_MAX_PLAINTEXT)
    try:
        return jsonsafe.loads(data, budget=budget)
    except jsonsafe.JsonTooLarge as exc:
        raise _too_large(exc) from None
    except jsonsafe.NotUtf8 as exc:
        raise ContentInvalid("The shared file decrypted but is not UTF-8 text.") from exc
    except jsonsafe.JsonTooDeep as exc:
        raise ContentInvalid("The shared file is nested too deeply to be health records.") from exc
    except ValueError as exc:
        raise ContentInvalid("The shared file decrypted but is not valid JSON.") from exc


def _b64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _shc_bundles(obj: object, budget: jsonsafe.Budget) -> list[dict]:
    """FHIR Bundles inside a ``.smart-health-card`` file. The issuer's signature is not verified here."""
    if not isinstance(obj, dict) or not isinstance(obj.get("verifiableCredential"), list):
        raise ContentInvalid("The shared health card is not in the SMART Health Card format.")
    try:
        budget.take_cards(len(obj["verifiableCredential"]))  # before a single card is inflated
    except jsonsafe.JsonTooLarge as exc:
        raise _too_large(exc) from None
    out = []
    for token in obj["verifiableCredential"]:
        try:
            head, payload, _sig = token.split(".")
            header = jsonsafe.loads(_b64u(head))
            raw = _b64u(payload)
            if header.get("zip") == "DEF":
                # Every card inflates into what is left of the share's budget, not a fresh allowance each.
                room = budget.remaining_bytes
                d = zlib.decompressobj(-zlib.MAX_WBITS)
                raw = d.decompress(raw, room + 1)
                if len(raw) > room or d.unconsumed_tail:
                    raise ContentTooLarge(_TOO_LARGE["bytes"])
            bundle = _loads_bounded(_inflated(raw, budget), budget)["vc"]["credentialSubject"]["fhirBundle"]
        except ContentTooLarge:
            raise
        except jsonsafe.JsonTooLarge as exc:
            raise _too_large(exc) from None
        except (ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
            raise ContentInvalid("A health card in this share is damaged.") from exc
        out.append(_counted(_as_bundle(bundle), budget))
    return out


def _counted(bundle: dict, budget: jsonsafe.Budget) -> dict:
    try:
        budget.take_entries(len(bundle.get("entry", [])))
    except jsonsafe.JsonTooLarge as exc:
        raise _too_large(exc) from None
    return bundle


def _as_bundle(resource: object) -> dict:
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise ContentInvalid("The shared file does not contain a FHIR resource.")
    if resource["resourceType"] == "Bundle":
        if not isinstance(resource.get("entry", []), list):
            raise ContentInvalid("The shared FHIR Bundle is damaged: its entries are not a list.")
        return resource
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}


def _decode_content(token: bytes | str, key: bytes, content_type: str | None, budget: jsonsafe.Budget
                    ) -> tuple[str, list[dict], list[Check], list[str], bytes | None]:
    try:
        dec = jwe.decrypt(token, key, max_plaintext=budget.remaining_bytes)
    except ContentTooLarge:
        raise ContentTooLarge(_TOO_LARGE["bytes"]) from None
    ctype = content_type or dec.cty
    if content_type and dec.cty and content_type != dec.cty:
        raise ContentInvalid("The shared file's declared type does not match its content.")
    if ctype == jwe.CTY_API_ACCESS:
        raise LinkUnsupported("This share grants live access to a health record system, which medvault does not "
                              "support yet.")
    obj = _loads_bounded(_inflated(dec.plaintext, budget), budget)
    if ctype is None:
        # The SHL spec's own example omits ``cty``; the content itself says what it is.
        ctype = jwe.CTY_SHC if isinstance(obj, dict) and "verifiableCredential" in obj else jwe.CTY_FHIR
    if ctype == jwe.CTY_SHC:
        unverified = Check("health_card_signature", NOT_CHECKED, "The health card issuer's signature was not "
                           "verified; it is checked against your trusted issuers when the card is saved.")
        return ctype, _shc_bundles(obj, budget), [unverified], list(obj["verifiableCredential"]), None
    if ctype == jwe.CTY_FHIR:
        return ctype, [_counted(_as_bundle(obj), budget)], [], [], dec.plaintext
    raise LinkUnsupported("This share contains a kind of file medvault does not open.")


def _now(now: int | float | Callable[[], float] | None) -> int:
    if now is None:
        return int(time.time())
    if callable(now):
        return int(now())
    return int(now)


def _source_text(source: object) -> str:
    if isinstance(source, Path):
        return qr.decode_file(source)
    if isinstance(source, bytes):
        return qr.decode_bytes(source)
    if isinstance(source, str):
        text = source.strip()
        if text.startswith(("shlink:/", "medvault:/")) or "#shlink:/" in text:
            return text
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", text) or len(text) > 4096:
            raise LinkUnsupported("This is not a SMART Health Link or a medvault link.")
        image = qr.image_file(text)
        if image is not None:
            return qr.decode_file(image)
        raise LinkUnsupported("This is neither a share link nor an image file that exists.")
    if hasattr(source, "width") and hasattr(source, "height"):  # an in-memory image (a camera frame)
        return qr.decode_image(source)  # type: ignore[arg-type]
    raise LinkUnsupported("This is not a SMART Health Link, a medvault link or a QR image.")


def open_link(source: str | Path | bytes | object, *, recipient: str,
              passcode_provider: PasscodeProvider | None = None,
              x25519_private: bytes | None = None, my_did: str | None = None,
              allow_local_http: bool = False, now: int | float | Callable[[], float] | None = None,
              consent_checker: ConsentChecker | None = None, policy: fetch.FetchPolicy | None = None,
              embedded_length_max: int | None = None, max_plaintext: int = jwe.DEFAULT_MAX_PLAINTEXT,
              cid_matches: CidMatcher | None = None) -> OpenResult:
    """Open a share link or QR image and return the verified records. Raises a typed ``SyncError`` on any failure.

    ``recipient`` is the name the SHL protocol sends to the server (who is opening). ``x25519_private`` (and
    optionally ``my_did``) open directed ``medvault:/`` shares. ``now`` (epoch seconds, or a clock) decides expiry.
    ``policy`` (timeouts, size limit, local http), when given, replaces the one built from ``allow_local_http``.
    ``max_plaintext`` bounds what the whole share (every file and health card in it) may decrypt and inflate to.
    """
    if not isinstance(recipient, str) or not recipient.strip():
        raise ValueError("recipient must be a non-empty name")
    if policy is None:
        policy = fetch.FetchPolicy(allow_local_http=allow_local_http)
    text = _source_text(source)
    parsed = links.parse_link(text)
    checks: list[Check] = []

    if isinstance(parsed, links.MedvaultLink):
        checks.append(Check("signature", PASSED, f"Signed by {parsed.sender}."))
        if parsed.type == "card":
            raise LinkUnsupported("This is an identity card, not a share; add it to your contacts instead.")
        share = parsed.body
        assert isinstance(share, links.SealedShare)
        _check_expiry(share.exp, now, checks)
        if x25519_private is None:
            raise ShareNotForYou("This share was sent to one person; open it with your medvault identity.")
        key = links.unseal_share_key(share, x25519_private, my_did=my_did)
        checks.append(Check("recipient", PASSED, "The share key was sealed to your identity."))
        payload = links.ShlPayload(url=share.url, key=key, flag="U", exp=share.exp, label=share.label,
                                   patient=share.patient)
        kind, sender = f"medvault-{parsed.type}", parsed.sender
    else:
        payload = parsed
        checks.append(Check("signature", NOT_APPLICABLE, "SMART Health Links are not signed."))
        _check_expiry(payload.exp, now, checks)
        kind, sender = "shlink", None

    consent_id = links.consent_id(payload.key)
    if consent_checker is None:
        checks.append(Check("consent", NOT_CHECKED, "The consent chain could not be checked."))
    elif payload.patient is None:
        # Anyone holding a link can register its consent id under their own key, so an id alone says nothing.
        checks.append(Check("consent", NOT_CHECKED, "The link does not name the patient whose consent it carries, "
                            "so the consent could not be checked."))
    else:
        try:
            active = consent_checker(consent_id, payload.patient)
        except ChainUnavailable:
            # Unreachable is not a "no": say the chain was not checked rather than refuse or pretend.
            active = None
            checks.append(Check("consent", NOT_CHECKED,
                                "The consent chain could not be reached, so the consent could not be checked."))
        if active is False:
            raise ShareRevoked()
        if active:
            checks.append(Check("consent", PASSED, f"The consent of patient {payload.patient} is active on the "
                                "chain."))

    budget = _share_budget(max_plaintext)
    if payload.direct_file:
        files = [_open_direct(payload, recipient, policy, budget, cid_matches, checks)]
    else:
        files = _open_manifest(payload, recipient, passcode_provider, policy, embedded_length_max, budget,
                               cid_matches, checks)
    checks.append(Check("decryption", PASSED, f"{len(files)} file(s) decrypted and authenticated with the link key."))
    return OpenResult(kind=kind, label=payload.label, exp=payload.exp, url=payload.url, sender=sender,
                      consent_id=consent_id.hex(), files=files, checks=_merge_cid_checks(checks),
                      patient=payload.patient)


def _merge_cid_checks(checks: list[Check]) -> list[Check]:
    """One ``cid`` entry for the whole share (a mismatch never gets here: it raised). ``passed`` only when every
    fetched file named a CID and matched it; otherwise the first reason one was not checked. Per-file results
    are in ``ReceivedFile.cid``."""
    cid = [c for c in checks if c.name == "cid"]
    others = [c for c in checks if c.name != "cid"]
    if not cid:
        return others + [Check("cid", NOT_APPLICABLE, "No file was fetched by content identifier.")]
    passed = [c for c in cid if c.status == PASSED]
    return others + [passed[0] if len(passed) == len(cid) else next(c for c in cid if c.status != PASSED)]


def _check_expiry(exp: int | None, now, checks: list[Check]) -> None:
    if exp is None:
        checks.append(Check("expiry", NOT_APPLICABLE, "The link has no expiry time."))
        return
    if _now(now) >= exp:
        raise LinkExpired()
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(exp))
    checks.append(Check("expiry", PASSED, f"The link is valid until {until}."))


def _open_direct(payload: links.ShlPayload, recipient: str, policy: fetch.FetchPolicy, budget: jsonsafe.Budget,
                 cid_matches: CidMatcher | None, checks: list[Check]) -> ReceivedFile:
    url = fetch.add_query(payload.url, recipient=recipient)
    data = fetch.get_jwe(url, policy=policy, deadline=fetch.deadline_for(policy))
    cid_check, cid = _verify_cid(payload.url, data, cid_matches)
    checks.append(cid_check)
    ctype, bundles, extra, cards, plaintext = _decode_content(data, payload.key, None, budget)
    checks.extend(c for c in extra if c not in checks)
    return ReceivedFile(content_type=ctype, source="direct", url=payload.url, cid=cid, bundles=bundles,
                        health_cards=cards, plaintext=plaintext)


def _post_manifest(payload: links.ShlPayload, recipient: str, passcode_provider: PasscodeProvider | None,
                   policy: fetch.FetchPolicy, embedded_length_max: int | None) -> tuple[dict, float]:
    """The manifest, and the deadline of the exchange that fetched it: the files it lists must arrive within
    that same deadline. Each passcode attempt starts a new exchange (the time a person takes to type is not
    the server's)."""
    passcode: str | None = None
    if payload.needs_passcode:
        if passcode_provider is None:
            raise PasscodeRequired()
        passcode = passcode_provider(None)
        if not passcode:
            raise PasscodeRequired()
    prompts = 1
    while True:
        body: dict = {"recipient": recipient}
        if passcode is not None:
            body["passcode"] = passcode
        if embedded_length_max is not None:
            body["embeddedLengthMax"] = int(embedded_length_max)
        deadline = fetch.deadline_for(policy)
        resp = fetch.post_json(payload.url, body, policy=policy, deadline=deadline)
        if resp.status == 401:
            info = resp.json() if resp.body else {}
            remaining = info.get("remainingAttempts") if isinstance(info, dict) else None
            if isinstance(remaining, bool) or not isinstance(remaining, int):
                remaining = None
            if remaining is not None and remaining <= 0:
                raise PasscodeLocked()
            if passcode_provider is None:
                raise PasscodeRequired()
            if prompts >= MAX_PASSCODE_PROMPTS:
                raise PasscodeWrong(remaining_attempts=remaining)
            passcode = passcode_provider(remaining)
            prompts += 1
            if not passcode:
                raise PasscodeWrong(remaining_attempts=remaining)
            continue
        if resp.status in (404, 410):
            raise LinkInactive()
        if resp.status == 429:
            raise FetchFailed("The server is limiting requests for this share; try again in a minute.")
        if resp.status != 200:
            raise FetchFailed(f"The server holding the share answered with an error (HTTP {resp.status}).")
        if fetch.looks_like_html(resp):
            raise FetchRefused("The server answered with a web page instead of the share's file list.")
        manifest = resp.json()
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise ContentInvalid("The server's list of shared files is damaged.")
        return manifest, deadline


def _open_manifest(payload: links.ShlPayload, recipient: str, passcode_provider: PasscodeProvider | None,
                   policy: fetch.FetchPolicy, embedded_length_max: int | None, budget: jsonsafe.Budget,
                   cid_matches: CidMatcher | None, checks: list[Check]) -> list[ReceivedFile]:
    manifest, deadline = _post_manifest(payload, recipient, passcode_provider, policy, embedded_length_max)
    entries = manifest["files"]
    if len(entries) > MAX_MANIFEST_FILES:
        raise ContentInvalid("The server lists more shared files than medvault accepts.")
    if payload.needs_passcode:
        checks.append(Check("passcode", PASSED, "The server accepted the passcode."))
    out: list[ReceivedFile] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("contentType"), str):
            raise ContentInvalid("The server's list of shared files is damaged.")
        ctype = entry["contentType"]
        if ctype == jwe.CTY_API_ACCESS:
            checks.append(Check("skipped", NOT_CHECKED, "A live-access grant in this share was skipped."))
            continue
        if isinstance(entry.get("embedded"), str):
            data: bytes | str = entry["embedded"]
            source, url, cid = "embedded", None, None
        elif isinstance(entry.get("location"), str):
            url = entry["location"]
            data = fetch.get_jwe(url, policy=policy, deadline=deadline)
            cid_check, cid = _verify_cid(url, data, cid_matches)  # type: ignore[arg-type]
            checks.append(cid_check)
            source = "location"
        else:
            raise ContentInvalid("The server's list of shared files names a file with no content or location.")
        ctype, bundles, extra, cards, plaintext = _decode_content(data, payload.key, ctype, budget)
        checks.extend(c for c in extra if c not in checks)
        out.append(ReceivedFile(content_type=ctype, source=source, url=url, cid=cid, bundles=bundles,
                                health_cards=cards, plaintext=plaintext))
    if not out:
        raise ContentInvalid("This share contains no records medvault can open.")
    return out

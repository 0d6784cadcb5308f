"""Opening a share someone handed over (a link or its QR image): verify, fetch, decrypt, and with the chain check
the consent and leave a signed access receipt.

An open link needs no vault. A directed ``medvault:/`` share opens only with the vault identity it was sealed to,
and checking the chain needs the vault's network settings and identity; only then is a vault asked for (``unlock``
is called lazily), so a clinician without a vault can still open an open link.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

RECEIVER_NAME = "medvault receiver"
Passcode = Union[str, Callable[[Union[int, None]], Union[str, None]], None]


def link_text(source: str) -> str:
    """The link in ``source``: the text itself, or the QR code in the image file it names."""
    from sync import qr
    from sync.errors import LinkUnsupported
    from sync.links import MV_PREFIX, SHL_PREFIX
    text = source.strip()
    if text.startswith((SHL_PREFIX, MV_PREFIX)) or "#" + SHL_PREFIX in text:
        return text
    if ":/" in text[:40] or len(text) > 4096:
        raise LinkUnsupported("This is not a SMART Health Link or a medvault link.")
    image = qr.image_file(text)  # None for text no file system takes as a name, too
    if image is not None:
        return qr.decode_file(image)
    raise LinkUnsupported("This is neither a share link nor an image file that exists.")


def _passcode_provider(passcode: Passcode) -> Callable[[int | None], str | None] | None:
    if passcode is None or callable(passcode):
        return passcode
    tried: list[bool] = []

    def once(_remaining: int | None) -> str | None:
        # a fixed passcode is tried once; a wrong one must not burn the link's remaining attempts
        if not tried:
            tried.append(True)
            return passcode
        return None
    return once


def open_link(source: str, *, vault: Any = None, unlock: Callable[[], Any] | None = None,
              passcode: Passcode = None, allow_local_http: bool = False, check_chain: bool = False) -> Any:
    """Open ``source`` (link text or a QR image path); returns ``sync.receiver.OpenResult``.

    ``vault`` (an unlocked one) or ``unlock`` (called only when a vault is needed, its vault closed afterwards)
    opens directed shares and checks the chain. ``passcode``: the text, or a callable asked with the remaining
    attempts (None cancels)."""
    from sync import links, receiver
    from sync.errors import ShareNotForYou
    from vault.errors import VaultNotFound
    text = link_text(source)
    parsed = links.parse_link(text)  # refuses malformed links before any vault is unlocked or anything fetched
    opts = dict(recipient=RECEIVER_NAME, allow_local_http=allow_local_http,
                passcode_provider=_passcode_provider(passcode))
    directed = isinstance(parsed, links.MedvaultLink) and parsed.type in ("share", "return")
    if directed and parsed.type == "return":
        check_chain = False     # a clinician's note is not shared under a consent: nothing on the chain for it
    if not (check_chain or directed):
        return receiver.open_link(text, **opts)
    owned = vault is None
    if owned:
        if unlock is None:
            raise ShareNotForYou("This share was sent to one person; open it with that person's medvault vault.")
        try:
            vault = unlock()
        except VaultNotFound:
            if check_chain:
                raise
            raise ShareNotForYou("This share was sent to one person; open it with that person's medvault "
                                 "vault (--vault DIR).") from None
    try:
        if check_chain:
            return _open_with_chain(vault, text, directed, opts)
        return receiver.open_link(text, x25519_private=vault.identity_keys.x25519_private,
                                  my_did=vault.identity.did, **opts)
    finally:
        if owned:
            vault.close()


def _open_with_chain(vault: Any, text: str, directed: bool, opts: dict) -> Any:
    """Open as this vault's identity: the consent must be active for it on the chain (when the chain answers),
    and a signed access receipt goes into the outbox, so the patient can see who opened the share and when."""
    from app.services import chain
    from sync import consent_service, receiver
    from sync.errors import ChainMismatch, ChainUnavailable
    settings = consent_service.load_settings(vault)
    if settings is None:
        raise ChainMismatch("This vault has no consent network set up; use 'medvault chain connect' first.")
    try:
        registry = consent_service.connect(settings)  # once: the consent check and the scope check share it
        checker = consent_service.consent_checker(registry, vault.identity.eth_address)
    except ChainUnavailable:
        registry, checker = None, _unreachable
    keys = dict(x25519_private=vault.identity_keys.x25519_private, my_did=vault.identity.did) if directed else {}
    result = receiver.open_link(text, consent_checker=checker, **keys, **opts)
    if registry is not None and result.chain_checked:
        detail = consent_service.check_scope(registry, bytes.fromhex(result.consent_id), result.patient,
                                             result.bundles)
        result.checks.append(receiver.Check("consent-scope", receiver.PASSED, detail))
    if result.patient is not None:  # a receipt is about one patient's consent; a link naming none has none
        consent_service.queue_access_receipt(vault, settings, bytes.fromhex(result.consent_id),
                                             patient=result.patient)
    chain.sync_now(vault)
    return result


def _unreachable(consent_id: bytes, patient: str) -> bool:
    from sync.errors import ChainUnavailable
    raise ChainUnavailable()


def save(result: Any, path: str | Path) -> None:
    """Write the received records as one FHIR Bundle (atomically, 0600): a copy outside the vault, by request."""
    from vault.records.export import atomic_write
    bundles = result.bundles
    doc = bundles[0] if len(bundles) == 1 else {
        "resourceType": "Bundle", "type": "collection",
        "entry": [e for b in bundles for e in b.get("entry", [])]}
    atomic_write(Path(path), [json.dumps(doc, ensure_ascii=False, indent=1), "\n"])


def record_counts(result: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for bundle in result.bundles:
        for e in bundle.get("entry", []):
            t = (e.get("resource") or {}).get("resourceType", "?")
            t = t if isinstance(t, str) else "?"  # a type that is an object or a list names nothing (and is unhashable)
            counts[t] = counts.get(t, 0) + 1
    return counts

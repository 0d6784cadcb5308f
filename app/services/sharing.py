"""Sharing as the patient does it: choose records, publish them encrypted, hand over a link; list and revoke.

A share is made from one person's records (the vault's own by default), kept where the settings say (inside the
vault or an IPFS node), and its signed consent is queued and sent to the chain at once when one is set up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.services import chain

QR_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


@dataclass
class ShareOutcome:
    created: Any            # sync.shares.CreatedShare
    recipient: Any          # the clinician's card it is sealed to, or None for an open link
    chain: str              # how the consent fared: "not configured", "recorded", "queued…", "refused…"

    @property
    def link(self) -> str:
        return self.created.link

    def as_json(self) -> dict:
        c = self.created
        return {"id": c.id, "link": c.link, "cid": c.cid, "url": c.url, "expires_at": c.expires_at,
                "consent_id": c.consent_id, "resources": c.resource_ids, "chain": self.chain}


@dataclass
class RevokeOutcome:
    sentence: str
    chain: str | None       # None when no consent network is set up


def read_card(text: str) -> Any:
    """A clinician's card from ``medvault:/`` text, a file holding it, or its QR image."""
    from sync import links, qr
    from sync.errors import LinkInvalid
    if not text.strip().startswith(links.MV_PREFIX):
        path = Path(text)
        if not path.is_file():
            raise LinkInvalid("The --to card is neither a medvault:/ card nor a file that exists.")
        if path.suffix.lower() in QR_SUFFIXES:
            text = qr.decode_file(path)
        else:
            try:
                text = path.read_text(encoding="utf-8")[:links.MAX_LINK_CHARS + 1]
            except (OSError, UnicodeDecodeError):
                raise LinkInvalid("The --to card file could not be read as text.") from None
    return links.card_from_link(text)


def check_gateway(url: str) -> None:
    """Refuse a gateway address whose links would exceed the SMART Health Link limits."""
    from sync.links import check_url
    check_url(url.rstrip("/") + "/ipfs/" + "b" * 59)


def selection(*, ips: bool = False, types: tuple[str, ...] | list[str] = (), ids: tuple[str, ...] | list[str] = ()):
    from sync.shares import Selection
    return Selection(ips=ips, types=tuple(types or ()), ids=tuple(ids or ()))


def create(vault: Any, what: Any, *, expires: timedelta | str | None = "7d", label: str | None = None,
           recipient: Any = None, gateway: str | None = None, person: int | None = None) -> ShareOutcome:
    """Share ``what`` (a ``sync.shares.Selection``) of ``person``'s records. ``recipient``: a card (or card text,
    file or QR path) to seal the share to one clinician, None for an open link. ``gateway`` is remembered."""
    from sync import consent_service, shares
    if isinstance(expires, str):
        expires = shares.parse_expiry(expires)
    card = read_card(recipient) if isinstance(recipient, (str, Path)) else recipient
    if gateway:
        check_gateway(gateway)
        shares.set_gateway_setting(vault, gateway.rstrip("/"))
    created = shares.create_share(vault, what, expires=expires, label=label, recipient_card=card,
                                  chain_domain=consent_service.domain_for(vault), person=person)
    note = chain.sync_now(vault) if created.outbox_id else chain.NOT_CONFIGURED
    return ShareOutcome(created, card, note)


def revoke(vault: Any, share_id: str) -> RevokeOutcome:
    from sync import consent_service, shares
    domain = consent_service.domain_for(vault)
    sentence = shares.revoke_share(vault, share_id, chain_domain=domain)
    return RevokeOutcome(sentence, chain.sync_now(vault) if domain is not None else None)


def list_all(vault: Any) -> list[dict]:
    from sync import shares
    return shares.list_shares(vault)


def backend(vault: Any) -> dict:
    from sync import shares
    return shares.backend_setting(vault)


def use_ipfs(vault: Any, api: str, gateway: str | None) -> str:
    """Send new shares to the IPFS node at ``api`` (checked to answer first); returns the node's version."""
    from sync import shares
    if not gateway:
        raise shares.ShareError("Give --ipfs-gateway too: the address receivers fetch share files from.")
    check_gateway(gateway)
    from sync.ipfs_node import IpfsNodeStore
    with IpfsNodeStore(api, gateway) as node:
        version = node.version()  # refuse an address where no node answers, before saving it
    shares.set_backend_setting(vault, {"kind": "ipfs", "api": api, "gateway": gateway.rstrip("/")})
    return version


def use_embedded(vault: Any) -> None:
    from sync import shares
    shares.set_backend_setting(vault, {"kind": "embedded"})


def card(vault: Any, name: str | None = None) -> str:
    """This identity's card (``medvault:/`` text) for patients to direct shares to."""
    from sync import links
    return links.build_card(vault.identity_keys.ed25519_seed, name=name or "medvault user",
                            address=vault.identity.eth_address, iat=int(vault.now().timestamp()))


def serve(vault: Any, *, port: int | None = None, lan: bool = False) -> Any:
    """Start the embedded gateway for this vault's active shares (``sync.gateway.Gateway``; stop it when done).
    The port defaults to the remembered gateway address's; ``lan`` also serves the local network."""
    from urllib.parse import urlsplit

    from sync import shares
    from sync.errors import SyncError
    from sync.gateway import Gateway
    base = shares.gateway_setting(vault)
    port = port if port is not None else (urlsplit(base).port or 8421)
    try:
        return Gateway(shares.gateway_lookup(vault), host="0.0.0.0" if lan else "127.0.0.1", port=port,
                       allow_lan=lan, advertised_host=urlsplit(base).hostname if lan else None).start()
    except OSError:
        raise SyncError(f"medvault could not listen on port {port}; it may be in use by another program.") from None

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
        path = qr.image_file(text)  # None for text no file system takes as a name, too
        if path is None:
            raise LinkInvalid("That card is neither medvault:/ card text nor a file that exists.")
        if path.suffix.lower() in QR_SUFFIXES:
            text = qr.decode_file(path)
        else:
            try:
                text = path.read_text(encoding="utf-8")[:links.MAX_LINK_CHARS + 1]
            except (OSError, UnicodeDecodeError):
                raise LinkInvalid("That card file could not be read as text or as a QR image.") from None
    return links.card_from_link(text)


def read_card_image(data: bytes) -> Any:
    """A clinician's card from an image in memory (pasted from the clipboard): its QR code read, then checked."""
    from sync import links, qr
    return links.card_from_link(qr.decode_bytes(data))


def local_only(url: str) -> bool:
    """Whether an address can be reached from this computer only (a loopback host)."""
    import ipaddress
    from urllib.parse import urlsplit
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def places(vault: Any) -> dict:
    """Where a new share can be kept, for the wizard: the backend new shares use ("embedded" or "ipfs"), the
    embedded gateway's address and whether only this computer reaches it, and the IPFS node's gateway if one is
    set up (else None)."""
    from sync import shares
    setting = shares.backend_setting(vault)
    embedded = shares.gateway_setting(vault)
    return {"backend": setting["kind"], "embedded": embedded, "embedded_local_only": local_only(embedded),
            "ipfs": setting.get("gateway") if setting["kind"] == "ipfs" else None,
            "ipfs_local_only": local_only(setting["gateway"]) if setting["kind"] == "ipfs" else False}


def check_gateway(url: str) -> None:
    """Refuse a gateway address whose links would exceed the SMART Health Link limits."""
    from sync.links import check_url
    check_url(url.rstrip("/") + "/ipfs/" + "b" * 59)


def selection(*, ips: bool = False, types: tuple[str, ...] | list[str] = (), ids: tuple[str, ...] | list[str] = ()):
    from sync.shares import Selection
    return Selection(ips=ips, types=tuple(types or ()), ids=tuple(ids or ()))


def create(vault: Any, what: Any, *, expires: timedelta | str | None = "7d", label: str | None = None,
           recipient: Any = None, gateway: str | None = None, person: int | None = None,
           backend: str | None = None) -> ShareOutcome:
    """Share ``what`` of ``person``'s records: a ``sync.shares.Selection``, or a preview
    (``app.services.share_preview.SharePreview``) whose bundle is then sent exactly as previewed. ``recipient``: a
    card (or card text, file or QR path) to seal the share to one clinician, None for an open link. ``gateway`` is
    remembered. ``backend`` ("embedded" or "ipfs") overrides, for this share, where new shares are kept."""
    from sync import consent_service, shares
    if isinstance(expires, str):
        expires = shares.parse_expiry(expires)
    card = read_card(recipient) if isinstance(recipient, (str, Path)) else recipient
    if gateway:
        check_gateway(gateway)
        shares.set_gateway_setting(vault, gateway.rstrip("/"))
    store, kind = shares.store_named(vault, backend) if backend else (None, "embedded")
    prepared, described = None, None
    if not isinstance(what, shares.Selection):      # a preview: send what was shown
        prepared, described, person, what = what.prepared, what.what, what.person, what.selection
    created = shares.create_share(vault, what, expires=expires, label=label, recipient_card=card,
                                  chain_domain=consent_service.domain_for(vault), person=person, store=store,
                                  backend=kind, prepared=prepared, what=described)
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


@dataclass(frozen=True)
class Opened:
    who: str               # in words: the clinician's name, or an account
    at: int                # when they say they opened it (epoch seconds, from their signed receipt)
    block: int


@dataclass
class AccessLog:
    """Who opened which share, as far as the consent network knows: access receipts are sent there by the
    receiver's medvault, so without a network (or with one unreachable) nothing is known and ``note`` says so."""

    known: bool
    note: str
    opened: dict[str, list[Opened]]       # share id -> opens, oldest first


def accesses(vault: Any) -> AccessLog:
    from sync import consent_service
    from sync.errors import ChainError
    settings = consent_service.load_settings(vault)
    if settings is None:
        return AccessLog(False, "Opens are recorded on a consent network, and none is set up, so medvault cannot "
                                "tell who opened a share.", {})
    rows = {bytes.fromhex(r["consent_id"]): r for r in list_all(vault)}
    names: dict[tuple[bytes, str], str] = {}
    try:
        registry = consent_service.connect(settings)
        # Only receipts about this patient's own consents: anyone can register one of its ids under another key.
        events = registry.events("AccessLogged", patient=vault.identity.eth_address)

        def who(consent: bytes, row: dict, accessor: str) -> str:
            key = (consent, accessor.lower())
            if key not in names:
                record = (registry.get_consent(consent, patient=vault.identity.eth_address)
                          if row["kind"] == "directed" else None)
                if record is not None and record.grantee.lower() == accessor.lower():
                    names[key] = row["recipient_name"] or "the clinician it was sent to"
                else:
                    _did, active = registry.practitioner(accessor)
                    short = f"{accessor[:6]}\u2026{accessor[-4:]}"
                    names[key] = f"a registered practitioner ({short})" if active else f"account {short}"
            return names[key]

        opened: dict[str, list[Opened]] = {}
        for e in events:
            consent = bytes(e["args"]["consentId"])
            row = rows.get(consent)
            if row is not None:
                opened.setdefault(row["id"], []).append(
                    Opened(who(consent, row, e["args"]["accessor"]), int(e["args"]["accessedAt"]),
                           e["block_number"]))
    except ChainError as exc:
        return AccessLog(False, f"Who opened your shares could not be read from the consent network: "
                                f"{exc.user_message}", {})
    for opens in opened.values():
        opens.sort(key=lambda o: o.at)
    return AccessLog(True, "Opens are those the receivers' medvault recorded on the consent network; a receiver "
                           "using another app records nothing.", opened)


def link(vault: Any, share_id: str) -> str | None:
    """The link of a share, to show its QR again; None when revoked or made before links were kept."""
    from sync import shares
    return shares.share_link(vault, share_id)


def preview(vault: Any, what: Any, *, person: int | None = None, describe: str | None = None,
            put_back: Any = ()) -> Any:
    """What sharing ``what`` (a ``sync.shares.Selection``) would send, sensitive records left out and flagged
    (``app.services.share_preview.SharePreview``); pass it to ``create`` to send exactly that."""
    from app.services import share_preview
    return share_preview.build(vault, what, person=person, what=describe, put_back=put_back)


def choose(vault: Any, *, categories: Any = (), date_from: str | None = None, date_to: str | None = None,
           person: int | None = None) -> list[str]:
    """The "Type/id" of ``person``'s records in ``categories`` (keys of ``vault.records.describe.CATEGORIES``, all
    of them when empty) dated within ``date_from``..``date_to`` (ISO dates, both included; either may be None).
    Directory entries (people, places) never count as records of their own; insurance claims only when asked."""
    from vault.records import describe
    from vault.records.persons import where
    wanted = set(categories or (c.key for c in describe.CATEGORIES))
    clauses, params = [], []
    if date_from:
        clauses.append("date >= ?")
        params.append(date_from)
    if date_to:
        clauses.append("date < ?")
        params.append(date_to + "\uffff")      # the whole last day
    with vault.read() as conn:
        mine, margs = where(conn, person, use_index=False)
        sql = ("SELECT rtype, id, category FROM rec_resources WHERE " + " AND ".join([mine, *clauses])
               + " ORDER BY date IS NULL, date, rid")
        return [f"{t}/{i}" for t, i, c in conn.execute(sql, (*margs, *params))
                if (describe.category_key(t, c) or "") in wanted]


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


def serve(vault: Any, *, port: int | None = None, lan: bool = False, lookup: Any = None) -> Any:
    """Start the embedded gateway for this vault's active shares (``sync.gateway.Gateway``; stop it when done).
    The port defaults to the remembered gateway address's; ``lan`` also serves the local network. ``lookup``
    replaces where files are read (the desktop app switches between the open vault and what it keeps while
    locked, ``app.services.serving``)."""
    from urllib.parse import urlsplit

    from sync import shares
    from sync.errors import SyncError
    from sync.gateway import Gateway
    base = shares.gateway_setting(vault)
    port = port if port is not None else (urlsplit(base).port or 8421)
    try:
        return Gateway(lookup or shares.gateway_lookup(vault), host="0.0.0.0" if lan else "127.0.0.1", port=port,
                       allow_lan=lan, advertised_host=urlsplit(base).hostname if lan else None).start()
    except OSError:
        raise SyncError(f"medvault could not listen on port {port}; it may be in use by another program.") from None

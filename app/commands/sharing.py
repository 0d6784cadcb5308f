"""``share create|list|revoke``, ``open``, ``card`` and ``serve``: sharing from the command line.

A thin layer over ``sync.shares`` (the patient's side), ``sync.receiver`` (the clinician's side) and
``sync.gateway`` (the embedded file server). No Qt here. ``open`` never writes to any vault: it only unlocks one
when a directed share needs the recipient's private key, and ``--save`` writes the Bundle to a file.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.cli import needs_subcommand
from app.terminal import value as shown

RECEIVER_NAME = "medvault receiver"


def register(sub: Any) -> None:
    p = sub.add_parser("share", help="share records by link or QR code; list and revoke shares")
    ssub = p.add_subparsers(dest="share_command", metavar="create|list|revoke")
    c = ssub.add_parser("create", help="share a selection (or an IPS summary); prints the link")
    what = c.add_mutually_exclusive_group(required=True)
    what.add_argument("--ips", action="store_true", help="an International Patient Summary")
    what.add_argument("--type", dest="types", action="append", metavar="T", help="records of this type (repeatable)")
    what.add_argument("--id", dest="ids", action="append", metavar="ID", help="this record, Type/id (repeatable)")
    c.add_argument("--expires", default="7d", metavar="DURATION", help="e.g. 30m, 12h, 7d, 2w (default 7d)")
    c.add_argument("--to", metavar="CARD", help="a clinician's card: medvault:/ text, a file holding it, or its QR")
    c.add_argument("--label", metavar="L", help="a short label shown to the receiver (at most 80 characters)")
    c.add_argument("--qr", metavar="FILE.png", help="also write the link as a QR image")
    c.add_argument("--gateway", metavar="URL", help="where receivers fetch from (remembered; default "
                                                    "http://127.0.0.1:8421, the embedded gateway)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_share_create)
    ls = ssub.add_parser("list", help="your shares: recipient, expiry, state")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_share_list)
    rv = ssub.add_parser("revoke", help="stop serving a share (copies already fetched cannot be recalled)")
    rv.add_argument("share_id", metavar="ID")
    rv.set_defaults(func=cmd_share_revoke)
    b = ssub.add_parser("backend", help="where share files are kept: inside the vault (default) or an IPFS node")
    where = b.add_mutually_exclusive_group()
    where.add_argument("--embedded", action="store_true", help="keep files in the vault; 'medvault serve' serves them")
    where.add_argument("--ipfs-api", metavar="URL", help="an IPFS node's RPC API, e.g. http://127.0.0.1:5001")
    b.add_argument("--ipfs-gateway", metavar="URL", help="the gateway receivers fetch from (with --ipfs-api)")
    b.set_defaults(func=cmd_share_backend)
    p.set_defaults(func=needs_subcommand(p))

    o = sub.add_parser("open", help="open a share link or QR image: verify, decrypt, show")
    o.add_argument("source", metavar="LINK|QR.png")
    o.add_argument("--json", action="store_true")
    o.add_argument("--save", metavar="FILE", help="write the received Bundle to FILE (never into the vault)")
    o.add_argument("--passcode", metavar="P", help="the passcode of a passcode-protected link")
    o.add_argument("--allow-local-http", action="store_true",
                   help="allow plain http to this machine and the local network (the embedded gateway)")
    o.add_argument("--check-chain", action="store_true",
                   help="check the consent on your vault's consent network and record that you opened it")
    o.set_defaults(func=cmd_open)

    k = sub.add_parser("card", help="this identity's card, for patients to direct shares to you")
    k.add_argument("--qr", metavar="FILE.png")
    k.add_argument("--name", metavar="NAME", help="the name shown on the card (default: medvault user)")
    k.set_defaults(func=cmd_card)

    s = sub.add_parser("serve", help="serve this vault's shares (the embedded gateway) until Ctrl-C")
    s.add_argument("--port", type=int, metavar="N", help="default: the port of the remembered gateway address")
    s.add_argument("--lan", action="store_true", help="also serve the local network (not only this machine)")
    s.set_defaults(func=cmd_serve)


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _read_card(text: str):
    from sync import links, qr
    from sync.errors import LinkInvalid
    if not text.strip().startswith(links.MV_PREFIX):
        path = qr.image_file(text)
        if path is None:
            raise LinkInvalid("The --to card is neither a medvault:/ card nor a file that exists.")
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"):
            text = qr.decode_file(path)
        else:
            try:
                text = path.read_text(encoding="utf-8")[:links.MAX_LINK_CHARS + 1]
            except (OSError, UnicodeDecodeError):
                raise LinkInvalid("The --to card file could not be read as text.") from None
    return links.card_from_link(text)


def cmd_share_create(args: argparse.Namespace, ctx: Any) -> int:
    from sync import shares
    from sync.qr import check_destination, write_png
    selection = shares.Selection(ips=args.ips, types=tuple(args.types or ()), ids=tuple(args.ids or ()))
    expires = shares.parse_expiry(args.expires)
    card = _read_card(args.to) if args.to else None
    if args.qr:
        check_destination(Path(args.qr))  # before the share exists: no share without its QR image
    if args.gateway is not None:
        from sync.links import _check_url
        _check_url(args.gateway + "/ipfs/" + "b" * 59)  # the link's url must stay within the SHL limit
    with ctx.open_vault() as vault:
        if args.gateway:
            shares.set_gateway_setting(vault, args.gateway.rstrip("/"))
        from sync import consent_service
        created = shares.create_share(vault, selection, expires=expires, label=args.label, recipient_card=card,
                                      chain_domain=consent_service.domain_for(vault))
        chain_note = _sync_now(vault) if created.outbox_id else "not configured"
    if args.qr:
        write_png(created.link, Path(args.qr))
    if args.json:
        ctx.json({"id": created.id, "link": created.link, "cid": created.cid, "url": created.url,
                  "expires_at": created.expires_at, "consent_id": created.consent_id,
                  "resources": created.resource_ids, "chain": chain_note})
        return 0
    ctx.out(created.link)
    who = f"for {shown(card.name)} only" if card else "for anyone holding the link"
    ctx.warn(f"Share {created.id}: {len(created.resource_ids)} record(s), {who}, expires {_when(created.expires_at)}. "
             f"Receivers fetch it from {created.url.rsplit('/ipfs/', 1)[0]}; run 'medvault serve' to serve it."
             + (f" QR image written to {args.qr}." if args.qr else "")
             + (f" Consent on the chain: {chain_note}." if created.outbox_id else ""))
    return 0


def _sync_now(vault: Any) -> str:
    """Send what the outbox holds right away when the chain is reachable; offline, it simply waits there."""
    from sync import consent_service
    from sync.errors import ChainError
    try:
        report = consent_service.sync_outbox(vault)
    except ChainError as exc:
        return f"queued ({exc.user_message})"
    if report.unavailable is not None:
        return "queued; it will be sent when the consent network is reachable ('medvault chain sync')"
    if report.failed:
        return "refused by the consent network; see 'medvault chain status'"
    return "recorded"


def cmd_share_backend(args: argparse.Namespace, ctx: Any) -> int:
    from sync import shares
    from sync.links import check_url
    with ctx.open_vault() as vault:
        if args.ipfs_api:
            if not args.ipfs_gateway:
                raise shares.ShareError("Give --ipfs-gateway too: the address receivers fetch share files from.")
            check_url(args.ipfs_gateway.rstrip("/") + "/ipfs/" + "b" * 59)  # links must stay within the SHL limit
            from sync.ipfs_node import IpfsNodeStore
            with IpfsNodeStore(args.ipfs_api, args.ipfs_gateway) as node:
                version = node.version()  # refuse an address where no node answers, before saving it
            shares.set_backend_setting(vault, {"kind": "ipfs", "api": args.ipfs_api,
                                               "gateway": args.ipfs_gateway.rstrip("/")})
            ctx.out(f"New shares go to the IPFS node at {args.ipfs_api} (version {version}); "
                    f"receivers fetch them from {args.ipfs_gateway}.")
        elif args.embedded:
            shares.set_backend_setting(vault, {"kind": "embedded"})
            ctx.out("New shares are kept inside the vault; run 'medvault serve' so receivers can fetch them.")
        else:
            setting = shares.backend_setting(vault)
            ctx.out("Share files are kept inside the vault (embedded)." if setting["kind"] == "embedded" else
                    f"Share files go to the IPFS node at {setting['api']}; receivers fetch from {setting['gateway']}.")
    return 0


def cmd_share_list(args: argparse.Namespace, ctx: Any) -> int:
    from sync import shares
    with ctx.open_vault() as vault:
        rows = shares.list_shares(vault)
    if args.json:
        ctx.json(rows)
        return 0
    if not rows:
        ctx.out("No shares yet.")
    for r in rows:
        who = shown(r["recipient_name"] or ("anyone with the link" if r["recipient"] == "bearer" else r["recipient"]))
        label = f"  {shown(r['label'])}" if r["label"] else ""
        ctx.out(f"{r['id']}  {r['state']:<8} {r['resources']:>4} record(s)  to {who}  "
                f"expires {_when(r['expires_at'])}{label}")
    return 0


def cmd_share_revoke(args: argparse.Namespace, ctx: Any) -> int:
    from sync import shares
    from sync import consent_service
    with ctx.open_vault() as vault:
        domain = consent_service.domain_for(vault)
        sentence = shares.revoke_share(vault, args.share_id, chain_domain=domain)
        chain_note = _sync_now(vault) if domain is not None else None
    ctx.out(sentence)
    if chain_note:
        ctx.out(f"Revocation on the consent chain: {chain_note}.")
    return 0


def _link_text(source: str) -> str:
    """The link in ``source``: the text itself, or the QR code in the image file it names."""
    from sync import qr
    from sync.errors import LinkUnsupported
    from sync.links import MV_PREFIX, SHL_PREFIX
    text = source.strip()
    if text.startswith((SHL_PREFIX, MV_PREFIX)) or "#" + SHL_PREFIX in text:
        return text
    if ":/" in text[:40] or len(text) > 4096:
        raise LinkUnsupported("This is not a SMART Health Link or a medvault link.")
    image = qr.image_file(text)
    if image is not None:
        return qr.decode_file(image)
    raise LinkUnsupported("This is neither a share link nor an image file that exists.")


def _open_with_chain(text: str, parsed: Any, opts: dict, ctx: Any) -> Any:
    """Open as this vault's identity: the consent must be active for it on the chain (when the chain answers),
    and a signed access receipt goes into the outbox, so the patient can see who opened the share and when."""
    from sync import consent_service, links, receiver
    from sync.errors import ChainMismatch, ChainUnavailable
    with ctx.open_vault() as vault:
        settings = consent_service.load_settings(vault)
        if settings is None:
            raise ChainMismatch("This vault has no consent network set up; use 'medvault chain connect' first.")
        try:
            registry = consent_service.connect(settings)  # once: the consent check and the scope check share it
            checker = consent_service.consent_checker(registry, vault.identity.eth_address)
        except ChainUnavailable:
            registry, checker = None, _unreachable
        directed = isinstance(parsed, links.MedvaultLink) and parsed.type in ("share", "return")
        keys = dict(x25519_private=vault.identity_keys.x25519_private, my_did=vault.identity.did) if directed else {}
        result = receiver.open_link(text, consent_checker=checker, **keys, **opts)
        if registry is not None and result.chain_checked:
            detail = consent_service.check_scope(registry, bytes.fromhex(result.consent_id), result.patient,
                                                 result.bundles)
            result.checks.append(receiver.Check("consent-scope", receiver.PASSED, detail))
        if result.patient is not None:  # a receipt is about one patient's consent; a link naming none has none
            consent_service.queue_access_receipt(vault, settings, bytes.fromhex(result.consent_id),
                                                 patient=result.patient)
        _sync_now(vault)
    return result


def _unreachable(consent_id: bytes, patient: str) -> bool:
    from sync.errors import ChainUnavailable
    raise ChainUnavailable()


def cmd_open(args: argparse.Namespace, ctx: Any) -> int:
    from sync import links, receiver
    text = _link_text(args.source)
    parsed = links.parse_link(text)  # refuses malformed links before any vault is unlocked or anything fetched
    tried: list[bool] = []

    def passcode(_remaining):
        if args.passcode and not tried:
            tried.append(True)
            return args.passcode
        return None

    opts = dict(recipient=RECEIVER_NAME, allow_local_http=args.allow_local_http, passcode_provider=passcode)
    if args.check_chain:
        result = _open_with_chain(text, parsed, opts, ctx)
    elif isinstance(parsed, links.MedvaultLink) and parsed.type in ("share", "return"):
        # A directed share opens only with this identity's private key, so (and only then) the vault is unlocked.
        from sync.errors import ShareNotForYou
        from vault.errors import VaultNotFound
        try:
            vault = ctx.open_vault()
        except VaultNotFound:
            raise ShareNotForYou("This share was sent to one person; open it with that person's medvault "
                                 "vault (--vault DIR).") from None
        with vault:
            result = receiver.open_link(text, x25519_private=vault.identity_keys.x25519_private,
                                        my_did=vault.identity.did, **opts)
    else:
        result = receiver.open_link(text, **opts)
    if args.save:
        _save(result, Path(args.save))
    if args.json:
        ctx.json(result.to_json())
        return 0
    _print_result(result, ctx)
    if args.save:
        ctx.out(f"Saved the received Bundle to {args.save}.")
    return 0


def _save(result: Any, path: Path) -> None:
    from vault.records.export import atomic_write
    bundles = result.bundles
    doc = bundles[0] if len(bundles) == 1 else {
        "resourceType": "Bundle", "type": "collection",
        "entry": [e for b in bundles for e in b.get("entry", [])]}
    atomic_write(path, [json.dumps(doc, ensure_ascii=False, indent=1), "\n"])


def _print_result(result: Any, ctx: Any) -> None:
    # Everything below but the fixed words came from the share: each value is kept to one harmless line.
    ctx.out(f"Opened a {result.kind} share" + (f" labelled '{shown(result.label)}'" if result.label else "")
            + (f" from {shown(result.sender)}" if result.sender else "") + f", valid until {_when(result.exp)}.")
    for check in result.checks:
        ctx.out(f"  {check.name:<10} {check.status:<14} {shown(check.detail)}")
    counts: dict[str, int] = {}
    for bundle in result.bundles:
        for e in bundle.get("entry", []):
            t = shown((e.get("resource") or {}).get("resourceType", "?"))
            counts[t] = counts.get(t, 0) + 1
    ctx.out("Records: " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())))
    for bundle in result.bundles:
        for e in bundle.get("entry", []):
            r = e.get("resource") or {}
            ctx.out(f"  {shown(r.get('resourceType'))}/{shown(r.get('id'))}")


def cmd_card(args: argparse.Namespace, ctx: Any) -> int:
    from sync import links
    from sync.qr import write_png
    name = args.name or "medvault user"
    with ctx.open_vault() as vault:
        card = links.build_card(vault.identity_keys.ed25519_seed, name=name, address=vault.identity.eth_address,
                                iat=int(vault.now().timestamp()))
    ctx.out(card)
    if args.qr:
        write_png(card, Path(args.qr))
        ctx.warn(f"The card's QR image is in {args.qr}.")
    return 0


def cmd_serve(args: argparse.Namespace, ctx: Any) -> int:
    from urllib.parse import urlsplit

    from sync import shares
    from sync.gateway import Gateway
    from sync.errors import SyncError
    with ctx.open_vault() as vault:
        base = shares.gateway_setting(vault)
        port = args.port if args.port is not None else (urlsplit(base).port or 8421)
        host = "0.0.0.0" if args.lan else "127.0.0.1"
        advertised = urlsplit(base).hostname if args.lan else None
        try:
            gateway = Gateway(shares.gateway_lookup(vault), host=host, port=port, allow_lan=args.lan,
                              advertised_host=advertised).start()
        except OSError:
            raise SyncError(f"medvault could not listen on port {port}; it may be in use by another program.") from None
        stop = threading.Event()
        # Ctrl-C and a plain kill both stop cleanly; SIGINT is set explicitly because a shell starts background
        # jobs with it ignored, and Python then never raises KeyboardInterrupt.
        previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            where = "this machine and the local network" if args.lan else "this machine only"
            ctx.out(f"Serving this vault's shares on port {gateway.port} ({where}); press Ctrl-C to stop.")
            ctx.stdout.flush()
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            gateway.stop()
    ctx.out("Stopped serving.")
    return 0

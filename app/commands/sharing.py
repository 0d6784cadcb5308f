"""``share create|list|revoke``, ``open``, ``card`` and ``serve``: sharing from the command line.

A thin layer over ``sync.shares`` (the patient's side), ``sync.receiver`` (the clinician's side) and
``sync.gateway`` (the embedded file server). No Qt here. ``open`` never writes to any vault: it only unlocks one
when a directed share needs the recipient's private key, and ``--save`` writes the Bundle to a file.
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.cli import needs_subcommand
from app.terminal import value as shown

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
    c.add_argument("--person", type=int, metavar="ID",
                   help="whose records (an id from 'medvault persons'; default: the vault's own person)")
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


def cmd_share_create(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import sharing
    from sync import shares
    from sync.qr import check_destination, write_png
    # everything the user typed is checked before the vault is unlocked
    what = sharing.selection(ips=args.ips, types=args.types or (), ids=args.ids or ())
    expires = shares.parse_expiry(args.expires)
    card = sharing.read_card(args.to) if args.to else None
    if args.qr:
        check_destination(Path(args.qr))  # before the share exists: no share without its QR image
    if args.gateway is not None:
        sharing.check_gateway(args.gateway)
    with ctx.open_session() as session:
        outcome = session.create_share(what, expires=expires, label=args.label, recipient=card,
                                       gateway=args.gateway or None)
    created = outcome.created
    if args.qr:
        write_png(created.link, Path(args.qr))
    if args.json:
        ctx.json(outcome.as_json())
        return 0
    ctx.out(created.link)
    who = f"for {shown(card.name)} only" if card else "for anyone holding the link"
    ctx.warn(f"Share {created.id}: {len(created.resource_ids)} record(s), {who}, expires {_when(created.expires_at)}. "
             f"Receivers fetch it from {created.url.rsplit('/ipfs/', 1)[0]}; run 'medvault serve' to serve it."
             + (f" QR image written to {args.qr}." if args.qr else "")
             + (f" Consent on the chain: {outcome.chain}." if created.outbox_id else ""))
    return 0


def cmd_share_backend(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        if args.ipfs_api:
            version = session.use_ipfs_backend(args.ipfs_api, args.ipfs_gateway)
            ctx.out(f"New shares go to the IPFS node at {args.ipfs_api} (version {version}); "
                    f"receivers fetch them from {args.ipfs_gateway}.")
        elif args.embedded:
            session.use_embedded_backend()
            ctx.out("New shares are kept inside the vault; run 'medvault serve' so receivers can fetch them.")
        else:
            setting = session.share_backend()
            ctx.out("Share files are kept inside the vault (embedded)." if setting["kind"] == "embedded" else
                    f"Share files go to the IPFS node at {setting['api']}; receivers fetch from {setting['gateway']}.")
    return 0


def cmd_share_list(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        rows = session.list_shares()
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
    with ctx.open_session() as session:
        outcome = session.revoke_share(args.share_id)
    ctx.out(outcome.sentence)
    if outcome.chain:
        ctx.out(f"Revocation on the consent chain: {outcome.chain}.")
    return 0


def cmd_open(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import receiving
    result = receiving.open_link(args.source, unlock=ctx.open_vault, passcode=args.passcode,
                                 allow_local_http=args.allow_local_http, check_chain=args.check_chain)
    if args.save:
        receiving.save(result, Path(args.save))
    if args.json:
        ctx.json(result.to_json())
        return 0
    _print_result(result, ctx)
    if args.save:
        ctx.out(f"Saved the received Bundle to {args.save}.")
    return 0


def _print_result(result: Any, ctx: Any) -> None:
    # Everything below but the fixed words came from the share: each value is kept to one harmless line.
    ctx.out(f"Opened a {result.kind} share" + (f" labelled '{shown(result.label)}'" if result.label else "")
            + (f" from {shown(result.sender)}" if result.sender else "") + f", valid until {_when(result.exp)}.")
    for check in result.checks:
        ctx.out(f"  {check.name:<10} {check.status:<14} {shown(check.detail)}")
    from app.services.receiving import record_counts
    counts = record_counts(result)
    ctx.out("Records: " + ", ".join(f"{n} {shown(t)}" for t, n in sorted(counts.items())))
    for bundle in result.bundles:
        for e in bundle.get("entry", []):
            r = e.get("resource") or {}
            ctx.out(f"  {shown(r.get('resourceType'))}/{shown(r.get('id'))}")


def cmd_card(args: argparse.Namespace, ctx: Any) -> int:
    from sync.qr import write_png
    with ctx.open_session() as session:
        card = session.card(args.name)
    ctx.out(card)
    if args.qr:
        write_png(card, Path(args.qr))
        ctx.warn(f"The card's QR image is in {args.qr}.")
    return 0


def cmd_serve(args: argparse.Namespace, ctx: Any) -> int:
    from vault.fsutil import HOLDER_SERVE, set_holder_role
    previous = set_holder_role(HOLDER_SERVE)   # another process that wants the vault is told who has it
    try:
        return _serve(args, ctx)
    finally:
        set_holder_role(previous)


def _serve(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import sharing
    with ctx.open_vault() as vault:
        gateway = sharing.serve(vault, port=args.port, lan=args.lan)
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

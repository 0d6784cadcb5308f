"""``profile``, ``writeback`` and ``clinicians``: the clinician's side from the command line, and the clinicians a
patient has confirmed in person. A thin layer over ``app.services.clinician`` and ``app.services.writeback``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli import UsageError, needs_subcommand
from app.terminal import value as shown


def register(sub: Any) -> None:
    p = sub.add_parser("profile", help="clinician mode, the name and organisation on your card, your registration")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--clinician", action="store_true", help="turn clinician mode on (needs --name)")
    mode.add_argument("--patient", action="store_true", help="turn clinician mode off")
    p.add_argument("--name", metavar="NAME", help="your name on your card, e.g. \"Dr Ada Sample\"")
    p.add_argument("--organisation", metavar="ORG", help="your organisation on your card (optional)")
    p.add_argument("--card-qr", metavar="FILE.png", help="also write your card as a QR image")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_profile)

    w = sub.add_parser("writeback", help="write a signed note or measurements back to a patient (clinicians)")
    w.add_argument("source", metavar="SHARE|CARD",
                   help="the patient's share you opened (link or QR image), or their medvault card")
    w.add_argument("--note", metavar="TEXT", help="the note's text ('-' reads it from standard input)")
    w.add_argument("--title", metavar="TITLE", default="Clinical note", help="the note's title")
    w.add_argument("--vital", action="append", default=[], metavar="KIND=VALUE",
                   help="a measurement, repeatable: blood-pressure=128/82, heart-rate=72, body-weight=70.5, "
                        "body-height=172, body-temperature=37.2, oxygen-saturation=97")
    w.add_argument("--expires", default="7d", metavar="DURATION", help="how long the code can be fetched (7d)")
    w.add_argument("--qr", metavar="FILE.png", help="also write the return link as a QR image")
    w.add_argument("--allow-local-http", action="store_true",
                   help="the share may be fetched over plain http from this computer or the local network")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_writeback)

    c = sub.add_parser("clinicians", help="clinicians whose card you confirmed: their notes show as signed by them")
    csub = c.add_subparsers(dest="clinicians_command", metavar="confirm|list|forget|recheck")
    k = csub.add_parser("confirm", help="trust notes signed with this card's key (check the card in person)")
    k.add_argument("card", metavar="CARD", help="medvault:/ card text, a file holding it, or its QR image")
    k.set_defaults(func=cmd_confirm)
    ls = csub.add_parser("list", help="the cards you confirmed")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    f = csub.add_parser("forget", help="stop trusting a confirmed card")
    f.add_argument("did", metavar="DID")
    f.set_defaults(func=cmd_forget)
    r = csub.add_parser("recheck", help="look up again who signed notes imported as signed by an unknown key")
    r.set_defaults(func=cmd_recheck)
    c.set_defaults(func=needs_subcommand(c))


def cmd_profile(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        if args.clinician or args.patient or args.name or args.organisation:
            current = session.profile()
            mode = args.clinician or (current.clinician and not args.patient)
            session.set_profile(clinician_mode=mode, name=args.name if args.name is not None else current.name,
                                organisation=args.organisation if args.organisation is not None
                                else current.organisation)
        profile = session.profile()
        card = session.card()
        registration = session.practitioner_registration()
    if args.card_qr:
        from sync.qr import write_png
        write_png(card, Path(args.card_qr))
    if args.json:
        ctx.json({**profile.as_json(), "card": card, "registration": registration.state,
                  "registration_sentence": registration.sentence})
        return 0
    ctx.out(f"Mode: {'clinician' if profile.clinician else 'patient'}")
    ctx.out(f"Name on your card: {profile.name or '(none: the card says medvault user)'}")
    if profile.organisation:
        ctx.out(f"Organisation: {profile.organisation}")
    ctx.out(f"Registration: {registration.sentence}")
    if args.card_qr:
        ctx.out(f"Your card's QR image is in {args.card_qr}.")
    return 0


def parse_vital(text: str) -> Any:
    """``blood-pressure=128/82`` as a ``writeback.Measurement``; bad text is a usage error."""
    from app.services.writeback import VITALS, Measurement
    key, _, value = text.partition("=")
    vital = VITALS.get(key.strip())
    if vital is None:
        raise UsageError(f"unknown measurement {key!r}; use one of {', '.join(VITALS)}")
    try:
        values = tuple(float(v) for v in value.split("/"))
    except ValueError:
        raise UsageError(f"{key}: the value must be a number{' like 128/82' if vital.panel else ''}") from None
    return Measurement(vital.key, values)


def cmd_writeback(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import writeback
    from sync import links, shares
    items: list[Any] = []
    if args.note:
        text = ctx.stdin.read() if args.note == "-" else args.note
        items.append(writeback.Note(text, args.title))
    items += [parse_vital(v) for v in args.vital]
    if not items:
        raise UsageError("give --note TEXT and/or --vital KIND=VALUE")
    writeback.check_items(items)
    expires = shares.parse_expiry(args.expires)
    from app.services.receiving import link_text
    text = link_text(args.source)           # a link, or the code in an image file; anything else is refused here
    parsed = links.parse_link(text)
    card = parsed.body if isinstance(parsed, links.MedvaultLink) and parsed.type == "card" else None
    with ctx.open_session() as session:
        if card is not None:
            recipient = writeback.Recipient.from_card(card)
        else:
            opened = session.open_link(text, allow_local_http=args.allow_local_http)
            recipient = writeback.Recipient.from_opened(opened)
        back = session.write_back(recipient, items, expires=expires)
    if args.qr:
        from sync.qr import write_png
        write_png(back.link, Path(args.qr))
    if args.json:
        ctx.json(back.as_json())
        return 0
    ctx.out(back.link)
    ctx.warn(f"Signed {len(back.resources)} record(s) for the patient ({recipient.how}); encrypted to their key. "
             "Keep 'medvault serve' running (or the IPFS node up) until the patient has imported it."
             + (f" The QR image is in {args.qr}." if args.qr else ""))
    return 0


def cmd_confirm(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import sharing
    card = sharing.read_card(args.card)
    with ctx.open_session() as session:
        session.confirm_clinician(card)
    ctx.out(f"Confirmed {shown(card.name)}" + (f" ({shown(card.organisation)})" if card.organisation else "")
            + ": notes signed with this card's key now show as signed by them.")
    return 0


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        cards = session.confirmed_clinicians()
    if args.json:
        ctx.json(cards)
        return 0
    if not cards:
        ctx.out("No confirmed clinicians; add one with 'medvault clinicians confirm CARD'.")
    for c in cards:
        org = f" ({shown(c['organisation'])})" if c.get("organisation") else ""
        ctx.out(f"{shown(c.get('name') or 'unnamed')}{org}  {shown(c['did'])}  "
                f"confirmed {shown(c.get('confirmed_at', ''))}")
    return 0


def cmd_forget(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import writeback
    with ctx.open_vault() as vault:
        forgotten = writeback.forget_card(vault, args.did)
    if not forgotten:
        ctx.warn("medvault: no confirmed card has that identity; nothing was changed.")
        return 1
    ctx.out("Forgotten; notes already imported keep the trust they had.")
    return 0


def cmd_recheck(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        done = session.recheck_clinician_notes()
    ctx.out(f"Looked again at {done.checked} note(s) signed by an unknown key; {len(done.raised)} now show as signed "
            "by a clinician." + (" The consent network could not be reached; try again later." if done.unreachable
                                 else ""))
    return 0

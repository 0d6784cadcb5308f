"""``chain deploy|connect|status|sync|register|member``: the consent network from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli import needs_subcommand
from app.terminal import value as shown


def register(sub: Any) -> None:
    p = sub.add_parser("chain", help="the consent network: set up, status, send what is waiting")
    csub = p.add_subparsers(dest="chain_command", metavar="deploy|connect|status|sync|register|member")

    d = csub.add_parser("deploy", help="deploy a new consent registry (you become its admin and first member)")
    d.add_argument("--rpc", required=True, metavar="URL", help="the network's JSON-RPC endpoint")
    d.add_argument("--pay-with-node-account", action="store_true",
                   help="let the node's own funded account pay (development networks)")
    d.set_defaults(func=cmd_deploy)

    c = csub.add_parser("connect", help="use an existing consent registry")
    c.add_argument("--rpc", required=True, metavar="URL")
    c.add_argument("--contract", required=True, metavar="ADDRESS")
    c.add_argument("--pay-with-node-account", action="store_true")
    c.set_defaults(func=cmd_connect)

    s = csub.add_parser("status", help="the network, and each consent change waiting, sent or refused")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    y = csub.add_parser("sync", help="send the consent changes that are waiting")
    y.add_argument("--rpc", metavar="URL", help="use this endpoint this time (e.g. another node of the network)")
    y.set_defaults(func=cmd_sync)

    r = csub.add_parser("register", help="register a clinician (their card) as a practitioner (members only)")
    r.add_argument("card", metavar="CARD", help="medvault:/ card text, a file holding it, or its QR image")
    r.set_defaults(func=cmd_register)

    m = csub.add_parser("member", help="add a member institution or relayer (admin only)")
    m.add_argument("address", metavar="ADDRESS")
    m.set_defaults(func=cmd_member)

    p.set_defaults(func=needs_subcommand(p))


def cmd_deploy(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import chain
    with ctx.open_vault() as vault:
        settings = chain.deploy(vault, args.rpc, pay_with_node_account=args.pay_with_node_account)
    ctx.out(f"Consent registry deployed at {settings.contract} on chain {settings.chain_id}; "
            "this vault's account is its admin and a member.")
    return 0


def cmd_connect(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import chain
    with ctx.open_vault() as vault:
        settings, member = chain.connect(vault, args.rpc, args.contract,
                                         pay_with_node_account=args.pay_with_node_account)
    ctx.out(f"Using the consent registry {settings.contract} on chain {settings.chain_id}."
            + ("" if member or settings.pay_with_node_account else
               " This vault's account is not a member, so a member institution must relay its consent changes."))
    return 0


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        status = session.chain_status()
    if args.json:
        ctx.json(status.as_json())
        return 0
    if status.configured:
        ctx.out(f"Consent network: chain {status.chain_id}, registry {status.contract} at {status.rpc}")
    ctx.out(f"Status: {status.detail}")
    counts = status.counts()
    ctx.out(f"Consent changes: {counts['pending']} waiting, {counts['anchored']} recorded, {counts['failed']} refused")
    for r in status.outbox:
        where = f"block {r['block']} tx {r['tx']}" if r["state"] == "anchored" else (r["message"] or "")
        ctx.out(f"{r['id']:>5}  {r['kind']:<7} {r['state']:<9} {where}".rstrip())
    return 0


def cmd_sync(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        report = session.sync_chain(args.rpc)
    ctx.out(f"{len(report.anchored)} recorded on the chain ({len(report.already_on_chain)} were already there), "
            f"{len(report.failed)} refused.")
    if report.unavailable is not None:
        ctx.out(f"{report.remaining} still waiting: {report.unavailable.user_message}")
        return 1
    return 1 if report.failed else 0


def cmd_register(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import chain, sharing
    card = sharing.read_card(args.card)
    chain.check_registrable(card)
    with ctx.open_vault() as vault:
        result = chain.register_practitioner(vault, card)
    ctx.out(f"Registered {shown(card.name)} ({card.address}) as a practitioner in block {result.block_number}.")
    return 0


def cmd_member(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import chain
    with ctx.open_vault() as vault:
        result = chain.add_member(vault, args.address)
    ctx.out(f"Added {args.address} as a member in block {result.block_number}.")
    return 0

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


def _settings(vault: Any) -> Any:
    from sync import consent_service
    from sync.errors import ChainMismatch
    settings = consent_service.load_settings(vault)
    if settings is None:
        raise ChainMismatch("No consent network is set up; use 'medvault chain deploy' or 'medvault chain connect'.")
    return settings


def cmd_deploy(args: argparse.Namespace, ctx: Any) -> int:
    from sync import consent_service
    with ctx.open_vault() as vault:
        settings = consent_service.deploy(vault, args.rpc, pay_with_node_account=args.pay_with_node_account)
    ctx.out(f"Consent registry deployed at {settings.contract} on chain {settings.chain_id}; "
            "this vault's account is its admin and a member.")
    return 0


def cmd_connect(args: argparse.Namespace, ctx: Any) -> int:
    from sync import consent_service
    with ctx.open_vault() as vault:
        from sync.chain import Chain
        chain = Chain.connect(args.rpc)
        registry = chain.registry(args.contract)  # refuses an address without our contract
        settings = consent_service.ChainSettings(rpc=args.rpc, contract=registry.address, chain_id=chain.chain_id,
                                                 pay_with_node_account=args.pay_with_node_account)
        consent_service.save_settings(vault, settings)
        member = registry.is_member(vault.identity.eth_address)
    ctx.out(f"Using the consent registry {settings.contract} on chain {settings.chain_id}."
            + ("" if member or settings.pay_with_node_account else
               " This vault's account is not a member, so a member institution must relay its consent changes."))
    return 0


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    from sync import consent_service
    from sync.errors import ChainError
    with ctx.open_vault() as vault:
        settings = consent_service.load_settings(vault)
        with vault.read():
            entries = consent_service.outbox(vault).entries()
        reachable, detail = False, "no consent network is set up"
        if settings is not None:
            try:
                registry = consent_service.connect(settings)
                member = registry.is_member(vault.identity.eth_address)
                reachable, detail = True, "reachable; " + ("this vault is a member" if member else "not a member")
            except ChainError as exc:
                detail = exc.user_message
    rows = [{"id": e.id, "kind": e.kind, "state": e.state, "block": e.block_number, "tx": e.tx_hash,
             "reason": e.reason, "message": e.message or e.last_error, "attempts": e.attempts} for e in entries]
    if args.json:
        ctx.json({"configured": settings is not None, "reachable": reachable, "detail": detail,
                  "rpc": settings.rpc if settings else None, "contract": settings.contract if settings else None,
                  "chain_id": settings.chain_id if settings else None, "outbox": rows})
        return 0
    if settings is not None:
        ctx.out(f"Consent network: chain {settings.chain_id}, registry {settings.contract} at {settings.rpc}")
    ctx.out(f"Status: {detail}")
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in ("pending", "anchored", "failed")}
    ctx.out(f"Consent changes: {counts['pending']} waiting, {counts['anchored']} recorded, {counts['failed']} refused")
    for r in rows:
        where = f"block {r['block']} tx {r['tx']}" if r["state"] == "anchored" else (r["message"] or "")
        ctx.out(f"{r['id']:>5}  {r['kind']:<7} {r['state']:<9} {where}".rstrip())
    return 0


def cmd_sync(args: argparse.Namespace, ctx: Any) -> int:
    from dataclasses import replace

    from sync import consent_service
    with ctx.open_vault() as vault:
        settings = _settings(vault)
        if args.rpc:
            settings = replace(settings, rpc=args.rpc)
        report = consent_service.sync_outbox(vault, settings)
    ctx.out(f"{len(report.anchored)} recorded on the chain ({len(report.already_on_chain)} were already there), "
            f"{len(report.failed)} refused.")
    if report.unavailable is not None:
        ctx.out(f"{report.remaining} still waiting: {report.unavailable.user_message}")
        return 1
    return 1 if report.failed else 0


def cmd_register(args: argparse.Namespace, ctx: Any) -> int:
    from app.commands.sharing import _read_card
    from sync import consent_service
    from sync.errors import LinkInvalid
    card = _read_card(args.card)
    if not card.address:
        raise LinkInvalid("That card has no chain address, so it cannot be registered as a practitioner.")
    with ctx.open_vault() as vault:
        settings = _settings(vault)
        registry = consent_service.connect(settings)
        result = registry.register_practitioner(consent_service.sender_for(vault, settings, registry),
                                                card.address, card.did)
    ctx.out(f"Registered {shown(card.name)} ({card.address}) as a practitioner in block {result.block_number}.")
    return 0


def cmd_member(args: argparse.Namespace, ctx: Any) -> int:
    from sync import consent_service
    with ctx.open_vault() as vault:
        settings = _settings(vault)
        registry = consent_service.connect(settings)
        result = registry.add_member(consent_service.sender_for(vault, settings, registry), args.address)
    ctx.out(f"Added {args.address} as a member in block {result.block_number}.")
    return 0

"""``init``, ``passwd``, ``recover`` and ``audit``: the vault's own life cycle."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.terminal import value as shown
from vault.header import KDF_PROFILES

RECOVERY_NOTICE = """\
Your recovery key (shown only now; medvault cannot show it again):

    {key}

Write it down or print it and keep it somewhere safe, away from this computer. With it you can set a new
passphrase if you forget yours (medvault recover). Anyone who has it and this vault folder can open your records."""


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a new vault; prints the recovery key once")
    p.add_argument("--kdf-profile", choices=sorted(KDF_PROFILES), default="default",
                   help="key-stretching cost; 'test-insecure' exists for automated tests only")
    p.add_argument("--recovery-qr", metavar="FILE.png", help="also write the recovery key as a QR image")
    p.add_argument("--clinician", action="store_true", help="a clinician's vault: --name goes on your card")
    p.add_argument("--name", metavar="NAME", help="with --clinician: your name on your card")
    p.add_argument("--organisation", metavar="ORG", help="with --clinician: your organisation on your card")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("passwd", help="change the passphrase (the records move to a new key; the recovery key "
                                      "keeps working)")
    p.set_defaults(func=cmd_passwd)

    p = sub.add_parser("recover", help="set a new passphrase with the recovery key")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("audit", help="show the audit log; --verify checks it and every database page")
    p.add_argument("--verify", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(func=cmd_audit)


def cmd_init(args: argparse.Namespace, ctx: Any) -> int:
    from vault.store import Vault
    if args.kdf_profile == "test-insecure":
        ctx.warn("medvault: warning: the test-insecure profile makes the passphrase easy to guess; "
                 "never use it for real records.")
    if args.recovery_qr:
        from sync.qr import check_destination
        check_destination(Path(args.recovery_qr))  # before the vault exists: its recovery image must be writable
    profile = None
    if args.clinician or args.name or args.organisation:
        from app.cli import UsageError
        from app.services import clinician
        if not args.clinician:
            raise UsageError("--name and --organisation go with --clinician")
        profile = clinician.checked(clinician=True, name=args.name, organisation=args.organisation)
    passphrase = ctx.passphrase() if _has_given_passphrase(args, ctx) else ctx.new_passphrase("MEDVAULT_PASSPHRASE")
    vault, recovery_key = Vault.create(ctx.vault_dir, passphrase, kdf_profile=args.kdf_profile)
    with vault:
        ctx.out(f"Created a vault in {vault.folder}")
        ctx.out(f"Your identity: {vault.identity.did}")
        if profile is not None:
            clinician.save(vault, clinician=True, name=profile.name, organisation=profile.organisation)
            ctx.out(f"Clinician mode: your card names you as {profile.name}"
                    + (f", {profile.organisation}" if profile.organisation else "") + " ('medvault card').")
        ctx.out()
        ctx.out(RECOVERY_NOTICE.format(key=recovery_key))
        if args.recovery_qr:
            from sync.qr import write_png
            write_png(recovery_key, Path(args.recovery_qr))
            ctx.out(f"\nThe recovery key's QR image is in {args.recovery_qr}; print it, then delete the file.")
    return 0


def _has_given_passphrase(args: argparse.Namespace, ctx: Any) -> bool:
    return bool(getattr(args, "passphrase_file", None)) or "MEDVAULT_PASSPHRASE" in ctx.environ


OLDER_RECOVERY_SLOT = ("This vault was made by an older medvault: to keep your printed recovery key working after "
                       "the change, type it now; press Enter to get a new recovery key instead.")
NEW_RECOVERY_NOTICE = """\
This vault was made by an older medvault, whose recovery key cannot follow a passphrase change, so
your old recovery key no longer works. Your new recovery key (shown only now; medvault cannot show it again):

    {key}

Write it down or print it, keep it somewhere safe away from this computer, and destroy the old recovery kit."""


def cmd_passwd(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_vault() as vault:
        recovery_key = None
        if vault.recovery_key_needed_for_passwd:
            recovery_key = ctx.optional_recovery_key(OLDER_RECOVERY_SLOT, "Recovery key (Enter for a new one): ")
        issued = vault.change_passphrase(ctx.new_passphrase(), recovery_key=recovery_key)
        if issued is not None:
            # the new key must be confirmed, as the app asks: until then the next unlock in the app offers one
            vault.confirm_recovery_key()
    if issued is None:
        ctx.out("Passphrase changed, and your records moved to a new key: a copy of the old vault header opens "
                "nothing with the old passphrase. Your recovery key still works.")
    else:
        ctx.out("Passphrase changed, and your records moved to a new key.")
        ctx.out()
        ctx.out(NEW_RECOVERY_NOTICE.format(key=issued))
    return 0


def cmd_recover(args: argparse.Namespace, ctx: Any) -> int:
    from app.services.unlocking import recover_vault
    key = ctx.recovery_key()
    with recover_vault(ctx.vault_dir, key, ctx.new_passphrase(), accept_older=ctx.accept_older).vault:
        pass
    ctx.out("New passphrase set. Your records are as they were; keep using the same recovery key.")
    return 0


def cmd_audit(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        if args.verify:
            if ctx.anchor_note:
                ctx.warn(f"medvault: {ctx.anchor_note}")
            report = session.verify()
            if args.json:
                ctx.json({"intact": report.intact, "pages_ok": report.pages_ok,
                          "page_problems": len(report.page_problems), "entries": report.audit.entries,
                          "first_broken": report.audit.first_broken, "reason": report.audit.reason})
            else:
                ctx.out(report.sentence())
            return 0 if report.intact else 1
        entries = session.audit_entries(args.limit)
        if args.json:
            ctx.json([{"seq": e.seq, "at": e.at, "event": e.event, "details": e.details} for e in entries])
        else:
            for e in reversed(entries):
                detail = " ".join(f"{k}={shown(v)}" for k, v in sorted(e.details.items()))
                ctx.out(f"{e.seq:>6}  {e.at}  {e.event:<14} {detail}".rstrip())
    return 0

"""``import``, ``list``, ``search``, ``export``, ``persons`` and ``issuer``: getting records in and out of the vault.

Parsing and printing only: the use cases are ``app.services`` (the GUI calls the same ones). No Qt here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.terminal import value as shown

OTHER_PERSON_SENTENCE = ("This file is about someone other than the person this vault belongs to, so nothing was "
                         "imported; add --other-person to keep it as a separate person.")
PERSON_HELP = "whose records (an id from 'medvault persons'; default: the vault's own person)"


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import FHIR JSON/NDJSON, SMART Health Cards (file or shc:/ text), "
                                      "share links, PDFs and images")
    p.add_argument("sources", nargs="+", metavar="FILE|LINK", help="files, shc:/ text, or a share link")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the valid records of a file and report each invalid one, instead of refusing it")
    p.add_argument("--structural-only", action="store_true",
                   help="check resource types and shape only, not the full FHIR R4 models (faster)")
    p.add_argument("--other-person", action="store_true",
                   help="keep a file about someone other than the vault's person as a separate person, "
                        "instead of refusing it")
    p.add_argument("--allow-local-http", action="store_true",
                   help="a link may be fetched over plain http from this computer or the local network "
                        "(a clinic's embedded gateway)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", help="list records, newest first")
    p.add_argument("--type", dest="rtype", metavar="T", help="a FHIR resource type, e.g. Observation")
    p.add_argument("--category", metavar="C", help="e.g. laboratory, vital-signs")
    p.add_argument("--code", metavar="CODE", help="a code, e.g. LOINC 8480-6")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="on or after (YYYY, YYYY-MM or YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="on or before")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--person", type=int, metavar="ID", help=PERSON_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("search", help="full-text search over your records")
    p.add_argument("text", nargs="+")
    p.add_argument("--type", dest="rtype", metavar="T")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--person", type=int, metavar="ID", help=PERSON_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="write records as a FHIR Bundle, NDJSON, or an International Patient Summary")
    p.add_argument("--format", choices=("bundle", "ndjson", "ips"), default="bundle")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--type", dest="types", action="append", metavar="T", help="only this type (repeatable)")
    p.add_argument("--id", dest="ids", action="append", metavar="ID", help="only this record, Type/id (repeatable)")
    p.add_argument("--patient", metavar="ID", help="for --format ips: summarise this Patient record")
    p.add_argument("--person", type=int, metavar="ID", help=PERSON_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("persons", help="whose records the vault holds: its own person first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_persons)

    p = sub.add_parser("issuer", help="SMART Health Card issuers you trust")
    isub = p.add_subparsers(dest="issuer_command", metavar="add|list")
    a = isub.add_parser("add", help="trust an issuer: its 'iss' URL and its JWKS file or published folder")
    a.add_argument("iss", help="the issuer URL exactly as cards name it (https://...)")
    a.add_argument("jwks", metavar="JWKS_FILE|FOLDER", help="jwks.json, or a folder with .well-known/jwks.json "
                                                             "and .well-known/crl/")
    a.add_argument("--crl", action="append", default=[], metavar="FILE", help="a revocation list (repeatable)")
    a.set_defaults(func=cmd_issuer_add)
    ls = isub.add_parser("list", help="list trusted issuers")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_issuer_list)


def cmd_import(args: argparse.Namespace, ctx: Any) -> int:
    from app.services import PastedText
    sources = [PastedText(ctx.stdin.read()) if source == "-" else source for source in args.sources]
    with ctx.open_session() as session:
        outcomes = session.import_sources(sources, other_person=args.other_person, skip_invalid=args.skip_invalid,
                                          structural_only=args.structural_only, allow_local_http=args.allow_local_http,
                                          progress=_progress(ctx) if not args.json else None)
    results = [_result(o) for o in outcomes]
    if args.json:
        ctx.json(results)
    else:
        for o, r in zip(outcomes, results):
            if "error" in r:
                ctx.warn(f"medvault: {shown(o.name)}: {shown(r['error'])}")
            else:
                ctx.out(f"{shown(o.name)}: {shown(r['sentence'])}")
                for s in r["skipped"]:
                    ctx.out(f"  skipped {shown(s['where'])}: {shown(s['reason'])}")
    return 0 if all(o.ok for o in outcomes) else 1


def _result(outcome: Any) -> dict:
    result = outcome.as_json()
    if outcome.other_person:
        result["error"] = OTHER_PERSON_SENTENCE
    return result


def _progress(ctx: Any):
    if not getattr(ctx.stderr, "isatty", lambda: False)():
        return None
    drawn: list[int] = []

    def show(fraction: float) -> None:
        pct = min(100, int(100 * fraction))
        if drawn and drawn[-1] == pct:
            return
        drawn.append(pct)
        print(f"\rimporting: {pct:3d}%", end="", file=ctx.stderr, flush=True)
        if pct >= 100:
            print("", file=ctx.stderr)
    return show


def _row(r) -> str:
    when = (r.date or "")[:10]
    label = r.display or r.code or ""
    return f"{shown(when):<10}  {shown(r.rtype):<22} {shown(label)}".rstrip()


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records import query
    with ctx.open_session() as session, session.read() as conn:
        rows = query.list_records(conn, rtype=args.rtype, category=args.category, code=args.code,
                                  date_from=args.date_from, date_to=args.date_to, limit=args.limit,
                                  offset=args.offset, person=session.person)
    return _print_rows(rows, args, ctx, "No records match.")


def cmd_search(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records import query
    with ctx.open_session() as session, session.read() as conn:
        rows = query.search(conn, " ".join(args.text), rtype=args.rtype, limit=args.limit, person=session.person)
    return _print_rows(rows, args, ctx, "Nothing found.")


def _print_rows(rows: list, args: argparse.Namespace, ctx: Any, none_message: str) -> int:
    if args.json:
        ctx.json([r.as_json() for r in rows])
    else:
        for r in rows:
            ctx.out(_row(r))
        if not rows:
            ctx.out(none_message)
    return 0


def cmd_export(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        counts = session.export(args.format, Path(args.output), types=args.types, ids=args.ids, patient=args.patient)
    if args.json:
        ctx.json({"format": args.format, "output": args.output, "types": counts, "resources": sum(counts.values())})
    else:
        ctx.out(f"Wrote {sum(counts.values())} record(s) to {args.output} ({args.format}). "
                "This file is not encrypted: keep it safe or delete it when done.")
    return 0


def cmd_persons(args: argparse.Namespace, ctx: Any) -> int:
    with ctx.open_session() as session:
        people = session.persons()
    if args.json:
        ctx.json([p.as_json() for p in people])
        return 0
    if not people:
        ctx.out("No one yet: the first patient record imported becomes the vault's person.")
    for p in people:
        born = f"born {p.birth_date}" if p.birth_date else "birth date unknown"
        own = "  (the vault's own person)" if p.is_primary else ""
        ctx.out(f"{p.id:>4}  {shown(p.display_name or 'name unknown')}, {shown(born)}{own}")
    return 0


def cmd_issuer_add(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records.errors import IssuerInvalid
    from vault.records.shc import TrustStore
    src = Path(args.jwks)
    with ctx.open_vault() as vault:
        store = TrustStore(vault)
        if src.is_dir():
            n = store.add_folder(args.iss, src)
        else:
            try:
                jwks = src.read_bytes()
                crls = [Path(c).read_bytes() for c in args.crl]
            except OSError:
                raise IssuerInvalid("The key set or revocation list file could not be read; no issuer was added.") \
                    from None
            n = store.add(args.iss, jwks, crls)
    ctx.out(f"Trusting {args.iss} ({n} signing key(s)). Cards it signed will show as verified.")
    return 0


def cmd_issuer_list(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records.shc import TrustStore
    with ctx.open_vault() as vault:
        issuers = TrustStore(vault).list()
    if args.json:
        ctx.json(issuers)
    else:
        for i in issuers:
            ctx.out(shown(i))
        if not issuers:
            ctx.out("No trusted issuers yet; add one with 'medvault issuer add ISS JWKS'.")
    return 0

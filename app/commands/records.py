"""``import``, ``list``, ``search``, ``export`` and ``issuer``: getting records in and out of the vault.

A thin layer over ``vault.records``; the GUI drives the same ``ImportService``. No Qt here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.terminal import value as shown

_LINK_PREFIXES = ("shlink:/", "medvault:/")


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import FHIR JSON/NDJSON, SMART Health Cards (file or shc:/ text), "
                                      "share links, PDFs and images")
    p.add_argument("sources", nargs="+", metavar="FILE|LINK", help="files, shc:/ text, or a share link")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the valid records of a file and report each invalid one, instead of refusing it")
    p.add_argument("--structural-only", action="store_true",
                   help="check resource types and shape only, not the full FHIR R4 models (faster)")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("search", help="full-text search over your records")
    p.add_argument("text", nargs="+")
    p.add_argument("--type", dest="rtype", metavar="T")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", help="write records as a FHIR Bundle, NDJSON, or an International Patient Summary")
    p.add_argument("--format", choices=("bundle", "ndjson", "ips"), default="bundle")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--type", dest="types", action="append", metavar="T", help="only this type (repeatable)")
    p.add_argument("--id", dest="ids", action="append", metavar="ID", help="only this record, Type/id (repeatable)")
    p.add_argument("--patient", metavar="ID", help="for --format ips when the vault holds several patients")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

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


def _is_link(text: str) -> bool:
    t = text.strip()
    return t.lower().startswith(_LINK_PREFIXES) or ("#shlink:/" in t and t.lower().startswith("https://"))


def _looks_like_card_text(text: str) -> bool:
    t = text.strip()
    return t.lower().startswith("shc:/") or (t.startswith("eyJ") and t.count(".") == 2 and " " not in t)


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):   # a 1 KB card is not a valid path on most systems
        return False


def _read_stdin_arg(source: str, ctx: Any) -> str:
    return ctx.stdin.read() if source == "-" else source


def cmd_import(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records.errors import RecordsError
    from vault.records.importer import ImportOptions, ImportService

    options = ImportOptions(skip_invalid=args.skip_invalid,
                            validation="structural" if args.structural_only else "full")
    failures = 0
    results: list[dict] = []
    with ctx.open_vault() as vault:
        svc = ImportService(vault, options)
        files: list[str] = []
        for source in args.sources:
            text = _read_stdin_arg(source, ctx)
            if source == "-" or _is_link(text) or (_looks_like_card_text(text) and not _is_file(source)):
                try:
                    reports = _import_text(vault, svc, text)
                    results.extend({"source": "text", **r.as_json(), "sentence": r.sentence()} for r in reports)
                except RecordsError as err:
                    failures += 1
                    results.append({"source": "text", "error": err.user_message})
                continue
            files.append(source)
        for path, outcome in svc.import_paths(files, progress=_progress(ctx) if not args.json else None):
            if isinstance(outcome, RecordsError):
                failures += 1
                results.append({"source": str(path), "error": outcome.user_message})
            else:
                results.append({"source": str(path), **outcome.as_json(), "sentence": outcome.sentence()})
    if args.json:
        ctx.json(results)
    else:
        for r in results:
            if "error" in r:
                ctx.warn(f"medvault: {shown(Path(r['source']).name if r['source'] != 'text' else 'text')}: "
                         f"{shown(r['error'])}")
            else:
                ctx.out(f"{shown(Path(r['source']).name if r['source'] != 'text' else 'text')}: {shown(r['sentence'])}")
                for s in r["skipped"]:
                    ctx.out(f"  skipped {shown(s['where'])}: {shown(s['reason'])}")
    return 0 if failures == 0 else 1


def _progress(ctx: Any):
    if not getattr(ctx.stderr, "isatty", lambda: False)():
        return None

    def show(index: int, count: int, done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        print(f"\rimporting file {index + 1}/{count}: {pct:3d}%", end="", file=ctx.stderr, flush=True)
        if done >= total:
            print("", file=ctx.stderr)
    return show


def _import_text(vault: Any, svc: Any, text: str) -> list:
    if not _is_link(text):
        return [svc.import_data(text.encode("utf-8"), "pasted.txt")]
    from sync.receiver import open_link
    from vault.records.importer import ImportOptions, ImportService
    keys = vault.identity_keys
    result = open_link(text.strip(), recipient="medvault", x25519_private=keys.x25519_private,
                       my_did=vault.identity.did)
    # a return link is signed by the clinician who wrote it; anything else is only as good as its content
    trust = "clinician-signed" if result.kind == "medvault-return" and result.sender else None
    linked = ImportService(vault, ImportOptions(skip_invalid=svc.options.skip_invalid,
                                                validation=svc.options.validation, trust=trust))
    return [linked.import_data(json.dumps(b).encode("utf-8"), "shared.json") for b in result.bundles]


def _row(r) -> str:
    when = (r.date or "")[:10]
    label = r.display or r.code or ""
    return f"{shown(when):<10}  {shown(r.rtype):<22} {shown(label)}".rstrip()


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records import query
    with ctx.open_vault() as vault, vault.read() as conn:
        rows = query.list_records(conn, rtype=args.rtype, category=args.category, code=args.code,
                                  date_from=args.date_from, date_to=args.date_to, limit=args.limit,
                                  offset=args.offset)
    return _print_rows(rows, args, ctx, "No records match.")


def cmd_search(args: argparse.Namespace, ctx: Any) -> int:
    from vault.records import query
    with ctx.open_vault() as vault, vault.read() as conn:
        rows = query.search(conn, " ".join(args.text), rtype=args.rtype, limit=args.limit)
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
    from vault.records import export
    with ctx.open_vault() as vault:
        counts = export.export(vault, args.format, Path(args.output), types=args.types, ids=args.ids,
                               patient=args.patient)
    if args.json:
        ctx.json({"format": args.format, "output": args.output, "types": counts, "resources": sum(counts.values())})
    else:
        ctx.out(f"Wrote {sum(counts.values())} record(s) to {args.output} ({args.format}). "
                "This file is not encrypted: keep it safe or delete it when done.")
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

"""``medvault gui`` (and plain ``medvault``): the desktop app."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("gui", help="open the desktop app (the default)")
    p.add_argument("--clinician", action="store_true",
                   help="open the clinician's window: scan a patient's code, check it, read the records")
    p.add_argument("link", nargs="?", metavar="LINK|FILE",
                   help="a shlink:/ or medvault:/ link to open, or a record file to import (what the desktop passes "
                        "when one is opened with medvault); a window already open with this vault takes it over")
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace, ctx: Any) -> int:
    link = None
    if args.link:
        from app.link_intake import NotALinkOrFile, classify
        try:
            link = classify(args.link).value  # checked before any window: a bad argument is a plain sentence
        except NotALinkOrFile as exc:
            ctx.warn(f"medvault: {exc.user_message}")
            return 1
    from app.gui import run  # Qt is imported only when the window is wanted
    # without --clinician the vault's own profile decides (a vault made with 'init --clinician' opens as one)
    return run(ctx.vault_dir, link=link, clinician=True if getattr(args, "clinician", False) else None)

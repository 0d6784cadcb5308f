"""``medvault gui`` (and plain ``medvault``): the desktop app."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("gui", help="open the desktop app (the default)")
    p.add_argument("--clinician", action="store_true",
                   help="open the clinician's window: scan a patient's code, check it, read the records")
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace, ctx: Any) -> int:
    if getattr(args, "clinician", False):
        from app.clinician.app import run as run_clinician
        return run_clinician(ctx.vault_dir)
    from app.gui import run  # Qt is imported only when the window is wanted
    return run(ctx.vault_dir)

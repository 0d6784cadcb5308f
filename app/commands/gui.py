"""``medvault gui`` (and plain ``medvault``): the desktop app."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("gui", help="open the desktop app (the default)")
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace, ctx: Any) -> int:
    from app.gui import run  # Qt is imported only when the window is wanted
    return run(ctx.vault_dir)

"""The application layer: every use case of medvault, once, for both the command line and the desktop app.

No Qt here. ``Session`` (``session.py``) wraps an unlocked vault and offers the use cases as methods; the modules
hold them as functions of a vault: ``importing`` (files, pasted text, links), ``sharing`` (create, revoke, list,
backend, card), ``receiving`` (open a link, with the chain's consent check and an access receipt) and ``chain``
(set-up, status, sync). ``app/cli`` parses and prints; the GUI calls the same methods from its task runner.
"""

from __future__ import annotations

from app.services.importing import ImportOutcome, PastedText
from app.services.session import Session
from vault.records.importer import CancelToken

__all__ = ["CancelToken", "ImportOutcome", "PastedText", "Session"]

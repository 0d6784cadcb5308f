"""``Session``: an unlocked vault and everything the patient can do with it, for the CLI and the GUI alike.

The GUI calls these methods from worker threads (one task at a time on the vault's write connection; reads through
``read()`` use the second, read-only connection and never wait for an import). Long operations take a
``progress(fraction)`` callback and, where stopping half-way makes sense (import), a ``CancelToken``. Every failure
is a typed error carrying one plain sentence (``user_message``).

The session has a current person, the one the window shows (None: the vault's own). Reads, exports and shares
default to it; imports do not (a file's own Patient says whose it is).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.services import chain, importing, receiving, sharing
from app.services.importing import ImportOutcome, Progress
from vault.records.importer import CancelToken


class Session:
    """Wraps an unlocked ``vault.store.Vault``; closing the session locks the vault."""

    def __init__(self, vault: Any, *, person: int | None = None) -> None:
        self.vault = vault
        self._person: int | None = None
        if person is not None:
            self.set_person(person)

    @classmethod
    def unlock(cls, folder: str | Path, passphrase: str, **kwargs: Any) -> "Session":
        from vault.store import Vault
        return cls(Vault.unlock(folder, passphrase, **kwargs))

    # --- reading and persons ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """A read-only connection (``with session.read() as conn:``), on a worker thread only."""
        with self.vault.read_only() as conn:
            yield conn

    def persons(self) -> list[Any]:
        """Every person in the vault (``vault.records.persons.Person``), the vault's own first."""
        from vault.records.persons import persons
        with self.read() as conn:
            return persons(conn)

    @property
    def person(self) -> int | None:
        """The current person's id; None stands for the vault's own person."""
        return self._person

    def set_person(self, person: int | None) -> None:
        """Switch the current person (None: back to the vault's own); an id not in the vault is refused."""
        from vault.records.persons import resolve
        if person is not None:
            with self.read() as conn:
                resolve(conn, person)
        self._person = person

    def current_person(self) -> Any:
        """The current ``Person`` (name and birth date for the window), or None before any Patient is imported."""
        from vault.records.persons import resolve
        with self.read() as conn:
            wanted = resolve(conn, self._person)
        return next((p for p in self.persons() if p.id == wanted), None)

    def _whose(self, person: int | None) -> int | None:
        return self._person if person is None else person

    # --- getting records in and out ---------------------------------------------------------------------------
    def import_sources(self, sources: Sequence[str | Path], *, other_person: bool = False,
                       skip_invalid: bool = False, structural_only: bool = False,
                       progress: Progress | None = None, cancel: CancelToken | None = None) -> list[ImportOutcome]:
        """Files, pasted text (``importing.PastedText``, ``shc:/``) and share links; texts first, then the files
        as one batch. A file about someone else is refused (``outcome.other_person``) unless ``other_person``."""
        opts = importing.options(skip_invalid=skip_invalid, structural_only=structural_only,
                                 other_person=other_person)
        return importing.import_sources(self.vault, sources, opts=opts, progress=progress, cancel=cancel)

    def import_files(self, paths: Sequence[str | Path], *, other_person: bool = False, skip_invalid: bool = False,
                     progress: Progress | None = None, cancel: CancelToken | None = None) -> list[ImportOutcome]:
        opts = importing.options(skip_invalid=skip_invalid, other_person=other_person)
        return importing.import_files(self.vault, paths, opts=opts, progress=progress, cancel=cancel)

    def import_text(self, text: str, *, other_person: bool = False, progress: Progress | None = None,
                    cancel: CancelToken | None = None) -> list[ImportOutcome]:
        """Pasted ``shc:/`` text (or a compact JWS) or a share link; one outcome per bundle received."""
        opts = importing.options(other_person=other_person)
        return importing.import_text(self.vault, text, opts=opts, progress=progress, cancel=cancel)

    def export(self, fmt: str, out: str | Path, *, types: Sequence[str] | None = None,
               ids: Sequence[str] | None = None, patient: str | None = None,
               person: int | None = None) -> dict[str, int]:
        """Write ``person``'s records (default: the current person) as "bundle", "ndjson" or "ips"; counts per type."""
        from vault.records import export
        return export.export(self.vault, fmt, Path(out), types=types, ids=ids, patient=patient,
                             person=self._whose(person))

    # --- sharing --------------------------------------------------------------------------------------------
    def create_share(self, what: Any, *, expires: timedelta | str | None = "7d", label: str | None = None,
                     recipient: Any = None, gateway: str | None = None,
                     person: int | None = None) -> sharing.ShareOutcome:
        """Share ``what`` (``sharing.selection(ips=…, types=…, ids=…)``) of ``person``'s records (default: the
        current person); the consent is queued and sent to the chain now when one is set up."""
        return sharing.create(self.vault, what, expires=expires, label=label, recipient=recipient, gateway=gateway,
                              person=self._whose(person))

    def revoke_share(self, share_id: str) -> sharing.RevokeOutcome:
        return sharing.revoke(self.vault, share_id)

    def list_shares(self) -> list[dict]:
        return sharing.list_all(self.vault)

    def share_backend(self) -> dict:
        return sharing.backend(self.vault)

    def use_ipfs_backend(self, api: str, gateway: str | None) -> str:
        return sharing.use_ipfs(self.vault, api, gateway)

    def use_embedded_backend(self) -> None:
        sharing.use_embedded(self.vault)

    def serve(self, *, port: int | None = None, lan: bool = False) -> Any:
        """Start the embedded gateway receivers fetch this vault's shares from; call ``.stop()`` on it when done."""
        return sharing.serve(self.vault, port=port, lan=lan)

    def card(self, name: str | None = None) -> str:
        return sharing.card(self.vault, name)

    def open_link(self, source: str, *, passcode: receiving.Passcode = None, allow_local_http: bool = False,
                  check_chain: bool = False) -> Any:
        """Open a share link or QR image as this vault's identity (``sync.receiver.OpenResult``)."""
        return receiving.open_link(source, vault=self.vault, passcode=passcode, allow_local_http=allow_local_http,
                                   check_chain=check_chain)

    # --- the consent network and the audit log ----------------------------------------------------------------
    def sync_chain(self, rpc: str | None = None) -> Any:
        """Send every consent change waiting in the outbox (``sync.outbox.SyncReport``)."""
        return chain.sync(self.vault, rpc)

    def chain_status(self) -> chain.ChainStatus:
        return chain.status(self.vault)

    def verify(self) -> Any:
        """Every database page and the audit chain checked (``vault.store.VerifyReport``)."""
        return self.vault.verify()

    def audit_entries(self, limit: int = 1000) -> list[Any]:
        return self.vault.audit_entries(limit)

    # --- closing --------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.vault.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

from app.services import activity, chain, clinician, importing, preferences, receiving, sharing, writeback
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
                       progress: Progress | None = None, cancel: CancelToken | None = None,
                       allow_local_http: bool = False) -> list[ImportOutcome]:
        """Files, pasted text (``importing.PastedText``, ``shc:/``) and share links; texts first, then the files
        as one batch. A file about someone else is refused (``outcome.other_person``) unless ``other_person``.
        A clinician's ``return`` link is imported as their note, its trust decided by who signed it
        (``outcome.note`` says it). ``allow_local_http``: links may fetch from a gateway on this computer or the
        local network."""
        opts = importing.options(skip_invalid=skip_invalid, structural_only=structural_only,
                                 other_person=other_person)
        return importing.import_sources(self.vault, sources, opts=opts, progress=progress, cancel=cancel,
                                        allow_local_http=allow_local_http)

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
                     person: int | None = None, backend: str | None = None) -> sharing.ShareOutcome:
        """Share ``what`` (``sharing.selection(ips=…, types=…, ids=…)``, or a ``preview_share`` result, sent
        exactly as previewed) of ``person``'s records (default: the current person); the consent is queued and
        sent to the chain now when one is set up. ``backend``: "embedded" or "ipfs" for this share only."""
        return sharing.create(self.vault, what, expires=expires, label=label, recipient=recipient, gateway=gateway,
                              person=self._whose(person), backend=backend)

    def preview_share(self, what: Any, *, describe: str | None = None, put_back: Any = (),
                      person: int | None = None) -> Any:
        """What sharing ``what`` would send, with sensitive records left out and flagged unless in ``put_back``
        (``app.services.share_preview.SharePreview``; ``share_preview.with_put_back`` changes the choice)."""
        return sharing.preview(self.vault, what, person=self._whose(person), describe=describe, put_back=put_back)

    def choose_records(self, *, categories: Any = (), date_from: str | None = None, date_to: str | None = None,
                       person: int | None = None) -> list[str]:
        """"Type/id" of the current person's records in these categories and dates, for a share."""
        return sharing.choose(self.vault, categories=categories, date_from=date_from, date_to=date_to,
                              person=self._whose(person))

    def revoke_share(self, share_id: str) -> sharing.RevokeOutcome:
        return sharing.revoke(self.vault, share_id)

    def list_shares(self) -> list[dict]:
        return sharing.list_all(self.vault)

    def share_link(self, share_id: str) -> str | None:
        """The link of a share, kept in the vault, to show its QR again (None: revoked, or made before links
        were kept)."""
        return sharing.link(self.vault, share_id)

    def share_accesses(self) -> sharing.AccessLog:
        """Who opened which share, as recorded on the consent network."""
        return sharing.accesses(self.vault)

    def share_backend(self) -> dict:
        return sharing.backend(self.vault)

    def use_ipfs_backend(self, api: str, gateway: str | None) -> str:
        return sharing.use_ipfs(self.vault, api, gateway)

    def use_embedded_backend(self) -> None:
        sharing.use_embedded(self.vault)

    def serve(self, *, port: int | None = None, lan: bool = False, lookup: Any = None) -> Any:
        """Start the embedded gateway receivers fetch this vault's shares from; call ``.stop()`` on it when done.
        ``lookup``: where the files are read instead of the vault (``app.services.serving``)."""
        return sharing.serve(self.vault, port=port, lan=lan, lookup=lookup)

    def card(self, name: str | None = None) -> str:
        """This vault's identity card (``medvault:/``): the profile's name and organisation unless ``name``."""
        return clinician.card(self.vault, name)

    # --- the clinician's side -------------------------------------------------------------------------------
    def profile(self) -> clinician.Profile:
        return clinician.load(self.vault)

    def set_profile(self, *, clinician_mode: bool, name: str | None = None,
                    organisation: str | None = None) -> clinician.Profile:
        """Clinician mode on (a name is required, the organisation optional) or off; what goes on the card."""
        return clinician.save(self.vault, clinician=clinician_mode, name=name, organisation=organisation)

    def practitioner_registration(self) -> clinician.Registration:
        """Whether the consent network lists this vault's key as an active practitioner (network: worker only)."""
        return clinician.registration(self.vault)

    def write_back(self, recipient: writeback.Recipient, items: Sequence[Any], *,
                   expires: timedelta | None = writeback.DEFAULT_EXPIRY, gateway: str | None = None,
                   backend: str | None = None) -> writeback.WriteBack:
        """Sign notes and measurements (``writeback.Note``, ``writeback.Measurement``) for the patient of an opened
        share (``writeback.Recipient.from_opened``), encrypt them to the patient and publish them like a share;
        the result's ``link`` is the ``return`` link for the QR."""
        return writeback.create(self.vault, recipient, list(items), expires=expires, gateway=gateway,
                                backend=backend)

    # --- clinicians the patient knows -----------------------------------------------------------------------
    def confirm_clinician(self, card: Any) -> None:
        """Trust notes signed with this card's key as that clinician's (a card, or its text, file or QR image)."""
        writeback.confirm_card(self.vault, sharing.read_card(card) if isinstance(card, (str, Path)) else card)

    def confirmed_clinicians(self) -> list[dict]:
        return writeback.confirmed(self.vault)

    def recheck_clinician_notes(self) -> writeback.Recheck:
        """Look up again who signed notes imported as signed by an unknown key (after being offline, or once the
        clinician is registered); a signer now known makes that note's own records clinician-signed."""
        return writeback.recheck(self.vault)

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

    def chain_deploy(self, rpc: str, *, pay_with_node_account: bool = False) -> Any:
        """Deploy a new consent registry through ``rpc`` and use it (``sync.consent_service.ChainSettings``)."""
        return chain.deploy(self.vault, rpc, pay_with_node_account=pay_with_node_account)

    def chain_connect(self, rpc: str, contract: str, *, pay_with_node_account: bool = False) -> tuple[Any, bool]:
        """Use an existing consent registry; returns its settings and whether this vault is a member."""
        return chain.connect(self.vault, rpc, contract, pay_with_node_account=pay_with_node_account)

    def verify(self, progress: Any = None) -> Any:
        """Every database page and the audit chain checked (``vault.store.VerifyReport``); ``progress(step)``."""
        return self.vault.verify(progress)

    def check_integrity(self, progress: Any = None) -> activity.Integrity:
        """The full check in words, with ``progress(step, steps, words)`` as each step starts."""
        return activity.check_integrity(self.vault, progress)

    def audit_entries(self, limit: int = 1000) -> list[Any]:
        return self.vault.audit_entries(limit)

    def activity(self, *, before: int | None = None, limit: int = activity.PAGE) -> activity.Page:
        """A page of the audit log in words, newest first, with each consent's state on the chain."""
        with self.read() as conn:
            return activity.page(conn, before=before, limit=limit)

    # --- preferences and keys ---------------------------------------------------------------------------------
    def preferences(self) -> preferences.Preferences:
        return preferences.load(self.vault)

    def set_autolock_minutes(self, minutes: int) -> None:
        preferences.set_autolock_minutes(self.vault, minutes)

    def set_serve_when_locked(self, serve: bool) -> None:
        preferences.set_serve_when_locked(self.vault, serve)

    def set_local_network(self, on: bool) -> str:
        """Serve shares kept in the vault to the local network too, or this computer only; the new address."""
        return preferences.set_local_network(self.vault, on)

    @staticmethod
    def test_ipfs(api: str, gateway: str) -> preferences.IpfsProbe:
        """Add a probe through the IPFS node and fetch it back through its gateway (nothing about the vault)."""
        return preferences.test_ipfs(api, gateway)

    def change_passphrase(self, old: str, new: str, recovery_key: str | None = None) -> str | None:
        """Change the passphrase (the records move to a new key). None when the recovery key still works; the text
        of a new recovery key, to show once and confirm, when the vault's older recovery slot could not follow the
        change and ``recovery_key`` was not given."""
        from vault.errors import MalformedRecoveryKey
        try:
            return self.vault.change_passphrase(new, old_passphrase=old, recovery_key=recovery_key or None)
        except MalformedRecoveryKey as exc:     # its sentence is the recover page's: say what did not happen here
            raise MalformedRecoveryKey(f"{exc.user_message.rstrip('.')}; the passphrase was not changed.") from None

    @property
    def passwd_needs_recovery_key(self) -> bool:
        """A vault made by an older medvault: its recovery key keeps working after a passphrase change only if the
        user types it in (held in memory: reading it touches no disk)."""
        return self.vault.recovery_key_needed_for_passwd

    def new_recovery_key(self) -> str:
        """A new recovery key (the old one stops working), to be shown once and confirmed."""
        return self.vault.rotate_recovery_key()

    def confirm_recovery_key(self) -> None:
        self.vault.confirm_recovery_key()

    # --- closing --------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.vault.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

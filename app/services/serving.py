"""The embedded gateway as the desktop app runs it: one process owns the vault and serves its shares.

While the app is unlocked it serves the shares kept in the vault (``Session.serve``) from the open vault, through
its read-only connection, so a receiver's fetch never waits for an import. The gateway runs on its own threads.

Locking. The vault key is wiped at lock, so the vault cannot be read any more. If the patient chose to keep
serving while locked (the default), the app keeps, in memory, only what it must hand out: the encrypted share
files (JWE ciphertext, the very bytes any receiver downloads) of the shares active at that moment, each with its
expiry, which is checked at every request. Nothing else of the vault stays readable, and no key: the files cannot
be opened without the links, which stay with their holders. The vault folder stays locked by the app meanwhile
(``Vault.keep_folder_locked``), so no other process can revoke a share that is still being served; unlocking
again in the app switches back to the vault itself. With that choice turned off, locking stops serving.
``docs/threat-model.md`` states the same.

No Qt here: ``app.serving`` calls this from the task runner and shows the sentences.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from app.services import preferences, sharing

Lookup = Callable[[str], "bytes | None"]


@dataclass(frozen=True)
class Status:
    serving: bool
    locked: bool
    url: str | None          # where receivers fetch from (None when not serving)
    local_network: bool
    sentence: str            # what the window says about it


class _ReadOnly:
    """The vault as ``sync.shares.gateway_lookup`` reads it, through its read-only connection."""

    def __init__(self, vault: Any) -> None:
        self._vault = vault

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        with self._vault.read_only() as conn:
            yield conn

    def now(self) -> Any:
        return self._vault.now()


class LockedFiles:
    """What is served while the app is locked: the encrypted files of the shares active at lock time, with their
    expiry (epoch seconds, None for none); a file past its expiry is no longer handed out."""

    def __init__(self, files: dict[str, tuple[bytes, int | None]], clock: Callable[[], Any]) -> None:
        self._files = files
        self._clock = clock

    def __len__(self) -> int:
        return len(self._files)

    def __call__(self, cid: str) -> bytes | None:
        kept = self._files.get(cid)
        if kept is None:
            return None
        data, expires = kept
        if expires is not None and int(self._clock().timestamp()) >= expires:
            return None
        return data

    @classmethod
    def of(cls, vault: Any) -> "LockedFiles":
        from vault import shares_store
        view = _ReadOnly(vault)
        blobs = shares_store.VaultBlobStorage(view)
        now = int(vault.now().timestamp())
        with view.read() as conn:
            rows = [r for r in shares_store.all_rows(conn)
                    if r.backend == "embedded" and r.state_at(now) == shares_store.ACTIVE]
        files: dict[str, tuple[bytes, int | None]] = {}
        for row in rows:
            data = blobs.get(row.cid)
            if data is not None:
                files[row.cid] = (data, row.expires_at)
        return cls(files, vault.now)


class AppGateway:
    """The app's embedded gateway across unlocks and locks. Every method may block (disk, sockets, joining the
    server thread): call them from the task runner, never the GUI thread."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._gateway: Any = None
        self._source: Lookup | None = None
        self._hold: Any = None           # the vault folder's lock, kept while serving locked
        self._local_network = False

    def _lookup(self, cid: str) -> bytes | None:
        source = self._source
        return source(cid) if source is not None else None

    @property
    def serving(self) -> bool:
        return self._gateway is not None

    def start(self, session: Any) -> Status:
        """Serve from the open vault (after an unlock, or to follow a changed local-network choice). A port in use
        is a typed error whose sentence says so; the vault is unaffected."""
        from sync import shares
        vault = session.vault
        with self._guard:
            base = shares.gateway_setting(vault)
            local_network = not sharing.local_only(base)
            try:
                if self._gateway is not None and local_network != self._local_network:
                    self._stop_gateway()
                self._source = shares.gateway_lookup(_ReadOnly(vault))
                if self._gateway is None:
                    self._gateway = session.serve(lan=local_network, lookup=self._lookup)
                    self._local_network = local_network
            finally:
                self._drop_hold()       # the open vault holds the folder itself now
            return self._status(locked=False, url=base)

    def lock(self, vault: Any) -> Status:
        """Called just before the vault closes: keep serving the encrypted files of active shares (if the patient
        chose to and there are any), or stop."""
        with self._guard:
            if self._gateway is None:
                return Status(False, True, None, False, NOT_SERVED_LOCKED)
            files = LockedFiles.of(vault) if preferences.serve_when_locked(vault) else None
            if not files:
                self._stop_gateway()
                return Status(False, True, None, False,
                              NOT_SERVED_LOCKED if files is None else NOTHING_TO_SERVE_LOCKED)
            from vault.fsutil import HOLDER_APP_LOCKED
            self._hold = vault.keep_folder_locked(HOLDER_APP_LOCKED)
            self._source = files
            from sync import shares
            return self._status(locked=True, url=shares.gateway_setting(vault), count=len(files))

    def stop(self) -> None:
        with self._guard:
            self._stop_gateway()

    def _stop_gateway(self) -> None:
        gateway, self._gateway, self._source = self._gateway, None, None
        try:
            if gateway is not None:
                gateway.stop()
        finally:
            self._drop_hold()

    def _drop_hold(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.release()

    def _status(self, *, locked: bool, url: str, count: int = 0) -> Status:
        where = "this computer and the local network" if self._local_network else "this computer only"
        if locked:
            files = "one share" if count == 1 else f"{count} shares"
            sentence = (f"Your shares are still served while locked ({files}, as encrypted files only, for "
                        f"{where}). Unlock to change or revoke them.")
        else:
            sentence = f"Serving the shares kept on this computer at {url}, for {where}."
        return Status(True, locked, url, self._local_network, sentence)


NOT_SERVED_LOCKED = "Locked: your shares are not served until you unlock."
NOTHING_TO_SERVE_LOCKED = ("Locked. No share kept on this computer is active, so nothing is served until you "
                           "unlock.")

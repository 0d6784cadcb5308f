"""The vault: a folder with a header and a SQLCipher database, opened with keys derived from one vault key.

``Vault`` is the only entry point the rest of medvault uses. It is the only module that imports SQLCipher; every
database error is turned into a typed ``VaultError`` here, so callers never see a driver exception.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlcipher3 import dbapi2 as sqlcipher

from vault import audit as audit_log
from vault import crypto, eventlog, recovery
from vault import state as saved_state
from vault.errors import (StorageUnavailable, VaultCorrupt, VaultError, VaultExists, FormatTooNew,
                          VaultNotFound, VaultRolledBack, WeakPassphrase, WrongPassphrase, WrongRecoveryKey)
from vault.fsutil import (NotARegularFile, VaultLock, fsync_dir, make_private, make_private_dir, open_private,
                          read_private, storage_error)
from vault.header import (FORMAT_VERSION, HEADER_NAME, LEGACY_DB_PAGE_SIZE, RECOVERY_SYMMETRIC, Header,
                          new_kdf_params, passphrase_kek, read_header, write_header)
from vault.identity import IdentityKeys, PublicIdentity
from vault.schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "vault.db"
STATE_NAME = saved_state.STATE_NAME
# SQLCipher MACs and encrypts every page on its own: 64 KiB pages cut that work about sixteenfold for the large
# rows records are. Vaults made with the 4 KiB default are moved over when they are unlocked (``_larger_pages``).
DB_PAGE_SIZE = 65536
STAGED_DB_NAME = "vault.db-pages"       # the moved copy, until it replaces vault.db
REKEYED_DB_NAME = "vault.db-rekey"      # the copy under a new vault key (passwd, recover), until it replaces vault.db
# The audit log's MAC key, kept in the database from the first change of vault key on: entries written under the
# old key must still verify, and the key must not change when the passphrase does. Older vaults derive it.
AUDIT_KEY_META = "audit_mac_key"
# Set from the first commit that wrote a state file: a database with this row expects one, whatever the header says
# (a format-1 header's recovery slot cannot carry that promise).
STATE_META = "state_file"
CONTENT_HASH_VERSION = "2"              # meta.content_hash of new vaults: see vault/records/jsonutil.py
FAILED_UNLOCKS_NAME = "failed-unlocks"
# The GUI shows a new vault's recovery key once and asks the user to confirm they kept it; until then this row in
# ``meta`` says "no", and the next unlock offers a fresh key. Vaults made before the row existed have none: their
# users were shown the key, so they are not asked again. The CLI, which prints the key and asks nothing, says "yes".
RECOVERY_CONFIRMED_META = "recovery_key_confirmed"
MIN_PASSPHRASE_CHARS = 10
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase()


@dataclass(frozen=True)
class VerifyReport:
    pages_ok: bool
    page_problems: list[str]
    audit: audit_log.AuditReport

    @property
    def intact(self) -> bool:
        return self.pages_ok and self.audit.intact

    @property
    def broken_pages(self) -> list[int]:
        """The database pages whose authentication code is wrong: where the file was damaged or edited."""
        pages = []
        for problem in self.page_problems:
            head, _, number = problem.rpartition(" page ")
            if head.startswith("HMAC verification failed") and number.strip().isdigit():
                pages.append(int(number))
        return pages

    def sentence(self) -> str:
        if not self.pages_ok:
            pages = self.broken_pages
            where = (f" at page {pages[0]:,}" if len(pages) == 1 else
                     f" at {len(pages):,} pages, the first page {pages[0]:,}" if pages else "")
            checks = "" if pages else f": {len(self.page_problems)} page check(s) failed"
            return f"The database file was damaged or tampered with{where}{checks}; restore it from a backup."
        return self.audit.sentence()


def db_error(exc: Exception, folder: Path | None = None) -> VaultError:
    """One sentence for a database driver error; the driver's own text never reaches the user."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary == 8 or "readonly" in text:  # SQLITE_READONLY
        return storage_error(OSError(errno.EROFS, "read-only"))
    if primary == 13 or (primary == 10 and folder is not None and _nearly_full(folder)):  # FULL, or IOERR on a full disk
        return storage_error(OSError(errno.ENOSPC, "full"))
    if primary == 10:
        return StorageUnavailable("medvault could not read or write the vault's files (a disk error); "
                                  "nothing was changed. Check the disk and try again.")
    if primary == 14:  # SQLITE_CANTOPEN
        return StorageUnavailable("medvault could not open the vault's database file; check that the vault "
                                  "folder is readable and writable.")
    if primary in (5, 6):  # BUSY, LOCKED
        return VaultError("The vault is busy with another task; try again in a moment.")
    return VaultCorrupt()


def _nearly_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1024 * 1024


class Vault:
    """An unlocked vault. Close it (or use it as a context manager) to lock it again."""

    def __init__(self, folder: Path, header: Header, vault_key: bytes, lock: VaultLock, clock: Clock) -> None:
        self.folder = Path(folder)
        self.header = header
        self._vault_key = vault_key
        self._lock = lock
        self._clock = clock
        self._mutex = threading.RLock()  # one connection, used from the GUI's worker threads one at a time
        self._conn: Any = None
        # A second, read-only connection: in WAL mode it reads the last committed state while the main one is
        # inside a long import transaction, so the window's reads never wait for a write.
        self._ro_mutex = threading.RLock()
        self._ro_conn: Any = None
        self._keys: IdentityKeys | None = None
        self._audit_key = b""
        self._head_moved = False     # an audit entry was appended since the state file was last written
        self._accepted_older: dict[str, Any] | None = None

    # --- opening --------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path | str, passphrase: str, *, kdf_profile: str = "default",
               clock: Clock = utc_now, recovery_key_confirmed: bool = True) -> tuple["Vault", str]:
        """Create a vault; returns it unlocked and the recovery key text, which must be shown to the user once.

        ``recovery_key_confirmed=False`` when the caller will ask the user to confirm they kept the key (the
        desktop app): until ``confirm_recovery_key`` the vault says so, and the next unlock offers a new key.

        Everything is built in a hidden sibling folder and renamed into place, so an interrupted create leaves
        either no vault or a complete one.
        """
        folder = Path(folder).expanduser().absolute()
        check_passphrase(passphrase)
        if (folder / HEADER_NAME).exists():
            raise VaultExists()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise VaultExists("That folder is not empty; choose an empty or new folder for the vault.")
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc) from None
        _remove_abandoned_drafts(folder.parent)
        draft = folder.parent / f".medvault-init-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            draft.mkdir(mode=0o700)
        except OSError as exc:
            raise storage_error(exc) from None
        try:
            vault_key = crypto.random_bytes(crypto.KEY_BYTES)
            audit_key = crypto.subkey(vault_key, "audit-mac")
            secret = recovery.new_secret()
            params = new_kdf_params(kdf_profile)
            header = Header(vault_id=uuid.uuid4().hex, kdf=params, passphrase_slot=b"", recovery_salt=b"",
                            recovery_slot=b"", db_page_size=DB_PAGE_SIZE)
            kek = passphrase_kek(passphrase, params)
            header = header.with_passphrase_kek(kek, vault_key, params)
            header = header.with_recovery_secret(secret, vault_key)
            keys = IdentityKeys.generate()
            conn = _connect(draft / DB_NAME, crypto.subkey(vault_key, "sqlcipher-database"), DB_PAGE_SIZE)
            try:
                # a rollback journal while the tables are made: a WAL would hold a second copy of every new
                # (64 KiB) page until the checkpoint; the next unlock turns WAL on again
                conn.execute("PRAGMA journal_mode = DELETE")
                _migrate(conn)
                with _tx(conn):
                    conn.execute("INSERT INTO meta (key, value) VALUES ('vault_id', ?)", (header.vault_id,))
                    conn.execute("INSERT INTO meta (key, value) VALUES ('content_hash', ?)", (CONTENT_HASH_VERSION,))
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                                 (RECOVERY_CONFIRMED_META, "yes" if recovery_key_confirmed else "no"))
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (AUDIT_KEY_META, audit_key.hex()))
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, 'required')", (STATE_META,))
                    conn.execute("INSERT INTO identity (id, ed25519_seed, secp256k1_private, created_at) "
                                 "VALUES (1, ?, ?, ?)", (keys.ed25519_seed, keys.secp256k1_private,
                                                         clock().isoformat()))
                    audit_log.append(conn, audit_key, clock().isoformat(), "init",
                                     {"format": header.format_version, "kdf": params.profile,
                                      "schema": SCHEMA_VERSION})
                head = _audit_head(conn)
            finally:
                conn.close()
            saved_state.write_state(draft, saved_state.SavedState(header.vault_id, *head),
                                    saved_state.state_key(audit_key))
            write_header(draft, header)
            fsync_dir(draft)
            os.replace(draft, folder)  # onto a missing or empty folder: atomic either way
            fsync_dir(folder.parent)
        except OSError as exc:
            shutil.rmtree(draft, ignore_errors=True)
            raise storage_error(exc) from None
        except sqlcipher.Error as exc:
            shutil.rmtree(draft, ignore_errors=True)
            raise db_error(exc, folder.parent) from exc
        except BaseException:
            shutil.rmtree(draft, ignore_errors=True)
            raise
        vault = cls.unlock(folder, passphrase, clock=clock, _kek=kek, _audit_unlock=False)
        return vault, recovery.format_key(secret)

    @classmethod
    def unlock(cls, folder: Path | str, passphrase: str, *, clock: Clock = utc_now, accept_older: bool = False,
               _kek: bytes | None = None, _audit_unlock: bool = True) -> "Vault":
        """Open with the passphrase. ``accept_older``: the user restored an older copy on purpose; a database
        older than the vault's saved state is then opened (and that choice audited) instead of refused."""
        keks: list[bytes] = []

        def unwrap(header: Header, folder: Path) -> bytes:
            kek = _kek or passphrase_kek(passphrase, header.kdf)
            try:
                vault_key = header.unwrap_with_kek(kek, "passphrase")
            except crypto.CryptoError:
                _note_failed_unlock(folder, clock)
                eventlog.event("unlock", outcome="wrong_passphrase")
                raise WrongPassphrase() from None
            keks.append(kek)
            return vault_key

        def finish(vault: "Vault") -> None:
            if _audit_unlock:
                vault._record_unlock()
                eventlog.event("unlock", outcome="ok")
            if vault.header.format_version < FORMAT_VERSION:
                vault._move_header_to_format2(keks[0])

        return cls._open(folder, clock, unwrap, finish, accept_older)

    @classmethod
    def recover(cls, folder: Path | str, recovery_key: str, new_passphrase: str, *,
                clock: Clock = utc_now, accept_older: bool = False) -> "Vault":
        """Open with the recovery key and set a new passphrase. Like ``change_passphrase``, this moves the records
        to a new vault key, so the forgotten (or stolen) passphrase opens nothing current with any copy of the
        old header; the same recovery key keeps working."""
        secret = recovery.parse_key(recovery_key)
        check_passphrase(new_passphrase)

        def unwrap(header: Header, folder: Path) -> bytes:
            try:
                return header.unwrap_with_recovery(secret)
            except crypto.CryptoError:
                raise WrongRecoveryKey() from None

        def finish(vault: "Vault") -> None:
            vault._rekey(new_passphrase, secret)  # the database was proven to belong to this key first
            with vault.transaction() as conn:
                vault._note_restore(conn)         # an older copy accepted here is on record, as at unlock
                vault.audit("recover", conn=conn)

        return cls._open(folder, clock, unwrap, finish, accept_older)

    @classmethod
    def _open(cls, folder: Path | str, clock: Clock, unwrap: Callable[[Header, Path], bytes],
              finish: Callable[["Vault"], None], accept_older: bool = False) -> "Vault":
        """Lock the folder, unwrap the vault key one way or another, open the database, then ``finish``;
        any failure releases the lock and leaves the vault as it was."""
        folder = Path(folder).expanduser().absolute()
        if not (folder / HEADER_NAME).exists():
            raise VaultNotFound()
        lock = VaultLock(folder)
        lock.acquire()
        vault = None
        try:
            header = read_header(folder)
            _narrow_folder(folder)
            _require_writable(folder)
            vault = cls(folder, header, unwrap(header, folder), lock, clock)
            vault._open_db(accept_older)
            finish(vault)
            return vault
        except BaseException:
            if vault is not None:
                vault.close()  # closes the database too, if it was opened
            else:
                lock.release()
            raise

    # --- state ----------------------------------------------------------------------------------------------
    def _open_db(self, accept_older: bool = False) -> None:
        path = self.folder / DB_NAME
        _settle_rekeyed_db(self.folder, self.header, self.subkey("sqlcipher-database"))
        _settle_staged_db(self.folder, self.header)
        if not path.exists():
            raise VaultCorrupt("The vault's database file is missing; restore it from a backup.")
        try:
            conn = _connect(path, crypto.subkey(self._vault_key, "sqlcipher-database"), self.header.db_page_size)
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'vault_id'").fetchone()
                if row is None or row[0] != self.header.vault_id:
                    raise VaultCorrupt("The database file does not belong to this vault; "
                                       "restore the vault's own database from a backup.")
                row = conn.execute("SELECT value FROM meta WHERE key = ?", (AUDIT_KEY_META,)).fetchone()
                self._audit_key = bytes.fromhex(row[0]) if row else crypto.subkey(self._vault_key, "audit-mac")
                # before any migration or write: a refused database is left exactly as it was found
                self._check_saved_state(conn, accept_older)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise FormatTooNew()
                if version < SCHEMA_VERSION:
                    _migrate(conn)
                keys = conn.execute("SELECT ed25519_seed, secp256k1_private FROM identity WHERE id = 1").fetchone()
                if keys is None:
                    raise VaultCorrupt()
            except BaseException:
                conn.close()
                raise
        except sqlcipher.Error as exc:
            raise db_error(exc, self.folder) from exc
        if self.header.db_page_size != DB_PAGE_SIZE:
            conn = self._larger_pages(conn)
        self._conn = conn
        self._keys = IdentityKeys(bytes(keys[0]), bytes(keys[1]))

    def _larger_pages(self, conn: Any) -> Any:
        """Move a vault made with 4 KiB pages to ``DB_PAGE_SIZE`` pages; returns the connection to use.

        ``sqlcipher_export`` copies everything into a staged file that is fsynced, then the header records the new
        page size and the staged file replaces the old one. A crash between those two steps is finished by the next
        unlock (``_settle_staged_db``), so the header never names a page size the database does not have. If the
        copy fails (a full disk, a damaged page, which ``audit --verify`` should then report), the old file stays
        as it was and is used; the next unlock tries again.
        """
        staged = self.folder / STAGED_DB_NAME
        try:
            _export(conn, staged, self.subkey("sqlcipher-database"), DB_PAGE_SIZE)
        except (sqlcipher.Error, OSError):
            with contextlib.suppress(OSError):
                staged.unlink()
            return conn
        conn.close()
        header = replace(self.header, db_page_size=DB_PAGE_SIZE)
        try:
            write_header(self.folder, header)
        except StorageUnavailable:
            header = self.header          # still the old file's header: drop the copy, keep the old file
            with contextlib.suppress(OSError):
                staged.unlink()
        self.header = header
        _settle_staged_db(self.folder, header)
        try:
            return _connect(self.folder / DB_NAME, crypto.subkey(self._vault_key, "sqlcipher-database"),
                            header.db_page_size)
        except sqlcipher.Error as exc:
            raise db_error(exc, self.folder) from exc

    def _record_unlock(self) -> None:
        failed_path = self.folder / FAILED_UNLOCKS_NAME
        present, raw = True, b""
        try:
            raw = read_private(failed_path, _MAX_FAILED_NOTES * 40)
        except FileNotFoundError:
            present = False
        except OSError:  # a link or special file under the note's name: nothing in it is believed
            raw = b"?"
        times, rejected = _failed_unlock_times(raw)
        with self.transaction() as conn:
            self._note_restore(conn)
            for at in times:
                self.audit("unlock_failed", conn=conn, at=at)
            if rejected:
                self.audit("unlock_failed_rejected", conn=conn, lines=rejected)
            self.audit("unlock", conn=conn)
        if present:
            with contextlib.suppress(OSError):
                failed_path.unlink()  # removes a planted link itself, never its target

    # --- the saved state (rollback) ---------------------------------------------------------------------------
    def _check_saved_state(self, conn: Any, accept_older: bool) -> None:
        """Refuse a database that is older than the state saved at its last commit, or whose state file is
        missing or edited; with ``accept_older`` note why it would have been refused and go on."""
        seq, digest = _audit_head(conn)
        try:
            saved = saved_state.read_state(self.folder, saved_state.state_key(self._audit_key),
                                           self.header.vault_id)
            if saved is None:
                expected = conn.execute("SELECT 1 FROM meta WHERE key = ?", (STATE_META,)).fetchone()
                if self.header.requires_state or expected is not None:
                    raise VaultRolledBack(saved_state.MISSING)
                return      # a vault made before the state file: it gets one at this unlock
            if seq < saved.audit_seq:
                raise VaultRolledBack()
            row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (saved.audit_seq,)).fetchone()
            if row is None or not crypto.mac_equal(bytes(row[0]), saved.audit_hash):
                raise VaultRolledBack(saved_state.FORKED)
        except VaultRolledBack as exc:
            if not accept_older:
                raise
            self._accepted_older = {"action": "accepted_older_copy", "database_seq": seq,
                                    "why": "missing" if exc.user_message == saved_state.MISSING else
                                    "edited" if exc.user_message == saved_state.EDITED else "older"}

    def _note_restore(self, conn: Any) -> None:
        """Inside the first transaction after opening: the state file is from now on expected, and an older copy
        the user chose to accept is on record."""
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 'required')", (STATE_META,))
        if self._accepted_older is not None:
            self.audit("restore", conn=conn, **self._accepted_older)
            self._accepted_older = None
        self._head_moved = True

    def _save_state(self) -> None:
        """Write the committed audit head to the state file. Best effort: the commit is already made, and a file
        left behind the database is allowed (the next commit catches up)."""
        if self._conn is None or not self._audit_key:
            return
        try:
            head = _audit_head(self._conn)
            saved_state.write_state(self.folder, saved_state.SavedState(self.header.vault_id, *head),
                                    saved_state.state_key(self._audit_key))
        except (StorageUnavailable, sqlcipher.Error):
            return
        self._head_moved = False

    def _move_header_to_format2(self, kek: bytes) -> None:
        """A format-1 header, once its state file exists, becomes format 2 so the file cannot be deleted unnoticed:
        the passphrase slot is rewrapped under the same passphrase with the new format in its associated data. The
        recovery slot cannot be rewrapped without the recovery key, so it is carried over as it is."""
        header = replace(self.header, format_version=FORMAT_VERSION).with_passphrase_kek(kek, self._vault_key,
                                                                                          self.header.kdf)
        write_header(self.folder, header)
        self.header = header

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> Any:
        """The database connection, for reads inside ``with vault.read():`` and writes inside ``transaction()``."""
        if self._conn is None:
            from vault.errors import VaultLocked
            raise VaultLocked()
        return self._conn

    @property
    def vault_id(self) -> str:
        return self.header.vault_id

    @property
    def identity(self) -> PublicIdentity:
        assert self._keys is not None
        return self._keys.public

    @property
    def identity_keys(self) -> IdentityKeys:
        assert self._keys is not None
        return self._keys

    def now(self) -> datetime:
        return self._clock()

    def subkey(self, purpose: str) -> bytes:
        return crypto.subkey(self._vault_key, purpose)

    # --- transactions ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls everything back and the vault is as it was."""
        with self._mutex:
            conn = self.conn
            try:
                with _tx(conn):
                    yield conn
            except sqlcipher.Error as exc:
                raise db_error(exc, self.folder) from exc
            if self._head_moved:
                self._save_state()

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """Serialised reads with driver errors turned into typed vault errors."""
        with self._mutex:
            try:
                yield self.conn
            except sqlcipher.Error as exc:
                raise db_error(exc, self.folder) from exc

    @contextlib.contextmanager
    def read_only(self) -> Iterator[Any]:
        """Reads on the second connection, which cannot write (``query_only``). Everything read inside one
        ``with`` block comes from one snapshot: a screen's count and its rows agree even while an import commits."""
        with self._ro_mutex:
            try:
                conn = self._reader()
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("ROLLBACK")  # ends the snapshot; there is nothing to keep
            except sqlcipher.Error as exc:
                raise db_error(exc, self.folder) from exc

    def _reader(self) -> Any:
        if self._ro_conn is None:
            if self._conn is None or not self._vault_key:
                from vault.errors import VaultLocked
                raise VaultLocked()
            conn = _connect(self.folder / DB_NAME, self.subkey("sqlcipher-database"), self.header.db_page_size)
            try:
                conn.execute("PRAGMA query_only = ON")
            except BaseException:
                conn.close()
                raise
            self._ro_conn = conn
        return self._ro_conn

    def audit(self, event: str, *, conn: Any = None, **details: Any) -> int:
        """Append an audit entry (details: ids, counts, hashes only, never PHI)."""
        at = details.pop("at", None) or self._clock().isoformat()
        if conn is not None:
            self._head_moved = True     # the state file is written once the caller's transaction commits
            return audit_log.append(conn, self._audit_key, at, event, details)
        with self.transaction() as tx:
            self._head_moved = True
            return audit_log.append(tx, self._audit_key, at, event, details)

    def setting(self, key: str) -> str | None:
        """A stored setting (no PHI by convention: network addresses, choices), or None."""
        with self.read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str, **audit_details: Any) -> None:
        """Store a setting and audit the change in the same transaction."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
            self.audit("settings", conn=conn, setting=key, **audit_details)

    def audit_entries(self, limit: int = 1000) -> list[audit_log.AuditEntry]:
        with self.read() as conn:
            return audit_log.entries(conn, limit)

    VERIFY_STEPS = ("every page of the database", "the database's structure", "the audit log")

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Check every database page (SQLCipher's per-page HMAC), SQLite's structure, and the audit chain;
        ``progress(step)`` is told each step (an index into ``VERIFY_STEPS``) as it starts."""
        step = progress or (lambda _n: None)
        with self._mutex:
            try:
                step(0)
                problems = [str(r[0]) for r in self.conn.execute("PRAGMA cipher_integrity_check")]
            except sqlcipher.Error:
                return VerifyReport(False, ["the database could not be read"],
                                    audit_log.AuditReport(0, False, None, "unreadable"))
            try:
                step(1)
                structure = [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check")]
                if structure != ["ok"]:
                    problems += structure
                step(2)
                report = audit_log.verify(self.conn, self._audit_key)
            except sqlcipher.Error:
                # a page that fails its MAC also stops SQLite's own walk (with 64 KiB pages a damaged page is read
                # on the way): keep what the page check found, which says where the file was changed
                return VerifyReport(False, problems or ["the database could not be read"],
                                    audit_log.AuditReport(0, False, None, "unreadable"))
        return VerifyReport(not problems, problems, report)

    # --- passphrase ---------------------------------------------------------------------------------------------
    @property
    def recovery_key_needed_for_passwd(self) -> bool:
        """A vault made by an older medvault keeps its recovery slot under a key only the recovery key gives, so a
        passphrase change either takes the recovery key (to keep it working) or replaces it with a new one."""
        return self.header.recovery_kind == RECOVERY_SYMMETRIC

    def change_passphrase(self, new_passphrase: str, *, old_passphrase: str | None = None,
                          recovery_key: str | None = None) -> str | None:
        """Set a new passphrase and move the records to a new vault key, so that a copy of the old header opens
        nothing current with the old passphrase. With ``old_passphrase`` (the window asks for it: an unlocked vault
        left unattended is not a licence to lock its owner out) a wrong one changes nothing.

        Returns None when the recovery key still works, or the text of a new recovery key, to be shown once, when
        the vault's recovery slot is of the older kind and ``recovery_key`` was not given: the old key then stops
        working. A wrong ``recovery_key`` changes nothing."""
        check_passphrase(new_passphrase)
        if old_passphrase is not None:
            try:
                self.header.unwrap_with_kek(passphrase_kek(old_passphrase, self.header.kdf), "passphrase")
            except crypto.CryptoError:
                raise WrongPassphrase("The current passphrase is wrong; it was not changed.") from None
        secret, issued = None, None
        if self.recovery_key_needed_for_passwd:
            if recovery_key:
                secret = recovery.parse_key(recovery_key)
                try:
                    self.header.unwrap_with_recovery(secret)
                except crypto.CryptoError:
                    raise WrongRecoveryKey("That recovery key does not open this vault; the passphrase was not "
                                           "changed. Check it against your printed recovery kit.") from None
            else:
                secret = recovery.new_secret()
                issued = recovery.format_key(secret)
                self._mark_recovery_key(False, "rotating")   # as in rotate_recovery_key: a crash still offers one
        self._rekey(new_passphrase, secret)
        self.audit("passwd", recovery="kept" if issued is None else "replaced")
        return issued

    def _rekey(self, new_passphrase: str, secret: bytes | None) -> None:
        """Re-encrypt the database under a new vault key and write the header that opens it.

        ``sqlcipher_export`` copies everything into ``vault.db-rekey`` under the new key (fsynced); the header
        rewrite is the switch; then the copy replaces ``vault.db``. A kill before the switch leaves the old header,
        the old file and a leftover copy the next unlock deletes (it does not open under the old key); a kill after
        it leaves the new header and a complete copy the next unlock moves into place (it opens under the new key).
        So the vault opens with exactly one of the two passphrases at every instant. ``secret`` is the recovery
        key to seal for (given, or new); without it the slot is sealed again to the recovery key's public key.
        The audit MAC key is kept in the database first, so the log written so far still verifies."""
        with self._mutex:
            conn = self.conn
            new_key = crypto.random_bytes(crypto.KEY_BYTES)
            params = new_kdf_params(self.header.kdf.profile)
            header = replace(self.header, format_version=FORMAT_VERSION, db_page_size=DB_PAGE_SIZE)
            header = header.with_passphrase_kek(passphrase_kek(new_passphrase, params), new_key, params)
            header = (header.with_recovery_secret(secret, new_key) if secret is not None
                      else header.with_recovery_resealed(new_key))
            with self.transaction() as tx:
                tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                           (AUDIT_KEY_META, self._audit_key.hex()))
            self._close_reader()
            staged = self.folder / REKEYED_DB_NAME
            try:
                _export(conn, staged, crypto.subkey(new_key, "sqlcipher-database"), DB_PAGE_SIZE)
            except (sqlcipher.Error, OSError) as exc:
                with contextlib.suppress(OSError):
                    staged.unlink()
                raise (storage_error(exc) if isinstance(exc, OSError) else db_error(exc, self.folder)) from None
            conn.close()
            self._conn = None
            try:
                write_header(self.folder, header)
            except StorageUnavailable:
                with contextlib.suppress(OSError):
                    staged.unlink()
                self._conn = self._reconnect()
                raise
            self.header, self._vault_key = header, new_key
            _settle_rekeyed_db(self.folder, header, self.subkey("sqlcipher-database"))
            self._conn = self._reconnect()

    def _reconnect(self) -> Any:
        try:
            return _connect(self.folder / DB_NAME, self.subkey("sqlcipher-database"), self.header.db_page_size)
        except sqlcipher.Error as exc:
            raise db_error(exc, self.folder) from exc

    def _close_reader(self) -> None:
        with self._ro_mutex:
            if self._ro_conn is not None:
                with contextlib.suppress(sqlcipher.Error):
                    self._ro_conn.close()
                self._ro_conn = None

    # --- recovery key ---------------------------------------------------------------------------------------
    @property
    def recovery_key_confirmed(self) -> bool:
        with self.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (RECOVERY_CONFIRMED_META,)).fetchone()
        return row is None or row[0] != "no"

    def _mark_recovery_key(self, confirmed: bool, action: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                         "value = excluded.value", (RECOVERY_CONFIRMED_META, "yes" if confirmed else "no"))
            self.audit("recovery_key", conn=conn, action=action)

    def confirm_recovery_key(self) -> None:
        """The user showed they kept the recovery key (typed its last group back)."""
        self._mark_recovery_key(True, "confirmed")

    def rotate_recovery_key(self) -> str:
        """Seal the vault key to a new random recovery key and return its text, to be shown once; the old recovery
        key no longer opens the header. A copy of the old header kept elsewhere still opens the database with the
        old key until the next passphrase change moves the records to a new vault key.

        The key is marked unconfirmed before the header changes: a crash in between makes the next unlock offer
        a key again, instead of leaving the user with a key that stopped working without their knowing.
        """
        self._mark_recovery_key(False, "rotating")
        secret = recovery.new_secret()
        header = self.header.with_recovery_secret(secret, self._vault_key)
        with self.transaction() as conn:
            write_header(self.folder, header)
            self.header = header
            self.audit("recovery_key", conn=conn, action="rotated")
        return recovery.format_key(secret)

    # --- closing --------------------------------------------------------------------------------------------
    def keep_folder_locked(self, role: str | None = None) -> VaultLock:
        """A hold on the vault folder's lock that outlasts ``close()`` until it is released itself: no other
        process can open the vault meanwhile (``role``, a ``vault.fsutil.HOLDER_*`` name, is what it is told)."""
        with self._mutex:
            if self._conn is None:
                from vault.errors import VaultLocked
                raise VaultLocked()
            return self._lock.keep(role)

    def close(self) -> None:
        # The two connections are closed one after the other, never holding both locks, so a worker that reads on
        # one while waiting for the other cannot deadlock with closing. Once the key is gone, no reader reopens.
        with self._mutex:
            if self._conn is not None:
                if self._head_moved:
                    self._save_state()
                with contextlib.suppress(sqlcipher.Error):
                    self._conn.close()
                self._conn = None
            self._keys = None
            self._vault_key = b""
            self._audit_key = b""
        with self._ro_mutex:
            if self._ro_conn is not None:
                with contextlib.suppress(sqlcipher.Error):
                    self._ro_conn.close()
                self._ro_conn = None
        with self._mutex:
            self._lock.release()

    lock = close

    def __enter__(self) -> "Vault":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault(id={self.header.vault_id[:8]}…, open={self.is_open})"


# --- helpers -----------------------------------------------------------------------------------------------------

def _connect(path: Path, db_key: bytes, page_size: int) -> Any:
    try:
        make_private(path, create=True)  # SQLite gives the -wal and -shm files the database file's mode
        for companion in ("-wal", "-shm"):
            make_private(path.with_name(path.name + companion))
    except OSError as exc:
        raise storage_error(exc) from None
    conn = sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        _quiet(conn)
        # A raw key: SQLCipher's own PBKDF2 would only add seconds on top of Argon2id.
        conn.execute(f"PRAGMA key = \"x'{db_key.hex()}'\"")
        conn.execute(f"PRAGMA cipher_page_size = {int(page_size)}")  # before the first read, which needs it
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        conn.execute("PRAGMA temp_store = MEMORY")  # temp tables and sorts never touch disk
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        conn.close()
        raise
    return conn


def _quiet(conn: Any) -> None:
    """SQLCipher writes its own log to the terminal ("hmac check failed for pgno=1" when a leftover copy is tried
    under the current key, or a page is damaged); medvault says what happened in one sentence instead."""
    conn.execute("PRAGMA cipher_log_level = NONE")


# SQLite's default cache is 8 MB: 2,000 pages of 4 KiB, but only 125 of 64 KiB.
_CACHE_KIB = 32 * 1024


def _settle_staged_db(folder: Path, header: Header) -> None:
    """Finish or undo a page-size move an earlier unlock was interrupted in: the header says which file is right."""
    staged = folder / STAGED_DB_NAME
    if not staged.exists():
        return
    if header.db_page_size == LEGACY_DB_PAGE_SIZE:
        with contextlib.suppress(OSError):
            staged.unlink()   # the header was never switched: the old file is the vault, the copy a leftover
        return
    try:
        make_private(staged)              # a link planted under the name is refused, never moved into place
    except OSError as exc:
        raise storage_error(exc) from None
    _move_into_place(folder, staged)


def _move_into_place(folder: Path, staged: Path) -> None:
    """Replace the database with ``staged``, a complete fsynced copy of it."""
    try:
        for leftover in (folder / (DB_NAME + "-wal"), folder / (DB_NAME + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()  # the old file's, emptied before the copy was made: they must not meet the new file
        os.replace(staged, folder / DB_NAME)
        fsync_dir(folder)
    except OSError as exc:
        raise storage_error(exc) from None


def _settle_rekeyed_db(folder: Path, header: Header, db_key: bytes) -> None:
    """Finish or undo a change of vault key an earlier passwd or recover was killed in: the copy belongs to the
    vault exactly when it opens under the key the current header gives (it was fsynced before the header named
    that key); otherwise it is a leftover."""
    staged = folder / REKEYED_DB_NAME
    if not staged.exists():
        return
    try:
        make_private(staged)              # a link planted under the name is refused, never moved into place
    except OSError as exc:
        raise storage_error(exc) from None
    if not _opens_with(staged, db_key, header.db_page_size, header.vault_id):
        with contextlib.suppress(OSError):
            staged.unlink()
        return
    _move_into_place(folder, staged)


def _opens_with(path: Path, db_key: bytes, page_size: int, vault_id: str) -> bool:
    """Whether ``path`` is this vault's database under this key: its pages authenticate and it names the vault.
    (An empty file, which a kill just after creating the copy leaves, "opens" under any key: it names nothing.)
    Writes nothing."""
    try:
        conn = sqlcipher.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlcipher.Error:
        return False
    try:
        _quiet(conn)
        conn.execute(f"PRAGMA key = \"x'{db_key.hex()}'\"")
        conn.execute(f"PRAGMA cipher_page_size = {int(page_size)}")
        row = conn.execute("SELECT value FROM meta WHERE key = 'vault_id'").fetchone()
        return row is not None and row[0] == vault_id
    except sqlcipher.Error:
        return False
    finally:
        conn.close()


def _export(conn: Any, staged: Path, db_key: bytes, page_size: int) -> None:
    """Copy the whole database into ``staged`` (a new file, 0600) under ``db_key`` and ``page_size``, fsynced."""
    make_private(staged, create=True)       # 0600 from the start, and never through a link
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ATTACH DATABASE ? AS staged KEY ?", (str(staged), f"x'{db_key.hex()}'"))
    try:
        conn.execute(f"PRAGMA staged.cipher_page_size = {int(page_size)}")
        conn.execute("PRAGMA staged.journal_mode = DELETE")
        conn.execute("SELECT sqlcipher_export('staged')")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA staged.user_version = {version}")
    finally:
        conn.execute("DETACH DATABASE staged")
    _fsync_file(staged)


def _audit_head(conn: Any) -> tuple[int, bytes]:
    """The sequence number and hash of the newest audit entry (0 and the genesis hash for an empty log)."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), bytes(row[1])) if row else (0, audit_log.GENESIS)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _tx(conn: Any) -> Iterator[Any]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _InTransaction:
    """The connection as a migration sees it: ``executescript`` and ``commit`` would end the migration's
    transaction half-way, so scripts run statement by statement inside it and the commit waits for the end."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def executescript(self, script: str) -> None:
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlcipher.complete_statement(statement):
                self._conn.execute(statement)
                statement = ""
        if statement.strip():
            self._conn.execute(statement)

    def commit(self) -> None:
        """The migration's transaction commits as a whole once the step returns."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _migrate(conn: Any) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, (_name, step) in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        with _tx(conn):
            step(_InTransaction(conn))
            conn.execute(f"PRAGMA user_version = {number}")


def _require_writable(folder: Path) -> None:
    """Every unlock writes (the audit log), so a read-only folder is refused up front with a sentence that says
    why, rather than with the database driver's "unable to open" later."""
    for path in (folder, folder / DB_NAME):
        if path.exists() and not os.access(path, os.W_OK):
            raise storage_error(OSError(errno.EROFS, "read-only"))


def _note_failed_unlock(folder: Path, clock: Clock) -> None:
    """Remember a failed unlock outside the database (which it cannot open); the next unlock audits it."""
    path = folder / FAILED_UNLOCKS_NAME
    line = (clock().isoformat() + "\n").encode("ascii", "replace")
    for _attempt in range(2):
        try:
            fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except NotARegularFile:
            # A link or special file planted under the note's name: removed, never written through.
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        except OSError:
            return  # a read-only vault still refuses the passphrase; there is just nowhere to note it
        try:
            os.write(fd, line)
        except OSError:
            pass
        finally:
            os.close(fd)
        return


_MAX_FAILED_NOTES = 1000
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|Z)")


def _failed_unlock_times(raw: bytes) -> tuple[list[str], int]:
    """The well-formed timestamps in the failed-unlock note, and how many lines were anything else.

    The note lies outside the encrypted database, so anyone who can write to the folder can write it: only a
    timestamp, re-formatted by us, passes into the authenticated audit log, never text from the file.
    """
    times: list[str] = []
    rejected = 0
    for line in raw.split(b"\n"):
        if not line:
            continue
        text = line.decode("ascii", "replace")
        try:
            at = datetime.fromisoformat(text) if _TIMESTAMP.fullmatch(text) else None
        except ValueError:
            at = None
        if at is not None and len(times) < _MAX_FAILED_NOTES:
            times.append(at.isoformat())
        else:
            rejected += 1
    return times, rejected


def _narrow_folder(folder: Path) -> None:
    try:
        make_private_dir(folder)  # a vault made by an older medvault was left 0755
    except OSError as exc:
        raise storage_error(exc) from None


def _remove_abandoned_drafts(parent: Path) -> None:
    """Drafts left by an interrupted create (their process is gone) hold nothing usable; tidy them away."""
    for draft in parent.glob(".medvault-init-*"):
        try:
            pid = int(draft.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(draft, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Crash-safe, owner-only file handling for the vault folder, and the single-process vault lock.

Every file medvault keeps in the vault folder is readable by its owner alone (0600, the folder 0700): the files
are encrypted, but their sizes and timing still say something, and the header is what an offline guesser needs.
Files are opened with ``O_NOFOLLOW``: a symbolic link planted under one of medvault's names must not redirect a
write (a failed-unlock note appended to someone's ``.bashrc``) or a read (forged content taken for the vault's own).
Files written whole are replaced atomically (a fresh temp file created with ``O_EXCL``, fsync, rename, fsync the
folder), so a crash at any instant leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vault.errors import StorageUnavailable, VaultInUse

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class NotARegularFile(OSError):
    """The path is a link, a folder, a device or a pipe: medvault reads and replaces only plain files."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ELOOP, "not a regular file", str(path))


def storage_error(exc: OSError) -> StorageUnavailable:
    """Turn an OS error on the vault folder into one sentence the user can act on."""
    if isinstance(exc, NotARegularFile) or exc.errno == errno.ELOOP:
        return StorageUnavailable(f"The vault folder holds a link or a special file named "
                                  f"'{Path(exc.filename or '?').name}' where medvault expects its own plain "
                                  "file; medvault does not follow it. Remove it and try again.")
    if exc.errno in _READ_ONLY:
        return StorageUnavailable("The vault folder is read-only, so medvault cannot save changes; "
                                  "nothing was changed. Make it writable and try again.")
    if exc.errno in _FULL:
        return StorageUnavailable("The disk holding the vault is full; nothing was changed. "
                                  "Free some space and try again.")
    return StorageUnavailable(f"medvault could not write to the vault folder ({os.strerror(exc.errno or 0)}); "
                              "nothing was changed.")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """Open (and with ``O_CREAT`` create, 0600) a regular file without following a link at its name.

    A file that exists with wider permissions (a vault made by an older medvault) is narrowed to 0600 on the
    way. ``O_NONBLOCK`` keeps a FIFO planted under the name from hanging the open; it is refused just after.
    """
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, OWNER_ONLY_FILE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile(path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(path)
        _narrow(fd, OWNER_ONLY_FILE)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _narrow(fd: int, mode: int) -> None:
    """Take group and other permissions off a file or folder we own; on a read-only disk there is nothing to do."""
    info = os.fstat(fd)
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
        try:
            os.fchmod(fd, mode)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise


def make_private(path: Path, *, create: bool = False) -> None:
    """Narrow an existing file to 0600 (or create it empty, 0600), refusing links; a missing file is left
    missing unless ``create``."""
    try:
        os.close(open_private(path, os.O_RDONLY | (os.O_CREAT if create else 0)))
    except FileNotFoundError:
        if create:
            raise


def make_private_dir(path: Path) -> None:
    """Narrow a folder medvault owns to 0700: what lies in a vault folder is nobody else's business."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _narrow(fd, OWNER_ONLY_DIR)
    finally:
        os.close(fd)


def read_private(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file, never through a link. FileNotFoundError when missing."""
    fd = open_private(path, os.O_RDONLY)
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def refuse_unless_regular(path: Path) -> None:
    """Raise NotARegularFile when ``path`` exists and is not a plain file (a link there is not followed)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotARegularFile(Path(path))
    except FileNotFoundError:
        pass


def write_atomically(path: Path, data: bytes | Iterable[bytes], *, only_over_regular: bool = False) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks of bytes streamed) atomically, the new file 0600. Raises
    OSError.

    The temp name is random and created with ``O_EXCL``, so a file or link someone left under a predictable name
    is never written through. ``rename`` replaces a link at ``path`` rather than its target; with
    ``only_over_regular`` (a place the user chose) anything but a plain file there is refused instead.
    """
    path = Path(path)
    if only_over_regular:
        refuse_unless_regular(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, OWNER_ONLY_FILE)
    try:
        try:
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """``write_atomically`` for a file in the vault folder: failures become one sentence."""
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise storage_error(exc) from None


# What this process is, written into the lock file so that a second process can say who holds the vault.
HOLDER_APP = "app"                # the desktop app, unlocked
HOLDER_APP_LOCKED = "app-locked"  # the desktop app, locked, still serving shares
HOLDER_SERVE = "serve"            # 'medvault serve'
HOLDER_COMMAND = "command"        # any other command
_NOTE_BYTES = 256
_role = HOLDER_COMMAND
_shared_guard = threading.Lock()
_shared: dict[Path, "_SharedLock"] = {}   # lock files this process holds for more than one holder

IN_USE = {
    HOLDER_APP: "This vault is open in the medvault app; use it there, or quit the app (File, Quit) and try again.",
    HOLDER_APP_LOCKED: ("The medvault app keeps this vault while it serves your shares, even though it is locked; "
                        "unlock it there, or quit the app (File, Quit) and try again."),
    HOLDER_SERVE: "'medvault serve' is serving this vault's shares; stop it (Ctrl+C) and try again.",
    HOLDER_COMMAND: "Another medvault command is using this vault; wait for it to finish and try again.",
}


def set_holder_role(role: str) -> str:
    """Say what this process is (one of the ``HOLDER_*`` names) before it opens a vault; returns what it was."""
    global _role
    if role not in IN_USE:
        raise ValueError(f"unknown vault holder {role!r}")
    previous, _role = _role, role
    return previous


@dataclass
class _SharedLock:
    fd: int
    holders: list["VaultLock"]


class VaultLock:
    """An exclusive advisory lock on the vault folder, held while the vault is open.

    flock() locks die with the process, so a crashed medvault never leaves a stale lock behind. The holder writes
    what it is (the desktop app, 'medvault serve', another command) and its process id into the lock file, so a
    second process is told who has the vault instead of a guess. That note is the whole content of the file: no
    names, no paths.

    ``keep()`` gives a second holder of the same lock, which lasts until both are released: the desktop app keeps
    the folder locked while it serves shares with the vault itself closed, so no other process can revoke a share
    it is still serving. A vault opened later in this same process joins such a kept lock instead of being
    refused by it.
    """

    def __init__(self, folder: Path) -> None:
        self._path = Path(folder) / ".lock"
        self._fd: int | None = None
        self._shared: _SharedLock | None = None
        self._role = _role

    def acquire(self) -> None:
        self._role = _role
        with _shared_guard:
            kept = _shared.get(self._path)
            if kept is not None:
                kept.holders.append(self)
                self._fd, self._shared = kept.fd, kept
                _write_note(kept.fd, self._role)
                return
        try:
            fd = open_private(self._path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise storage_error(exc) from None
            try:  # a read-only folder can still be locked through an existing lock file
                fd = open_private(self._path, os.O_RDONLY)
            except OSError:
                raise storage_error(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_note(fd)
            os.close(fd)
            raise VaultInUse(IN_USE.get(holder or "")) from None
        self._fd = fd
        _write_note(fd, self._role)

    def keep(self, role: str | None = None) -> "VaultLock":
        """A second holder of this (held) lock, whose ``release()`` the lock also waits for; ``role`` is what the
        note says while it is the one left holding."""
        with _shared_guard:
            if self._fd is None:
                raise RuntimeError("the vault lock is not held")
            if self._shared is None:
                self._shared = _shared[self._path] = _SharedLock(self._fd, [self])
            other = VaultLock(self._path.parent)
            other._fd, other._shared, other._role = self._fd, self._shared, role or self._role
            self._shared.holders.append(other)
            return other

    def release(self) -> None:
        with _shared_guard:
            fd, shared = self._fd, self._shared
            self._fd = self._shared = None
            if fd is None:
                return
            if shared is not None:
                shared.holders.remove(self)
                if shared.holders:
                    _write_note(fd, shared.holders[-1]._role)
                    return
                _shared.pop(self._path, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_note(fd: int, role: str) -> None:
    note = json.dumps({"by": role, "pid": os.getpid()}).encode("ascii")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
    except OSError:
        pass  # a read-only folder: the second process falls back to the general sentence


def _read_note(fd: int) -> str | None:
    """Who holds the lock, from its note; None when the note is missing, damaged, or left by a process that is
    gone (a holder on a read-only disk cannot write its own)."""
    try:
        note = json.loads(os.pread(fd, _NOTE_BYTES, 0).decode("ascii"))
        by, pid = note["by"], int(note["pid"])
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return by if by in IN_USE else None

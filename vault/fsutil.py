"""Crash-safe file writes and the single-process vault lock.

Files outside the database are replaced atomically (temp file 0600 in the same folder, fsync, rename, fsync the
folder), so a crash at any instant leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from vault.errors import StorageUnavailable, VaultInUse

_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def storage_error(exc: OSError) -> StorageUnavailable:
    """Turn an OS error on the vault folder into one sentence the user can act on."""
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


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise storage_error(exc) from None


class VaultLock:
    """An exclusive advisory lock on the vault folder, held while the vault is open.

    flock() locks die with the process, so a crashed medvault never leaves a stale lock behind.
    """

    def __init__(self, folder: Path) -> None:
        self._path = Path(folder) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise storage_error(exc) from None
            try:  # a read-only folder can still be locked through an existing lock file
                fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                raise storage_error(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VaultInUse() from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

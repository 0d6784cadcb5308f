"""Writing a file outside the vault that holds a secret or health data: a QR image of the recovery key or of a share
link, an export, a received share saved by the user.

The bytes go to a new 0600 file beside the destination (created exclusively, so never opened through a planted
link), are flushed to disk, and the file is renamed over the destination, so a reader sees the old file or the
complete new one and nobody else can read it on a shared machine. An existing destination that is not a regular file
(a symbolic link, a folder, a pipe, a device) is refused rather than replaced: it was put there by someone, and
writing a secret wherever it leads, or silently swapping it out, are both wrong.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vault.fsutil import fsync_dir


class NotARegularFile(OSError):
    """The destination exists and is a link, folder, pipe or device; nothing was written."""


def check_destination(path: str | Path) -> None:
    """Raise NotARegularFile when ``path`` exists and is not a regular file (links are not followed). Callers that
    make something before writing (a vault, a share) check first, so a refused destination leaves nothing made."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(f"{path} exists and is not a regular file")


def write_private(path: str | Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` as described above; returns the number of bytes written.

    Raises NotARegularFile, or the OSError of a failed write (the destination is then unchanged and no temporary
    file is left behind)."""
    path = Path(path)
    check_destination(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # O_EXCL, mode 0600
    written = 0
    try:
        try:
            os.fchmod(fd, 0o600)
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    written += n
                    view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        # Checked again just before the rename: rename replaces a link or a pipe silently.
        check_destination(path)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)
    return written

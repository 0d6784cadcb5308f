"""medvault's log file: events without health data (``vault.eventlog``), in the user's state folder.

``state_dir()/medvault.log`` (``$XDG_STATE_HOME/medvault/medvault.log`` on Linux), owner-only (0600, folder 0700),
never opened through a link, and bounded: at 256 KiB it rotates, keeping two older files, so it never holds more
than 768 KiB. The log is best effort: a log that cannot be written never stops a command or the app.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

from vault import eventlog

MAX_BYTES = 256 * 1024
BACKUPS = 2
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def log_path() -> Path:
    from app.crash import state_dir
    return state_dir() / "medvault.log"


class _LogFileHandler(RotatingFileHandler):
    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
        self.addFilter(eventlog.only_events)
        self.setFormatter(eventlog.AllowListFormatter())

    def _open(self):  # noqa: ANN202 - the base class's hook
        fd = os.open(self.baseFilename, _OPEN_FLAGS, 0o600)
        os.fchmod(fd, 0o600)   # a file left by an older version, or created under a loose umask
        return os.fdopen(fd, "a", encoding="utf-8")

    def handleError(self, record: logging.LogRecord) -> None:
        # The base class prints a traceback on stderr; a full disk is no reason to disturb the user.
        pass


def install(path: Path | None = None) -> logging.Handler | None:
    """Start writing events to the log file (replacing a log file installed before); None if its folder cannot
    be made."""
    from vault.fsutil import make_private_dir
    path = Path(path) if path is not None else log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private_dir(path.parent)
    except OSError:
        return None
    logger = logging.getLogger(eventlog.LOGGER_NAME)
    for old in [h for h in logger.handlers if isinstance(h, _LogFileHandler)]:
        uninstall(old)
    handler = _LogFileHandler(path)
    logger.addHandler(handler)
    return handler


def uninstall(handler: logging.Handler | None) -> None:
    if handler is None:
        return
    logging.getLogger(eventlog.LOGGER_NAME).removeHandler(handler)
    handler.close()


@contextlib.contextmanager
def writing() -> Iterator[logging.Handler | None]:
    """The log file for the length of one command."""
    handler = install()
    try:
        yield handler
    finally:
        uninstall(handler)

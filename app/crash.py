"""What happens when medvault meets an error nobody expected: a crash report on disk and one plain sentence.

The report holds the exception's type and, for each stack frame, the file, line and function: enough to find the
bug. It never holds the exception's message or any local variable, because those are where record content ends up
("KeyError: 'Hypertension'"). Reports are written owner-only and atomically into the user's state folder
(``state_dir()``: ``$XDG_STATE_HOME/medvault/crashes``, else ``~/.local/state/medvault/crashes`` on Linux), never
into the vault folder.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

SENTENCE = ("medvault ran into a problem it did not expect and stopped what it was doing. Your records are safe. "
            "A report without any health data was saved for the developers.")
_KEEP = 50                  # newest reports kept; older ones are removed so the folder cannot grow without end
_ROOT = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    """The platform's folder for state that is not the user's data: ``$XDG_STATE_HOME/medvault`` on Linux (by
    default ``~/.local/state/medvault``). Crash reports and the log file (``app.logfile``) live here."""
    import platformdirs
    return Path(platformdirs.user_state_dir("medvault", appauthor=False))


def crash_dir() -> Path:
    return state_dir() / "crashes"


def _where(filename: str) -> str:
    """A frame's file relative to medvault's own folder or to its library folder: a home path names the user."""
    path = Path(filename)
    for base in (_ROOT, *map(Path, sys.path[1:])):
        try:
            return str(path.resolve().relative_to(Path(base).resolve()))
        except (ValueError, OSError):
            continue
    return path.name


def report_text(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> str:
    """The report: types and frames of the exception and of those it was raised from; no messages, no locals."""
    lines = ["medvault crash report", f"time: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
             f"python: {sys.version.split()[0]}", f"platform: {sys.platform}"]
    seen: set[int] = set()
    current: BaseException | None = exc
    current_type, current_tb = exc_type, tb
    while True:
        lines.append(f"exception: {current_type.__module__}.{current_type.__qualname__}")
        for frame in traceback.extract_tb(current_tb):
            lines.append(f"  {_where(frame.filename)}:{frame.lineno} in {frame.name}")
        if current is None:
            break
        seen.add(id(current))
        nxt = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if nxt is None or id(nxt) in seen:
            break
        lines.append("raised while handling:")
        current, current_type, current_tb = nxt, type(nxt), nxt.__traceback__
    return "\n".join(lines) + "\n"


def write_report(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None,
                 folder: Path | None = None) -> Path:
    from vault.fsutil import make_private_dir, write_atomically
    folder = Path(folder) if folder is not None else crash_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    make_private_dir(folder)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"crash-{stamp}-{os.getpid()}.txt"
    write_atomically(path, report_text(exc_type, exc, tb).encode("utf-8"))
    _prune(folder)
    return path


def record(exc: BaseException, folder: Path | None = None) -> Path | None:
    """Write a report for an exception that was caught (a bug a worker hit); None if it could not be written."""
    try:
        return write_report(type(exc), exc, exc.__traceback__, folder)
    except OSError:
        return None


def _prune(folder: Path) -> None:
    reports = sorted(folder.glob("crash-*.txt"))
    for old in reports[:-_KEEP]:
        try:
            old.unlink()
        except OSError:
            pass


class CrashHook:
    """``sys.excepthook`` and ``threading.excepthook``: report, then tell the user one sentence.

    ``tell`` runs on whatever thread raised; the GUI passes a function that hands the sentence to the GUI thread.
    Nothing is printed but the report's path: the default hook would print the message, which may hold PHI.
    """

    def __init__(self, tell: Callable[[str], None] | None = None, folder: Path | None = None) -> None:
        self.tell = tell
        self.folder = folder
        self.reports: list[Path] = []
        self._previous: tuple = ()
        self._busy = threading.local()

    def __call__(self, exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        if getattr(self._busy, "active", False):    # the hook itself failed: say the least, never loop
            print(f"medvault: unexpected error ({exc_type.__name__})", file=sys.stderr)
            return
        self._busy.active = True
        try:
            try:
                path = write_report(exc_type, exc, tb, self.folder)
                self.reports.append(path)
                print(f"medvault: an unexpected error ({exc_type.__name__}) was reported in {path}", file=sys.stderr)
            except OSError:
                print(f"medvault: unexpected error ({exc_type.__name__}); the report could not be written",
                      file=sys.stderr)
            if self.tell is not None:
                self.tell(SENTENCE)
        finally:
            self._busy.active = False

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self(args.exc_type, args.exc_value, args.exc_traceback)

    def install(self) -> "CrashHook":
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self
        threading.excepthook = self._thread_hook
        return self

    def uninstall(self) -> None:
        if self._previous:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = ()


def install(tell: Callable[[str], None] | None = None, folder: Path | None = None) -> CrashHook:
    return CrashHook(tell, folder).install()

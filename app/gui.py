"""Starts the desktop app: the unlock window first, then the main window (or, for a vault in clinician mode or
``medvault gui --clinician``, the clinician's window); locking goes back to the start.

The crash hook is installed before any window exists, so an unexpected error anywhere ends as a report without
health data (``app.crash``) and one plain sentence, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from app import crash, desktop_identity, link_inbox, responsiveness
from app.autolock import MS_PER_MINUTE, IdleLock, SessionWatch
from app.main_window import MainWindow
from app.serving import Serving, ServingNotice
from app.services.preferences import DEFAULT_AUTOLOCK_MINUTES
from app.single_instance import AlreadyRunningNotAnswering, SingleInstance
from app.tasks import TaskRunner
from app.unlock_window import UnlockWindow
from vault.fsutil import HOLDER_APP, set_holder_role


class Controller:
    """Owns the windows and swaps them; serves the vault's shares while it is open (and, if the patient chose,
    while locked); locks after idle time or when the desktop session locks. A clinician's vault gets the clinician's
    window, served the same way: the notes it writes back are fetched from this app's gateway."""

    def __init__(self, vault_dir: Path, runner: Any, kdf_profile: str = "default", *,
                 serving: Serving | None = None, idle: IdleLock | None = None,
                 session_watch: SessionWatch | None = None, window_settings: Any = None,
                 clinician: bool | None = None, clinician_options: dict | None = None,
                 warm_validation: bool = False) -> None:
        self._warm_validation = warm_validation      # the app starts the validation pool at unlock; tests need not
        self.runner = runner
        self._window_settings = window_settings      # QSettings for the window's layout; tests pass their own
        self._clinician = clinician                  # None: as the vault's profile says; True: gui --clinician
        self._clinician_options = clinician_options or {}   # tests inject the clinician window's frame source
        self.unlock_window = UnlockWindow(vault_dir, runner, kdf_profile)
        self.unlock_window.unlocked.connect(self._open)
        self.main_window: Any = None                 # MainWindow, or ClinicianWindow for a clinician's vault
        # called with the window once it is shown: it opens after the vault's mode is read on the runner, so
        # 'unlocked' is too early for anyone who needs it (the desktop's link inbox)
        self.window_opened: list[Callable[[Any], None]] = []
        self.serving = serving or Serving(runner)
        self.locked_notice = ServingNotice(self.serving)     # says whether shares are served while locked
        self.unlock_window.layout().addWidget(self.locked_notice)
        self.idle = idle or IdleLock(DEFAULT_AUTOLOCK_MINUTES * MS_PER_MINUTE)
        self.idle.idle.connect(self.auto_lock)
        self.session_watch = session_watch or SessionWatch()
        self.session_watch.session_locked.connect(self.auto_lock)

    def start(self) -> None:
        self.idle.stop()
        self.unlock_window.show_start_page()
        self.unlock_window.show()

    def _open(self, vault: Any) -> None:
        if self._clinician is not None:
            self._open_window(vault, self._clinician)
            return
        from app.services import clinician      # the mode is a setting inside the database: read on the runner
        self.runner.run(lambda: clinician.load(vault).clinician, lambda on: self._open_window(vault, on),
                        lambda _exc: self._open_window(vault, False))

    def _open_window(self, vault: Any, clinician_mode: bool) -> None:
        if clinician_mode:
            from app.clinician.window import ClinicianWindow
            from app.services import Session
            window = self.main_window = ClinicianWindow(Session(vault), self.runner, standalone=True,
                                                        **self._clinician_options)
        else:
            window = self.main_window = MainWindow(vault, self.runner, settings=self._window_settings)
            window.ctx.extras.update(serving=self.serving, idle=self.idle)
        window.before_lock.append(self.serving.before_lock)
        window.statusBar().addWidget(ServingNotice(self.serving, wrap=False), 1)
        if self.unlock_window.note:     # the chain could not be asked at unlock: said, never in the way
            window.statusBar().addPermanentWidget(_unlock_note(self.unlock_window.note))
        window.locked.connect(self.start)
        # a window closed for good (the app quitting, a test's clean-up) must not be locked by a later idle timeout
        # or screen-lock signal: its C++ side is gone
        window.destroyed.connect(lambda *_args, gone=window: self._forget(gone))
        window.quit_requested.connect(QApplication.quit)
        self.unlock_window.hide()
        window.show()
        self.serving.start(window.session)
        if self._warm_validation and not clinician_mode:
            # the schema compiled and a validation process started while the patient reads: a later import of a
            # large file validates on both cores without paying the start-up then (forkserver: Qt is never forked)
            from vault.records import parallel
            self.runner.run(parallel.warm, lambda _none: None, lambda _exc: None)
        session = window.session
        self.runner.run(lambda: session.preferences().autolock_minutes, self._start_idle,
                        lambda _exc: self._start_idle(DEFAULT_AUTOLOCK_MINUTES))
        for hook in self.window_opened:
            hook(window)

    def _forget(self, window: Any) -> None:
        if self.main_window is window:
            self.main_window = None
            if shiboken6.isValid(self.idle):    # at quitting, the idle timer may have gone before the window
                self.idle.stop()

    def _start_idle(self, minutes: int) -> None:
        if self.main_window is not None and self.main_window.vault is not None:
            self.idle.set_minutes(minutes)
            self.idle.start()

    def auto_lock(self, why: str = "") -> None:
        """Lock after idle time (``why`` empty) or because the screen locked or the computer sleeps (``why``)."""
        window = self.main_window
        if window is None or window.vault is None:
            return
        if window.importing:
            if why:     # nobody is at the screen: the import stops (the file it was on is not kept), then lock
                window.cancel_import()
                QTimer.singleShot(200, lambda: self.auto_lock(why))
            else:       # an import someone started: lock after it, if the next delay passes without input
                self.idle.start()
            return
        window.lock()


UNLOCK_NOTE = "Not checked with the consent network (unreachable)"


def _unlock_note(sentence: str) -> QLabel:
    """A status bar keeps to one short line beside the serving notice; the whole sentence is the tooltip and
    what a screen reader says."""
    label = QLabel(UNLOCK_NOTE)
    label.setObjectName("unlock-note")
    label.setToolTip(sentence)
    label.setAccessibleName("Consent network check at unlock")
    label.setAccessibleDescription(sentence)
    return label


def run(vault_dir: Path, kdf_profile: str = "default", link: str | None = None, *,
        clinician: bool | None = None) -> int:
    """``link``: a share link or record file the desktop opened medvault with (see app/link_inbox.py)."""
    responsiveness.tune_interpreter()      # before any worker starts; the benchmarks measure the same set-up
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("medvault")
    app.setApplicationDisplayName("medvault")
    desktop_identity.apply(app)
    instance = SingleInstance(vault_dir)
    try:
        if not instance.claim(link):
            return 0  # this vault is already open in a window, which took the link
    except AlreadyRunningNotAnswering as exc:
        QMessageBox.warning(None, "medvault", exc.user_message)
        return 1
    crash_notice = _CrashNotice()
    hook = crash.install(crash_notice.said.emit)
    set_holder_role(HOLDER_APP)     # a command run meanwhile is told the app has the vault
    controller = Controller(vault_dir, TaskRunner(), kdf_profile, clinician=clinician, warm_validation=True)
    inbox = link_inbox.LinkInbox()
    link_inbox.attach(inbox, controller)
    instance.link_received.connect(inbox.put)
    instance.activated.connect(inbox.arrived)
    controller.start()
    if link:
        inbox.put(link, link_inbox.AT_LAUNCH)
    code = app.exec()
    instance.close()
    controller.runner.wait()  # a lock still closing on a worker finishes before the process ends
    controller.serving.gateway.stop()   # the app is ending: the GUI no longer needs to stay responsive
    window = controller.main_window
    if window is not None and window.vault is not None and window.vault.is_open:
        window.vault.close()  # the app is ending: nothing left to keep responsive
    hook.uninstall()
    return code


class _CrashNotice(QObject):
    """Carries the crash sentence to the GUI thread (the hook runs on whichever thread failed) and shows it
    without blocking, once at a time."""

    said = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.box: QMessageBox | None = None
        self.said.connect(self._show)

    def _show(self, sentence: str) -> None:
        if self.box is not None and self.box.isVisible():
            return
        self.box = QMessageBox(QMessageBox.Icon.Warning, "medvault", sentence)
        self.box.setAccessibleName("Message")
        self.box.open()

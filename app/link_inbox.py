"""Links and files opened with medvault from the desktop (a clicked ``shlink:/`` or ``medvault:/`` link, a
``.smart-health-card`` file), at launch or handed over by a later launch, held until a vault is unlocked.

Hooks for the GUI: ``link_received(str)`` carries a share link for the receiver, ``file_received(str)`` a record
file's absolute path for the importer; both fire only while a vault is unlocked (what arrives before is held and
delivered right after unlocking, in order). ``attach`` wires links to the receiver window (File > Open a shared
record: verified, read in memory, kept only if the user chooses) and files to the main window's import.
A line on stderr says what arrived, with a fingerprint and never the link or the file name.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.link_intake import Intake, NotALinkOrFile, classify

AT_LAUNCH = "came with the launch"
HANDED_OVER = "was handed over by another launch"


class LinkInbox(QObject):
    link_received = Signal(str)
    file_received = Signal(str)
    arrived = Signal()           # something came in: the window showing should come forward

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.held: list[Intake] = []
        self.vault_open = False

    def put(self, argument: str, origin: str = HANDED_OVER) -> None:
        try:
            intake = classify(argument)  # checked again: the socket is owner-only, but a check costs nothing
        except NotALinkOrFile:
            print(f"medvault: something that {origin} was neither a share link nor a file; it was ignored.",
                  file=sys.stderr)
            return
        print(f"medvault: {intake.describe()} {origin}", file=sys.stderr)
        self.held.append(intake)
        self.arrived.emit()
        self._deliver()

    def set_vault_open(self, is_open: bool) -> None:
        self.vault_open = is_open
        self._deliver()

    def _deliver(self) -> None:
        while self.vault_open and self.held:
            intake = self.held.pop(0)
            (self.link_received if intake.kind == "link" else self.file_received).emit(intake.value)


def attach(inbox: LinkInbox, controller: Any) -> None:
    """Connects the inbox to the app's windows: open while a vault is unlocked, imports into the main window."""
    def opened(window: Any) -> None:  # the controller calls it once the patient's or clinician's window is shown
        window.locked.connect(lambda: inbox.set_vault_open(False))
        inbox.set_vault_open(True)

    def to_front() -> None:
        for window in (controller.main_window, controller.unlock_window):
            if window is not None and window.isVisible():
                window.raise_()
                window.activateWindow()
                return

    controller.window_opened.append(opened)
    inbox.arrived.connect(to_front)
    inbox.file_received.connect(lambda path: receive_file(controller.main_window, path))
    inbox.link_received.connect(lambda link: receive(controller.main_window, link))


def receive_file(main_window: Any, path: str) -> None:
    """A record file: the patient's window imports it; a clinician's window reads it like a scanned picture or
    pasted card, in memory, with its checks."""
    if hasattr(main_window, "import_sources"):
        main_window.import_sources([path])
    else:
        main_window.open_file(path)


def receive(main_window: Any, link: str) -> None:
    """Opens a link in the receiver (the window behind File > Open a shared record): verified and read in memory,
    keeping a copy stays the user's choice there. A clinician's window is that receiver itself."""
    if hasattr(main_window, "open_text"):
        main_window.open_text(link)
        return
    main_window.open_shared_record()
    if main_window.shared_window is not None:
        main_window.shared_window.open_text(link)

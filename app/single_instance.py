"""One running app per vault: a later launch hands its link to the window already open instead of opening the vault
a second time.

The first launch listens on a local socket that only its own user may connect to (in the user's runtime folder,
the socket itself owner-only). A later launch for the same vault connects, sends the link or file it was started
with as one short message, waits for the first to confirm, and ends. The message carries a share link's key, so
it never goes through a file, a log or the command line of another process. A socket left behind by a crashed app
refuses connections and is replaced; a live app that does not confirm in time is reported, never replaced, so
two windows can never hold the same vault.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from vault.errors import MedvaultError

PROTOCOL = 1
MAX_MESSAGE = 64 * 1024     # a link is a few KiB at most; anything longer is not from medvault
CLIENT_TIMEOUT_MS = 5000    # a connection that has said nothing useful by then is dropped
ACK = b"ok\n"


class AlreadyRunningNotAnswering(MedvaultError):
    default_message = ("medvault is already open with this vault but did not answer; close it (or wait for it) "
                    "and try again.")


def _runtime_dir() -> Path:
    found = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.RuntimeLocation)
    runtime = Path(found) if found else Path(tempfile.gettempdir())
    sandbox = os.environ.get("FLATPAK_ID")
    # Inside Flatpak each launch gets its own /tmp and only $XDG_RUNTIME_DIR/app/<id> is shared between the app's
    # instances, so the socket must live there for a second launch to find the first.
    return runtime / "app" / sandbox if sandbox else runtime


def socket_path(vault_dir: Path) -> str:
    """Where the app that has ``vault_dir`` open listens: one name per user and vault folder."""
    digest = hashlib.sha256(str(Path(vault_dir).expanduser().resolve()).encode()).hexdigest()[:16]
    return str(_runtime_dir() / f"medvault-{digest}.sock")


def encode(link: str | None) -> bytes:
    return json.dumps({"v": PROTOCOL, "link": link}).encode() + b"\n"


def decode(line: bytes) -> str | None:
    """The link in one message (None: a plain "show yourself"); ValueError for anything else."""
    message = json.loads(line.decode("utf-8"))
    if not isinstance(message, dict) or message.get("v") != PROTOCOL:
        raise ValueError("not a medvault message")
    link = message.get("link")
    if link is not None and not isinstance(link, str):
        raise ValueError("not a medvault message")
    return link


class SingleInstance(QObject):
    """``claim(link)`` decides who this launch is; the first launch then emits what later launches hand over."""

    link_received = Signal(str)   # a link or file path a later launch was started with
    activated = Signal()          # a later launch without a link: bring the window forward

    def __init__(self, vault_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = socket_path(vault_dir)
        self.server: QLocalServer | None = None

    def claim(self, link: str | None = None, timeout_ms: int = 5000) -> bool:
        """True: this launch is the first and now listens. False: the app already running took ``link``.
        Raises AlreadyRunningNotAnswering when an app is listening but does not confirm."""
        Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = QLockFile(self.path + ".lock")  # two launches at the same moment decide one after the other
        if not lock.tryLock(timeout_ms):
            raise AlreadyRunningNotAnswering()
        try:
            if self._hand_over(link, timeout_ms):
                return False
            self._listen()
            return True
        finally:
            lock.unlock()

    def _hand_over(self, link: str | None, timeout_ms: int) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.path)
        if not socket.waitForConnected(timeout_ms):
            return False  # nobody listening: no app, or a socket file left by one that crashed
        socket.write(encode(link))
        socket.flush()
        answer = b""
        while len(answer) < len(ACK) and socket.waitForReadyRead(timeout_ms):
            answer += bytes(socket.readAll().data())
        socket.disconnectFromServer()
        if answer[:len(ACK)] != ACK:
            raise AlreadyRunningNotAnswering()
        return True

    def _listen(self) -> None:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.path):
            QLocalServer.removeServer(self.path)  # refused every connection above: left by an app that crashed
            if not server.listen(self.path):
                raise OSError(f"medvault could not listen for later launches: {server.errorString()}")
        os.chmod(self.path, 0o700)  # the Qt option already limits it; make it explicit on every platform
        server.newConnection.connect(self._accept)
        self.server = server

    def _accept(self) -> None:
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            buffer = bytearray()
            timer = QTimer(socket, singleShot=True, interval=CLIENT_TIMEOUT_MS)
            timer.timeout.connect(lambda s=socket: s.abort())
            socket.readyRead.connect(lambda s=socket, b=buffer: self._read(s, b))
            socket.disconnected.connect(socket.deleteLater)
            timer.start()

    def _read(self, socket: QLocalSocket, buffer: bytearray) -> None:
        buffer += bytes(socket.readAll().data())
        if b"\n" not in buffer:
            if len(buffer) > MAX_MESSAGE:
                socket.abort()
            return
        line = bytes(buffer[:buffer.index(b"\n")])
        buffer.clear()
        try:
            link = decode(line)
        except (ValueError, UnicodeDecodeError):
            socket.abort()
            return
        socket.write(ACK)
        socket.flush()
        socket.disconnectFromServer()
        if link:
            self.link_received.emit(link)
        else:
            self.activated.emit()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()  # also removes the socket file
            self.server = None

"""The desktop app serving a vault, for the GUI tests: a Synthea vault with one share kept in it on a free port,
a controller (unlock window, main window, serving, auto-lock) around it, and unlocking and locking through the
windows themselves."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from PySide6.QtCore import QSettings

from app.gui import Controller
from app.main_window import MainWindow
from app.services import Session, sharing
from app.tasks import TaskRunner
from sync import shares as sync_shares
from tests.conftest import PASSPHRASE
from tests.gui.synthea_vault import synthea_vault
from vault import fsutil

ENV = {"MEDVAULT_PASSPHRASE": PASSPHRASE}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def refused(url: str) -> bool:
    try:
        get(url)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


@pytest.fixture
def shared_vault(tmp_path):
    """A Synthea vault on a free port with one IPS share kept in it (the embedded default), closed."""
    folder = tmp_path / "patient"
    vault = synthea_vault(folder)
    port = free_port()
    session = Session(vault)
    sync_shares.set_gateway_setting(vault, f"http://127.0.0.1:{port}")
    share = session.create_share(sharing.selection(ips=True))
    vault.close()
    return folder, port, share.created


@pytest.fixture
def controller_for(qtbot, tmp_path):
    """``make(folder, **kwargs)``: the app's controller for the vault in ``folder``, as ``app.gui.run`` makes it
    (this process named the desktop app to others), with its window layout kept under ``tmp_path``."""
    made: list[tuple[Controller, TaskRunner]] = []
    previous = fsutil.set_holder_role(fsutil.HOLDER_APP)

    def make(folder, **kwargs) -> Controller:
        runner = TaskRunner()
        controller = Controller(folder, runner, window_settings=QSettings(str(tmp_path / "s.ini"),
                                                                          QSettings.Format.IniFormat), **kwargs)
        qtbot.addWidget(controller.unlock_window)
        made.append((controller, runner))
        return controller

    yield make
    for controller, runner in made:
        controller.idle.stop()
        window = controller.main_window
        if window is not None and window.vault is not None:
            window.close()
        runner.wait(30000)
        controller.serving.gateway.stop()
    fsutil.set_holder_role(previous)


@pytest.fixture
def controller(shared_vault, controller_for):
    return controller_for(shared_vault[0])


def unlock_in_window(qtbot, controller) -> None:
    window = controller.unlock_window
    window.show_start_page()
    window.pass_field.setText(PASSPHRASE)
    window.unlock_button.click()
    qtbot.waitUntil(lambda: controller.main_window is not None and controller.main_window.isVisible()
                    and controller.serving.status is not None and not controller.serving.status.locked,
                    timeout=60000)


def lock_in_window(qtbot, controller) -> None:
    controller.main_window.lock()
    qtbot.waitUntil(lambda: controller.unlock_window.isVisible() and controller.serving.status is not None
                    and controller.serving.status.locked, timeout=30000)


def settle(qtbot, runner) -> None:
    """Let the runner's tasks finish and their answers (which may ask for more) reach the window."""
    for _ in range(3):
        runner.wait(60000)
        qtbot.wait(100)


def window_on(qtbot, tmp_path, session, runner, screen: str) -> MainWindow:
    """The main window around ``session`` showing ``screen``, its layout kept under ``tmp_path``."""
    window = MainWindow(session, runner, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        tell=lambda sentence: None)
    qtbot.addWidget(window)
    window.resize(1180, 760)
    window.show()
    window.show_screen(screen)
    settle(qtbot, runner)
    return window

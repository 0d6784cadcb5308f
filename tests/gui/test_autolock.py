"""Locking by itself: after a short idle delay the real window locks (and says whether shares are still served);
input resets the delay; the screensaver's ActiveChanged and logind's PrepareForSleep signals, sent on a real
(private) D-Bus daemon, lock it; a sleep signal from anyone but logind is ignored; no D-Bus breaks nothing."""

from __future__ import annotations

import subprocess
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtDBus import QDBusConnection, QDBusMessage
from PySide6.QtTest import QTest

from app.autolock import IdleLock, SessionWatch
from tests.conftest import PASSPHRASE
from tests.gui.serving_support import controller_for, shared_vault, unlock_in_window  # noqa: F401
from tests.gui.synthea_vault import FLETCHER, SYNTHEA, directory_files
from vault.store import Vault


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_input_resets_the_idle_delay(qtbot):
    from PySide6.QtWidgets import QLineEdit
    field = QLineEdit()
    field.setAccessibleName("Anything")
    qtbot.addWidget(field)
    field.show()
    clock = FakeClock()
    idle = IdleLock(1000, clock=clock)
    fired: list[bool] = []
    idle.idle.connect(lambda: fired.append(True))
    idle.start()
    try:
        clock.now += 0.6
        QTest.keyClick(field, Qt.Key.Key_A)          # the user types: the quiet time starts again
        clock.now += 0.6
        idle._check()                                # the timer fires 1.2 s after the start
        assert not fired and idle.running
        clock.now += 0.5
        idle._check()
        assert fired == [True] and not idle.running
    finally:
        idle.stop()
    idle.set_delay_ms(0)
    idle.start()
    clock.now += 10_000
    idle._check()
    assert fired == [True]                           # "never" never locks
    idle.stop()


def test_the_window_locks_after_a_short_idle_delay(qtbot, shared_vault, controller_for):
    folder, port, created = shared_vault
    controller = controller_for(folder)
    unlock_in_window(qtbot, controller)
    assert controller.idle.running and controller.idle.delay_ms == 5 * 60_000     # the default, from the vault
    window = controller.main_window
    controller.idle.set_delay_ms(1000)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:           # someone keeps working: no lock
        QTest.keyClick(window.search_field, Qt.Key.Key_Shift)
        qtbot.wait(100)
    assert window.vault is not None and window.isVisible()
    qtbot.waitUntil(lambda: controller.unlock_window.isVisible(), timeout=10000)    # then walks away
    assert window.vault is None and not window.isVisible()
    qtbot.waitUntil(lambda: controller.serving.status is not None and controller.serving.status.locked,
                    timeout=10000)
    assert controller.locked_notice.label.text().startswith("Your shares are still served while locked (one share")
    assert not controller.idle.running             # nothing left to lock


@pytest.fixture
def private_bus():
    """A real D-Bus daemon of our own (the session configuration: anyone may own any name)."""
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = daemon.stdout.readline().strip()
    assert address.startswith("unix:"), address
    names: list[str] = []

    def connect(name: str) -> QDBusConnection:
        names.append(name)
        bus = QDBusConnection.connectToBus(address, name)
        assert bus.isConnected()
        return bus

    yield connect
    for name in names:
        QDBusConnection.disconnectFromBus(name)
    daemon.terminate()
    daemon.wait(10)


def _signal(bus: QDBusConnection, path: str, interface: str, name: str, value: bool) -> None:
    message = QDBusMessage.createSignal(path, interface, name)
    message.setArguments([value])
    assert bus.send(message)


def test_screen_lock_and_sleep_signals_lock_the_window(qtbot, private_bus, shared_vault, controller_for):
    desktop, system = private_bus("desktop-watch"), private_bus("system-watch")
    watch = SessionWatch(session_bus=desktop, system_bus=system)
    assert "org.freedesktop.ScreenSaver.ActiveChanged" in watch.listening
    assert "org.freedesktop.login1.Manager.PrepareForSleep" in watch.listening
    heard: list[str] = []
    watch.session_locked.connect(heard.append)

    screensaver = private_bus("screensaver")
    _signal(screensaver, "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver", "ActiveChanged", False)
    _signal(screensaver, "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver", "ActiveChanged", True)
    qtbot.waitUntil(lambda: bool(heard), timeout=5000)
    assert heard == ["the screen was locked"]        # the screen waking up locks nothing

    impostor = private_bus("impostor")              # not logind: its sleep signal is not believed
    _signal(impostor, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "PrepareForSleep", True)
    logind = private_bus("logind")
    assert logind.registerService("org.freedesktop.login1")
    _signal(logind, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "PrepareForSleep", True)
    qtbot.waitUntil(lambda: len(heard) == 2, timeout=5000)
    qtbot.wait(200)
    assert heard == ["the screen was locked", "the computer is going to sleep"]

    folder = shared_vault[0]
    controller = controller_for(folder, session_watch=watch)
    unlock_in_window(qtbot, controller)
    _signal(logind, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "PrepareForSleep", True)
    qtbot.waitUntil(lambda: controller.unlock_window.isVisible(), timeout=10000)
    assert controller.main_window.vault is None


def test_sleep_during_an_import_cancels_it_and_locks(qtbot, private_bus, vault_factory, controller_for):
    vault = vault_factory("empty")
    folder = vault.folder
    vault.close()
    watch = SessionWatch(session_bus=private_bus("desktop-watch"), system_bus=private_bus("system-watch"))
    logind = private_bus("logind")
    assert logind.registerService("org.freedesktop.login1")
    controller = controller_for(folder, session_watch=watch)
    unlock_in_window(qtbot, controller)
    window = controller.main_window
    window.import_sources([*map(str, directory_files()), str(SYNTHEA / FLETCHER)])
    assert window.importing
    _signal(logind, "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "PrepareForSleep", True)
    qtbot.waitUntil(lambda: controller.unlock_window.isVisible(), timeout=60000)
    assert window.vault is None and not window.importing
    controller.runner.wait(30000)
    with Vault.unlock(folder, PASSPHRASE) as reopened:      # whatever was cut short left the vault whole
        assert reopened.verify().intact


def test_no_dbus_breaks_nothing(qtbot):
    missing = QDBusConnection.connectToBus("unix:path=/nonexistent/medvault-bus", "missing-bus")
    try:
        assert not missing.isConnected()
        watch = SessionWatch(session_bus=missing, system_bus=missing)
        assert watch.listening == []
    finally:
        QDBusConnection.disconnectFromBus("missing-bus")
    SessionWatch()                                  # the desktop's own buses, whatever this machine has


def test_a_window_deleted_for_good_is_not_locked_later(qtbot, shared_vault, controller_for):
    """The idle delay or a screen-lock signal that comes after the window was destroyed (the app quitting, a
    test's clean-up) finds no window to lock, instead of calling into a deleted C++ object."""
    from PySide6.QtCore import QCoreApplication, QEvent
    folder, _port, _created = shared_vault
    controller = controller_for(folder)
    unlock_in_window(qtbot, controller)
    window = controller.main_window
    vault = window.vault
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert controller.main_window is None and not controller.idle.running
    controller.auto_lock("screen locked")            # what the session watch would send: nothing to do
    controller.idle.idle.emit()
    vault.close()

"""Locking by itself: after a while without input, and when the desktop session locks or the computer suspends.

``IdleLock`` watches the application's input events (keys, mouse, wheel, touch) and says ``idle`` once the
delay has passed without any; one timer checks the last input time instead of being restarted by every event,
and the clock is injectable so tests need not wait minutes.

``SessionWatch`` listens on D-Bus, where present, for the screensaver's ``ActiveChanged(true)`` (freedesktop,
GNOME and KDE name the same signal) and logind's ``PrepareForSleep(true)``, and says ``session_locked``. A
desktop without D-Bus, or without those services, simply never sends them: nothing else depends on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal, Slot, SLOT

_INPUT = frozenset({
    QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
    QEvent.Type.MouseButtonDblClick, QEvent.Type.MouseMove, QEvent.Type.HoverMove, QEvent.Type.Wheel,
    QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TabletPress, QEvent.Type.InputMethod,
})

MS_PER_MINUTE = 60_000


class IdleLock(QObject):
    """Emits ``idle`` after ``delay_ms`` without user input (0: never). ``start()`` when the window opens,
    ``stop()`` at lock."""

    idle = Signal()

    def __init__(self, delay_ms: int, *, clock: Callable[[], float] = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._delay_ms = max(0, int(delay_ms))
        self._clock = clock
        self._last = clock()
        self._running = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._check)

    @property
    def delay_ms(self) -> int:
        return self._delay_ms

    @property
    def running(self) -> bool:
        return self._running

    def set_delay_ms(self, delay_ms: int) -> None:
        self._delay_ms = max(0, int(delay_ms))
        if self._running:
            self._arm(self._delay_ms)

    def set_minutes(self, minutes: int) -> None:
        self.set_delay_ms(minutes * MS_PER_MINUTE)

    def start(self) -> None:
        app = QCoreApplication.instance()
        if app is not None and not self._running:
            app.installEventFilter(self)
        self._running = True
        self._last = self._clock()
        self._arm(self._delay_ms)

    def stop(self) -> None:
        app = QCoreApplication.instance()
        if app is not None and self._running:
            app.removeEventFilter(self)
        self._running = False
        self._timer.stop()

    def input_seen(self) -> None:
        self._last = self._clock()

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() in _INPUT:
            self._last = self._clock()
        return False

    def _arm(self, ms: int) -> None:
        self._timer.stop()
        if self._delay_ms > 0:
            self._timer.start(max(1, ms))

    def _check(self) -> None:
        if not self._running or self._delay_ms <= 0:
            return
        quiet_ms = (self._clock() - self._last) * 1000
        if quiet_ms >= self._delay_ms:
            self.stop()
            self.idle.emit()
        else:
            self._arm(int(self._delay_ms - quiet_ms) + 1)


class SessionWatch(QObject):
    """Emits ``session_locked(why)`` when the screensaver locks the session or the computer is about to sleep.
    ``session_bus``/``system_bus`` are ``QDBusConnection``s (the desktop's own by default; tests pass a private
    bus); ``listening`` says which signals could be subscribed to."""

    session_locked = Signal(str)

    SCREENSAVERS = ("org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver", "org.mate.ScreenSaver",
                    "org.cinnamon.ScreenSaver")

    def __init__(self, session_bus: Any = None, system_bus: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.listening: list[str] = []
        try:
            from PySide6.QtDBus import QDBusConnection
        except ImportError:      # a Qt built without D-Bus: locking by idle time still works
            return
        session = session_bus if session_bus is not None else QDBusConnection.sessionBus()
        system = system_bus if system_bus is not None else QDBusConnection.systemBus()
        if session.isConnected():
            for interface in self.SCREENSAVERS:
                # any sender and path: each desktop names its screensaver object differently
                if session.connect("", "", interface, "ActiveChanged", self, SLOT("_screensaver(bool)")):
                    self.listening.append(f"{interface}.ActiveChanged")
        if system.isConnected() and system.connect("org.freedesktop.login1", "/org/freedesktop/login1",
                                                   "org.freedesktop.login1.Manager", "PrepareForSleep", self,
                                                   SLOT("_sleep(bool)")):
            self.listening.append("org.freedesktop.login1.Manager.PrepareForSleep")
        self._buses = (session, system)     # the connections must outlive the subscriptions

    @Slot(bool)
    def _screensaver(self, active: bool) -> None:
        if active:
            self.session_locked.emit("the screen was locked")

    @Slot(bool)
    def _sleep(self, going: bool) -> None:
        if going:
            self.session_locked.emit("the computer is going to sleep")

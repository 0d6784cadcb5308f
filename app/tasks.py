"""Background work for the GUI: run a function off the GUI thread and get its result back on the GUI thread.

Like Anki's background ops: the caller hands over a function plus success and failure callbacks; the callbacks
always run on the GUI thread (delivered by a queued signal), so views never touch widgets from a worker. Tests
inject ``SyncRunner`` to run tasks inline and deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

Success = Callable[[Any], None]
Failure = Callable[[BaseException], None]


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)
    progress = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # every failure must reach the GUI as a message, never kill the worker
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(result)


class TaskRunner:
    """Runs tasks on a thread pool; results come back through queued signals to the GUI thread."""

    def __init__(self, pool: QThreadPool | None = None) -> None:
        self._pool = pool or QThreadPool.globalInstance()
        self._relays: set[_Relay] = set()

    def run(self, fn: Callable[[], Any], on_done: Success, on_error: Failure) -> None:
        self.run_with_progress(lambda _report: fn(), None, on_done, on_error)

    def run_with_progress(self, fn: Callable[[Callable[[Any], None]], Any], on_progress: Callable[[Any], None] | None,
                          on_done: Success, on_error: Failure) -> None:
        """``fn(report)`` runs on a worker; each ``report(value)`` reaches ``on_progress`` on the GUI thread."""
        relay = _Relay()
        self._relays.add(relay)  # keep the relay alive until it has delivered

        def finish(handler: Callable[[Any], None], value: Any) -> None:
            self._relays.discard(relay)
            handler(value)

        if on_progress is not None:
            relay.progress.connect(on_progress)
        relay.done.connect(lambda value: finish(on_done, value))
        relay.failed.connect(lambda exc: finish(on_error, exc))
        self._pool.start(_Job(lambda: fn(relay.progress.emit), relay))

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)


class SyncRunner:
    """Runs the task inline: for tests that want no threads."""

    def run(self, fn: Callable[[], Any], on_done: Success, on_error: Failure) -> None:
        self.run_with_progress(lambda _report: fn(), None, on_done, on_error)

    def run_with_progress(self, fn: Callable[[Callable[[Any], None]], Any], on_progress: Callable[[Any], None] | None,
                          on_done: Success, on_error: Failure) -> None:
        try:
            result = fn(on_progress or (lambda _value: None))
        except BaseException as exc:
            on_error(exc)
        else:
            on_done(result)

    def wait(self, msecs: int = 0) -> bool:
        return True

"""The screens of the main window, one module each, so they can grow independently.

Every screen is a ``QWidget`` built as ``Screen(ctx)`` from a :class:`ScreenContext`. It never touches the
database on the GUI thread: it reads through ``ctx.runner`` with ``ctx.read()`` (a read-only connection, so reading
never waits for a long import) and shows the result when the callback arrives. A screen that lets the user open a
record emits ``open_record(rtype, id)``; the main window shows the record's detail. ``refresh()`` is called when
the screen is shown, when the person changes and after an import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScreenContext:
    """What a screen needs from outside. Tests build one around a real vault and a ``SyncRunner``."""

    runner: Any                                  # app.tasks.TaskRunner (or SyncRunner in tests)
    read: Callable[[], contextlib.AbstractContextManager[Any]]   # ``with ctx.read() as conn:`` on a worker only
    person: int | None = None                    # the person whose records are shown; None: the vault's person
    show_error: Callable[[BaseException], None] = field(default=lambda exc: None)
    extras: dict[str, Any] = field(default_factory=dict)   # session, clipboard, dialogs: injectable for tests

    def query(self, fn: Callable[[Any], Any], on_done: Callable[[Any], None],
              on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn(conn)`` on a worker with a read connection; ``on_done(result)`` runs on the GUI thread."""
        read = self.read

        def work() -> Any:
            with read() as conn:
                return fn(conn)
        self.runner.run(work, on_done, on_error or self.show_error)


class LatestQuery:
    """A read of which only the newest answer counts: asked again before the last answer came (the user chose
    another item, the person changed, an import finished), the older answer and its failure are dropped."""

    def __init__(self, ctx: ScreenContext) -> None:
        self.ctx = ctx
        self.generation = 0

    def run(self, fn: Callable[[Any], Any], on_done: Callable[[Any], None],
            on_error: Callable[[BaseException], None] | None = None) -> None:
        """``ctx.query(fn, ...)``; a failure also goes to ``ctx.show_error`` whether or not it is current."""
        self.generation += 1
        generation = self.generation

        def done(result: Any) -> None:
            if generation == self.generation:
                on_done(result)

        def failed(exc: BaseException) -> None:
            if generation == self.generation and on_error is not None:
                on_error(exc)
            self.ctx.show_error(exc)

        self.ctx.query(fn, done, failed)

    def drop(self) -> None:
        """Forget the read in flight: its answer will not be shown."""
        self.generation += 1


def vault_context(vault: Any, runner: Any, **kwargs: Any) -> ScreenContext:
    """A context reading from ``vault``: its read-only connection when it has one, else its serialised one."""
    reader = getattr(vault, "read_only", None) or vault.read

    @contextlib.contextmanager
    def read() -> Iterator[Any]:
        with reader() as conn:
            yield conn
    return ScreenContext(runner=runner, read=read, **kwargs)

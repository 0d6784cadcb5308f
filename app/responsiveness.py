"""How the interpreter is set up so the GUI thread answers within a frame while workers compute: the one place the
apps and the GUI benchmarks take it from, so what is measured is what runs.

Two things in CPython can hold the GUI thread for longer than a frame without any code of ours running on it:

- The interpreter lock. A worker keeps it for up to the switch interval (5 ms by default) before the GUI thread
  may take it, and Qt needs it for every call into a model. 0.5 ms keeps scrolling and painting smooth, at the
  cost of more switches for the workers.
- The cyclic garbage collector. A full collection walks every container object the process holds, on whichever
  thread happened to allocate last, and nothing else runs meanwhile. An unlocked app holds some 60,000 of its own
  (modules, Qt's wrappers, the screens) before any record; a scrolled timeline once added two per row, and a
  full collection at 250,000 objects took 170-290 ms on a busy two-core machine. ``settle()`` moves everything
  alive at a quiet moment out of the collector's sight (``gc.freeze``), so later collections walk only what was
  made since. Objects kept frozen are still freed as soon as nothing refers to them; only reference cycles among
  them wait until ``release()``, which the main window calls when it closes (locking): what it held becomes
  collectable like anything else, and no record's text outlives the session in a cycle nobody collects.

Long lists (the timeline's rows) are kept as plain tuples of strings and numbers, which the collector stops
tracking at all (``app.models.rows``), so they add nothing to a collection however long they grow.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    """Once, at the start of a GUI process (before any worker starts)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def settle() -> None:
    """After long-lived objects were made (a window built, a screen's module imported): from now on the collector
    leaves them alone. Costs nothing itself (the collector's lists are moved, not walked)."""
    gc.freeze()


def release() -> None:
    """When the window that settled goes away (locking): what it held is the collector's again."""
    gc.unfreeze()

"""What medvault notes in its log file, and the allow-list that keeps health data out of it.

The log is for the user and for whoever helps them ("did the unlock fail, or the import?"), so it holds events, not
sentences: an event name and a few fields, each field on an allow-list with the form its value must have (a count,
a share id, an error's class name). Nothing else can reach the file: a record that did not come from ``event``
is dropped, an unknown field is left out, and a value of the wrong form is written as ``?``. So a patient's name,
birth date, record text or a file name (file names often hold the patient's name) cannot get in, even by mistake
in a later change: the writer never formats free text.

``event`` costs nothing when no log file is installed (``app.logfile`` installs it for the CLI and the GUI).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any

LOGGER_NAME = "medvault.events"
_ATTR = "medvault_event"

_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")
_WORD = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SHARE_ID = re.compile(r"[0-9a-f]{8,64}")

# Field -> the form its value must have: a regular expression for text, ``int`` for a count.
FIELDS: dict[str, re.Pattern[str] | type] = {
    "outcome": _WORD,        # ok, wrong_passphrase, refused, ...
    "command": _WORD,        # the CLI command, e.g. import
    "kind": _WORD,           # a source kind (fhir-json, ndjson, ...) or a share kind (open, directed)
    "error": _CLASS_NAME,    # the class of an error, never its message
    "share_id": _SHARE_ID,
    "added": int, "updated": int, "duplicates": int, "skipped": int, "resources": int, "sources": int,
}

# Event -> the fields it may carry.
EVENTS: dict[str, frozenset[str]] = {
    "start": frozenset({"command"}),
    "unlock": frozenset({"outcome"}),
    "import": frozenset({"outcome", "kind", "added", "updated", "duplicates", "skipped", "error"}),
    "share_created": frozenset({"share_id", "kind", "resources"}),
    "share_revoked": frozenset({"share_id"}),
    "error": frozenset({"error", "command"}),
    "bug": frozenset({"error", "command"}),
}

_logger = logging.getLogger(LOGGER_NAME)
_logger.setLevel(logging.INFO)
_logger.propagate = False               # never into a handler someone put on the root logger
_logger.addHandler(logging.NullHandler())  # and never to Python's last-resort printing on stderr


def event(name: str, /, **fields: Any) -> None:
    """Note an event; only what ``EVENTS`` and ``FIELDS`` allow is ever written (an unknown event as ``?``)."""
    _logger.info(name, extra={_ATTR: (name, fields)})


def render_value(field: str, value: Any) -> str:
    form = FIELDS.get(field)
    if form is int:
        return str(value) if type(value) is int and 0 <= value < 10**12 else "?"
    if isinstance(form, re.Pattern) and isinstance(value, str) and form.fullmatch(value):
        return value
    return "?"


def render(name: str, fields: dict[str, Any], created: float) -> str:
    """One line: UTC time, event, then the allowed fields in a fixed order."""
    when = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="seconds")
    allowed = EVENTS.get(name, frozenset())
    parts = [when, name if name in EVENTS else "?"]
    parts += [f"{f}={render_value(f, fields[f])}" for f in sorted(fields) if f in allowed]
    return " ".join(parts)


class AllowListFormatter(logging.Formatter):
    """Formats only what ``event`` produced, from the allow-lists; the record's message and arguments are ignored."""

    def format(self, record: logging.LogRecord) -> str:
        name, fields = getattr(record, _ATTR)
        return render(name, fields, record.created)


def only_events(record: logging.LogRecord) -> bool:
    """A logging filter: drop every record that ``event`` did not make (a library's message, a stray ``info``)."""
    payload = getattr(record, _ATTR, None)
    return (isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[0], str)
            and isinstance(payload[1], dict))

"""Text for a terminal: nothing that came from outside may act on it.

Labels, names, ids, types and record text come from links, shares and imported files. A terminal acts on control
characters (escape sequences move the cursor, erase lines, retitle the window; a carriage return or newline
starts a line over), and bidirectional controls reorder what is shown, so a label could turn "consent
not_checked" into "passed". Every string the CLI writes goes through here: whole messages keep their own line
breaks, and each value from outside is flattened to one line.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "?"
# C0 and C1 controls and DEL; bidirectional embeddings, overrides and isolates; line and paragraph separators;
# lone surrogates (which cannot even be encoded for output). Tabs and newlines are handled by the callers' choice.
_ACTIVE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff"
_IN_MESSAGE = re.compile(f"[{_ACTIVE}]")
_IN_VALUE = re.compile(f"[{_ACTIVE}\t\n]")


def value(text: Any) -> str:
    """One value from outside, as one harmless line: every control character becomes ``?``."""
    return _IN_VALUE.sub(REPLACEMENT, "" if text is None else str(text))


def message(text: str) -> str:
    """A whole message to print: its own line breaks and tabs stay, every other control character goes."""
    return _IN_MESSAGE.sub(REPLACEMENT, text)


def json_text(data: Any) -> str:
    """JSON for a terminal: the same values, with everything a terminal would act on written as ``\\uXXXX``
    escapes (json escapes C0 controls itself but leaves DEL, C1, bidirectional controls and separators raw)."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    return _IN_MESSAGE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

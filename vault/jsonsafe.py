"""Every JSON parse and encode of medvault's data, with orjson; the one module that imports it.

Depth: orjson parses iteratively and refuses nesting deeper than 1,024 levels on its own, so untrusted text is
handed to it as it is, with no pre-scan; nothing it returns can exhaust the C stack of a later recursive walk
(py_ecc raises Python's recursion limit to 100,000 for the whole process, so that limit protects nothing).

What orjson does differently from the standard library is made explicit here, so no caller meets it by surprise:
- whole numbers beyond 64 bits come back as floats, silently losing digits; every float that large is at least
  ``HUGE`` in size, which is what a caller walking the value checks (the records walk does, at no extra cost);
- ``NaN``, ``Infinity`` and lone UTF-16 surrogates are invalid JSON and refused, each with its own reason;
- encoding writes floats below 1e-4 without an exponent (``0.00001``, where ``json`` writes ``1e-05``), which only
  matters to hashes made by earlier versions (see ``legacy_canonical``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

ORJSON_MAX_DEPTH = 1024       # orjson's own bound, enforced while it parses
DEFAULT_MAX_DEPTH = ORJSON_MAX_DEPTH

# The smallest magnitude of a float that a whole number beyond orjson's 64 bits turns into.
HUGE = float(1 << 63)
# Digits to "0", everything else to " ": a run of 19 zeros then marks a number that may not fit 64 bits.
_DIGIT_RUNS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19
# Floats that json.dumps writes with an exponent and orjson without (or with a one-digit exponent).
_SMALL_FLOAT = re.compile(rb"[:,\[]-?(?:0\.0000|\d(?:\.\d+)?e-)")


class JsonRefused(ValueError):
    """The text is not JSON medvault accepts; ``reason`` says why in a few plain words, ``pos`` where (bytes)."""

    def __init__(self, reason: str, pos: int | None = None, line: int | None = None, column: int | None = None):
        super().__init__(reason)
        self.reason, self.pos, self.line, self.column = reason, pos, line, column


class JsonTooDeep(JsonRefused):
    """Nested deeper than allowed; nothing was returned."""


class NotUtf8(JsonRefused):
    """The bytes are not UTF-8 text."""


def loads(data: bytes | bytearray | memoryview | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse untrusted JSON. Raises a ``JsonRefused`` subclass, never a parser's own exception.

    ``max_depth`` below orjson's bound costs one iterative walk of the result; at the bound it costs nothing.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise _refusal(err, data) from None
    if max_depth < ORJSON_MAX_DEPTH and depth_exceeds(value, max_depth):
        raise JsonTooDeep(f"is nested deeper than {max_depth} levels")
    return value


def loads_stored(text: str | bytes) -> Any:
    """Parse JSON medvault wrote itself. Rows written before orjson may hold ``NaN`` or whole numbers beyond 64 bits
    (the standard library accepted them); those few are read with it, exactly as they were written."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    if _LONG_RUN not in raw.translate(_DIGIT_RUNS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative, so a deep value is measured without recursing."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in children if type(v) is dict or type(v) is list)
    return False


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, keys in the order given."""
    return orjson.dumps(value)


def dumps_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def canonical(value: Any) -> bytes:
    """Compact UTF-8 JSON with keys sorted at every level: what hashes and signatures cover. Same bytes as
    ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` except floats below 1e-4."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def legacy_canonical(value: Any) -> bytes:
    """Exactly the bytes the standard library's canonical form gave (content hashes of vaults made before
    orjson); orjson's bytes are used whenever they are provably the same, which is almost always."""
    fast = canonical(value)
    if _SMALL_FLOAT.search(fast) is None:
        return fast
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def pretty(value: Any) -> bytes:
    """Indented, for files a person may read (exports)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def _refusal(err: orjson.JSONDecodeError, data) -> JsonRefused:
    text = str(err)
    pos, line, column = err.pos, err.lineno, err.colno
    if "depth limit" in text:
        return JsonTooDeep(f"is nested deeper than {ORJSON_MAX_DEPTH} levels", pos, line, column)
    if "not valid UTF-8" in text and not isinstance(data, str):
        return NotUtf8("is not UTF-8 text", pos, line, column)
    if "surrogate" in text:
        return JsonRefused("holds a broken character escape (a lone UTF-16 surrogate)", pos, line, column)
    if "byte order mark" in text:
        return JsonRefused("starts with a byte order mark", pos, line, column)
    if "infinity" in text.lower():
        return JsonRefused("holds a number too large for a decimal value", pos, line, column)
    if "empty" in text:
        return JsonRefused("is empty", pos, line, column)
    head = bytes(data[pos:pos + 9]) if not isinstance(data, str) else data[pos:pos + 9].encode("utf-8", "replace")
    if head.startswith((b"NaN", b"Infinity", b"-Infinity")):
        return JsonRefused("holds NaN or Infinity, which JSON does not allow", pos, line, column)
    return JsonRefused("is not valid JSON", pos, line, column)

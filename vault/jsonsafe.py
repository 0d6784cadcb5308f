"""Every JSON parse and encode of medvault's data, with orjson; the one module that imports it.

Size: the number of values is bounded before any Python object exists: ``{}`` is 3 bytes of text and a 64-byte
dict, so 66 MB of ``{},{},...`` (87 KB once deflated) would become 22 million dicts and about 1.8 GB. ``Budget``
carries that bound, and those on inflated bytes, entries and health cards, across every file and card of one share
or one import, so splitting a bomb into many pieces gains nothing.

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
# About 60 bytes of real FHIR JSON per value (Synthea's largest patients), so this admits some 120 MB of genuine
# records, more than any byte limit medvault applies, while a text built to maximise objects stays near 200 MB of
# Python objects.
DEFAULT_MAX_VALUES = 2_000_000
_NOT_COUNTED = bytes(b for b in range(256) if b not in b'[]{}",')
_NOT_VALUE_MARK = bytes(b for b in range(256) if b not in b"{[,")
_MARKS_SLICE = 1 << 16      # larger slices come from mmap and fault in fresh pages each time: slower
_STRING_IN_STRUCTURE = re.compile(rb'"[^"]*"')

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


class JsonNotUnicode(JsonRefused):
    """A string escapes half of a UTF-16 surrogate pair: text no UTF-8 file, database or terminal can hold."""


class JsonTooLarge(JsonRefused):
    """The text (or a share or import as a whole) holds more than its budget allows; nothing more was parsed."""

    def __init__(self, what: str) -> None:
        self.what = what  # "bytes", "values", "entries" or "cards"
        super().__init__(f"holds more than medvault reads at once (over the {what} budget)")


def count_values(raw: bytes, limit: int) -> int:
    """How many values JSON text parses into, counted on its bytes: containers plus the commas between elements
    and members (the exact number is at most one more per container, and a member's key comes with its value).

    The first count takes brackets and commas anywhere, strings included; only text over ``limit`` by that count
    pays for the exact one, which leaves out what sits inside strings. Both count what is left once every other
    byte is deleted (one pass in C, where a ``count`` per character took three), a slice at a time so the copies
    stay small whatever the text.
    """
    quick = _marks(raw)
    if quick <= limit:
        return quick
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_COUNTED)
    return _marks(_STRING_IN_STRUCTURE.sub(b"", structure))


def _marks(raw: bytes) -> int:
    """How many of ``{``, ``[`` and ``,`` ``raw`` holds."""
    step = _MARKS_SLICE
    return sum(len(raw[i:i + step].translate(None, _NOT_VALUE_MARK)) for i in range(0, len(raw), step))


class Budget:
    """What one share or one import may cost in all: bytes inflated, JSON values parsed, entries and health
    cards, across every file and card in it. Each ``take_*`` raises ``JsonTooLarge`` once a bound is passed."""

    def __init__(self, max_bytes: int, max_values: int = DEFAULT_MAX_VALUES, max_entries: int | None = None,
                 max_cards: int | None = None) -> None:
        self.max_bytes, self.max_values = max_bytes, max_values
        self.max_entries, self.max_cards = max_entries, max_cards
        self.bytes = self.values = self.entries = self.cards = 0

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.max_bytes - self.bytes)

    def take_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise JsonTooLarge("bytes")

    def take_values(self, raw: bytes) -> None:
        """Charge the values ``raw`` parses into, refusing before it is parsed."""
        n = count_values(raw, self.max_values - self.values)
        if self.values + n > self.max_values:
            raise JsonTooLarge("values")
        self.values += n

    def take_entries(self, n: int) -> None:
        self.entries += n
        if self.max_entries is not None and self.entries > self.max_entries:
            raise JsonTooLarge("entries")

    def take_cards(self, n: int) -> None:
        self.cards += n
        if self.max_cards is not None and self.cards > self.max_cards:
            raise JsonTooLarge("cards")


def loads(data: bytes | bytearray | memoryview | str, max_depth: int = DEFAULT_MAX_DEPTH,
          budget: Budget | None = None) -> Any:
    """Parse untrusted JSON. Raises a ``JsonRefused`` subclass, never a parser's own exception.

    More values than ``budget`` has left (``DEFAULT_MAX_VALUES`` when none is given) are refused before any is
    built. ``max_depth`` below orjson's bound costs one iterative walk of the result; at the bound it costs nothing.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    (budget or Budget(max_bytes=len(raw))).take_values(raw)
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
        return JsonNotUnicode("holds a broken character escape (a lone UTF-16 surrogate)", pos, line, column)
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

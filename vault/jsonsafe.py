"""Parsing JSON from outside without trusting Python's recursion limit or its memory.

CPython's C JSON scanner recurses once per nesting level and relies on the recursion limit to stop; py_ecc (pulled
in by the EVM) raises that limit to 100,000 for the whole process on import, after which 100,000 nested brackets
overflow the C stack and kill the process. So the depth is bounded first, with C-speed byte operations only.

The number of values is bounded the same way, before any Python object exists: ``{}`` is 3 bytes of text and a
64-byte dict, so 66 MB of ``{},{},...`` (87 KB once deflated) becomes 22 million dicts and about 1.8 GB.
``Budget`` carries those bounds across every file and card of one share or one import, so splitting a bomb into
many pieces gains nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_MAX_DEPTH = 512
# About 60 bytes of real FHIR JSON per value (Synthea's largest patients), so this admits some 120 MB of genuine
# records, more than any byte limit medvault applies, while a text built to maximise objects stays near 200 MB of
# Python objects.
DEFAULT_MAX_VALUES = 2_000_000
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_NOT_COUNTED = bytes(b for b in range(256) if b not in b'[]{}",')
_STRING_IN_STRUCTURE = re.compile(rb'"[^"]*"')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonTooDeep(ValueError):
    """The text nests deeper than allowed; nothing was parsed."""


class JsonNotUnicode(ValueError):
    """A string escapes half of a UTF-16 surrogate pair: text no UTF-8 file, database or terminal can hold."""


class JsonTooLarge(ValueError):
    """The text (or a share or import as a whole) holds more than its budget allows; nothing more was parsed."""

    def __init__(self, what: str) -> None:
        self.what = what  # "bytes", "values", "entries" or "cards"
        super().__init__(f"over the {what} budget")


def check_unicode(value: Any, raw: bytes) -> None:
    """Raise JsonNotUnicode when a parsed string (or key) holds a lone surrogate.

    JSON may escape any UTF-16 code unit, so ``"\\ud800"`` parses to a string that cannot be encoded as UTF-8 and
    fails far away (a hash, a database write, a print). Only ``\\uD8..``-``\\uDF..`` escapes can produce one, so the
    parsed value is walked only when the text has such an escape (emoji written as escaped pairs, mostly).
    """
    if not _SURROGATE_ESCAPE.search(raw):
        return
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise JsonNotUnicode("a string holds half of a surrogate pair")
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def count_values(raw: bytes, limit: int) -> int:
    """How many values JSON text parses into, counted on its bytes: containers plus the commas between elements
    and members (the exact number is at most one more per container, and a member's key comes with its value).

    The first count takes brackets and commas anywhere, strings included, and copies nothing; only text over
    ``limit`` by that count pays for the exact one, which leaves out what sits inside strings.
    """
    quick = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if quick <= limit:
        return quick
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_COUNTED)
    outside = _STRING_IN_STRUCTURE.sub(b"", structure)
    return outside.count(b"{") + outside.count(b"[") + outside.count(b",")


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


def nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether JSON text may nest deeper than ``limit`` (an upper bound: never says no to deep input).

    Escaped backslashes and quotes are dropped, then every byte but brackets and quotes (all in C, so the Python
    work is on a much smaller string); the text between strings is kept, and innermost pairs are peeled until none
    are left. One pass peels one or two levels, so the text is accepted only when twice the passes is within
    ``limit``.
    """
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    brackets = b"".join(structure.split(b'"')[::2])
    passes = 0
    while brackets:
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            # unpaired brackets (not JSON): the scanner can go no deeper than what was peeled plus what is left
            return 2 * passes + len(brackets) > limit
        passes += 1
        if 2 * passes > limit:
            return True
        brackets = shorter
    return False


def loads(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH, budget: Budget | None = None) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` before the recursive scanner sees it, and
    more values than ``budget`` has left (``DEFAULT_MAX_VALUES`` when none is given) before building any.

    Raises JsonTooDeep, JsonTooLarge, JsonNotUnicode, or json.JSONDecodeError / UnicodeDecodeError / ValueError
    (a number of more than 4,300 digits) as json.loads would.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    (budget or Budget(max_bytes=len(raw))).take_values(raw)
    if nesting_exceeds(raw, max_depth):
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    value = json.loads(data)
    check_unicode(value, raw)
    return value

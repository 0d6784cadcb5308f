"""Parsing JSON from outside without trusting Python's recursion limit.

CPython's C JSON scanner recurses once per nesting level and relies on the recursion limit to stop; py_ecc (pulled
in by the EVM) raises that limit to 100,000 for the whole process on import, after which 100,000 nested brackets
overflow the C stack and kill the process. So the depth is measured first, at C speed on the raw text: strings
are blanked out with one regular expression, everything but brackets is deleted with ``bytes.translate``, and only
the brackets are walked.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

DEFAULT_MAX_DEPTH = 512
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = {ord("["), ord("{")}


class JsonTooDeep(ValueError):
    """The text nests deeper than allowed; nothing was parsed."""


def nesting_depth(data: bytes) -> int:
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(1 if b in _OPEN else -1 for b in brackets))


def loads(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` before the recursive scanner sees it.

    Raises JsonTooDeep, or json.JSONDecodeError / UnicodeDecodeError as json.loads would.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if nesting_depth(raw) > max_depth:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(data)

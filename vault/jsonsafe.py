"""Parsing JSON from outside without trusting Python's recursion limit.

CPython's C JSON scanner recurses once per nesting level and relies on the recursion limit to stop; py_ecc (pulled
in by the EVM) raises that limit to 100,000 for the whole process on import, after which 100,000 nested brackets
overflow the C stack and kill the process. So the depth is bounded first, with C-speed byte operations only.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_DEPTH = 512
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


class JsonTooDeep(ValueError):
    """The text nests deeper than allowed; nothing was parsed."""


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


def loads(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` before the recursive scanner sees it.

    Raises JsonTooDeep, or json.JSONDecodeError / UnicodeDecodeError as json.loads would.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if nesting_exceeds(raw, max_depth):
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(data)

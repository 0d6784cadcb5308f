"""Parsing untrusted JSON without tracebacks, and the canonical form used for content hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vault.records.errors import MalformedJson, NestingTooDeep

# Real FHIR nests about 15 levels (Questionnaire items a few more); 128 leaves room and stops hostile input long
# before Python's own recursion limit in anything that walks the tree.
MAX_DEPTH = 128


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_LOADS_CEILING = 512       # hard ceiling before the recursive C scanner, whatever the caller bounds later


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """Whether the JSON text may nest deeper than ``limit``, decided before the recursive C scanner runs.

    CPython's scanner recurses once per level and trusts the recursion limit, which py_ecc raises to 100,000 for the
    whole process, so deep input would overflow the C stack (see ``vault.jsonsafe``). This is the same guard done
    with C-speed byte operations only: drop escaped backslashes and quotes, keep the text between strings, keep
    the brackets, then peel innermost pairs. Each pass peels one or two levels, so the text is accepted only when
    twice the passes (an upper bound of the depth) is within ``limit``.
    """
    outside = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(outside.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
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


def loads(data: bytes | str, what: str = "The file", *, bound_depth: bool = True) -> Any:
    """Parse JSON; ``bound_depth=False`` when the caller walks the whole value itself and bounds depth there."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJson(f"{what} is not UTF-8 text, so it is not FHIR JSON; nothing was imported.") from None
        raw = data
    else:
        text, raw = data, data.encode("utf-8", "surrogatepass")
    if _nesting_exceeds(raw, MAX_DEPTH if bound_depth else _LOADS_CEILING):
        raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.")
    try:
        value = json.loads(text)
    except RecursionError:
        raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.") from None
    except json.JSONDecodeError as err:
        raise MalformedJson(f"{what} is not valid JSON (error at line {err.lineno}, column {err.colno}); "
                            "nothing was imported.") from None
    if bound_depth:
        check_depth(value, what)
    return value


def check_depth(value: Any, what: str = "The file") -> None:
    """Iterative, so a deep value is refused here instead of blowing the stack of a later recursive walk."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def content_hash(resource: dict) -> str:
    """SHA-256 of the canonical JSON, leaving out what exporters rewrite freely (id, meta, generated narrative)."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
    canon = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()

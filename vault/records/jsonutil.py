"""Parsing untrusted JSON without tracebacks, and the canonical form used for content hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vault import jsonsafe
from vault.records.errors import FileTooLarge, MalformedJson, NestingTooDeep

# Real FHIR nests about 15 levels (Questionnaire items a few more); 128 leaves room and stops hostile input long
# before Python's own recursion limit in anything that walks the tree.
MAX_DEPTH = 128


_LOADS_CEILING = jsonsafe.DEFAULT_MAX_DEPTH  # hard ceiling before the recursive C scanner


def loads(data: bytes | str, what: str = "The file", *, bound_depth: bool = True,
          budget: jsonsafe.Budget | None = None) -> Any:
    """Parse JSON; ``bound_depth=False`` when the caller walks the whole value itself and bounds depth there.

    The number of values is bounded before parsing (``jsonsafe.DEFAULT_MAX_VALUES``, or what ``budget`` has left
    when several parses make up one import, such as the cards of one file)."""
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
    try:
        (budget or jsonsafe.Budget(max_bytes=len(raw))).take_values(raw)
    except jsonsafe.JsonTooLarge:
        raise FileTooLarge(f"{what} holds far more data items than medical records do; nothing was imported.") \
            from None
    if jsonsafe.nesting_exceeds(raw, MAX_DEPTH if bound_depth else _LOADS_CEILING):
        raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.")
    try:
        value = json.loads(text)
    except RecursionError:
        raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.") from None
    except json.JSONDecodeError as err:
        raise MalformedJson(f"{what} is not valid JSON (error at line {err.lineno}, column {err.colno}); "
                            "nothing was imported.") from None
    except ValueError:
        # Python refuses to convert integers of more than 4,300 digits (a guard against quadratic time).
        raise MalformedJson(f"{what} holds a number with thousands of digits, which no medical record has; "
                            "nothing was imported.") from None
    try:
        jsonsafe.check_unicode(value, raw)
    except jsonsafe.JsonNotUnicode:
        raise MalformedJson(f"{what} holds text that is not valid Unicode (half of a surrogate pair); "
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

"""Parsing untrusted JSON without tracebacks, and the canonical form used for content hashes."""

from __future__ import annotations

import hashlib
from typing import Any

from vault import jsonsafe
from vault.records.errors import FileTooLarge, MalformedJson, NestingTooDeep

# Real FHIR nests about 15 levels (Questionnaire items a few more); 128 leaves room and stops hostile input long
# before Python's own recursion limit in anything that walks the tree.
MAX_DEPTH = 128
# A float this large is either a whole number beyond 64 bits that the parser could only approximate, or a
# magnitude no health record has; either way storing it would change the data.
HUGE_NUMBER = jsonsafe.HUGE

# Content hash versions, recorded per vault (``meta.content_hash``): 1 is the standard library's canonical JSON
# (vaults made before orjson, whose stored hashes must keep matching), 2 is orjson's (new vaults).
HASH_V1, HASH_V2 = 1, 2


def loads(data: bytes | str, what: str = "The file", *, bound_depth: bool = True,
          budget: jsonsafe.Budget | None = None) -> Any:
    """Parse JSON; ``bound_depth=False`` when the caller walks the whole value itself and bounds depth there
    (orjson's own bound of 1,024 levels still applies).

    The number of values is bounded before parsing (``jsonsafe.DEFAULT_MAX_VALUES``, or what ``budget`` has left
    when several parses make up one import, such as the cards of one file)."""
    if isinstance(data, (bytes, bytearray)) and data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    try:
        value = jsonsafe.loads(data, budget=budget)
    except jsonsafe.JsonTooLarge:
        raise FileTooLarge(f"{what} holds far more data items than medical records do; nothing was imported.") \
            from None
    except jsonsafe.JsonTooDeep:
        raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.") \
            from None
    except jsonsafe.NotUtf8:
        raise MalformedJson(f"{what} is not UTF-8 text, so it is not FHIR JSON; nothing was imported.") from None
    except jsonsafe.JsonNotUnicode as err:
        where = f" (at line {err.line}, column {err.column})" if err.line else ""
        raise MalformedJson(f"{what} holds text that is not valid Unicode (half of a surrogate pair){where}; "
                            "nothing was imported.") from None
    except jsonsafe.JsonRefused as err:
        where = f" (error at line {err.line}, column {err.column})" if err.line else ""
        if err.reason == "is not valid JSON":
            raise MalformedJson(f"{what} is not valid JSON{where}; nothing was imported.") from None
        raise MalformedJson(f"{what} is not valid JSON: it {err.reason}{where}; nothing was imported.") from None
    if bound_depth:
        check_depth(value, what)
    return value


def check_depth(value: Any, what: str = "The file") -> None:
    """Iterative, so a deep value is refused here instead of blowing the stack of a later recursive walk; also
    refuses numbers too large to keep exactly (the same walk the records importer does in ``extract.walk``)."""
    if type(value) is not dict and type(value) is not list:
        return
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise NestingTooDeep(f"{what} holds JSON nested too deeply to be a medical record; nothing was imported.")
        children = node.values() if type(node) is dict else node
        for v in children:
            t = type(v)
            if t is dict or t is list:
                stack.append((v, depth + 1))
            elif t is float and not -HUGE_NUMBER < v < HUGE_NUMBER:
                raise_huge_number(what)


def raise_huge_number(what: str = "The file") -> None:
    raise MalformedJson(f"{what} holds a number too large to keep exactly (a whole number beyond 64 bits); "
                        "nothing was imported.")


def compact(value: Any) -> str:
    return jsonsafe.dumps_text(value)


def content_hash(resource: dict, version: int = HASH_V2) -> str:
    """SHA-256 of the canonical JSON, leaving out what exporters rewrite freely (id, meta, generated narrative)."""
    body = resource.copy()          # a C-level copy and three pops: a third of the hash's time as a comprehension
    body.pop("id", None)
    body.pop("meta", None)
    body.pop("text", None)
    canon = jsonsafe.canonical(body) if version == HASH_V2 else jsonsafe.legacy_canonical(body)
    return hashlib.sha256(canon).hexdigest()

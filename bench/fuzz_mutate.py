"""Mutations for the fuzz targets' inputs: one mode byte, then the payload (see ``fuzz_targets``).

Byte mutations alone rarely keep JSON parseable, so the inner checks of a FHIR resource, a link payload or a card
would only ever see a parse error. When the payload is JSON, half the mutations change its structure instead: a
value replaced by one of another type or an edge value, a member dropped, a subtree copied elsewhere, a node
wrapped deeper, and a few edits made on the text that no parsed value can express (numbers past any float, lone
surrogate escapes, duplicate keys). ``mutate`` is used by both engines: libFuzzer calls it through atheris'
custom mutator hook (with its own byte mutator as ``byte_mutate``), the built-in engine with ``bytes_mutate``.
"""

from __future__ import annotations

import random
from typing import Callable

import orjson

EDGE_VALUES = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63 - 1, -(2 ** 63), 1.5, -0.0, 1e308, "", " ", "x" * 90,
               "\u0000", "\u202e", "\ufeff", "é", "\U0001F600", "1e999", "2023-02-30", "2023-06-01T10:00:00Z",
               "urn:uuid:00000000-0000-0000-0000-000000000000", "Patient/1", "#x", "resource:0",
               "Organization?identifier=a|b", "https://a.example/", "http://127.0.0.1/", "shc:/", "DEF", "dir",
               "ES256", "A256GCM", [], {}, [None], [[]], {"": None}, {"resourceType": "Patient"},
               {"reference": "urn:uuid:x"}, {"resourceType": "Bundle", "type": "collection", "entry": []}]
KEYS = ["resourceType", "id", "entry", "resource", "fullUrl", "type", "reference", "subject", "patient", "code",
        "coding", "system", "value", "status", "text", "div", "meta", "contained", "extension", "url", "key",
        "flag", "exp", "label", "v", "files", "embedded", "location", "contentType", "verifiableCredential", "vc",
        "credentialSubject", "fhirBundle", "iss", "nbf", "alg", "enc", "zip", "kid", "cty", "t", "from", "iat",
        "body", "sig", "to", "x25519", "name", "address", "org", "magic", "format", "kdf", "slots", "checksum",
        "database", "cipher_page_size", "search", "mode", "identifier", "data", "attachment", "content"]
TEXT_TOKENS = [b"1e999", b"-1e999", b"123456789012345678901234567890", b"18446744073709551616", b"NaN",
               b"\\ud800", b"\\udfff", b"\\u0000", b"\\\"", b"\xed\xa0\x80", b"\xff", b"\xef\xbb\xbf", b"[" * 40,
               b"{\"a\":" * 20, b",", b":", b"\"", b"}", b"]", b"null", b"\n", b"\r\n", b" "]

ByteMutator = Callable[[bytes, int, random.Random], bytes]


def bytes_mutate(data: bytes, max_size: int, rng: random.Random) -> bytes:
    """A small libFuzzer-like byte mutator for the built-in engine (no coverage feedback)."""
    buf = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(1 + rng.randrange(8)))
        elif op == 3 and buf:
            end = min(len(buf), pos + 1 + rng.randrange(32))
            del buf[pos:end]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            chunk = buf[start:start + 1 + rng.randrange(64)]
            buf[pos:pos] = chunk * (1 + rng.randrange(3))
        elif op == 5:
            buf[pos:pos] = rng.choice(TEXT_TOKENS)
        elif op == 6 and buf:
            i = rng.randrange(len(buf))
            buf[i] = rng.choice(b"0123456789{}[]\",:.-/=+_ azAZ\\\x00\x7f\x80\xff")
        elif op == 7 and len(buf) > 1:
            del buf[rng.randrange(1, len(buf)):]
        elif op == 8 and buf:
            buf[0] = rng.randrange(256)  # another mode of the same target
    return bytes(buf[:max_size])


def _nodes(doc, limit: int = 4000) -> list[tuple[object, object]]:
    """(container, key or index) for every value below the root, breadth first, at most ``limit``."""
    out: list[tuple[object, object]] = []
    queue = [doc]
    while queue and len(out) < limit:
        node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            out.append((node, k))
            if isinstance(v, (dict, list)):
                queue.append(v)
    return out


def _text_edit(raw: bytes, rng: random.Random) -> bytes:
    op = rng.randrange(4)
    if op == 0:  # a number past what a float holds, or beyond 64 bits
        digits = [i for i, b in enumerate(raw) if 48 <= b <= 57]
        if digits:
            i = rng.choice(digits)
            return raw[:i] + rng.choice(TEXT_TOKENS[:5]) + raw[i + 1:]
    if op == 1:  # a lone surrogate or NUL inside a string
        quotes = [i for i, b in enumerate(raw) if b == 34]
        if quotes:
            i = rng.choice(quotes) + 1
            return raw[:i] + rng.choice(TEXT_TOKENS[5:8]) + raw[i:]
    if op == 2:  # a duplicate key: the first member again, with another value
        if raw.startswith(b"{") and b":" in raw:
            key = raw[1:raw.index(b":")]
            return b"{" + key + b":" + orjson.dumps(rng.choice(EDGE_VALUES)) + b"," + raw[1:]
    depth = rng.choice((8, 17, 130, 1100))  # around each nesting bound medvault has
    return b"[" * depth + raw + b"]" * depth


def json_mutate(payload: bytes, rng: random.Random) -> bytes | None:
    """A structural change of JSON ``payload``, or None when it is not JSON."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if rng.randrange(8) == 0:
        return _text_edit(payload, rng)
    nodes = _nodes(doc)
    if not nodes:
        return orjson.dumps(rng.choice(EDGE_VALUES + [{rng.choice(KEYS): doc}]))
    holder, key = rng.choice(nodes)
    value = holder[key]  # type: ignore[index]
    op = rng.randrange(8)
    if op == 0:
        holder[key] = rng.choice(EDGE_VALUES)  # type: ignore[index]
    elif op == 1:
        del holder[key]  # type: ignore[arg-type]
    elif op == 2:
        other_holder, other_key = rng.choice(nodes)
        holder[key] = other_holder[other_key]  # type: ignore[index]
    elif op == 3:
        holder[key] = [value] if rng.randrange(2) else {rng.choice(KEYS): value}  # type: ignore[index]
    elif op == 4 and isinstance(holder, dict):
        holder[rng.choice(KEYS)] = rng.choice(EDGE_VALUES + [value])
    elif op == 5 and isinstance(holder, list):
        holder.extend([value] * (1 + rng.randrange(3)))
    elif op == 6 and isinstance(value, str):
        i = rng.randrange(len(value) + 1)
        holder[key] = value[:i] + rng.choice(["\u0000", "\u202e", "é", "/", ":", "|", "?", "#", " ", "%", "x" * 70,
                                             "\U0001F600", "\x1b[2J"]) + value[i:]  # type: ignore[index]
    elif op == 7 and isinstance(value, (int, float)) and not isinstance(value, bool):
        holder[key] = rng.choice([value + 1, -value, value * 1000, 0, 2 ** 53 + 1, 1e300, 0.1])  # type: ignore
    else:
        holder[key] = rng.choice(EDGE_VALUES)  # type: ignore[index]
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return None


def mutate(data: bytes, max_size: int, rng: random.Random, byte_mutate: ByteMutator) -> bytes:
    """One mutation of a target input: its mode byte kept, its payload changed as JSON or as bytes."""
    if len(data) > 1 and rng.randrange(2):
        changed = json_mutate(data[1:], rng)
        if changed is not None and len(changed) < max_size:
            return data[:1] + changed
    return byte_mutate(data, max_size, rng)

"""PDF and image files become a ``DocumentReference`` whose bytes are an attachment inside the encrypted database.

The content type comes from the magic bytes (``sources.detect``), and the file must also end the way its format
ends, so a truncated download or a renamed file is refused rather than stored as something no viewer can open.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from vault.records import bundle
from vault.records.errors import DocumentInvalid

ATTACHMENT_URL = "medvault:attachment/sha256/"
MAX_INLINE = 64 << 20

_LABELS = {"application/pdf": "PDF document", "image/png": "PNG image", "image/jpeg": "JPEG image",
           "image/gif": "GIF image", "image/tiff": "TIFF image", "image/webp": "WebP image"}


def check_complete(data: bytes, ctype: str) -> None:
    tail = data[-2048:]
    ok = {
        "application/pdf": b"%%EOF" in tail,
        "image/png": b"IEND" in data[-64:],
        "image/jpeg": b"\xff\xd9" in data[-64:],
        "image/gif": data.rstrip(b"\x00").endswith(b";"),
    }.get(ctype, len(data) > 16)
    if not ok:
        raise DocumentInvalid(f"The {_LABELS.get(ctype, 'document')} is incomplete or damaged (its end is "
                              "missing); nothing was imported.")


def prepare(data: bytes, ctype: str, name: str, payload_sha256: str, now: datetime) -> bundle.Prepared:
    if ctype not in _LABELS:
        raise DocumentInvalid("That kind of document is not supported; import a PDF, PNG, JPEG, GIF, TIFF or WebP.")
    check_complete(data, ctype)
    sha1 = base64.b64encode(hashlib.sha1(data).digest()).decode()  # Attachment.hash is SHA-1 by FHIR's definition
    doc = {
        "resourceType": "DocumentReference",
        "id": bundle.derived_id(payload_sha256, "document"),
        "status": "current",
        "type": {"text": _LABELS[ctype]},
        "date": now.isoformat(),
        "description": name[:200] if name else _LABELS[ctype],
        "content": [{"attachment": {
            "contentType": ctype,
            "size": len(data),
            "hash": sha1,
            "title": name[:200] if name else None,
            "url": f"{ATTACHMENT_URL}{payload_sha256}",
        }}],
    }
    doc["content"][0]["attachment"] = {k: v for k, v in doc["content"][0]["attachment"].items() if v is not None}
    entry = bundle.Entry(1, doc, None)
    return bundle.Prepared("document", [entry], "patient-entered", attachments={1: [(ctype, data)]})


def _our_attachments(resource: dict):
    if resource.get("resourceType") != "DocumentReference" or not isinstance(resource.get("content"), list):
        return
    for content in resource["content"]:
        att = content.get("attachment") if isinstance(content, dict) else None
        if isinstance(att, dict) and isinstance(att.get("url"), str) and att["url"].startswith(ATTACHMENT_URL):
            yield att


def extract_inline(resource: dict) -> list[tuple[str, bytes]]:
    """Attachments a medvault export inlined (``data`` beside our own ``url``) go back into the attachment
    table, and the resource returns to its stored form. Other DocumentReferences are left exactly as given."""
    out = []
    for att in _our_attachments(resource):
        data = att.get("data")
        if not isinstance(data, str):
            continue
        if len(data) > MAX_INLINE * 4 // 3 + 4:
            raise DocumentInvalid("An attached document in the file is larger than medvault imports; "
                                  "nothing was imported.")
        try:
            blob = base64.b64decode(data, validate=True)
        except ValueError:
            raise DocumentInvalid("An attached document in the file is not valid base64; nothing was imported.") \
                from None
        if hashlib.sha256(blob).hexdigest() != att["url"][len(ATTACHMENT_URL):]:
            raise DocumentInvalid("An attached document in the file does not match its recorded hash, so it was "
                                  "altered; nothing was imported.")
        del att["data"]
        out.append((str(att.get("contentType") or "application/octet-stream"), blob))
    return out


def inline_for_export(resource: dict, fetch) -> dict:
    """The resource with each stored attachment's bytes as ``data`` (``fetch(sha256) -> bytes | None``), so a
    Bundle or NDJSON export carries the documents themselves and re-imports them."""
    for att in _our_attachments(resource):
        blob = fetch(att["url"][len(ATTACHMENT_URL):])
        if blob is not None:
            att["data"] = base64.b64encode(blob).decode("ascii")
    return resource

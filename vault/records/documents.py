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


def prepare(data: bytes, ctype: str, name: str, payload_sha256: str, now: datetime):
    from vault.records.importer import _Prepared
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
            "url": f"medvault:attachment/sha256/{payload_sha256}",
        }}],
    }
    doc["content"][0]["attachment"] = {k: v for k, v in doc["content"][0]["attachment"].items() if v is not None}
    entry = bundle.Entry(1, doc, None)
    return _Prepared("document", [entry], "patient-entered", attachments={1: (ctype, data)})

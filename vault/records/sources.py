"""What kind of file is this? Decided from the bytes (magic numbers, first line), with the name's extension only
used to catch a file that claims to be something it is not."""

from __future__ import annotations

from enum import Enum

from vault import jsonsafe
from vault.records.errors import DocumentInvalid, NotFhir, UnsupportedInput


class Kind(str, Enum):
    FHIR_JSON = "fhir-json"
    FHIR_NDJSON = "fhir-ndjson"
    SHC_TEXT = "shc-text"          # shc:/ numeric QR text, one or several chunks, or a compact JWS
    DOCUMENT = "document"


DOCUMENT_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_EXT_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff", ".webp": "image/webp"}
NDJSON_EXTS = (".ndjson", ".jsonl")


def document_type(head: bytes) -> str | None:
    for magic, ctype in DOCUMENT_MAGIC:
        if head.startswith(magic):
            return ctype
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def detect(head: bytes, name: str = "") -> tuple[Kind, str | None]:
    """(kind, document content type). ``head`` is the first few KiB of the file."""
    lower = name.lower()
    ext = lower[lower.rfind("."):] if "." in lower else ""
    ctype = document_type(head)
    if ctype:
        claimed = _EXT_TYPES.get(ext)
        if claimed and claimed != ctype:
            raise DocumentInvalid(f"The file is named as {_label(claimed)} but its content is {_label(ctype)}; "
                                  "nothing was imported.")
        return Kind.DOCUMENT, ctype
    if ext in _EXT_TYPES:
        raise DocumentInvalid(f"The file is named as {_label(_EXT_TYPES[ext])} but is not one; nothing was imported.")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:5].lower() == b"shc:/" or (text[:3] == b"eyJ" and text.count(b".") >= 2):
        return Kind.SHC_TEXT, None
    if text[:8].lower() == b"shlink:/" or b"#shlink:/" in text[:4096] or text[:10].lower() == b"medvault:/":
        raise UnsupportedInput("That is a sharing link, not a file of records: open it with 'medvault open' "
                               "(or Open link in the app); nothing was imported.")
    if text[:1] in (b"{", b"["):
        if ext in NDJSON_EXTS or _looks_ndjson(text):
            return Kind.FHIR_NDJSON, None
        return Kind.FHIR_JSON, None
    if not text:
        raise NotFhir("The file is empty; nothing was imported.")
    raise NotFhir()


def _looks_ndjson(text: bytes) -> bool:
    # A pretty-printed JSON document's first line never parses alone; an NDJSON file's first line always does.
    nl = text.find(b"\n")
    if nl < 0:
        return False
    try:
        first = jsonsafe.loads(text[:nl])
    except (ValueError, RecursionError):
        return False
    return isinstance(first, dict) and text[nl:].lstrip()[:1] == b"{"


def _label(ctype: str) -> str:
    return {"application/pdf": "a PDF"}.get(ctype, "a " + ctype.split("/")[1].upper() + " image")

"""Turning a parsed FHIR document into the resources to store: ids, and references resolved.

Reference rules (decided here, documented in docs/import-formats.md):
- ``urn:uuid:``/``urn:oid:`` and SMART Health Card ``resource:N`` references are bundle-local names: they must
  resolve to an entry of this bundle, or to a fullUrl seen in an earlier import (Synthea's patient bundles point at
  organisations and practitioners in separate files). Otherwise the file is refused (``DanglingReference``).
- Conditional references (``Organization?identifier=system|value``) must match exactly one resource of that type,
  in this bundle or in the vault; none or several refuses the file.
- Resolved references are rewritten to the literal ``Type/id`` so stored records never depend on bundle names.
- Relative (``Patient/123``) and absolute URLs that name no entry point at the provider's server; they are kept as
  given, since a patient's file legitimately mentions records the patient was not given.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import parse_qsl

from vault.records.errors import DanglingReference, FileTooLarge, NotFhir, ResourceInvalid, shown_name
from vault.records.extract import identifiers, path_to, walk

_ID_OK = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")
_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_LOCAL_PREFIXES = ("urn:uuid:", "urn:oid:", "resource:")

# fixed: the same record always gets the same urn in every Bundle medvault writes (exports, shares, IPS)
FULL_URL_NAMESPACE = uuid.UUID("3c1c3f4e-9a57-4c5e-8a3c-6d1f0f6b9e21")
BUNDLE_TYPES = frozenset({"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                          "history", "searchset", "collection"})
# A real patient is about a thousand entries per 4 MB of JSON; this stops only files built to exhaust memory, before
# an Entry (and later a validated model and a database row) is made for each.
MAX_ENTRIES = 100_000


@dataclass(slots=True)
class Entry:
    index: int                  # position in the file, 1-based, for messages
    resource: dict
    full_url: str | None
    text: str | None = None     # search words, collected by the same walk that finds references


@dataclass
class Prepared:
    """What a parser (a FHIR file, health cards, a document) hands to the writer: the resources to store and the
    source's provenance."""
    kind: str
    entries: list[Entry]
    trust: str
    verification: dict | None = None
    cards: list[dict] = field(default_factory=list)
    attachments: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)  # entry index -> documents


FullUrlLookup = Callable[[str], "str | None"]                       # fullUrl -> "Type/id"
IdentifierLookup = Callable[[str, str, "str | None"], "list[str]"]  # (type, value, system) -> ["Type/id", ...]


def entries_of(doc: object) -> tuple[list[Entry], str | None]:
    """The resources a parsed JSON document carries, and the bundle type (None for a single resource)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise NotFhir("The file is JSON but not a FHIR resource (it has no resourceType); nothing was imported.")
    if doc["resourceType"] != "Bundle":
        return [Entry(1, doc, None)], None
    btype = doc.get("type")
    if not isinstance(btype, str) or btype not in BUNDLE_TYPES:  # a list or object is unhashable
        raise ResourceInvalid("The file is a Bundle without a valid type; nothing was imported.")
    raw = doc.get("entry", [])
    if not isinstance(raw, list):
        raise ResourceInvalid("The Bundle's 'entry' is not a list; nothing was imported.")
    if len(raw) > MAX_ENTRIES:
        raise FileTooLarge(f"The Bundle has {len(raw):,} entries, more than the {MAX_ENTRIES:,} medvault imports at "
                           "once; nothing was imported.")
    out: list[Entry] = []
    for i, e in enumerate(raw, 1):
        if not isinstance(e, dict):
            raise ResourceInvalid(f"Entry {i} of the Bundle is not a JSON object; nothing was imported.")
        res = e.get("resource")
        if res is None:
            # transaction DELETEs and searchset 'include' stubs carry no resource: nothing to keep
            continue
        if not isinstance(res, dict):
            raise ResourceInvalid(f"Entry {i} of the Bundle has a resource that is not a JSON object; "
                                  "nothing was imported.")
        if not isinstance(res.get("resourceType"), str):
            raise ResourceInvalid(f"Entry {i} of the Bundle has a resource without a resourceType, so it is not a "
                                  "FHIR resource; nothing was imported.")
        if isinstance(e.get("search"), dict) and e["search"].get("mode") == "outcome":
            continue
        full_url = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None
        out.append(Entry(i, res, full_url))
    return out, btype


def full_url(rtype: str, rid: str) -> str:
    """The ``urn:uuid:`` a stored record is named by in a Bundle medvault writes."""
    return f"urn:uuid:{uuid.uuid5(FULL_URL_NAMESPACE, f'{rtype}/{rid}')}"


def derived_id(payload_sha256: str, position: str) -> str:
    """Stable across re-imports of the same payload, so a card scanned twice dedupes."""
    return "mv-" + hashlib.sha256(f"{payload_sha256}:{position}".encode()).hexdigest()[:40]


def assign_ids(entries: Iterable[Entry], payload_sha256: str) -> None:
    for e in entries:
        rid = e.resource.get("id")
        if isinstance(rid, str) and _ID_OK.match(rid):
            continue
        if rid is not None and not isinstance(rid, str):
            raise ResourceInvalid(f"Entry {e.index}'s id is not a string; nothing was imported.")
        candidate = None
        if e.full_url and e.full_url.startswith("urn:uuid:"):
            candidate = e.full_url[len("urn:uuid:"):]
        elif e.full_url:
            m = _LITERAL.search(e.full_url)
            candidate = m.group(2) if m else None
        e.resource["id"] = candidate if candidate and _ID_OK.match(candidate) else derived_id(
            payload_sha256, e.full_url or str(e.index))


def _match_conditional(rtype: str, query: str, local_ids: dict, lookup_identifier: IdentifierLookup) -> list[str]:
    params = parse_qsl(query, keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier":
        return []
    token = params[0][1]
    system, value = token.split("|", 1) if "|" in token else (None, token)
    hits = {ref for (t, s, v), refs in local_ids.items() for ref in refs
            if t == rtype and v == value and (system is None or s == system)}
    if not hits:
        hits = set(lookup_identifier(rtype, value, system))
    return sorted(hits)


def resolve_references(entries: list[Entry], lookup_fullurl: FullUrlLookup, lookup_identifier: IdentifierLookup,
                       collect: bool = False) -> dict[int, str]:
    """Rewrite resolvable references in place. Unresolvable ones raise ``DanglingReference``, or with
    ``collect`` are returned as {entry index: reason} so the caller can skip just those entries."""
    local: dict[str, str] = {}
    local_ids: dict[tuple[str, str, str], list[str]] = {}
    for e in entries:
        literal = f"{e.resource['resourceType']}/{e.resource['id']}"
        if e.full_url and not e.full_url.startswith("#"):     # "#..." references name contained resources
            local[e.full_url] = literal
        local[literal] = literal
        for system, value in identifiers(e.resource):
            local_ids.setdefault((e.resource["resourceType"], system, value), []).append(literal)
    dangling: dict[int, list[str]] = {}
    known = local.get
    for e in entries:
        rtype = e.resource["resourceType"]
        refs, e.text = walk(e.resource)
        for holder in refs:
            ref = holder["reference"]
            target = known(ref)
            if target is not None:
                if target != ref:
                    holder["reference"] = target
                continue
            if ref.startswith("#"):
                continue
            if ref.startswith(_LOCAL_PREFIXES):
                target = lookup_fullurl(ref)
                if target is None:
                    dangling.setdefault(e.index, []).append(f"{rtype}.{path_to(e.resource, holder)}")
                    continue
            if target is None:
                m = _CONDITIONAL.match(ref)
                if m:
                    hits = _match_conditional(m.group(1), m.group(2), local_ids, lookup_identifier)
                    if len(hits) != 1:
                        dangling.setdefault(e.index, []).append(f"{rtype}.{path_to(e.resource, holder)}")
                        continue
                    target = hits[0]
            if target is not None and target != ref:
                holder["reference"] = target
    if collect:
        return {i: _dangling_sentence(paths, whole=False) for i, paths in dangling.items()}
    if dangling:
        raise DanglingReference(_dangling_sentence([p for paths in dangling.values() for p in paths]))
    return {}


def _dangling_sentence(paths: list[str], whole: bool = True) -> str:
    where = sorted(set(paths))
    # the paths are element names from the file: shown cut short and without control characters
    shown = ", ".join(shown_name(p, 80) for p in where[:3]) + (" and others" if len(where) > 3 else "")
    if not whole:
        return f"It has {len(paths)} reference(s) to records that are neither in the file nor in the vault (at {shown})."
    return (f"The file has {len(paths)} reference(s) to records that are neither in it nor in the vault "
            f"(at {shown}); import the files holding them with it or first. Nothing was imported.")

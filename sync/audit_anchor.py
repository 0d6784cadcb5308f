"""The vault's audit head anchored on the consent network, so that a whole vault folder put back from an older
backup is noticed: locally that is indistinguishable from the vault itself (header, database and state file all
agree), but the chain remembers that a newer state existed.

What goes on chain is a marker, not the head: the n-th anchor of a vault is ``HMAC-SHA256(anchor key, "medvault/
audit-anchor/v1" || n)``, sent with the contract's existing ``anchorBatch(root, 1)``. The anchor key is derived from
the vault's identity seed, which every copy of the vault has and nobody else does, so the markers cannot be linked
to the patient or to each other, cannot be forged by another member, and reveal nothing about the records or how
many changes were made. The vault records in its own audit log which head each marker stood for. A vault whose
database has assigned n markers asks whether marker n + 1 exists: if it does, a newer copy of this vault sent it,
and this one is older. Offline, the check says it could not be made and does not stand in the user's way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.errors import ChainError
from vault import crypto
from vault.errors import VaultRolledBack

ANCHOR = "anchor"                    # the outbox kind
COUNT_META = "anchor_count"          # markers assigned so far (sent or waiting in the outbox)
SEQ_META = "anchor_audit_seq"        # the audit entry that recorded the last one: nothing new since means no anchor
CHECK_TIMEOUT = 3.0                  # an unlock waits no longer than this for an answer

CURRENT, OLDER, NOT_CHECKED, NOT_CONFIGURED = "current", "older", "not checked", "not configured"
OLDER_SENTENCE = ("This vault is older than the state it anchored on the consent network: the vault folder was put "
                  "back from an older backup, or replaced; changes made since (a revoked share, new records) are "
                  "not in it. medvault did not open it and nothing was changed. Put back the newest copy of the "
                  "vault folder; if this older copy is the one you mean to use, open it with --accept-older-backup.")
NOT_CHECKED_SENTENCE = ("The consent network could not be reached, so this vault could not be checked against the "
                        "state it last anchored there.")


@dataclass(frozen=True)
class AnchorCheck:
    status: str
    sentence: str = ""


def marker(vault: Any, number: int) -> bytes:
    key = crypto.subkey(vault.identity_keys.ed25519_seed, "audit-anchor")
    return crypto.mac(key, b"medvault/audit-anchor/v1" + number.to_bytes(8, "big"))


def _meta_int(conn: Any, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _set_meta(conn: Any, key: str, value: int) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (key, str(value)))


def queue(vault: Any, domain: Any) -> int | None:
    """Queue an anchor of the current audit head in the outbox, unless nothing was audited since the last one or
    the last one still waits to be sent. Returns the outbox entry, or None."""
    from sync.outbox import _domain_json
    from vault.outbox_store import FAILED, PENDING, SqlOutboxStore
    with vault.transaction() as conn:
        head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None or int(head[0]) == _meta_int(conn, SEQ_META):
            return None
        last = conn.execute("SELECT state FROM chain_outbox WHERE kind = ? ORDER BY id DESC LIMIT 1",
                            (ANCHOR,)).fetchone()
        if last is not None and last[0] == PENDING:
            return None
        number = _meta_int(conn, COUNT_META)
        if last is None or last[0] != FAILED:     # a refused marker's number is used again: no gaps to probe past
            number += 1
        payload = {"domain": _domain_json(domain), "root": "0x" + marker(vault, number).hex(), "count": 1}
        entry = SqlOutboxStore(conn, own_transactions=False).add(ANCHOR, payload, int(vault.now().timestamp()))
        _set_meta(conn, COUNT_META, number)
        seq = vault.audit("chain", conn=conn, action="anchor", anchor=number, head=bytes(head[1]).hex(),
                          outbox=entry)
        _set_meta(conn, SEQ_META, seq)
    return entry


def check(vault: Any, registry: Any = None, timeout: float = CHECK_TIMEOUT) -> AnchorCheck:
    """Whether a newer copy of this vault anchored a state on the consent network than this one knows of."""
    from sync import consent_service
    try:
        if registry is None:
            settings = consent_service.load_settings(vault)
            if settings is None:
                return AnchorCheck(NOT_CONFIGURED)
            registry = consent_service.connect(settings, timeout=timeout)
        with vault.read() as conn:
            number = _meta_int(conn, COUNT_META)
        if registry.anchored_at(marker(vault, number + 1)):
            return AnchorCheck(OLDER, OLDER_SENTENCE)
    except ChainError:
        return AnchorCheck(NOT_CHECKED, NOT_CHECKED_SENTENCE)
    return AnchorCheck(CURRENT)


def accept_older(vault: Any, timeout: float = CHECK_TIMEOUT) -> int:
    """The user chose this older copy: count the markers newer copies sent, so the check passes from now on, and
    put that choice in the audit log. Returns how many newer anchors were found."""
    from sync import consent_service
    settings = consent_service.load_settings(vault)
    registry = consent_service.connect(settings, timeout=timeout)
    with vault.read() as conn:
        known = number = _meta_int(conn, COUNT_META)
    while registry.anchored_at(marker(vault, number + 1)):
        number += 1
    with vault.transaction() as conn:
        _set_meta(conn, COUNT_META, number)
        vault.audit("restore", conn=conn, action="accepted_older_than_anchor", newer_anchors=number - known)
    return number - known


def refuse_if_older(vault: Any, *, accept: bool) -> AnchorCheck:
    """At unlock: close the vault and raise when a newer copy anchored a state (unless ``accept``); otherwise the
    check's outcome, for the caller to mention when it could not be made."""
    try:
        found = check(vault)
        if found.status == OLDER:
            if not accept:
                raise VaultRolledBack(OLDER_SENTENCE)
            accept_older(vault)
    except BaseException:
        vault.close()
        raise
    return found

"""``vault.state``: the audit head the database had at its last commit, authenticated, kept beside the database.

The database cannot tell on its own that it is an older copy of itself: every page and audit entry of an old copy
is genuine. So after every commit that appends to the audit log, the new head (sequence number and hash) is
written here with a MAC under a key kept inside the encrypted database. At unlock a database whose audit log does
not reach the saved head, or reaches it by another path, is refused. The file is written after the commit, so a
crash in between leaves it one step behind the database, which is allowed and settled by the next commit. Its own
deletion is caught by the header: from format 2 a vault without this file is refused. What the file cannot catch
is the whole folder put back from an older backup (header, database and this file together); the audit head
anchored on the consent network can (``sync/audit_anchor.py``). The byte format is in ``docs/vault-format.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vault import crypto, jsonsafe
from vault.errors import VaultRolledBack
from vault.fsutil import NotARegularFile, atomic_write, read_private

STATE_NAME = "vault.state"
STATE_FORMAT = 1
MAX_STATE_BYTES = 4096

MISSING = ("This vault's state file (vault.state) is missing, so medvault cannot tell whether its database is the "
           "newest one; it did not open the vault and nothing was changed. Put back the newest copy of the whole "
           "vault folder; if this copy is the one you mean to use (a backup you restored yourself), open it with "
           "--accept-older-backup.")
EDITED = ("This vault's state file (vault.state) is damaged or was edited, so medvault cannot tell whether its "
          "database is the newest one; it did not open the vault and nothing was changed. Put back the newest copy "
          "of the whole vault folder; if this copy is the one you mean to use, open it with --accept-older-backup.")
FORKED = ("This vault's database does not match its last saved state: it may have been replaced with a different "
          "copy, so medvault did not open it and nothing was changed. Put back the newest copy of the whole vault "
          "folder; if this copy is the one you mean to use, open it with --accept-older-backup.")


@dataclass(frozen=True)
class SavedState:
    vault_id: str
    audit_seq: int
    audit_hash: bytes


def state_key(audit_key: bytes) -> bytes:
    return crypto.subkey(audit_key, "vault-state")


def _fields(state: SavedState) -> dict:
    return {"format": STATE_FORMAT, "vault_id": state.vault_id, "audit_seq": state.audit_seq,
            "audit_hash": state.audit_hash.hex()}


def _mac(key: bytes, fields: dict) -> str:
    return crypto.mac(key, jsonsafe.canonical(fields)).hex()


def to_bytes(state: SavedState, key: bytes) -> bytes:
    fields = _fields(state)
    return json.dumps({**fields, "mac": _mac(key, fields)}, sort_keys=True).encode("ascii") + b"\n"


def write_state(folder: Path, state: SavedState, key: bytes) -> None:
    atomic_write(Path(folder) / STATE_NAME, to_bytes(state, key))


def read_state(folder: Path, key: bytes, vault_id: str) -> SavedState | None:
    """The saved state, or None when there is no file; VaultRolledBack when it is not one this vault wrote."""
    try:
        raw = read_private(Path(folder) / STATE_NAME, MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except (NotARegularFile, OSError):
        raise VaultRolledBack(EDITED) from None
    try:
        body = jsonsafe.loads(raw.decode("ascii"), max_depth=4)
        state = SavedState(str(body["vault_id"]), int(body["audit_seq"]), bytes.fromhex(body["audit_hash"]))
        mac = str(body["mac"])
        valid = (len(raw) <= MAX_STATE_BYTES and body.get("format") == STATE_FORMAT
                 and crypto.mac_equal(_mac(key, _fields(state)).encode(), mac.encode()))
    except (jsonsafe.JsonRefused, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        valid = False
    if not valid or state.vault_id != vault_id:
        raise VaultRolledBack(EDITED)
    return state

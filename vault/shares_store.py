"""The vault's bookkeeping of the shares it made, and the embedded backend's encrypted files.

Both live in the SQLCipher database: a share's JWE file is ciphertext already, but keeping it inside the vault
means no loose file in the user's folders names a share (a CID is a stable identifier of what was shared), and
a backup of the vault carries its shares with it. No network code here; ``sync.shares`` drives it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

ACTIVE = "active"
REVOKED = "revoked"
EXPIRED = "expired"  # never stored: derived from ``expires_at`` when listing
BEARER = "bearer"


def create_tables(conn: Any) -> None:
    """Migration step ``shares-v1``."""
    conn.execute("CREATE TABLE share_blobs (cid TEXT PRIMARY KEY, data BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE shares (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER, "
        "kind TEXT NOT NULL CHECK (kind IN ('open', 'directed')), recipient TEXT NOT NULL, "
        "recipient_name TEXT, label TEXT, cid TEXT NOT NULL, backend TEXT NOT NULL, url TEXT NOT NULL, "
        "consent_id TEXT NOT NULL, resources INTEGER NOT NULL, "
        "state TEXT NOT NULL CHECK (state IN ('active', 'revoked')), revoked_at INTEGER)")
    conn.execute("CREATE INDEX shares_cid ON shares (cid)")


def add_link_and_what(conn: Any) -> None:
    """Migration step ``shares-v2``: the link itself (so its QR can be shown again) and what the share holds, in
    words. Both stay inside the encrypted database like every record; a revoked share's link is wiped."""
    conn.execute("ALTER TABLE shares ADD COLUMN link TEXT")
    conn.execute("ALTER TABLE shares ADD COLUMN what TEXT")


@dataclass(frozen=True)
class ShareRow:
    id: str
    created_at: int
    expires_at: int | None
    kind: str
    recipient: str  # a did:key, or "bearer" for an open link
    recipient_name: str | None
    label: str | None
    cid: str
    backend: str
    url: str
    consent_id: str
    resources: int
    state: str
    revoked_at: int | None
    link: str | None = None     # None for shares made before links were kept, and once revoked
    what: str | None = None     # "Your health summary", "Conditions, Medications"…

    def state_at(self, now: int) -> str:
        if self.state == ACTIVE and self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        return self.state

    def as_json(self, now: int) -> dict:
        """The row for listings: the link (a key to the records) only says whether it is kept."""
        out = asdict(self)
        out["state"] = self.state_at(now)
        out["has_link"] = out.pop("link") is not None
        return out


_COLUMNS = ("id, created_at, expires_at, kind, recipient, recipient_name, label, cid, backend, url, consent_id, "
            "resources, state, revoked_at, link, what")


def insert(conn: Any, row: ShareRow) -> None:
    values = asdict(row)
    names = [c.strip() for c in _COLUMNS.split(",")]
    conn.execute(f"INSERT INTO shares ({_COLUMNS}) VALUES ({', '.join('?' * len(names))})",
                 tuple(values[n] for n in names))


def get(conn: Any, share_id: str) -> ShareRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM shares WHERE id = ?", (share_id,)).fetchone()
    return ShareRow(*row) if row else None


def all_rows(conn: Any) -> list[ShareRow]:
    return [ShareRow(*r) for r in conn.execute(f"SELECT {_COLUMNS} FROM shares ORDER BY created_at, id")]


def mark_revoked(conn: Any, share_id: str, at: int) -> None:
    # the link opens nothing any more; keeping it would only keep a key to copies someone may hold
    conn.execute("UPDATE shares SET state = 'revoked', revoked_at = ?, link = NULL WHERE id = ? AND state = 'active'",
                 (at, share_id))


def link(conn: Any, share_id: str) -> str | None:
    row = conn.execute("SELECT link FROM shares WHERE id = ?", (share_id,)).fetchone()
    return row[0] if row else None


def servable(conn: Any, cid: str, now: int) -> bool:
    """Whether an active, unexpired share uses ``cid``: the embedded gateway serves nothing else."""
    row = conn.execute("SELECT 1 FROM shares WHERE cid = ? AND state = 'active' AND "
                       "(expires_at IS NULL OR expires_at > ?) LIMIT 1", (cid, now)).fetchone()
    return row is not None


def put_blob(conn: Any, cid: str, data: bytes) -> None:
    conn.execute("INSERT OR REPLACE INTO share_blobs (cid, data) VALUES (?, ?)", (cid, bytes(data)))


def delete_blob(conn: Any, cid: str) -> None:
    conn.execute("DELETE FROM share_blobs WHERE cid = ?", (cid,))


class VaultBlobStorage:
    """``sync.ipfs_backend.BlobStorage`` inside the vault's database (one transaction per call).

    Creating and revoking a share do not go through it: they write and delete the file in the transaction that
    records the share, so a crash never leaves a share without its file or a file without its share."""

    def __init__(self, vault: Any) -> None:
        self.vault = vault

    def put(self, cid: str, data: bytes) -> None:
        with self.vault.transaction() as conn:
            put_blob(conn, cid, data)

    def get(self, cid: str) -> bytes | None:
        with self.vault.read() as conn:
            row = conn.execute("SELECT data FROM share_blobs WHERE cid = ?", (cid,)).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, cid: str) -> None:
        with self.vault.transaction() as conn:
            delete_blob(conn, cid)

    def list(self) -> Iterable[str]:
        with self.vault.read() as conn:
            return [r[0] for r in conn.execute("SELECT cid FROM share_blobs ORDER BY cid")]

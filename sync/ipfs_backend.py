"""Where a share's encrypted file lives: one interface, two backends.

``ContentStore`` is what share creation and revocation call. The embedded default
(:class:`EmbeddedContentStore`) keeps files in a :class:`BlobStorage` and lets ``sync.gateway`` serve them;
the real-node backend lives in ``sync.ipfs_node`` (the only module that imports the IPFS client library).

Every backend names files by the CID ``sync.cid`` computes under the share profile, and every read is checked
against that CID, so a store can lose a file but never hand back a different one unnoticed.
The stored bytes are JWE ciphertext, not PHI in clear; a vault-backed storage (SQLCipher) can replace the
directory one without touching anything else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

from sync.cid import MAX_SHARE_BYTES, SHARE_PROFILE, ImportProfile, cid_matches, compute_cid, parse_cid
from sync.errors import CidMismatch, ShareFileTooLarge, ContentUnavailable, InvalidCid

__all__ = [
    "ContentStore",
    "BlobStorage",
    "DirectoryBlobStorage",
    "EmbeddedContentStore",
    "check_cid",
]


@runtime_checkable
class ContentStore(Protocol):
    """A place that holds share files by CID.

    ``add`` stores and pins; ``unpin`` makes this store stop keeping and serving the file, which cannot
    recall copies a receiver already fetched. Implementations bound every call by a timeout and raise
    ``sync.errors`` types only.
    """

    def add(self, data: bytes) -> str: ...

    def pin(self, cid: str) -> None: ...

    def unpin(self, cid: str) -> None: ...

    def cat(self, cid: str, max_bytes: int = MAX_SHARE_BYTES) -> bytes: ...

    def gateway_url(self, cid: str) -> str: ...


@runtime_checkable
class BlobStorage(Protocol):
    """Bytes by CID. The vault supplies a SQLCipher-backed one; :class:`DirectoryBlobStorage` is the file one."""

    def put(self, cid: str, data: bytes) -> None: ...

    def get(self, cid: str) -> bytes | None: ...

    def delete(self, cid: str) -> None: ...

    def list(self) -> Iterable[str]: ...


def check_cid(cid: str) -> str:
    """``cid`` if it is a CID medvault accepts, else :class:`InvalidCid`."""
    try:
        parse_cid(cid)
    except ValueError as exc:
        raise InvalidCid() from exc
    return cid


class DirectoryBlobStorage:
    """One file per CID in a directory, written atomically (0600 temp file, fsync, rename, fsync dir).

    The file name is the CID itself, validated first, so no caller-supplied text ever becomes a path.
    """

    _TMP_PREFIX = ".tmp-"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        return self._root / check_cid(cid)

    def _sync_dir(self) -> None:
        # The rename or unlink is only durable once the directory entry itself reaches the disk.
        if os.name == "nt":
            return  # Windows cannot open a directory for fsync; NTFS journals the rename itself
        fd = os.open(self._root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, cid: str, data: bytes) -> None:
        target = self._path(cid)
        fd, tmp = tempfile.mkstemp(prefix=self._TMP_PREFIX, dir=self._root)  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self._sync_dir()

    def get(self, cid: str) -> bytes | None:
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            return None

    def size(self, cid: str) -> int | None:
        try:
            return self._path(cid).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, cid: str) -> None:
        try:
            self._path(cid).unlink()
        except FileNotFoundError:
            return
        self._sync_dir()

    def list(self) -> list[str]:
        names = []
        for entry in os.scandir(self._root):
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith(self._TMP_PREFIX):
                try:
                    parse_cid(entry.name)
                except ValueError:
                    continue
                names.append(entry.name)
        return sorted(names)


class EmbeddedContentStore:
    """The default backend: files kept locally and served by ``sync.gateway``; no daemon involved.

    Holding a file is pinning it here: ``unpin`` deletes it, so the built-in gateway answers 404 from then on.
    ``gateway_base`` is the gateway's base URL (``http://127.0.0.1:8421``); it may be set after the gateway
    has bound its port.
    """

    def __init__(self, storage: BlobStorage, gateway_base: str | None = None, *,
                 profile: ImportProfile = SHARE_PROFILE, max_bytes: int = MAX_SHARE_BYTES) -> None:
        self.storage = storage
        self.gateway_base = gateway_base
        self.profile = profile
        self.max_bytes = max_bytes

    def cid_for(self, data: bytes) -> str:
        """The CID ``add`` would give ``data``, without storing it (the caller stores it in its own transaction)."""
        if len(data) > self.max_bytes:
            raise ShareFileTooLarge()
        return compute_cid(data, self.profile)

    def add(self, data: bytes) -> str:
        cid = self.cid_for(data)
        self.storage.put(cid, bytes(data))
        return cid

    def pin(self, cid: str) -> None:
        # Nothing fetches from elsewhere, so pinning can only confirm the file is already here.
        if self.storage.get(check_cid(cid)) is None:
            raise ContentUnavailable()

    def unpin(self, cid: str) -> None:
        self.storage.delete(check_cid(cid))

    def cat(self, cid: str, max_bytes: int = MAX_SHARE_BYTES) -> bytes:
        data = self.storage.get(check_cid(cid))
        if data is None:
            raise ContentUnavailable()
        if len(data) > max_bytes:
            raise ShareFileTooLarge()
        if not cid_matches(data, cid, (self.profile,)):
            raise CidMismatch()
        return data

    def gateway_url(self, cid: str) -> str:
        if not self.gateway_base:
            raise RuntimeError("the embedded gateway has no URL yet; start it before building links")
        return f"{self.gateway_base.rstrip('/')}/ipfs/{check_cid(cid)}"

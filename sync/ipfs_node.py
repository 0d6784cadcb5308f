"""A real IPFS node (Kubo or js-ipfs) as a :class:`sync.ipfs_backend.ContentStore`, over its HTTP RPC API.

This is the only module that imports ``ipfshttpclient``, so the client library can be replaced here alone.

``ipfshttpclient.connect()`` refuses any daemon from 0.8 on by a version check, which every maintained node
fails; the :class:`ipfshttpclient.Client` constructor skips that check and is what is used. The calls made
(``add``, ``pin/add``, ``pin/rm``, ``cat``, ``version``) are plain RPC endpoints whose shape has not changed
since, and the tests against a real js-ipfs node exercise each of them.

Every call carries a timeout: ``cat`` of a CID no peer has never returns on js-ipfs. Failures are turned into
``sync.errors`` types: a node that is down or silent is :class:`StorageNodeUnavailable`; content that does not
arrive in time, or that the node does not have, is :class:`ContentUnavailable`.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
import warnings

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_errors

from sync.cid import MAX_SHARE_BYTES, SHARE_PROFILE, ImportProfile, cid_matches, compute_cid, is_valid_cid
from sync.errors import CidMismatch, ContentUnavailable, ShareFileTooLarge, StorageNodeUnavailable, SyncError
from sync.ipfs_backend import check_cid

__all__ = ["IpfsNodeStore", "DEFAULT_API", "DEFAULT_TIMEOUT", "api_multiaddr"]

# ipfshttpclient 0.7 passes urllib3 a long-deprecated argument on every new connection pool; the warning is
# about the library, not our use, and would otherwise surface in every command that talks to a node.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)

# What ipfshttpclient raises, untranslated, when an answer is JSON but not shaped like the node's (a web server
# or proxy at the configured address, not a node).
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)

DEFAULT_API = "/ip4/127.0.0.1/tcp/5001/http"
DEFAULT_TIMEOUT = 30.0


class IpfsNodeStore:
    """Share files on an IPFS node whose RPC API is at ``api``: a multiaddr (``/ip4/127.0.0.1/tcp/5001/http``) or
    an ``http://127.0.0.1:5001`` URL.

    ``gateway_base`` is the HTTP gateway receivers will fetch from (``http://127.0.0.1:8080`` or a public
    gateway). ``timeout`` (seconds) bounds every request, connection included.
    """

    def __init__(self, api: str = DEFAULT_API, gateway_base: str = "http://127.0.0.1:8080", *,
                 timeout: float = DEFAULT_TIMEOUT, profile: ImportProfile = SHARE_PROFILE,
                 max_bytes: int = MAX_SHARE_BYTES) -> None:
        self.gateway_base = gateway_base
        self.timeout = timeout
        self.profile = profile
        self.max_bytes = max_bytes
        try:
            # The constructor, unlike connect(), does not talk to the daemon or check its version.
            self._client = ipfshttpclient.Client(api_multiaddr(api), timeout=timeout)
        except (ipfs_errors.AddressError, ValueError) as exc:
            raise StorageNodeUnavailable("The IPFS node address in settings is not valid.") from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "IpfsNodeStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add_options(self) -> dict[str, object]:
        # Stated explicitly, never left to the node's defaults, so the node's DAG is the one
        # sync.cid computes; cid-base matters because js-ipfs prints CIDv1 in base58 otherwise.
        return {
            "cid-version": self.profile.cid_version,
            "raw-leaves": "true" if self.profile.raw_leaves else "false",
            "chunker": self.profile.chunker,
            "trickle": "false",  # the balanced layout, which sync.cid builds
            "cid-base": "base32" if self.profile.cid_version == 1 else "base58btc",
            "pin": "true",
            "hash": "sha2-256",
        }

    def version(self) -> str:
        """The node's version string; also a cheap liveness check."""
        try:
            answer = self._client.version(timeout=self.timeout)
        except ipfs_errors.Error as exc:
            raise _node_error(exc) from exc
        except _MALFORMED as exc:
            raise _unreadable() from exc
        version = _field(answer, "Version")
        if not isinstance(version, str):
            raise _unreadable()
        return version

    def add(self, data: bytes) -> str:
        if len(data) > self.max_bytes:
            raise ShareFileTooLarge()
        expected = compute_cid(data, self.profile)
        try:
            got = self._client.add_bytes(bytes(data), opts=self._add_options(), timeout=self.timeout)
        except ipfs_errors.Error as exc:
            raise _node_error(exc) from exc
        except _MALFORMED as exc:
            raise _unreadable() from exc
        if not isinstance(got, str) or not is_valid_cid(got):
            raise _unreadable()
        if got != expected:
            # Leave nothing pinned under a name no link will ever carry.
            try:
                self._client.pin.rm(got, timeout=self.timeout)
            except ipfs_errors.Error:
                pass
            raise CidMismatch("The IPFS node stored the file under an unexpected fingerprint, so it was not shared.")
        return got

    def pin(self, cid: str) -> None:
        try:
            answer = self._client.pin.add(check_cid(cid), opts=self._pin_options(cid), timeout=self.timeout)
        except ipfs_errors.TimeoutError as exc:
            # Pinning a CID the node does not hold makes it go looking for it.
            raise ContentUnavailable() from exc
        except ipfs_errors.Error as exc:
            raise _node_error(exc) from exc
        except _MALFORMED as exc:
            raise _unreadable() from exc
        _require_pins(answer, cid)

    def unpin(self, cid: str) -> None:
        try:
            answer = self._client.pin.rm(check_cid(cid), opts=self._pin_options(cid), timeout=self.timeout)
        except ipfs_errors.ErrorResponse as exc:
            if "not pinned" in str(exc).lower():
                return  # revoking twice is not an error
            raise _node_error(exc) from exc
        except ipfs_errors.Error as exc:
            raise _node_error(exc) from exc
        except _MALFORMED as exc:
            raise _unreadable() from exc
        _require_pins(answer, cid)

    @staticmethod
    def _pin_options(cid: str) -> dict[str, str]:
        # Without it js-ipfs echoes CIDv1 in base58btc, and the answer could not be compared with what was asked.
        return {"cid-base": "base32"} if cid.startswith("b") else {}

    def cat(self, cid: str, max_bytes: int = MAX_SHARE_BYTES) -> bytes:
        check_cid(cid)
        try:
            # Streamed and counted here as well: the length option is the node's promise, not ours.
            chunks = self._client.cat(cid, length=max_bytes + 1, stream=True, timeout=self.timeout)
        except ipfs_errors.TimeoutError as exc:
            raise ContentUnavailable("The shared file did not arrive in time.") from exc
        except ipfs_errors.Error as exc:
            raise _node_error(exc) from exc
        received = bytearray()
        deadline = time.monotonic() + self.timeout
        try:
            for chunk in chunks:
                received += chunk
                if len(received) > max_bytes:
                    raise ShareFileTooLarge()
                # The socket timeout is per read; a node trickling bytes must not hold us forever.
                if time.monotonic() > deadline:
                    raise ContentUnavailable("The shared file did not arrive in time.")
        except SyncError:
            raise
        except Exception as exc:
            # Failures after the headers (a stall, a cut connection) come from the HTTP library underneath,
            # which ipfshttpclient does not translate once the body is streaming.
            raise ContentUnavailable("The shared file did not arrive completely.") from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        data = bytes(received)
        if not cid_matches(data, cid):
            raise CidMismatch()
        return data

    def gateway_url(self, cid: str) -> str:
        return f"{self.gateway_base.rstrip('/')}/ipfs/{check_cid(cid)}"


def api_multiaddr(api: str) -> str:
    """``api`` as the multiaddr the client takes; also accepts ``http(s)://host:port``, the form users type."""
    if not api.startswith(("http://", "https://")):
        return api
    parts = urllib.parse.urlsplit(api)
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an IPFS API URL is scheme, host and port only")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = ipaddress.ip_address(parts.hostname)
        host = f"/ip{ip.version}/{ip}"
    except ValueError:
        host = f"/dns/{parts.hostname}"
    return f"{host}/tcp/{port}/{parts.scheme}"


def _unreadable() -> StorageNodeUnavailable:
    return StorageNodeUnavailable("The IPFS node gave an answer that could not be understood.")


def _field(answer: object, name: str) -> object:
    try:
        return answer[name]  # type: ignore[index]
    except (*_MALFORMED, IndexError):
        return None


def _require_pins(answer: object, cid: str) -> None:
    """A pin change counts only if the node names the CID in its answer; anything else at that URL is not a node."""
    pins = _field(answer, "Pins")
    if not isinstance(pins, list) or cid not in pins:
        raise _unreadable()


def _node_error(exc: Exception) -> Exception:
    if isinstance(exc, ipfs_errors.TimeoutError):
        return StorageNodeUnavailable("The IPFS node did not answer in time.")
    if isinstance(exc, ipfs_errors.ConnectionError):
        return StorageNodeUnavailable()
    if isinstance(exc, ipfs_errors.ErrorResponse):
        return StorageNodeUnavailable("The IPFS node refused the request.")
    return StorageNodeUnavailable("The IPFS node gave an answer that could not be understood.")

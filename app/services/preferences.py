"""The patient's choices that live in the vault: when it locks itself, whether shares are served while locked,
local-network sharing; and a test of an IPFS node before it is used.

Each choice is a vault setting (``vault.set_setting``: inside the encrypted database, audited by its key only,
never holding anything about the person). What only changes how the window looks stays in QSettings instead.
No Qt here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sync.errors import SyncError

AUTOLOCK_SETTING = "app.autolock_minutes"
SERVE_LOCKED_SETTING = "app.serve_when_locked"
DEFAULT_AUTOLOCK_MINUTES = 5
AUTOLOCK_CHOICES = (1, 2, 5, 10, 15, 30, 60, 0)     # minutes; 0: never
DEFAULT_PORT = 8421
PROBE_TIMEOUT = 20.0
# A documentation-only address (TEST-NET-1): connecting a UDP socket to it sends nothing, but makes the system
# pick the interface it would route through, whose address is this computer's on the local network.
_ROUTE_PROBE = ("192.0.2.1", 9)


@dataclass(frozen=True)
class Preferences:
    autolock_minutes: int              # 0: never
    serve_when_locked: bool
    gateway: str                       # the address receivers fetch shares kept in the vault from
    local_network: bool                # that address reaches beyond this computer
    backend: dict                      # {"kind": "embedded"} or {"kind": "ipfs", "api", "gateway"}


def load(vault: Any) -> Preferences:
    from app.services.sharing import local_only
    from sync import shares
    gateway = shares.gateway_setting(vault)
    return Preferences(autolock_minutes(vault), serve_when_locked(vault), gateway, not local_only(gateway),
                       shares.backend_setting(vault))


def autolock_minutes(vault: Any) -> int:
    raw = vault.setting(AUTOLOCK_SETTING)
    try:
        minutes = int(raw) if raw is not None else DEFAULT_AUTOLOCK_MINUTES
    except ValueError:
        return DEFAULT_AUTOLOCK_MINUTES
    return minutes if minutes in AUTOLOCK_CHOICES else DEFAULT_AUTOLOCK_MINUTES


def set_autolock_minutes(vault: Any, minutes: int) -> None:
    if minutes not in AUTOLOCK_CHOICES:
        raise ValueError(f"auto-lock after {minutes} minutes is not offered")
    vault.set_setting(AUTOLOCK_SETTING, str(minutes))


def serve_when_locked(vault: Any) -> bool:
    """Whether locking the app keeps serving the shares kept in the vault (the default: a share handed over in
    the consulting room still opens after the patient walks away and the laptop locks)."""
    return vault.setting(SERVE_LOCKED_SETTING) != "no"


def set_serve_when_locked(vault: Any, serve: bool) -> None:
    vault.set_setting(SERVE_LOCKED_SETTING, "yes" if serve else "no")


def lan_address() -> str | None:
    """This computer's address on the local network, or None when it has none (no network, or loopback only)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE)
            address = probe.getsockname()[0]
    except OSError:
        return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_unspecified else address


class NoLocalNetwork(SyncError):
    default_message = ("This computer is not on a local network right now, so shares cannot be served to it; "
                       "connect to the network and try again.")


def set_local_network(vault: Any, on: bool, address: str | None = None) -> str:
    """Serve shares kept in the vault to the local network too (``on``), or to this computer only; returns the
    new address receivers fetch from. Links already handed out keep the address they were made with."""
    from sync import shares
    port = urlsplit(shares.gateway_setting(vault)).port or DEFAULT_PORT
    host = "127.0.0.1"
    if on:
        host = address or lan_address() or ""
        if not host:
            raise NoLocalNetwork()
    base = f"http://{host}:{port}"
    shares.set_gateway_setting(vault, base)
    return base


@dataclass(frozen=True)
class IpfsProbe:
    version: str
    seconds: float

    def sentence(self) -> str:
        return (f"The IPFS node answered (version {self.version}) and served a test file back through its gateway "
                f"in {self.seconds:.1f} s.")


def test_ipfs(api: str, gateway: str, *, timeout: float = PROBE_TIMEOUT) -> IpfsProbe:
    """Add a small random probe file through the node at ``api`` and fetch it back through ``gateway``, the way a
    receiver would; the probe is unpinned afterwards. Failures are typed errors carrying one sentence."""
    from app.services.sharing import check_gateway
    from sync import fetch
    from sync.errors import ContentUnavailable
    from sync.ipfs_node import IpfsNodeStore
    check_gateway(gateway)
    probe = b"medvault gateway probe " + os.urandom(16).hex().encode("ascii")
    started = time.monotonic()
    try:
        node = IpfsNodeStore(api, gateway.rstrip("/"), timeout=timeout)
    except ValueError:
        from sync.errors import StorageNodeUnavailable
        raise StorageNodeUnavailable("The IPFS node's API address is not valid: give it as "
                                     "http://host:port or as a multiaddr.") from None
    with node:
        version = node.version()
        cid = node.add(probe)
        try:
            answer = fetch.get(node.gateway_url(cid), policy=fetch.FetchPolicy(
                allow_local_http=True, timeout=timeout, max_bytes=4096))
        except SyncError:
            answer = None
        finally:
            node.unpin(cid)
    if answer is None or answer.body != probe:
        raise ContentUnavailable(f"The IPFS node took the test file, but the gateway at {gateway} did not give it "
                                 "back; check the gateway address.")
    return IpfsProbe(version, time.monotonic() - started)

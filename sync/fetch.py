"""The bounded HTTP client the receiver uses to fetch shares.

Everything a share link points at is chosen by whoever made the link, so every fetch is treated as hostile:

- https, and plain http only to loopback or private-LAN addresses. Any address on this machine or the local
  network, whatever the scheme, only when the caller allows it (the built-in gateway serves a clinic on the same
  Wi-Fi): a link must not turn the receiver into a probe of, or a POST to, the machines around it. The host is
  resolved once, checked, and the connection made to that checked address, so a name cannot resolve to a public
  address for the check and to a LAN address for the fetch.
- one deadline for the whole exchange (name lookup, connection, TLS handshake, status line, headers and body), not
  just per socket read, so a server dribbling a byte every few seconds is cut off too; a caller fetching several
  files for one share hands the same deadline to each;
- a byte limit enforced while streaming: a 2 GB answer is stopped after ``max_bytes`` + 1 bytes, never read whole;
- redirects only to the same scheme, host and port, at most a few.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from vault import jsonsafe
from sync.errors import FetchFailed, FetchRefused, FetchTimeout, FetchTooLarge, LinkInactive
from sync.links import fetch_address_ok

DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "medvault-receiver/1"


@dataclass(frozen=True)
class FetchPolicy:
    allow_local_http: bool = False
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = MAX_REDIRECTS


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)

    def json(self) -> object:
        try:
            return jsonsafe.loads(self.body)
        except ValueError as exc:
            raise FetchFailed("The server's answer was not valid JSON.") from exc


def add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _is_local(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # is_private covers RFC 1918, ULA fc00::/7, link-local and loopback; shared CGNAT space is not a LAN.
    # 0.0.0.0 and :: reach this machine when connected to.
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def _resolve(host: str, port: int, deadline: float) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    # getaddrinfo takes no timeout (and setting one would change process-wide socket state), so the lookup runs on
    # a helper thread that is simply abandoned at the deadline; it ends when the system resolver gives up.
    found: dict[str, object] = {}

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc

    worker = threading.Thread(target=lookup, name="medvault-name-lookup", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise FetchTimeout("The name of the server holding the share could not be looked up in time.")
    if "error" in found:
        raise FetchFailed("The server holding the share could not be found; check the network.") from found["error"]
    return sorted({info[4][0] for info in found["infos"]})  # type: ignore[union-attr]


def _check_target(url: str, policy: FetchPolicy, deadline: float) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        raise FetchRefused("The share's address has no server name.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused("The share's address has an invalid port.") from exc
    if parts.username or parts.password:
        raise FetchRefused("The share's address contains a user name or password, which medvault refuses.")
    if scheme not in ("https", "http"):
        raise FetchRefused("medvault only fetches shares over https.")
    if scheme == "http" and not policy.allow_local_http:
        raise FetchRefused("This share uses plain http; medvault only allows that on the local network when "
                           "you turn it on.")
    addresses = _resolve(host, port, deadline)
    if not addresses:
        raise FetchFailed("The server holding the share could not be found; check the network.")
    local = [a for a in addresses if _is_local(a)]
    if scheme == "http" and len(local) != len(addresses):
        raise FetchRefused("This share uses plain http to a server outside your local network, which medvault "
                           "refuses.")
    if local and not policy.allow_local_http:
        # The same rule for https: a link must not make the receiver reach into this machine or its network.
        raise FetchRefused("This share's address points to this computer or your local network; medvault only "
                           "fetches from there when you turn it on.")
    return scheme, host, port, addresses[0]


def _read_bounded(sock: socket.socket | None, resp: http.client.HTTPResponse, max_bytes: int,
                  deadline: float) -> bytes:
    length = (resp.getheader("Content-Length") or "").strip(" \t")
    # only ASCII digits: str.isdigit() also passes "²" and str.strip() drops control characters, neither of which
    # int() accepts; a number longer than 18 digits is over any bound (and int() refuses one of 4,300); anything
    # else is ignored here, since the read below is bounded anyway
    if length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > max_bytes):
        raise FetchTooLarge()
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout()
        if sock is not None:
            # Each read may block only until the overall deadline, not a fresh full timeout.
            sock.settimeout(remaining)
        chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise FetchTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class _Watchdog:
    """Shuts the exchange's socket down when the deadline passes.

    Socket timeouts bound each read, not the exchange: http.client reads the status line and headers a line at a
    time, and the TLS handshake reads record by record, so a server sending a byte just inside every timeout could
    hold a fetch for hours. Shutting the socket down ends whatever read is blocked at that moment.
    """

    def __init__(self, deadline: float) -> None:
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.expired.is_set():
                _shutdown(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _once(method: str, url: str, body: bytes | None, headers: dict, policy: FetchPolicy,
          deadline: float) -> Response | tuple[int, str]:
    scheme, host, port, pinned = _check_target(url, policy, deadline)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimeout()
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=remaining, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=remaining)
    watchdog = _Watchdog(deadline)

    def connect_to_checked_address(_address, timeout, source_address=None) -> socket.socket:
        # The connection goes to the address that was checked, never to a fresh lookup of the name; TLS still
        # verifies the certificate against the name (HTTPSConnection wraps this socket with server_hostname).
        return watchdog.watch(socket.create_connection((pinned, port), timeout, source_address))

    conn._create_connection = connect_to_checked_address  # type: ignore[attr-defined]
    try:
        all_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        conn.request(method, target, body=body, headers=all_headers)
        sock = conn.sock  # kept: getresponse() drops it from conn when the server closes after answering
        resp = conn.getresponse()
        if resp.status in _REDIRECTS:
            result: Response | tuple[int, str] = (resp.status, resp.getheader("Location") or "")
        else:
            data = _read_bounded(sock, resp, policy.max_bytes, deadline)
            ctype = (resp.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            result = Response(url=url, status=resp.status, content_type=ctype, body=data,
                              headers={k.lower(): v for k, v in resp.getheaders()})
        if watchdog.expired.is_set():
            raise FetchTimeout()  # the socket was shut under the read: what arrived may be cut short
        return result
    except (socket.timeout, TimeoutError) as exc:
        raise FetchTimeout() from exc
    except ssl.SSLError as exc:
        if watchdog.expired.is_set():
            raise FetchTimeout() from exc
        raise FetchRefused("The server's secure connection could not be verified, so nothing was fetched.") from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        if watchdog.expired.is_set():
            raise FetchTimeout() from exc
        raise FetchFailed("The connection to the server holding the share failed.") from exc
    finally:
        watchdog.cancel()
        conn.close()


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    try:
        return (pa.scheme.lower(), (pa.hostname or "").lower(), pa.port) == \
            (pb.scheme.lower(), (pb.hostname or "").lower(), pb.port)
    except ValueError:
        return False


def deadline_for(policy: FetchPolicy) -> float:
    """The ``time.monotonic()`` by which an exchange that starts now must be over."""
    return time.monotonic() + policy.timeout


def request(method: str, url: str, *, policy: FetchPolicy, body: bytes | None = None,
            headers: dict | None = None, deadline: float | None = None) -> Response:
    """One bounded request; returns any final status (callers decide what a 401 or 404 means).

    ``deadline`` (from ``deadline_for``) is when the whole exchange, redirects included, must be over; by default
    ``policy.timeout`` from now. Several requests for one share pass the same one."""
    if deadline is None:
        deadline = deadline_for(policy)
    current = url
    for _ in range(policy.max_redirects + 1):
        if not fetch_address_ok(current):
            # a manifest's file location or a redirect is the server's text, not a checked link
            raise FetchRefused("The server named an address for the share that is not a valid web address, so "
                               "nothing was fetched.")
        result = _once(method, current, body, headers or {}, policy, deadline)
        if isinstance(result, Response):
            return result
        status, location = result
        if not location:
            raise FetchFailed("The server redirected the download without saying where.")
        try:
            target = urljoin(current, location)
        except ValueError:  # a broken host part, such as an unclosed "[" of an IPv6 address
            raise FetchRefused("The server redirected the download to an address that is not a valid web "
                               "address.") from None
        if not _same_origin(current, target):
            raise FetchRefused("The server tried to redirect the download to another server, which medvault "
                               "refuses.")
        if method != "GET" and status not in (307, 308):
            raise FetchRefused("The server redirected a share request in a way medvault does not follow.")
        current = target
    raise FetchRefused("The server redirected the download too many times.")


def get(url: str, *, policy: FetchPolicy, accept: str | None = None, deadline: float | None = None) -> Response:
    return request("GET", url, policy=policy, headers={"Accept": accept} if accept else None, deadline=deadline)


def post_json(url: str, payload: dict, *, policy: FetchPolicy, deadline: float | None = None) -> Response:
    return request("POST", url, policy=policy, body=jsonsafe.dumps(payload),
                   headers={"Content-Type": "application/json", "Accept": "application/json"}, deadline=deadline)


def looks_like_html(resp: Response) -> bool:
    head = resp.body[:512].lstrip().lower()
    return resp.content_type in ("text/html", "application/xhtml+xml") or head.startswith((b"<!doctype", b"<html"))


def get_jwe(url: str, *, policy: FetchPolicy, deadline: float | None = None) -> bytes:
    """Fetch an encrypted SHL file; anything but a 200 with JWE-looking content is a typed error."""
    resp = get(url, policy=policy, accept="application/jose", deadline=deadline)
    return expect_jwe(resp)


def expect_jwe(resp: Response) -> bytes:
    if resp.status == 404 or resp.status == 410:
        raise LinkInactive()
    if resp.status != 200:
        raise FetchFailed(f"The server holding the share answered with an error (HTTP {resp.status}).")
    if looks_like_html(resp):
        raise FetchRefused("The server answered with a web page instead of the encrypted share file.")
    return resp.body

"""The built-in read-only gateway: ``GET``/``HEAD /ipfs/<cid>`` over HTTP, nothing else.

It lets a clinician on the same machine or Wi-Fi fetch a share with no IPFS daemon installed. The exposure is
kept minimal on purpose: one path shape, a strict CID syntax check before any lookup, no listing, bounded
request line and headers, no reading of request bodies, and no request log (a URL names a share, and logs are not
the place to keep that). The files it serves are JWE ciphertext; it does not re-verify their CID because every
receiver does.

Against clients that hold connections to starve real ones: a cap on connections in all and per client address, an
idle timeout before the first byte of each request, a deadline on each request head, a socket timeout on every
read and write, and, when a cap is reached, the connection that has waited longest without a complete request is
closed to make room (a real client sends its request at once, an attacker's idle sockets are the oldest waiters).

Binding to anything but loopback needs ``allow_lan=True``: exposing the vault's shares to the local network
is the user's explicit choice. Loopback is the default because it is enough for a clinician on the same computer,
and the local network is what lets a clinic on the same Wi-Fi fetch a share with no internet and no IPFS daemon;
the user turns that on (``serve --lan``, or the setting in the app; docs/content-addressing.md), nothing does
it for them.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from sync.cid import parse_cid

__all__ = ["Gateway", "MAX_REQUEST_LINE", "MAX_HEADER_BYTES"]

MAX_REQUEST_LINE = 2048
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 32
MAX_PER_CLIENT = 8
SOCKET_TIMEOUT = 15.0
IDLE_TIMEOUT = 5.0
HEAD_TIMEOUT = 10.0

Lookup = Callable[[str], Optional[bytes]]


class _BoundedReader:
    """Wraps the socket reader so the request head cannot exceed a byte budget.

    ``http.client.parse_headers`` allows 100 lines of 64 KiB each; raising its own ``LineTooLong`` once the
    budget is spent makes the stdlib answer 431 and close, with no change to its parser.
    """

    def __init__(self, raw, budget: int) -> None:
        self._raw = raw
        self.budget = budget

    def readline(self, limit: int = -1) -> bytes:
        if self.budget <= 0:
            raise http.client.LineTooLong("header")
        want = self.budget if limit is None or limit < 0 else min(limit, self.budget)
        line = self._raw.readline(want)
        self.budget -= len(line)
        if self.budget <= 0 and not line.endswith(b"\n"):
            raise http.client.LineTooLong("header")
        return line

    def __getattr__(self, name):
        return getattr(self._raw, name)


class _Handler(BaseHTTPRequestHandler):
    server_version = "medvault-gateway"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT
    lookup: Lookup  # set on a per-gateway subclass
    head_timeout: float = HEAD_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # a request line names a share; keep it out of stderr and any log

    def handle_one_request(self) -> None:
        # Mirrors the stdlib method with a far smaller request-line limit and a header budget.
        raw_rfile = self.rfile
        slots: _Slots = self.server.slots  # type: ignore[attr-defined]
        slots.waiting(self.connection)
        watchdog = None
        try:
            # Nothing yet (a new connection, or a kept-alive one between requests): wait only so long.
            self.connection.settimeout(self.idle_timeout)
            if not raw_rfile.peek(1):
                self.close_connection = True
                return
            self.connection.settimeout(self.timeout)
            # The socket timeout applies per read, so a client dripping a byte at a time could hold the
            # connection for hours; the whole head (request line and headers) gets one deadline, after which the
            # socket is shut down under the blocked read.
            watchdog = threading.Timer(self.head_timeout, self._abort)
            watchdog.daemon = True
            watchdog.start()
            try:
                line = raw_rfile.readline(MAX_REQUEST_LINE + 1)
                if not line:
                    self.close_connection = True
                    return
                if len(line) > MAX_REQUEST_LINE:
                    self.requestline = ""
                    self.request_version = "HTTP/1.0"
                    self.command = ""
                    self.close_connection = True
                    self._reply(414)
                    return
                self.raw_requestline = line
                self.rfile = _BoundedReader(raw_rfile, MAX_HEADER_BYTES)
                ok = self.parse_request()
            finally:
                self.rfile = raw_rfile
                watchdog.cancel()
            slots.busy(self.connection)
            if not ok:
                return
            if self.request_version == "HTTP/0.9":
                self._reply(400)
                return
            if self.headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in self.headers:
                # A body is never read here; left in the stream it would be parsed as the next request.
                self.close_connection = True
            if self.command not in ("GET", "HEAD"):
                # The body (if any) is not read, so the connection cannot be reused safely.
                self.close_connection = True
                self._reply(405, extra={"Allow": "GET, HEAD"})
                return
            self._serve(head=self.command == "HEAD")
            self.wfile.flush()
        except (TimeoutError, socket.timeout, OSError):
            self.close_connection = True
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's HTML error page echoes request text; a bare status line is all a client needs.
        self.close_connection = True
        self._reply(code)

    def _reply(self, code: int, body: bytes = b"", extra: dict[str, str] | None = None,
               content_type: str = "text/plain; charset=utf-8", head: bool = False) -> None:
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            # HTTP/0.9 answers have no status line; every answer here states its status.
            self.request_version = "HTTP/1.0"
            self.close_connection = True
        if not body and code >= 400:
            body = (http.HTTPStatus(code).phrase + "\n").encode("ascii")
        self.send_response_only(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        # Shares can be revoked; an intermediary cache must not keep serving one afterwards.
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        target = self.path
        # The SHL U flow appends ?recipient=...; the query carries nothing we act on.
        path = target.split("?", 1)[0]
        if not path.startswith("/ipfs/"):
            self._reply(404, head=head)
            return
        cid = path[len("/ipfs/"):]
        if not cid:
            self._reply(404, head=head)  # no listing of what is held
            return
        try:
            parse_cid(cid)
        except ValueError:
            self._reply(400, head=head)
            return
        try:
            data = type(self).lookup(cid)
        except Exception:
            self._reply(500, head=head)
            return
        if data is None:
            self._reply(404, head=head)
            return
        self._reply(200, data, content_type="application/octet-stream", head=head,
                    extra={"Access-Control-Allow-Origin": "*", "ETag": f'"{cid}"'})


class _Slots:
    """Who holds the gateway's connections, per client address, and since when each one waits for a request.

    A connection waits from its start, and again between kept-alive requests, until its request head is read;
    then it is busy until its answer is written. Only waiting connections are ever closed to make room.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self._total, self._per_client = total, per_client
        self._lock = threading.Lock()
        self._held: dict[socket.socket, tuple[str, float | None]] = {}  # socket -> (client, waiting since)

    def admit(self, sock: socket.socket, client: str) -> bool:
        """Take a slot for a new connection, closing the longest waiter (of this client first) if a cap is
        reached; False when every connection in the way is busy."""
        with self._lock:
            while sum(1 for c, _ in self._held.values() if c == client) >= self._per_client:
                if not self._close_longest_waiter(client):
                    return False
            while len(self._held) >= self._total:
                if not self._close_longest_waiter(None):
                    return False
            self._held[sock] = (client, time.monotonic())
            return True

    def _close_longest_waiter(self, client: str | None) -> bool:
        waiters = [(since, sock) for sock, (c, since) in self._held.items()
                   if since is not None and (client is None or c == client)]
        if not waiters:
            return False
        _, sock = min(waiters, key=lambda w: w[0])
        # The slot is free at once; the connection's thread ends when the shutdown wakes its blocked read.
        del self._held[sock]
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def waiting(self, sock: socket.socket) -> None:
        self._mark(sock, time.monotonic())

    def busy(self, sock: socket.socket) -> None:
        self._mark(sock, None)

    def _mark(self, sock: socket.socket, since: float | None) -> None:
        with self._lock:
            if sock in self._held:
                self._held[sock] = (self._held[sock][0], since)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._held.pop(sock, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A burst of connections waits in the kernel's queue for the accept loop instead of being refused there.
    request_queue_size = 64

    def __init__(self, address, handler, max_connections: int, max_per_client: int) -> None:
        self.slots = _Slots(max_connections, max_per_client)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        # With no slot to give, a connection is dropped at once instead of spawning yet another thread.
        if not self.slots.admit(request, str(client_address[0])):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release(request)

    def handle_error(self, request, client_address) -> None:
        pass  # the stdlib prints a traceback naming the client; a dropped connection needs no record


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Gateway:
    """A read-only HTTP gateway over ``lookup(cid) -> bytes | None`` (e.g. ``BlobStorage.get``).

    ``start()`` binds and serves in a background thread; ``stop()`` shuts it down and joins. ``port=0`` picks
    a free port; read it from :attr:`port` or :attr:`base_url` after ``start()``.
    """

    def __init__(self, lookup: Lookup, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False,
                 advertised_host: str | None = None, max_connections: int = MAX_CONNECTIONS,
                 max_per_client: int = MAX_PER_CLIENT, head_timeout: float = HEAD_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        if not _is_loopback(host) and not allow_lan:
            raise ValueError("the gateway binds to loopback unless serving the local network is allowed")
        self._lookup = lookup
        self._host = host
        self._port = port
        self._advertised_host = advertised_host
        self._max_connections = max_connections
        self._max_per_client = max_per_client
        self._head_timeout = head_timeout
        self._idle_timeout = idle_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Gateway":
        if self._server is not None:
            return self
        handler = type("GatewayHandler", (_Handler,), {"lookup": staticmethod(self._lookup),
                                                       "head_timeout": self._head_timeout,
                                                       "idle_timeout": self._idle_timeout})
        self._server = _Server((self._host, self._port), handler, self._max_connections, self._max_per_client)
        self._thread = threading.Thread(target=self._server.serve_forever, name="medvault-gateway",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "Gateway":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("gateway not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        host = self._advertised_host or self._host
        if host in ("0.0.0.0", "::"):
            raise RuntimeError("a gateway bound to every interface needs advertised_host for its URL")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

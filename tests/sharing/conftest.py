"""Real loopback HTTP servers for the sharing tests, and the SHL fixtures.

The servers are real sockets on 127.0.0.1 (ephemeral ports) served from threads; every one is shut down and
joined in teardown. Hostile behaviours (endless answers, silence, redirects elsewhere, HTML) are real server
behaviours too, so the client's bounds are exercised on the wire rather than mocked.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import FIXTURES

SHL = FIXTURES / "shl-shc"


@pytest.fixture(scope="session")
def shl_dir() -> Path:
    if not (SHL / "spec" / "IPS_IG-bundle-01-enc.txt").exists():
        pytest.fail(f"the shared SHL fixtures are missing: expected them at {SHL} "
                    "(the shl-shc folder of tests.conftest.FIXTURES)", pytrace=False)
    return SHL


@pytest.fixture(scope="session")
def synthea_dir() -> Path:
    d = FIXTURES / "synthea"
    if not d.is_dir():
        pytest.fail(f"the shared Synthea fixtures are missing: expected them at {d}", pytrace=False)
    return d


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    body: bytes


Handler = Callable[[BaseHTTPRequestHandler, "Seen"], None]


@dataclass
class LoopbackServer:
    httpd: ThreadingHTTPServer
    thread: threading.Thread
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.origin + path

    # --- ready-made behaviours -------------------------------------------------------------------------------

    @staticmethod
    def json_response(req: BaseHTTPRequestHandler, status: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def serve_bytes(self, path: str, body: bytes, content_type: str = "application/jose") -> str:
        def h(req, _seen):
            req.send_response(200)
            req.send_header("Content-Type", content_type)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        return self.route(path, h)

    def serve_endless(self, path: str, declared_length: int | None = None) -> str:
        """Streams zeros until the client hangs up (or teardown); counts what it managed to send."""
        self.stats[path] = 0

        def h(req, _seen):
            req.send_response(200)
            req.send_header("Content-Type", "application/jose")
            if declared_length is not None:
                req.send_header("Content-Length", str(declared_length))
            req.end_headers()
            chunk = b"A" * 65536
            try:
                while not self.stop_event.is_set():
                    req.wfile.write(chunk)
                    self.stats[path] += len(chunk)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            req.close_connection = True
        return self.route(path, h)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        def h(req, _seen):
            req.send_response(status)
            req.send_header("Location", location)
            req.send_header("Content-Length", "0")
            req.end_headers()
        return self.route(path, h)


class _RequestHandler(BaseHTTPRequestHandler):
    server_version = "medvault-test"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output readable
        pass

    def _dispatch(self, method: str) -> None:
        owner: LoopbackServer = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(method, parts.path, parse_qs(parts.query), body)
        owner.seen.append(seen)
        handler = owner.routes.get(parts.path)
        if handler is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        handler(self, seen)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")


@pytest.fixture
def server_factory():
    servers: list[LoopbackServer] = []

    def make(host: str = "127.0.0.1") -> LoopbackServer:
        httpd = ThreadingHTTPServer((host, 0), _RequestHandler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        srv = LoopbackServer(httpd=httpd, thread=thread)
        httpd.owner = srv  # type: ignore[attr-defined]
        thread.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop_event.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def server(server_factory) -> LoopbackServer:
    return server_factory()


@pytest.fixture
def silent_server():
    """Accepts TCP connections (the kernel completes the handshake) but never reads or answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    host, port = sock.getsockname()
    yield f"http://{host}:{port}"
    sock.close()

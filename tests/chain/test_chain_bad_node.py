"""Endpoints that are not Ethereum nodes at all: real HTTP servers on loopback answering junk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sync.chain import Chain
from sync.errors import ChainMismatch, ChainUnavailable


def _serve(status: int, content_type: str, body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def html_server() -> Iterator[str]:
    yield from _serve(200, "text/html", b"<html><body>Welcome to the intranet</body></html>")


@pytest.fixture
def junk_json_server() -> Iterator[str]:
    yield from _serve(200, "application/json", b'{"jsonrpc": "2.0", "id": 0, "result": "not-a-number"}')


@pytest.fixture
def error_server() -> Iterator[str]:
    yield from _serve(503, "text/plain", b"Service Unavailable")


def test_web_page_instead_of_a_node(html_server):
    with pytest.raises(ChainMismatch) as err:
        Chain.connect(html_server, timeout=2)
    assert "Ethereum node" in err.value.user_message


def test_malformed_json_rpc_answer(junk_json_server):
    with pytest.raises(ChainMismatch):
        Chain.connect(junk_json_server, timeout=2)


def test_http_error_is_unavailable(error_server):
    with pytest.raises(ChainUnavailable) as err:
        Chain.connect(error_server, timeout=2)
    assert "\n" not in err.value.user_message

"""One deadline for a whole share download: name lookup, connection, status line, headers, body, and every file a
manifest lists. Each test runs a real server on loopback that keeps every single read well inside a per-read
timeout while dragging the exchange as a whole far past the deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sync import fetch, jwe, links, receiver
from sync.cid import compute_cid
from sync.errors import FetchTimeout

DEADLINE = 1.0
# Generous slack for a loaded 2-core machine; without a whole-exchange deadline each of these takes 10 s or more.
WITHIN = DEADLINE + 1.5


class DripServer:
    """A raw TCP server that answers every request by sending ``head`` and then ``drip`` one byte at a time, a byte
    every ``every`` seconds, for at most ``limit`` seconds."""

    def __init__(self, head: bytes, drip: bytes, every: float = 0.1, limit: float = 12.0) -> None:
        self.head, self.drip, self.every, self.limit = head, drip, every, limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.head)
                started = time.monotonic()
                for byte in self.drip:
                    if self.stop.is_set() or time.monotonic() - started > self.limit:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.every)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def drip_server() -> Iterator:
    made: list[DripServer] = []

    def make(head: bytes, drip: bytes, **kw) -> DripServer:
        made.append(DripServer(head, drip, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


POLICY = fetch.FetchPolicy(allow_local_http=True, timeout=DEADLINE)


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline(drip_server):
    # A status line, then a header line that never ends: every byte arrives within 0.1 s.
    srv = drip_server(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"a" * 5000)
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as err:
        fetch.get(srv.origin + "/ipfs/x", policy=POLICY)
    assert time.monotonic() - started < WITHIN
    assert err.value.user_message.endswith(".")


def test_a_server_dripping_its_status_line_is_cut_off_at_the_deadline(drip_server):
    srv = drip_server(b"", b"HTTP/1.1 200 OK" + b" " * 5000)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch.post_json(srv.origin + "/manifest", {"recipient": "Dr. A"}, policy=POLICY)
    assert time.monotonic() - started < WITHIN


def test_manifest_files_share_the_manifest_exchange_deadline(server):
    """Each file arrives in 0.4 s, well within the deadline on its own; four of them do not fit in one."""
    token, key = jwe.encrypt_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})

    def slow_file(req, _seen):
        time.sleep(0.4)
        req.send_response(200)
        req.send_header("Content-Type", "application/jose")
        req.send_header("Content-Length", str(len(token)))
        req.end_headers()
        req.wfile.write(token)

    files = []
    for i in range(4):
        server.route(f"/f{i}", slow_file)
        files.append({"contentType": jwe.CTY_FHIR, "location": f"{server.origin}/f{i}"})
    server.route("/manifest", lambda req, seen: server.json_response(req, 200, {"files": files}))
    link = links.build_shlink(links.ShlPayload(url=server.origin + "/manifest", key=key))
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        receiver.open_link(link, recipient="Dr. A", policy=POLICY)
    assert time.monotonic() - started < WITHIN
    assert len([s for s in server.seen if s.path.startswith("/f")]) < 4


def test_a_direct_file_dripping_its_body_stays_within_one_deadline(drip_server):
    token, key = jwe.encrypt_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/jose\r\nContent-Length: %d\r\n\r\n" % len(token))
    srv = drip_server(head, token, every=0.05)
    link = links.build_shlink(links.ShlPayload(url=f"{srv.origin}/ipfs/{compute_cid(token)}", key=key, flag="U"))
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        receiver.open_link(link, recipient="Dr. A", policy=POLICY)
    assert time.monotonic() - started < WITHIN


def test_a_name_lookup_that_never_answers_is_bounded_by_the_deadline(monkeypatch):
    """The system resolver cannot be slowed down from a test, so the lookup itself is made to hang: the fetch must
    give up at the deadline instead of waiting for it."""
    release = threading.Event()

    def hung_lookup(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", hung_lookup)
    started = time.monotonic()
    try:
        with pytest.raises(FetchTimeout):
            fetch.get("https://share.example.org/ipfs/x", policy=POLICY)
        assert time.monotonic() - started < WITHIN
    finally:
        release.set()

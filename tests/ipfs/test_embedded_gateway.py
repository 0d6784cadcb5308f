"""The embedded default backend and the built-in gateway, over real loopback sockets."""

from __future__ import annotations

import http.client
import os
import random
import socket
import stat
import threading
import time
import urllib.error
import urllib.request

import pytest

from sync.cid import KUBO_V1, compute_cid, raw_cid_of
from sync.errors import CidMismatch, ContentUnavailable, InvalidCid, ShareFileTooLarge
from sync.gateway import MAX_HEADER_BYTES, MAX_REQUEST_LINE, Gateway
from sync.ipfs_backend import BlobStorage, ContentStore, DirectoryBlobStorage, EmbeddedContentStore


@pytest.fixture
def storage(tmp_path):
    return DirectoryBlobStorage(tmp_path / "blobs")


@pytest.fixture
def served(storage):
    gateway = Gateway(storage.get).start()
    store = EmbeddedContentStore(storage, gateway.base_url)
    try:
        yield store, gateway
    finally:
        gateway.stop()


def _raw_request(port: int, payload: bytes, timeout: float = 10) -> bytes:
    """Send bytes exactly as given (no client-side normalisation) and return the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _get(port: int, target: str, method: str = "GET", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# ---- storage ---------------------------------------------------------------------------------------------------


def test_directory_storage_roundtrip_and_permissions(storage, tmp_path):
    assert isinstance(storage, BlobStorage)
    data = b"ciphertext bytes"
    cid = raw_cid_of(data)
    storage.put(cid, data)
    path = tmp_path / "blobs" / cid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert storage.get(cid) == data and storage.list() == [cid]
    storage.put(cid, data)  # idempotent
    storage.delete(cid)
    storage.delete(cid)
    assert storage.get(cid) is None and storage.list() == []
    assert os.listdir(tmp_path / "blobs") == []  # no temp files left behind


def test_directory_storage_refuses_names_that_are_not_cids(storage, tmp_path):
    for bad in ("../outside", "/etc/passwd", "", ".tmp-x", "bafk/../../x"):
        with pytest.raises(InvalidCid):
            storage.put(bad, b"x")
        with pytest.raises(InvalidCid):
            storage.get(bad)
    assert not (tmp_path / "outside").exists()


def test_interrupted_write_leaves_old_state(storage, tmp_path, monkeypatch):
    cid = raw_cid_of(b"new")

    def crash(*args):
        raise OSError("simulated power loss before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        storage.put(cid, b"new")
    monkeypatch.undo()
    assert storage.get(cid) is None
    assert os.listdir(tmp_path / "blobs") == []


def test_list_ignores_foreign_files(storage, tmp_path):
    (tmp_path / "blobs" / "notes.txt").write_text("x")
    (tmp_path / "blobs" / ".tmp-abc").write_bytes(b"half")
    cid = raw_cid_of(b"a")
    storage.put(cid, b"a")
    assert storage.list() == [cid]


# ---- embedded store --------------------------------------------------------------------------------------------


def test_embedded_store_add_cat_unpin(storage):
    store = EmbeddedContentStore(storage, "http://127.0.0.1:1234/")
    assert isinstance(store, ContentStore)
    data = random.Random(1).randbytes(2 * 1048576 + 3)  # multi-block under the share profile
    cid = store.add(data)
    assert cid == compute_cid(data) and cid.startswith("bafybei")
    assert store.cat(cid) == data
    assert store.gateway_url(cid) == f"http://127.0.0.1:1234/ipfs/{cid}"
    store.pin(cid)
    store.unpin(cid)
    with pytest.raises(ContentUnavailable):
        store.cat(cid)
    with pytest.raises(ContentUnavailable):
        store.pin(cid)
    store.unpin(cid)


def test_embedded_store_refuses_tampered_and_swapped_files(storage, tmp_path):
    store = EmbeddedContentStore(storage)
    cid = store.add(b"original ciphertext")
    other = store.add(b"another valid file")
    path = tmp_path / "blobs" / cid
    path.write_bytes(b"originaL ciphertext")
    with pytest.raises(CidMismatch):
        store.cat(cid)
    path.write_bytes((tmp_path / "blobs" / other).read_bytes())
    with pytest.raises(CidMismatch):
        store.cat(cid)


def test_embedded_store_limits(storage):
    store = EmbeddedContentStore(storage, max_bytes=100)
    with pytest.raises(ShareFileTooLarge):
        store.add(b"x" * 101)
    cid = store.add(b"y" * 100)
    with pytest.raises(ShareFileTooLarge):
        store.cat(cid, max_bytes=99)
    with pytest.raises(InvalidCid):
        store.cat("../../etc/passwd")
    with pytest.raises(RuntimeError):
        store.gateway_url(cid)  # no gateway URL configured: a programming error, not a user one


def test_embedded_store_keeps_its_profile(storage):
    store = EmbeddedContentStore(storage, profile=KUBO_V1)
    data = random.Random(2).randbytes(300_000)
    assert store.add(data) == compute_cid(data, KUBO_V1)


# ---- gateway ---------------------------------------------------------------------------------------------------


def test_gateway_serves_a_file_whose_cid_recomputes(served):
    store, gateway = served
    data = random.Random(3).randbytes(1048576 + 17)
    cid = store.add(data)
    url = store.gateway_url(cid)
    assert url == f"{gateway.base_url}/ipfs/{cid}" and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Length"] == str(len(data))
        assert resp.headers["Cache-Control"] == "no-store"
    assert body == data and compute_cid(body) == cid


def test_gateway_accepts_and_ignores_recipient_query(served):
    store, gateway = served
    cid = store.add(b"jwe")
    status, _, body = _get(gateway.port, f"/ipfs/{cid}?recipient=Dr%20Who%2C%20Clinic")
    assert (status, body) == (200, b"jwe")


def test_gateway_head(served):
    store, gateway = served
    cid = store.add(b"0123456789")
    status, headers, body = _get(gateway.port, f"/ipfs/{cid}", method="HEAD")
    assert status == 200 and headers["Content-Length"] == "10" and body == b""


def test_gateway_unknown_and_unpinned_are_404(served):
    store, gateway = served
    cid = store.add(b"revoke me")
    assert _get(gateway.port, f"/ipfs/{cid}")[0] == 200
    store.unpin(cid)
    assert _get(gateway.port, f"/ipfs/{cid}")[0] == 404
    assert _get(gateway.port, f"/ipfs/{raw_cid_of(b'never stored')}")[0] == 404
    assert _get(gateway.port, f"/ipfs/{raw_cid_of(b'never stored')}", method="HEAD")[0] == 404


@pytest.mark.parametrize("target, expected", [
    ("/", 404),
    ("/ipfs/", 404),
    ("/ipfs", 404),
    ("/etc/passwd", 404),
    ("/../../etc/passwd", 404),
    ("/ipns/example", 404),
    ("/ipfs/../../etc/passwd", 400),
    ("/ipfs/..%2f..%2fetc%2fpasswd", 400),
    ("/ipfs/QmNotACid", 400),
    ("/ipfs/BAFKREIFZJUT3TE2NHYEKKLSS27NH3K72YSCO7Y32KOAO5EEI66WOF36N5E", 400),
    ("/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e/", 400),
    ("/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e/readme", 400),
    ("http://evil.example/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", 404),
])
def test_gateway_hostile_paths(served, target, expected):
    store, gateway = served
    store.add(b"hello world")
    answer = _raw_request(gateway.port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert _status(answer) == expected
    assert b"hello world" not in answer and b"root:" not in answer
    assert _get(gateway.port, f"/ipfs/{raw_cid_of(b'hello world')}")[0] == 200  # still up


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"])
def test_gateway_other_methods_are_405(served, method):
    store, gateway = served
    cid = store.add(b"data")
    answer = _raw_request(gateway.port, f"{method} /ipfs/{cid} HTTP/1.1\r\nHost: x\r\n"
                                        "Content-Length: 5\r\n\r\nhello".encode())
    assert _status(answer) == 405
    assert b"Allow: GET, HEAD" in answer
    assert _get(gateway.port, f"/ipfs/{cid}")[0] == 200


def test_gateway_bounds_request_line_and_headers(served):
    store, gateway = served
    cid = store.add(b"data")
    long_line = _raw_request(gateway.port, b"GET /ipfs/" + b"a" * (MAX_REQUEST_LINE + 10) + b" HTTP/1.1\r\n\r\n")
    assert _status(long_line) == 414
    huge_header = _raw_request(gateway.port, f"GET /ipfs/{cid} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode()
                               + b"a" * (MAX_HEADER_BYTES + 10) + b"\r\n\r\n")
    assert _status(huge_header) == 431
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    many_headers = _raw_request(gateway.port, f"GET /ipfs/{cid} HTTP/1.1\r\nHost: x\r\n".encode() + many + b"\r\n")
    assert _status(many_headers) == 431
    garbage = _raw_request(gateway.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
    assert _status(garbage) == 400
    http09 = _raw_request(gateway.port, f"GET /ipfs/{cid}\r\n\r\n".encode())  # HTTP/0.9: no version
    assert _status(http09) == 400 and b"data" not in http09
    assert _get(gateway.port, f"/ipfs/{cid}") [0] == 200


def test_gateway_keeps_serving_while_clients_stall(storage):
    gateway = Gateway(storage.get, max_connections=2).start()
    try:
        store = EmbeddedContentStore(storage, gateway.base_url)
        cid = store.add(b"still here")
        stalled = [socket.create_connection(("127.0.0.1", gateway.port), timeout=5) for _ in range(2)]
        try:
            stalled[0].sendall(b"GET /ipfs/")  # half a request line, never finished
            time.sleep(0.2)
            # Both slots are held by connections waiting for a request: the one waiting longest makes room.
            answer = _raw_request(gateway.port, f"GET /ipfs/{cid} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
            assert _status(answer) == 200 and answer.endswith(b"still here")
            assert stalled[0].recv(1024) == b"", "the longest waiter should have been let go"
        finally:
            for s in stalled:
                s.close()
    finally:
        gateway.stop()


def test_gateway_drops_a_new_connection_when_every_slot_is_busy(storage):
    release = threading.Event()
    cid = raw_cid_of(b"slow lookup")
    storage.put(cid, b"slow lookup")

    def slow_lookup(c):
        release.wait(10)  # a request in progress: its connection is busy, not waiting
        return storage.get(c)

    results: list = []
    with Gateway(slow_lookup, max_connections=2) as gateway:
        busy = [threading.Thread(target=lambda: results.append(_get(gateway.port, f"/ipfs/{cid}")[2]))
                for _ in range(2)]
        for t in busy:
            t.start()
        time.sleep(0.5)
        # Nothing to let go: the newcomer is closed at once rather than queued or given a thread.
        assert _raw_request(gateway.port, f"GET /ipfs/{cid} HTTP/1.1\r\n\r\n".encode()) == b""
        release.set()
        for t in busy:
            t.join(timeout=10)
        assert results == [b"slow lookup", b"slow lookup"]


def test_gateway_writes_nothing_to_stderr(served, capfd):
    store, gateway = served
    cid = store.add(b"private")
    _get(gateway.port, f"/ipfs/{cid}?recipient=Dr%20Secret")
    _get(gateway.port, "/ipfs/../secret-path")
    _raw_request(gateway.port, b"POST /ipfs/x HTTP/1.1\r\n\r\n")
    _raw_request(gateway.port, b"\x00\x01garbage\r\n\r\n")
    out, err = capfd.readouterr()
    assert "Secret" not in out + err and cid not in out + err and "secret-path" not in out + err
    assert err == ""


def test_gateway_keeps_connection_alive_for_several_requests(served):
    store, gateway = served
    a, b = store.add(b"first"), store.add(b"second")
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        bodies = []
        for cid in (a, b, a):
            conn.request("GET", f"/ipfs/{cid}")
            bodies.append(conn.getresponse().read())
    finally:
        conn.close()
    assert bodies == [b"first", b"second", b"first"]


def test_gateway_lookup_failure_is_500_and_server_survives(storage):
    calls = []

    def broken(cid):
        calls.append(cid)
        if len(calls) == 1:
            raise OSError("disk gone")
        return storage.get(cid)

    with Gateway(broken) as gateway:
        cid = raw_cid_of(b"z")
        storage.put(cid, b"z")
        assert _get(gateway.port, f"/ipfs/{cid}")[0] == 500
        assert _get(gateway.port, f"/ipfs/{cid}")[2] == b"z"


def test_gateway_binding_rules(storage):
    with pytest.raises(ValueError):
        Gateway(storage.get, host="0.0.0.0")
    with pytest.raises(ValueError):
        Gateway(storage.get, host="192.168.1.10")
    cid = raw_cid_of(b"lan")
    storage.put(cid, b"lan")
    with Gateway(storage.get, host="0.0.0.0", allow_lan=True, advertised_host="127.0.0.1") as lan:
        assert lan.base_url == f"http://127.0.0.1:{lan.port}"
        with urllib.request.urlopen(f"{lan.base_url}/ipfs/{cid}", timeout=10) as resp:
            assert resp.read() == b"lan"
    with Gateway(storage.get, host="0.0.0.0", allow_lan=True) as lan:
        with pytest.raises(RuntimeError):
            lan.base_url  # noqa: B018 - no routable URL for "every interface"


def test_gateway_stop_releases_the_port(storage):
    gateway = Gateway(storage.get).start()
    port = gateway.port
    gateway.stop()
    gateway.stop()  # idempotent
    assert not gateway.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ipfs/{raw_cid_of(b'x')}", timeout=2)


def test_gateway_drops_a_client_that_drips_its_request_head(storage):
    # Each byte arrives well inside the socket timeout, so only a deadline on the whole head can end this.
    with Gateway(storage.get, head_timeout=1.0) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
            s.sendall(b"GET /ipfs/")
            dropped = False
            for _ in range(200):  # 200 drips at 0.1 s would take 20 s; the deadline is 1 s
                try:
                    s.sendall(b"a")
                    s.settimeout(0.1)
                    if s.recv(1024) == b"":
                        dropped = True
                        break
                except socket.timeout:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
            assert dropped, "the gateway kept a dripping client past its head deadline"
        cid = raw_cid_of(b"ok")
        storage.put(cid, b"ok")
        assert _get(gateway.port, f"/ipfs/{cid}")[2] == b"ok"


def test_gateway_never_reads_a_get_body_as_a_second_request(served):
    store, gateway = served
    public, hidden = store.add(b"asked for"), store.add(b"smuggled")
    inner = f"GET /ipfs/{hidden} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    answer = _raw_request(gateway.port, f"GET /ipfs/{public} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(inner)}\r\n"
                                        "\r\n".encode() + inner)
    assert _status(answer) == 200 and b"asked for" in answer
    assert b"smuggled" not in answer and answer.count(b"HTTP/1.1 ") == 1


def _idle_sockets(port: int, count: int, source: str) -> list[socket.socket]:
    """Connections that never send a byte (a starvation attack), from ``source`` (any 127/8 address on Linux)."""
    out = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def _real_requests(port: int, cid: str, count: int, clients: int = 3) -> list[object]:
    """``count`` GETs from ``clients`` receivers in parallel; each result is the body or the exception raised."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_i):
        try:
            return _get(port, f"/ipfs/{cid}")[2]
        except (OSError, http.client.HTTPException) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("attacker", ["127.0.0.2", "127.0.0.1"], ids=["another-client", "same-address"])
def test_forty_idle_sockets_do_not_starve_real_requests(storage, attacker):
    """40 connections that never speak, then 27 real requests: every real one is answered. From another address
    the per-client limit keeps the idle ones to a few slots; from the same address (a shared NAT, or loopback
    here) the connections that have waited longest without a request are the ones let go."""
    with Gateway(storage.get) as gateway:
        cid = raw_cid_of(b"for the clinician")
        storage.put(cid, b"for the clinician")
        idle = _idle_sockets(gateway.port, 40, attacker)
        try:
            results = _real_requests(gateway.port, cid, 27)
        finally:
            for s in idle:
                s.close()
        failed = [r for r in results if r != b"for the clinician"]
        assert not failed, f"{len(failed)} of 27 real requests failed: {failed[:3]}"


def test_a_connection_that_never_sends_a_request_is_closed_after_the_idle_timeout(storage):
    with Gateway(storage.get, idle_timeout=0.5) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
            started = time.monotonic()
            assert s.recv(1024) == b""  # the gateway hung up without being asked anything
            assert time.monotonic() - started < 3

"""The IPFS node backend against a REAL js-ipfs daemon on loopback, and local CIDs against that daemon's."""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import urllib.error
import urllib.request

import pytest

from sync.cid import KUBO_V1, SHARE_PROFILE, UNIXFS_V0_2015, UNIXFS_V1_2025, ImportProfile, compute_cid, raw_cid_of
from sync.errors import (CidMismatch, ContentUnavailable, InvalidCid, ShareFileTooLarge, StorageNodeUnavailable,
                         SyncError)
from sync.ipfs_backend import ContentStore
from sync.ipfs_node import IpfsNodeStore, api_multiaddr
from tests.ipfs.cidvectors import load_vectors, vector_input
from tests.peers.ipfs import free_port, running_ipfs_node

pytestmark = [
    pytest.mark.integration,
    # ipfshttpclient 0.7 passes urllib3 a deprecated argument; sync.ipfs_node filters it, pytest resets filters.
    pytest.mark.filterwarnings("ignore:The .strict. parameter is no longer needed:FutureWarning"),
]


def _bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _store(node, profile: ImportProfile = SHARE_PROFILE, timeout: float = 60) -> IpfsNodeStore:
    return IpfsNodeStore(node.api_multiaddr, node.gateway_url, timeout=timeout, profile=profile)


def _api(node, path: str) -> dict:
    req = urllib.request.Request(f"{node.api_url}/api/v0/{path}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=120) as resp:
        # Some endpoints (repo/gc) stream one JSON object per line.
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    return lines[-1] if lines else {}


def _boundary_sizes(chunk: int) -> list[int]:
    rng = random.Random(chunk)
    around = [k * chunk + d for k in (1, 2, 3) for d in (rng.randrange(-300, 300) for _ in range(2))]
    return [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk, 2 * chunk + 1] + around + [
        rng.randrange(1, 4 * chunk) for _ in range(3)]


# ---- local CID == node CID --------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [UNIXFS_V1_2025, KUBO_V1, UNIXFS_V0_2015], ids=lambda p: p.name)
def test_local_cid_equals_node_cid_around_chunk_boundaries(ipfs_node, profile):
    store = _store(ipfs_node, profile)
    for i, size in enumerate(_boundary_sizes(profile.chunk_size)):
        data = _bytes(size, seed=1000 * i + size)
        # IpfsNodeStore.add compares itself too; asserting here keeps the test meaningful on its own.
        assert store.add(data) == compute_cid(data, profile), f"{profile.name} size {size}"


# Tiny chunks reach the node's 174-link limit with kilobytes instead of 45 MB, so multi-level balanced trees
# (a full level, one link over, three levels) are checked against the node cheaply and on both leaf kinds.
TINY_RAW = ImportProfile("tiny-raw", cid_version=1, raw_leaves=True, chunk_size=16, max_links=174)
TINY_V0 = ImportProfile("tiny-v0", cid_version=0, raw_leaves=False, chunk_size=16, max_links=174)


def _node_only_hash(node, data: bytes, profile: ImportProfile) -> str:
    """The node's CID for ``data`` without storing it.

    js-ipfs opens every block file of an import at once and runs out of file descriptors past ~20,000 blocks,
    which a three-level tree of tiny chunks needs; hashing only avoids the block store and nothing else.
    """
    boundary = "medvault-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    query = (f"only-hash=true&cid-version={profile.cid_version}&raw-leaves={str(profile.raw_leaves).lower()}"
             f"&chunker={profile.chunker}&cid-base={'base32' if profile.cid_version else 'base58btc'}")
    req = urllib.request.Request(f"{node.api_url}/api/v0/add?{query}", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read().splitlines()[-1])["Hash"]


@pytest.mark.parametrize("profile", [TINY_RAW, TINY_V0], ids=lambda p: p.name)
def test_local_cid_equals_node_cid_on_two_level_trees(ipfs_node, profile):
    store = _store(ipfs_node, profile)
    c, links = profile.chunk_size, profile.max_links
    rng = random.Random(7)
    sizes = [links * c - 1, links * c, links * c + 1, 2 * links * c + 5] + [
        rng.randrange(1, 3 * links * c) for _ in range(6)]
    for size in sizes:
        data = _bytes(size, seed=size)
        assert store.add(data) == compute_cid(data, profile), f"{profile.name} size {size}"


@pytest.mark.slow
@pytest.mark.parametrize("profile", [TINY_RAW, TINY_V0], ids=lambda p: p.name)
def test_local_cid_equals_node_cid_on_three_level_trees(ipfs_node, profile):
    c, links = profile.chunk_size, profile.max_links
    for size in (links * links * c, links * links * c + 1, links * links * c + 3 * links * c + 7):
        data = _bytes(size, seed=size)
        local = compute_cid(data, profile)
        assert _node_only_hash(ipfs_node, data, profile) == local, f"{profile.name} size {size}"
        assert compute_cid(io.BytesIO(data), profile) == local


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_v0_multi_level_vector_through_the_node(ipfs_node):
    # 174 * 256 KiB + 1 bytes: the node, Kubo's published CID and the local computation all agree.
    vector = next(v for v in load_vectors()["vectors"] if v["name"] == "v0-over-maxlinks")
    data = vector_input(vector).read()
    store = _store(ipfs_node, UNIXFS_V0_2015, timeout=300)
    assert store.add(data) == vector["cid"] == compute_cid(data, UNIXFS_V0_2015)


def test_share_profile_is_what_the_node_builds_with_the_backend_flags(ipfs_node):
    # Over one chunk the share profile gives a dag-pb root; the node agrees only if it honoured the 1 MiB chunker.
    data = _bytes(SHARE_PROFILE.chunk_size + 1, seed=3)
    cid = _store(ipfs_node).add(data)
    assert cid.startswith("bafybei")
    assert cid == compute_cid(data, UNIXFS_V1_2025) != compute_cid(data, KUBO_V1)


def test_node_cid_differing_from_local_is_refused(ipfs_node):
    # The node cannot be told a 3-link limit, so it builds another DAG than this profile describes.
    odd = ImportProfile("three-links", cid_version=1, raw_leaves=True, chunk_size=16, max_links=3)
    data = _bytes(16 * 4, seed=4)
    with pytest.raises(CidMismatch) as info:
        _store(ipfs_node, odd).add(data)
    assert info.value.user_message
    # What the node built instead (174 links) is not left pinned behind.
    node_cid = compute_cid(data, TINY_RAW)
    assert _node_only_hash(ipfs_node, data, odd) == node_cid
    with pytest.raises(urllib.error.HTTPError):
        _api(ipfs_node, f"pin/ls?arg={node_cid}&cid-base=base32")


# ---- add / pin / unpin / cat ------------------------------------------------------------------------------------


def test_store_satisfies_the_interface(ipfs_node):
    assert isinstance(_store(ipfs_node), ContentStore)


def test_add_cat_roundtrip_and_gateway_fetch(ipfs_node):
    store = _store(ipfs_node)
    data = _bytes(300_000, seed=5)
    cid = store.add(data)
    assert store.cat(cid) == data
    url = store.gateway_url(cid)
    assert url == f"{ipfs_node.gateway_url}/ipfs/{cid}"
    # The node's own gateway serves it; the fetched bytes recompute to the same CID.
    with urllib.request.urlopen(url + "?recipient=Dr%20Test", timeout=60) as resp:
        fetched = resp.read()
    assert fetched == data and compute_cid(fetched) == cid


def test_add_pins_and_unpin_lets_gc_remove_it(ipfs_node):
    store = _store(ipfs_node, timeout=5)
    data = _bytes(2000, seed=6)
    cid = store.add(data)
    assert cid in _api(ipfs_node, f"pin/ls?arg={cid}&cid-base=base32")["Keys"]
    _api(ipfs_node, "repo/gc")
    assert store.cat(cid) == data  # pinned: survives garbage collection
    store.unpin(cid)
    store.unpin(cid)  # revoking twice is not an error
    _api(ipfs_node, "repo/gc")
    # Gone from the node: an offline node can only wait for it, and the timeout turns that into a typed error.
    with pytest.raises(ContentUnavailable):
        store.cat(cid)
    assert store.add(data) == cid  # and it can be published again


@pytest.mark.parametrize("profile", [SHARE_PROFILE, UNIXFS_V0_2015], ids=lambda p: p.name)
def test_pin_again_after_unpin(ipfs_node, profile):
    store = _store(ipfs_node, profile)
    cid = store.add(_bytes(300_000, seed=8))
    store.unpin(cid)
    store.pin(cid)
    base = "base32" if cid.startswith("b") else "base58btc"
    assert cid in _api(ipfs_node, f"pin/ls?arg={cid}&cid-base={base}")["Keys"]


def test_cat_over_the_limit_is_refused(ipfs_node):
    store = _store(ipfs_node)
    cid = store.add(_bytes(5000, seed=9))
    with pytest.raises(ShareFileTooLarge):
        store.cat(cid, max_bytes=4999)
    assert len(store.cat(cid, max_bytes=5000)) == 5000


def test_add_over_the_limit_is_refused_before_the_node_sees_it(ipfs_node):
    store = IpfsNodeStore(ipfs_node.api_multiaddr, ipfs_node.gateway_url, timeout=10, max_bytes=10)
    with pytest.raises(ShareFileTooLarge):
        store.add(b"x" * 11)


@pytest.mark.timeout(60)
def test_cat_of_unknown_cid_times_out_with_a_typed_error(ipfs_node):
    store = _store(ipfs_node, timeout=2)
    with pytest.raises(ContentUnavailable):
        store.cat(raw_cid_of(b"nobody ever added this"))


@pytest.mark.timeout(60)
def test_pin_of_unknown_cid_times_out_with_a_typed_error(ipfs_node):
    store = _store(ipfs_node, timeout=2)
    with pytest.raises(ContentUnavailable):
        store.pin(raw_cid_of(b"nobody ever added this either"))


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "QmNotACid", "BAFKREIFZJUT3TE2NHYEKKLSS27NH3K72YSCO7Y32KOAO5EEI66WOF36N5E"])
def test_malformed_cid_is_refused_before_any_request(bad):
    # Port 9 (discard) is never contacted: the CID check comes first.
    store = IpfsNodeStore("/ip4/127.0.0.1/tcp/9/http", "http://127.0.0.1:9", timeout=1)
    for call in (store.cat, store.pin, store.unpin, store.gateway_url):
        with pytest.raises(InvalidCid):
            call(bad)


# ---- a node that is down or silent ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_node_down_gives_a_typed_error():
    store = IpfsNodeStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", "http://127.0.0.1:1", timeout=5)
    for call in (store.version, lambda: store.add(b"x"), lambda: store.cat(raw_cid_of(b"x"))):
        with pytest.raises(StorageNodeUnavailable) as info:
            call()
        assert info.value.user_message


@pytest.mark.timeout(60)
def test_listener_that_never_answers_gives_a_typed_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody ever reads or answers
        port = listener.getsockname()[1]
        store = IpfsNodeStore(f"/ip4/127.0.0.1/tcp/{port}/http", "http://127.0.0.1:1", timeout=1.5)
        with pytest.raises(StorageNodeUnavailable):
            store.version()
        with pytest.raises(StorageNodeUnavailable):
            store.add(b"some share")
        with pytest.raises(SyncError):
            store.cat(raw_cid_of(b"y"))


@pytest.mark.timeout(180)
def test_frozen_real_node_gives_typed_errors_and_recovers():
    # A second, private node, so freezing it cannot disturb the session node.
    with running_ipfs_node() as node:
        store = _store(node, timeout=2)
        cid = store.add(b"before the freeze")
        node.freeze()
        try:
            with pytest.raises(StorageNodeUnavailable):
                store.version()
            with pytest.raises(StorageNodeUnavailable):
                store.add(b"during the freeze")
            with pytest.raises(ContentUnavailable):
                store.cat(cid)
        finally:
            node.thaw()
        store = _store(node, timeout=30)
        assert store.cat(cid) == b"before the freeze"


def test_node_serves_concurrent_adds_with_matching_cids(ipfs_node):
    store_errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            data = _bytes(40_000 + seed, seed=seed)
            assert _store(ipfs_node).add(data) == compute_cid(data)
        except BaseException as exc:  # collected and re-raised in the test thread
            store_errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not store_errors


def test_api_address_as_url_or_multiaddr(ipfs_node):
    assert api_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert api_multiaddr("https://ipfs.internal") == "/dns/ipfs.internal/tcp/443/https"
    assert api_multiaddr("http://[::1]:5001/") == "/ip6/::1/tcp/5001/http"
    assert api_multiaddr("/ip4/10.0.0.2/tcp/5001/http") == "/ip4/10.0.0.2/tcp/5001/http"
    store = IpfsNodeStore(ipfs_node.api_url, ipfs_node.gateway_url, timeout=30)
    assert store.add(b"via url") == compute_cid(b"via url")


@pytest.mark.parametrize("bad", ["garbage", "/ip4/1.2.3.4", "http://127.0.0.1:5001/api/v0", "http://:5001",
                                 "ftp://127.0.0.1:5001"])
def test_invalid_api_address_is_a_typed_error(bad):
    with pytest.raises(StorageNodeUnavailable) as info:
        IpfsNodeStore(bad, timeout=1)
    assert "address" in info.value.user_message


class _MisbehavingNode:
    """A loopback HTTP server that answers /api/v0/cat with headers and part of a body, then stalls or hangs up."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port = self._listener.getsockname()[1]
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            if self.mode == "stall":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                self._release.wait(30)
            else:  # promises 1000 bytes, sends 10, hangs up
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: 1000\r\n\r\n0123456789")

    def close(self) -> None:
        self._release.set()
        self._listener.close()
        self._thread.join(10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["stall", "hangup"])
def test_cat_failing_mid_body_is_a_typed_error(mode):
    node = _MisbehavingNode(mode)
    try:
        store = IpfsNodeStore(f"/ip4/127.0.0.1/tcp/{node.port}/http", "http://127.0.0.1:1", timeout=1.5)
        with pytest.raises(ContentUnavailable):
            store.cat(raw_cid_of(b"anything"))
    finally:
        node.close()


class _NotANode:
    """A loopback web server that answers every POST with the same body: what a wrong API address reaches."""

    def __init__(self, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.headers.get("Transfer-Encoding"):
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        self.rfile.read(size + 2)
                        if size == 0:
                            break
                else:
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", [b"<html><body>router login</body></html>", b"{}", b"[1, 2]", b'"text"',
                                  b'{"Pins": ["someone-else"], "Version": 3, "Hash": "bafkreinope"}'])
def test_a_server_that_is_not_a_node_gives_typed_errors(body):
    fake = _NotANode(body)
    try:
        store = IpfsNodeStore(f"http://127.0.0.1:{fake.server.server_address[1]}", "http://127.0.0.1:1", timeout=5)
        cid = raw_cid_of(b"x")
        for call in (store.version, lambda: store.add(b"x"), lambda: store.pin(cid), lambda: store.unpin(cid)):
            with pytest.raises(StorageNodeUnavailable):
                call()
        with pytest.raises(CidMismatch):  # whatever it sends is not the file
            store.cat(cid)
    finally:
        fake.close()

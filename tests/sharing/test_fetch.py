"""The bounded fetcher against real loopback servers that misbehave on purpose."""

from __future__ import annotations

import json

import pytest

from sync import fetch
from sync.errors import FetchFailed, FetchRefused, FetchTimeout, FetchTooLarge, LinkInactive

LOCAL = fetch.FetchPolicy(allow_local_http=True, timeout=5.0, max_bytes=4 << 20)
TWO_GB = 2 << 30


def test_get_and_post_json(server):
    url = server.serve_bytes("/ipfs/x", b"eyJ.a.b.c.d")
    assert fetch.get_jwe(url, policy=LOCAL) == b"eyJ.a.b.c.d"
    server.route("/manifest", lambda req, seen: server.json_response(req, 200, {"echo": json.loads(seen.body)}))
    resp = fetch.post_json(server.origin + "/manifest", {"recipient": "Dr. A"}, policy=LOCAL)
    assert resp.status == 200 and resp.json() == {"echo": {"recipient": "Dr. A"}}
    assert server.seen[-1].method == "POST"


def test_endless_answer_is_cut_off_at_the_limit(server):
    url = server.serve_endless("/ipfs/big")  # no Content-Length: the limit must hold while streaming
    with pytest.raises(FetchTooLarge) as err:
        fetch.get(url, policy=LOCAL)
    assert err.value.user_message.endswith(".")
    server.stop_event.set()
    # The server managed to push only the limit plus what socket buffers hold, nowhere near 2 GB.
    assert server.stats["/ipfs/big"] < LOCAL.max_bytes + (32 << 20)


def test_endless_answer_stops_at_the_default_limit(server):
    url = server.serve_endless("/ipfs/big")
    policy = fetch.FetchPolicy(allow_local_http=True)
    with pytest.raises(FetchTooLarge):
        fetch.get(url, policy=policy)
    server.stop_event.set()
    assert server.stats["/ipfs/big"] < fetch.DEFAULT_MAX_BYTES + (32 << 20) < TWO_GB


def test_declared_2gb_answer_is_refused_before_reading(server):
    url = server.serve_endless("/ipfs/huge", declared_length=TWO_GB)
    with pytest.raises(FetchTooLarge):
        fetch.get(url, policy=LOCAL)


def test_server_that_never_answers_times_out(silent_server):
    with pytest.raises(FetchTimeout) as err:
        fetch.get(silent_server + "/ipfs/x", policy=fetch.FetchPolicy(allow_local_http=True, timeout=1.0))
    assert "did not answer in time" in err.value.user_message


def test_redirect_to_another_host_is_refused(server_factory):
    a, b = server_factory(), server_factory("127.0.0.2")
    b.serve_bytes("/ipfs/x", b"secret")
    url = a.redirect("/ipfs/x", b.origin + "/ipfs/x")
    with pytest.raises(FetchRefused) as err:
        fetch.get(url, policy=LOCAL)
    assert "another server" in err.value.user_message
    assert not b.seen, "the other host must never be contacted"
    # A different port on the same address is another server too.
    c = server_factory()
    url = a.redirect("/ipfs/y", c.origin + "/ipfs/x")
    with pytest.raises(FetchRefused):
        fetch.get(url, policy=LOCAL)


def test_same_host_redirects_are_followed_a_few_times(server):
    server.serve_bytes("/ipfs/final", b"ok")
    server.redirect("/ipfs/r1", "/ipfs/final", status=301)
    assert fetch.get(server.origin + "/ipfs/r1", policy=LOCAL).body == b"ok"
    for i in range(5):
        server.redirect(f"/loop{i}", f"/loop{i + 1}")
    with pytest.raises(FetchRefused) as err:
        fetch.get(server.origin + "/loop0", policy=LOCAL)
    assert "too many times" in err.value.user_message


def test_gateway_returning_html_is_refused(server):
    url = server.serve_bytes("/ipfs/x", b"<!DOCTYPE html><html><body>Welcome to our gateway</body></html>",
                             content_type="text/html; charset=utf-8")
    with pytest.raises(FetchRefused) as err:
        fetch.get_jwe(url, policy=LOCAL)
    assert "web page" in err.value.user_message


def test_http_needs_permission_and_a_local_address(server):
    url = server.serve_bytes("/ipfs/x", b"x")
    with pytest.raises(FetchRefused) as err:
        fetch.get(url, policy=fetch.FetchPolicy())
    assert "plain http" in err.value.user_message
    # Refused before any connection is attempted: a public address never sees the request.
    with pytest.raises(FetchRefused):
        fetch.get("http://8.8.8.8/ipfs/x", policy=LOCAL)
    for bad in ("ftp://127.0.0.1/x", "file:///etc/passwd", "http://user:pw@127.0.0.1/x", "http:///x"):
        with pytest.raises(FetchRefused):
            fetch.get(bad, policy=LOCAL)
    assert not server.seen


def test_missing_file_and_server_errors(server):
    with pytest.raises(LinkInactive):
        fetch.get_jwe(server.origin + "/ipfs/unknown", policy=LOCAL)
    server.route("/boom", lambda req, seen: server.json_response(req, 500, {}))
    with pytest.raises(FetchFailed) as err:
        fetch.get_jwe(server.origin + "/boom", policy=LOCAL)
    assert "HTTP 500" in err.value.user_message


def test_connection_refused_is_a_typed_error(server_factory):
    srv = server_factory()
    origin = srv.origin
    srv.httpd.server_close()  # nothing listens on that port any more
    with pytest.raises(FetchFailed):
        fetch.get(origin + "/x", policy=LOCAL)


def test_add_query_keeps_existing_parameters():
    assert fetch.add_query("https://h/p?a=1", recipient="Dr. A") == "https://h/p?a=1&recipient=Dr.+A"
    assert fetch.add_query("https://h/p", recipient="x") == "https://h/p?recipient=x"


def test_dribbling_server_hits_the_overall_deadline(server):
    import time as _time

    def dribble(req, _seen):
        req.send_response(200)
        req.send_header("Content-Type", "application/jose")
        req.end_headers()
        try:
            while not server.stop_event.is_set():
                req.wfile.write(b"A")
                req.wfile.flush()
                _time.sleep(0.2)  # each byte arrives well within a per-read timeout
        except OSError:
            pass
        req.close_connection = True

    url = server.route("/ipfs/slow", dribble)
    with pytest.raises(FetchTimeout):
        fetch.get(url, policy=fetch.FetchPolicy(allow_local_http=True, timeout=1.0))
    server.stop_event.set()


@pytest.mark.parametrize("addr, local", [
    ("127.0.0.1", True), ("::1", True), ("192.168.1.20", True), ("10.0.0.7", True), ("fd12::1", True),
    ("::ffff:127.0.0.1", True), ("0.0.0.0", True), ("::", True),
    ("8.8.8.8", False), ("2001:4860:4860::8888", False), ("100.64.0.1", False),
])
def test_what_counts_as_local_network(addr, local):
    assert fetch._is_local(addr) is local

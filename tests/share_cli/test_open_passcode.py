"""``medvault open --passcode``: the SHL manifest flow (POST with recipient and passcode) against a real loopback
server implementing the spec's passcode rules, with a link and file made here."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sync import jwe, links
from tests.conftest import run_medvault
from tests.share_cli.conftest import env_for

PASSCODE = "1234"
BUNDLE = {"resourceType": "Bundle", "type": "collection",
          "entry": [{"resource": {"resourceType": "Observation", "id": "obs-1", "status": "final",
                                  "code": {"text": "test"}}}]}


@pytest.fixture
def manifest_server():
    token, key = jwe.encrypt_bundle(BUNDLE)
    state = {"remaining": 3, "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["bodies"].append(body)
            if state["remaining"] <= 0:
                return self._json(404, {})
            if body.get("passcode") != PASSCODE:
                state["remaining"] -= 1
                return self._json(401, {"remainingAttempts": state["remaining"]})
            return self._json(200, {"files": [{"contentType": jwe.CTY_FHIR, "embedded": token.decode()}]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    link = links.build_shlink(links.ShlPayload(url=f"http://127.0.0.1:{server.server_address[1]}/m", key=key,
                                               flag="P", label="passcode test"))
    try:
        yield link, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_right_passcode_opens(manifest_server):
    link, state = manifest_server
    res = run_medvault(["open", link, "--allow-local-http", "--passcode", PASSCODE, "--json"], env_for(None))
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert out["bundles"][0]["entry"][0]["resource"]["id"] == "obs-1"
    assert state["bodies"] == [{"recipient": "medvault receiver", "passcode": PASSCODE}]


def test_wrong_passcode_is_one_line_with_remaining_attempts(manifest_server):
    link, state = manifest_server
    res = run_medvault(["open", link, "--allow-local-http", "--passcode", "0000"], env_for(None))
    assert res.code == 1 and res.out == ""
    assert res.err.strip() == "medvault: The passcode is wrong; 2 attempts remain."
    assert len(state["bodies"]) == 1  # asked once; the CLI does not guess further


def test_missing_passcode_is_asked_for(manifest_server):
    link, state = manifest_server
    res = run_medvault(["open", link, "--allow-local-http"], env_for(None))
    assert res.code == 1
    assert res.err.strip() == "medvault: This share is protected by a passcode; enter it to open the share."
    assert state["bodies"] == []  # nothing sent without a passcode

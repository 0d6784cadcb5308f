"""Memory amplification: a few kilobytes of share must not become gigabytes of Python objects.

Deflate turns 87 KB into 66 MB of ``{},{},...``, and ``json.loads`` turns that into 22 million dicts (about 1.8 GB).
The receiver bounds the total inflated bytes of a share and the number of JSON values, entries and health cards
across every file and card in it, and refuses before parsing. Each case is opened in a child process whose peak
memory is measured (tests/peak_memory.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync import jwe
from tests.peak_memory import bundle_of_empty_entries, health_card_of_empty_entries, measure

# Well above what opening the refused share itself needs (the inflated bytes are held once, briefly), far below
# the gigabytes these inputs cost without the bounds.
PEAK_LIMIT_MB = 400


def _refused_as_too_large(result: dict) -> bool:
    """The child's open ended in the receiver's typed refusal (not a MemoryError, not success)."""
    return isinstance(result["error"], dict) and result["error"]["type"] == "ContentTooLarge"


def _write_share(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


_SERVE = """
import threading, functools
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from sync import links, receiver, fetch
class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # The manifest names the server's origin, known only once it listens.
        body = open(FOLDER + "/manifest.json", "rb").read().replace(b"ORIGIN", ORIGIN.encode())
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=FOLDER))
threading.Thread(target=httpd.serve_forever, daemon=True).start()
ORIGIN = "http://127.0.0.1:%d" % httpd.server_address[1]
POLICY = fetch.FetchPolicy(allow_local_http=True, timeout=120)
"""


def _open_in_child(folder: Path, key: bytes, *, direct: str | None = None) -> dict:
    setup = f"FOLDER = {str(folder)!r}\nKEY = {key!r}\n" + _SERVE
    if direct:
        link = f'links.build_shlink(links.ShlPayload(url=ORIGIN + "/{direct}", key=KEY, flag="U"))'
    else:
        link = 'links.build_shlink(links.ShlPayload(url=ORIGIN + "/manifest", key=KEY))'
    body = f"""
result = receiver.open_link({link}, recipient="Dr. A", policy=POLICY)
return sum(len(b.get("entry", [])) for b in result.bundles)
"""
    return measure(setup, body)


def test_87_kb_inflating_to_22_million_entries_is_refused_within_bounded_memory(tmp_path):
    plaintext = bundle_of_empty_entries(22_000_000)
    assert len(plaintext) <= jwe.DEFAULT_MAX_PLAINTEXT  # inside the per-file byte limit: only the count stops it
    token, key = jwe.encrypt(plaintext, cty=jwe.CTY_FHIR, level=9)
    del plaintext
    assert len(token) < 100_000
    folder = _write_share(tmp_path, {"bomb.jwe": token.encode()})
    result = _open_in_child(folder, key, direct="bomb.jwe")
    assert _refused_as_too_large(result), result
    assert result["error"]["message"].endswith(".")
    assert result["grew_mb"] < PEAK_LIMIT_MB, result


def test_64_manifest_files_each_under_the_limits_are_refused_together_within_bounded_memory(tmp_path):
    """Each file alone is within every limit; the share as a whole is not."""
    token, key = jwe.encrypt(bundle_of_empty_entries(900_000), cty=jwe.CTY_FHIR, level=9)
    files = {f"f{i}.jwe": token.encode() for i in range(64)}
    manifest = {"files": [{"contentType": jwe.CTY_FHIR, "location": f"ORIGIN/f{i}.jwe"} for i in range(64)]}
    files["manifest.json"] = json.dumps(manifest).encode()
    folder = _write_share(tmp_path, files)
    result = _open_in_child(folder, key)
    assert _refused_as_too_large(result), result
    assert result["grew_mb"] < PEAK_LIMIT_MB, result


def test_health_cards_nested_in_a_share_are_bounded_together(tmp_path):
    card = health_card_of_empty_entries(1_500_000)  # about 4.5 MB inflated and 3 million values each
    shc = json.dumps({"verifiableCredential": [card] * 40}).encode()
    token, key = jwe.encrypt(shc, cty=jwe.CTY_SHC, level=9)
    folder = _write_share(tmp_path, {"cards.jwe": token.encode()})
    result = _open_in_child(folder, key, direct="cards.jwe")
    assert _refused_as_too_large(result), result
    assert result["grew_mb"] < PEAK_LIMIT_MB, result


@pytest.mark.parametrize("cards", [101])
def test_more_health_cards_than_a_share_may_hold_are_refused_before_inflating_any(tmp_path, cards):
    shc = json.dumps({"verifiableCredential": [health_card_of_empty_entries(10)] * cards}).encode()
    token, key = jwe.encrypt(shc, cty=jwe.CTY_SHC)
    folder = _write_share(tmp_path, {"cards.jwe": token.encode()})
    result = _open_in_child(folder, key, direct="cards.jwe")
    assert _refused_as_too_large(result), result
    assert "health cards" in result["error"]["message"]


def test_a_real_synthea_share_still_opens(tmp_path, synthea_dir):
    largest = max(synthea_dir.glob("*.json"), key=lambda p: p.stat().st_size)
    token, key = jwe.encrypt(largest.read_bytes(), cty=jwe.CTY_FHIR)
    folder = _write_share(tmp_path, {"patient.jwe": token.encode()})
    result = _open_in_child(folder, key, direct="patient.jwe")
    assert result["error"] is None, result
    assert result["outcome"] == len(json.loads(largest.read_bytes())["entry"])

"""Share build and share open for the largest Synthea patient, as ratios against the format's own floor.

    .venv/bin/python bench/bench_share.py [--runs 31]

Every number is the median of ``--runs`` interleaved runs (each run times every variant once, so a noisy neighbour
slows all of them alike), measured in this run on the same Bundle.

- build:  ``jwe.encrypt_bundle`` (orjson, DEFLATE level 1, JWE with AES-256-GCM) + the CID of the file (sync.cid).
  floor:  what any SHL file of this Bundle costs: orjson encode, DEFLATE level 1, AES-GCM, base64url, SHA-256.
- open:   ``sync.receiver.open_link`` on a loopback HTTP server: fetch, CID check, decrypt, inflate, one parse.
  floor:  a loopback GET of the same file, SHA-256, base64url decode, AES-GCM, inflate, orjson parse.

Targets (issue 11): build and open within 1.3x of their floors. For honesty the old raw baseline (AES-GCM + SHA-256
of the plain JSON) is printed too: no share format that must encode, compress and parse JSON gets near it. Every
benchmark's target and baseline: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import statistics
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import FIXTURES as SHARED_FIXTURES  # noqa: E402  (third-party data, kept outside)

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from sync import jwe, links, receiver  # noqa: E402
from sync.cid import compute_cid  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = SHARED_FIXTURES / "synthea"
TARGET = 1.3


def largest_patient() -> Path:
    if not SYNTHEA.is_dir():
        sys.exit(f"Synthea fixtures missing: expected {SYNTHEA}")
    files = [p for p in SYNTHEA.glob("*.json") if not p.name.startswith(("hospital", "practitioner"))]
    return max(files, key=lambda p: p.stat().st_size)


class _Serve(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/jose")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def _b64u(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64u(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=31)
    args = ap.parse_args()

    path = largest_patient()
    bundle = orjson.loads(path.read_bytes())
    raw = orjson.dumps(bundle)
    key = os.urandom(32)
    aes = AESGCM(key)
    nonce = os.urandom(12)
    sealed_raw = aes.encrypt(nonce, raw, None)

    def floor_build():
        data = orjson.dumps(bundle)
        c = zlib.compressobj(jwe.DEFAULT_LEVEL, zlib.DEFLATED, -15)
        sealed = aes.encrypt(nonce, c.compress(data) + c.flush(), b"header")
        file = _b64u(sealed)
        return file, hashlib.sha256(file).digest()

    def build():
        data, _ = jwe.encrypt_bundle(bundle, key=key)
        return data, compute_cid(data)

    token, cid = build()
    floor_file, _ = floor_build()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    url = f"http://127.0.0.1:{port}/ipfs/{cid}"
    link = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U"))

    def floor_open():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/floor")
        body = conn.getresponse().read()
        conn.close()
        hashlib.sha256(body).digest()
        d = zlib.decompressobj(-15)
        return orjson.loads(d.decompress(aes.decrypt(nonce, _unb64u(body), b"header")))

    def open_once():
        # the handler serves whichever file was asked for last; opening needs ours
        _Serve.body = token
        result = receiver.open_link(link, recipient="bench", allow_local_http=True)
        assert result.bundles[0]["entry"][0] == bundle["entry"][0]
        _Serve.body = floor_file

    def raw_build():
        aes.encrypt(nonce, raw, None)
        hashlib.sha256(raw).digest()

    def raw_open():
        aes.decrypt(nonce, sealed_raw, None)
        hashlib.sha256(raw).digest()

    variants = {"build": build, "build floor": floor_build, "open": open_once, "open floor": floor_open,
                "raw build": raw_build, "raw open": raw_open}
    times: dict[str, list[float]] = {k: [] for k in variants}
    _Serve.body = floor_file
    try:
        for _ in range(args.runs):
            for name, fn in variants.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    med = {k: statistics.median(v) for k, v in times.items()}

    # stage timings of build and open, to show where a miss comes from
    stages = {
        "orjson encode": lambda: orjson.dumps(bundle),
        "DEFLATE level 1": lambda: zlib.compress(raw, jwe.DEFAULT_LEVEL),
        "CID": lambda: compute_cid(token),
        "JWE decrypt+inflate": lambda: jwe.decrypt(token, key),
        "orjson parse": lambda: orjson.loads(raw),
    }
    stage_ms = {k: statistics.median(_time(fn) for _ in range(args.runs)) * 1e3 for k, fn in stages.items()}

    mb = len(raw) / 1e6
    print(f"patient file: {path.name} ({path.stat().st_size:,} bytes); bundle JSON {len(raw):,} bytes; "
          f"share file {len(token):,} bytes (zip: DEF level {jwe.DEFAULT_LEVEL}); median of {args.runs} runs")
    print("stages    " + ", ".join(f"{k} {v:.1f} ms" for k, v in stage_ms.items()))
    for op in ("build", "open"):
        ratio = med[op] / med[f"{op} floor"]
        print(f"share {op:<5}: {med[op] * 1e3:7.2f} ms ({mb / med[op]:6.1f} MB/s); floor {med[op + ' floor'] * 1e3:7.2f} ms;"
              f" ratio {ratio:.2f}x of the floor (target <= {TARGET}x) {'OK' if ratio <= TARGET else 'MISSED'}")
    for op in ("build", "open"):
        print(f"raw baseline {op}: AES-GCM + SHA-256 of the plain JSON {med['raw ' + op] * 1e3:6.2f} ms; share {op} "
              f"takes {med[op] / med['raw ' + op]:.1f}x it (throughput ratio {med['raw ' + op] / med[op]:.3f}x)")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()

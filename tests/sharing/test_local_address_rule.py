"""The local-address rule holds for every scheme: a link naming this machine or the local network is fetched from
only when the user turned that on, https included.

The https server here is real TLS on loopback with a certificate a throw-away CA signed; the client is pointed at
that CA through OpenSSL's SSL_CERT_FILE, so the handshake and the name check succeed exactly as they would for an
attacker who owns a valid certificate for a name resolving to a LAN address.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sync import fetch
from sync.errors import FetchRefused


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.posts.append(self.rfile.read(length))  # type: ignore[attr-defined]
        data = json.dumps({"files": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch) -> Iterator[ThreadingHTTPServer]:
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("medvault test CA", ca_key, None, ca_key, ca=True)
    leaf = _cert("localhost", leaf_key, ca.subject, ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "leaf.pem")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.posts = []  # type: ignore[attr-defined]
    httpd.accepted = 0  # type: ignore[attr-defined]
    plain_get_request = httpd.get_request

    def get_request():
        sock, addr = plain_get_request()
        httpd.accepted += 1  # type: ignore[attr-defined]
        return ctx.wrap_socket(sock, server_side=True), addr

    httpd.get_request = get_request  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_https_to_this_machine_is_refused_without_permission_and_never_connected(tls_server, host):
    url = f"https://{host}:{tls_server.server_address[1]}/manifest"
    with pytest.raises(FetchRefused) as err:
        fetch.post_json(url, {"recipient": "Dr. A"}, policy=fetch.FetchPolicy(timeout=5.0))
    assert "local network" in err.value.user_message and err.value.user_message.endswith(".")
    assert tls_server.posts == [] and tls_server.accepted == 0, "nothing may reach a local server"


def test_https_to_this_machine_works_when_the_user_allows_the_local_network(tls_server):
    url = f"https://localhost:{tls_server.server_address[1]}/manifest"
    resp = fetch.post_json(url, {"recipient": "Dr. A"}, policy=fetch.FetchPolicy(allow_local_http=True, timeout=5.0))
    assert resp.status == 200 and resp.json() == {"files": []}
    assert json.loads(tls_server.posts[0]) == {"recipient": "Dr. A"}


@pytest.mark.parametrize("url", ["https://10.1.2.3/x", "https://192.168.0.10:8443/x", "https://[fd00::1]/x",
                                 "https://169.254.1.1/x", "https://0.0.0.0/x", "https://[::1]/x"])
def test_https_to_lan_literals_is_refused_before_any_connection(url):
    with pytest.raises(FetchRefused):
        fetch.get(url, policy=fetch.FetchPolicy(timeout=2.0))

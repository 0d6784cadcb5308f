"""The fuzz targets: one per parser that reads data from outside the vault, and the contract each must keep.

The contract: for any input a parser returns a value or raises the project's typed error, whose ``user_message``
is one plain sentence (what the CLI and the GUI show). Any other exception is a finding, and so is a broken
property a target states (a link that parses must rebuild into the same link, a parsed header must serialise back
to itself, ...). Hangs and memory are bounded by whoever runs the target (``bench/fuzz.py`` and the CI test).

Most parsers sit behind an encoding (base64url, AES-GCM, DEFLATE, a signature) that random bytes never get
through, so an input's first byte picks a *mode*: the rest is either used as the outer text as it is, or taken as
the inner content and wrapped here the way a real sender would wrap it (signed with this file's fixed keys,
encrypted with its fixed share key). Seeds (``seeds()``) are real inputs: links, files and cards built by the
project's own share code, the SHL and SMART Health Card examples of the specification, US Core and Synthea
resources. Keys here are fixed, made for fuzzing only, so a run reproduces.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import ipaddress
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sync import cid as cidmod
from sync import fetch, gateway, jwe, links, receiver
from sync.errors import SyncError
from vault import crypto, header as vheader, jsonsafe, recovery, store as vstore
from vault.errors import VaultError
from vault.records import bundle, documents, fhir_versions, importer, jsonutil, shc, sources
from vault.records.errors import ImportRejected
from tests.conftest import FIXTURES  # third-party data, kept outside the repository

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "fuzz-corpus"

# A fixed moment so expiry checks decide the same way in every run (the SHL fixtures expire in 2024).
NOW = datetime(2023, 6, 1, tzinfo=timezone.utc)
NOW_TS = int(NOW.timestamp())

# --- fixed keys (fuzzing only) ---------------------------------------------------------------------------------
SHARE_KEY = hashlib.sha256(b"medvault fuzz share key").digest()
SENDER_SEED = hashlib.sha256(b"medvault fuzz sender").digest()
RECIPIENT_SEED = hashlib.sha256(b"medvault fuzz recipient").digest()
SENDER_DID = links.did_key_from_ed25519(crypto.ed25519_public(SENDER_SEED))
RECIPIENT_DID = links.did_key_from_ed25519(crypto.ed25519_public(RECIPIENT_SEED))
RECIPIENT_X_PRIVATE = crypto.x25519_private_from_ed25519(RECIPIENT_SEED)
ISSUER = "https://fuzz.example/issuer"
ISSUER_KEY = ec.derive_private_key(int.from_bytes(hashlib.sha256(b"medvault fuzz issuer").digest(), "big") % (
    (1 << 255) - 19) + 1, ec.SECP256R1())
_numbers = ISSUER_KEY.public_key().public_numbers()
ISSUER_JWK = {"kty": "EC", "crv": "P-256", "kid": "fuzz-key-1", "use": "sig", "alg": "ES256",
              "x": base64.urlsafe_b64encode(_numbers.x.to_bytes(32, "big")).rstrip(b"=").decode(),
              "y": base64.urlsafe_b64encode(_numbers.y.to_bytes(32, "big")).rstrip(b"=").decode()}
CARD_TYPE = shc.HEALTH_CARD_TYPE


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def as_text(data: bytes) -> str:
    """Bytes as the text a paste or scan hands over; lone surrogates stay possible, as they are in a str."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split(data: bytes, modes: int) -> tuple[int, bytes]:
    return (data[0] % modes, data[1:]) if data else (0, b"")


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


class Unbuildable(Exception):
    """The harness could not wrap this input the way a sender would (it is not JSON, say); the raw form is used."""


def json_object(data: bytes) -> dict:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Unbuildable() from None
    if not isinstance(value, dict):
        raise Unbuildable()
    return value


# --- the trust store the health card targets check against ----------------------------------------------------

class DictTrust:
    """``shc.TrustStore``'s read side over a dict: the fuzz issuer and, when the fixtures are there, the
    specification's example issuer whose real cards are among the seeds."""

    def __init__(self) -> None:
        self._issuers = {ISSUER: (shc.parse_jwks(orjson.dumps({"keys": [ISSUER_JWK]})),
                                  {"fuzz-key-1": {"ctr": 1, "rids": ["revoked-rid"]}})}
        jwks = FIXTURES / "shl-shc" / "issuer" / ".well-known" / "jwks.json"
        if jwks.exists():
            self._issuers["https://spec.smarthealth.cards/examples/issuer"] = (shc.parse_jwks(jwks.read_bytes()), {})

    def issuer(self, iss: str):
        return self._issuers.get(iss)


TRUST = DictTrust()


# --- targets ---------------------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    what: str
    max_len: int = 4096
    # errors a caller is documented to catch that carry no user_message (parse_cid's ValueError)
    sentence_required: bool = True
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    extra: dict = field(default_factory=dict)


TARGETS: dict[str, Target] = {}


def target(name: str, what: str, allowed=(SyncError,), max_len: int = 4096, sentence_required: bool = True):
    def register(fn):
        TARGETS[name] = Target(name, fn, allowed, lambda: [], what, max_len, sentence_required)
        return fn
    return register


def seeds_for(name: str):
    def register(fn):
        TARGETS[name].seeds = fn
        return fn
    return register


class ContractBroken(AssertionError):
    """A typed error without a usable sentence, or a property of a parsed value that does not hold."""


def check_sentence(exc: BaseException) -> None:
    msg = getattr(exc, "user_message", None)
    if not isinstance(msg, str) or not msg.strip() or "\n" in msg or len(msg) > 600 or "Traceback" in msg:
        raise ContractBroken(f"{type(exc).__name__} without one plain sentence: {msg!r:.200}")


def run_one(t: Target, data: bytes) -> str:
    """``ok`` or ``refused``; anything else propagates (it is a finding)."""
    try:
        t.run(data)
    except t.allowed as exc:
        if t.sentence_required:
            check_sentence(exc)
        return "refused"
    return "ok"


# links ---------------------------------------------------------------------------------------------------------

@target("shlink", "links.parse_link on SMART Health Links (bare, viewer-prefixed) and any pasted text")
def t_shlink(data: bytes):
    mode, body = split(data, 3)
    if mode == 0:
        text = as_text(body)
    elif mode == 1:
        text = links.SHL_PREFIX + b64u(body)
    else:
        text = "https://viewer.example/app#" + links.SHL_PREFIX + b64u(body)
    parsed = links.parse_link(text)
    if isinstance(parsed, links.ShlPayload):
        again = links.parse_shlink(links.build_shlink(parsed))
        if again != parsed:
            raise ContractBroken("a parsed SMART Health Link does not rebuild into the same link")
    return parsed


@seeds_for("shlink")
def _shlink_seeds() -> list[bytes]:
    out = []
    sdk = FIXTURES / "shl-shc" / "validation-sdk"
    for name in ("shlink-link.txt", "shlink-link-direct.txt", "shlink-link-with-viewer.txt"):
        if (sdk / name).exists():
            out.append(b"\x00" + (sdk / name).read_bytes().strip())
    for name in ("shlink-payload.txt", "shlink-payload-direct.txt"):
        if (sdk / name).exists():
            out.append(b"\x01" + (sdk / name).read_bytes().strip())
    spec = FIXTURES / "shl-shc" / "spec" / "IPS_IG-bundle-01-shl.txt"
    if spec.exists():
        out.append(b"\x00" + spec.read_bytes().strip())
    ours = links.build_shlink(links.ShlPayload(url="https://files.example/ipfs/x", key=SHARE_KEY, flag="LP",
                                               exp=NOW_TS + 86400, label="Fuzz share",
                                               patient="0x" + "ab" * 20))
    out.append(b"\x00" + ours.encode())
    payload = {"url": "https://a.example/m", "key": b64u(SHARE_KEY), "flag": "U", "exp": "1704096000000",
               "label": "x", "v": 1}
    out.append(b"\x02" + orjson.dumps(payload))
    return out


def _sign_envelope(envelope: dict, seed: bytes = SENDER_SEED) -> str:
    unsigned = {k: envelope[k] for k in envelope if k != "sig"}
    try:
        signed = links.SIGNATURE_CONTEXT + links.canonical_json(unsigned)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        raise Unbuildable() from None
    envelope = dict(unsigned, sig=b64u(crypto.ed25519_sign(seed, signed)))
    return links.MV_PREFIX + b64u(orjson.dumps(envelope))


@target("medvault_link", "links.parse_medvault (cards, directed shares, return notes), then unsealing the key")
def t_medvault_link(data: bytes):
    mode, body = split(data, 3)
    text = None
    if mode == 2:
        try:
            text = _sign_envelope(json_object(body))
        except Unbuildable:
            mode = 1
    if mode == 0:
        text = as_text(body)
    elif mode == 1:
        text = links.MV_PREFIX + b64u(body)
    link = links.parse_medvault(text)
    if isinstance(link.body, links.SealedShare):
        links.unseal_share_key(link.body, RECIPIENT_X_PRIVATE, my_did=RECIPIENT_DID)
    if link.type == "card":
        links.card_from_link(text)
    return link


def _envelope(link: str) -> dict:
    return orjson.loads(base64.urlsafe_b64decode(link[len(links.MV_PREFIX):] + "==="))


@seeds_for("medvault_link")
def _medvault_seeds() -> list[bytes]:
    card_text = links.build_card(RECIPIENT_SEED, name="Dr Fuzz", address="0x" + "12" * 20, iat=NOW_TS,
                                 organisation="Fuzz clinic")
    card = links.card_from_link(card_text)
    share = links.build_directed_share(SENDER_SEED, card, url="https://files.example/ipfs/abc", key=SHARE_KEY,
                                       exp=NOW_TS + 3600, label="For Dr Fuzz", iat=NOW_TS,
                                       patient="0x" + "34" * 20)
    note = links.build_return(SENDER_SEED, card, url="http://192.168.1.2:8080/ipfs/abc", key=SHARE_KEY, exp=None,
                              label=None, iat=NOW_TS)
    sender_card = links.build_card(SENDER_SEED, name="Patient", address=None, iat=NOW_TS)
    out = [b"\x00" + card_text.encode(), b"\x00" + share.encode(), b"\x00" + note.encode()]
    for text in (share, note, sender_card):
        env = _envelope(text)
        out.append(b"\x01" + orjson.dumps(env))
        env.pop("sig")
        out.append(b"\x02" + orjson.dumps(env))
    return out


# JWE -----------------------------------------------------------------------------------------------------------

_PLAIN = b'{"resourceType":"Bundle","type":"collection","entry":[]}'


def _jwe_with_header(protected_b64: str, payload: bytes) -> str:
    iv = hashlib.sha256(protected_b64.encode("utf-8", "surrogatepass")).digest()[:12]
    sealed = AESGCM(SHARE_KEY).encrypt(iv, payload, protected_b64.encode("ascii", "replace"))
    return f"{protected_b64}..{b64u(iv)}.{b64u(sealed[:-16])}.{b64u(sealed[-16:])}"


@target("jwe", "jwe.decrypt of SHL files: the compact token, its protected header, its DEFLATE payload")
def t_jwe(data: bytes):
    mode, body = split(data, 4)
    if mode == 0:
        return jwe.decrypt(body, SHARE_KEY)
    if mode == 1:  # our own encryption of any plaintext must come back exactly
        token, _ = jwe.encrypt(body, cty=jwe.CTY_FHIR, key=SHARE_KEY, compress=bool(len(body) % 2))
        if jwe.decrypt(token, SHARE_KEY).plaintext != body:
            raise ContractBroken("an SHL file does not decrypt to what was encrypted")
        return None
    if mode == 2:  # any protected header over a valid encryption
        return jwe.decrypt(_jwe_with_header(b64u(body), deflate(_PLAIN)), SHARE_KEY)
    # a valid header over any (possibly bomb-like) DEFLATE stream, with a small bound to reach the limit
    head = b64u(b'{"alg":"dir","enc":"A256GCM","zip":"DEF","cty":"application/fhir+json"}')
    return jwe.decrypt(_jwe_with_header(head, body), SHARE_KEY, max_plaintext=64 * 1024)


@seeds_for("jwe")
def _jwe_seeds() -> list[bytes]:
    token, _ = jwe.encrypt(_PLAIN, cty=jwe.CTY_FHIR, key=SHARE_KEY)
    bomb = deflate(b"[" + b"{}," * 40000 + b"{}]")
    out = [b"\x00" + token.encode(), b"\x01" + _PLAIN,
           b"\x02" + b'{"alg":"dir","enc":"A256GCM","zip":"DEF","cty":"application/fhir+json","kid":"k"}',
           b"\x02" + b'{"alg":"dir","enc":"A256GCM"}', b"\x03" + deflate(_PLAIN), b"\x03" + bomb]
    spec = FIXTURES / "shl-shc" / "spec" / "IPS_IG-bundle-01-enc.txt"
    if spec.exists():
        out.append(b"\x00" + spec.read_bytes().strip()[:3000])
    return out


# the receiver: manifests, server answers, share content ---------------------------------------------------------

_STATUSES = (200, 200, 200, 401, 404, 410, 429, 500, 301, 307, 308)
_CTYPES = ("application/json", "text/html", "application/jose", "", "application/fhir+json")
_FILE_CTYPES = (jwe.CTY_FHIR, jwe.CTY_SHC, jwe.CTY_API_ACCESS, "text/plain")


def http_answer(status: int = 200, ctype: str = "application/json", body: bytes = b"", location: str = "") -> bytes:
    """A server's answer on the wire."""
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    if location:
        head += f"Location: {location}\r\n"
    return head.encode("utf-8", "surrogatepass") + b"\r\n" + body


class _ScriptedSocket:
    """A connected socket whose peer answers with fixed bytes: http.client reads them through makefile()."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def sendall(self, data) -> None:
        pass

    def makefile(self, mode="rb", buffering=-1):
        return io.BufferedReader(io.BytesIO(self._answer))

    def settimeout(self, t) -> None:
        pass

    def setsockopt(self, *a) -> None:
        pass

    def shutdown(self, how) -> None:
        pass

    def close(self) -> None:
        pass


class _Network:
    """``fetch``'s view of the socket and ssl modules, and of name lookup, with every connection going to a
    scripted peer that gives the next of ``answers`` (the last one again when they run out). Only the wire is
    replaced: URL checks, the request line, redirects, status and header parsing, size bounds all run for real."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers, self.calls = answers, 0
        self.socket, self.ssl = self._SocketModule(self), self._SslModule()

    def next_answer(self) -> bytes:
        self.calls += 1
        # a manifest lists at most 64 files, each may be redirected 3 times; passcode prompts are bounded too
        if self.calls > 1 + (receiver.MAX_PASSCODE_PROMPTS + receiver.MAX_MANIFEST_FILES) * (fetch.MAX_REDIRECTS + 1):
            raise ContractBroken("the receiver connected more times for one share than its bounds allow")
        return self.answers[min(self.calls - 1, len(self.answers) - 1)]

    class _SocketModule:
        def __init__(self, net) -> None:
            self._net = net

        def create_connection(self, address, timeout=None, source_address=None):
            return _ScriptedSocket(self._net.next_answer())

        def __getattr__(self, name):
            import socket
            return getattr(socket, name)

    class _SslModule:
        class _Context:
            import ssl as _ssl
            verify_mode, check_hostname, post_handshake_auth = _ssl.CERT_REQUIRED, True, None

            def wrap_socket(self, sock, server_hostname=None, **kw):
                return sock

        def create_default_context(self, *a, **kw):
            return self._Context()

        def __getattr__(self, name):
            import ssl
            return getattr(ssl, name)


def _lookup(host: str, port: int, deadline: float) -> list[str]:
    """Address literals stay what they are; every name is one public address (no lookup leaves the machine)."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        return ["93.184.216.34"]


@contextlib.contextmanager
def offline(answers: list[bytes]):
    net = _Network(answers)
    saved = fetch.socket, fetch.ssl, fetch._resolve
    fetch.socket, fetch.ssl, fetch._resolve = net.socket, net.ssl, _lookup
    try:
        yield net
    finally:
        fetch.socket, fetch.ssl, fetch._resolve = saved


def _answer(status=200, ctype="application/json", body=b"") -> bytes:
    return http_answer(status, ctype, body)


_MANIFEST_LINK = links.build_shlink(links.ShlPayload(url="https://shl.example/m/1", key=SHARE_KEY, flag="P",
                                                     exp=NOW_TS + 3600, label="fuzz"))
_DIRECT_LINK = links.build_shlink(links.ShlPayload(url="https://shl.example/d/f", key=SHARE_KEY, flag="U"))


def _open(link: str, answers: list) -> receiver.OpenResult:
    with offline(answers):
        result = receiver.open_link(link, recipient="Fuzz viewer", passcode_provider=lambda remaining: "1234",
                                    now=NOW_TS)
    if not result.files or any(not isinstance(b, dict) or b.get("resourceType") != "Bundle"
                               for b in result.bundles):
        raise ContractBroken("an opened share has no files, or something other than Bundles")
    return result


@target("manifest", "receiver.open_link: SHL manifests, server answers, embedded and fetched share files")
def t_manifest(data: bytes):
    mode, body = split(data, 5)
    if mode == 0:  # the manifest as the server sends it
        token, _ = jwe.encrypt(_PLAIN, cty=jwe.CTY_FHIR, key=SHARE_KEY)
        return _open(_MANIFEST_LINK, [_answer(body=body), _answer(200, "application/jose", token.encode())])
    if mode == 1:  # any status and content type, the body of the answer
        status = _STATUSES[body[0] % len(_STATUSES)] if body else 200
        ctype = _CTYPES[body[1] % len(_CTYPES)] if len(body) > 1 else ""
        rest = body[2:]
        first = http_answer(status, ctype, rest, location=as_text(rest[:200]) if status in (301, 307, 308) else "")
        return _open(_MANIFEST_LINK, [first, _answer(200, body=rest)])
    if mode == 2:  # any share content, encrypted with the link's key as a sender would, embedded
        ctype = _FILE_CTYPES[body[0] % len(_FILE_CTYPES)] if body else jwe.CTY_FHIR
        token, _ = jwe.encrypt(body[1:], cty=ctype, key=SHARE_KEY)
        manifest = {"files": [{"contentType": ctype, "embedded": token}]}
        return _open(_MANIFEST_LINK, [_answer(body=orjson.dumps(manifest))])
    if mode == 3:  # a direct-file link: the fetched file is the input
        return _open(_DIRECT_LINK, [_answer(200, "application/jose", body)])
    # the link itself (its url especially) is the input, in front of a server that answers a valid share
    token, _ = jwe.encrypt(_PLAIN, cty=jwe.CTY_FHIR, key=SHARE_KEY)
    manifest = orjson.dumps({"files": [{"contentType": jwe.CTY_FHIR, "embedded": token}]})
    return _open(links.SHL_PREFIX + b64u(body), [_answer(body=manifest), _answer(200, "application/jose",
                                                                                 token.encode())])


@seeds_for("manifest")
def _manifest_seeds() -> list[bytes]:
    token, _ = jwe.encrypt(_PLAIN, cty=jwe.CTY_FHIR, key=SHARE_KEY)
    manifest = {"files": [{"contentType": jwe.CTY_FHIR, "embedded": token},
                          {"contentType": jwe.CTY_FHIR, "location": "https://shl.example/f/2"}]}
    out = [b"\x00" + orjson.dumps(manifest), b"\x00" + b'{"files":[]}',
           b"\x01\x03\x00" + b'{"remainingAttempts":2}', b"\x01\x08\x00/elsewhere",
           b"\x02\x00" + _PLAIN, b"\x03" + token.encode(),
           b"\x04" + orjson.dumps({"url": "https://shl.example/m/1", "key": b64u(SHARE_KEY), "flag": "L"})]
    card = FIXTURES / "shl-shc" / "spec" / "example-00-e-file.smart-health-card"
    if card.exists():
        out.append(b"\x02\x01" + card.read_bytes())
    sdk = FIXTURES / "shl-shc" / "validation-sdk" / "shlink-manifest.txt"
    if sdk.exists():
        out.append(b"\x00" + sdk.read_bytes())
    bundle_file = FIXTURES / "us-core" / "Patient-example.json"
    if bundle_file.exists():
        out.append(b"\x02\x00" + bundle_file.read_bytes())
    return out


_HTTP_POLICY = fetch.FetchPolicy(allow_local_http=True, timeout=5.0, max_bytes=256 * 1024)


@target("http_response", "fetch.get_jwe / post_json on raw HTTP answers (status line, headers, body)")
def t_http_response(data: bytes):
    mode, body = split(data, 2)
    with offline([body]):
        if mode == 0:
            return fetch.get_jwe("https://files.example/ipfs/x?recipient=a", policy=_HTTP_POLICY)
        return fetch.post_json("http://127.0.0.1:8080/m", {"recipient": "a"}, policy=_HTTP_POLICY).json()


@seeds_for("http_response")
def _http_seeds() -> list[bytes]:
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/jose\r\nContent-Length: 5\r\n\r\nab.cd"
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"c\r\n{\"files\":[]}\r\n0\r\n\r\n")
    return [b"\x00" + ok, b"\x01" + chunked, b"\x00HTTP/1.1 302 Found\r\nLocation: /ipfs/y\r\n\r\n",
            b"\x01HTTP/1.0 401 Unauthorized\r\nContent-Type: application/json\r\n\r\n{\"remainingAttempts\":1}",
            b"\x00HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<!doctype html>"]


# records import (the parsing and checking the importer does before it writes) ------------------------------------

_SERVICE = importer.ImportService(None, importer.ImportOptions(workers=1))
_NDJSON_SERVICE = importer.ImportService(None, importer.ImportOptions(workers=1, skip_invalid=True))


def _check_entries(entries: list[bundle.Entry], payload_sha: str, kind: str) -> None:
    """What ``ImportService._store_prepared`` does before its transaction: ids, references (against an empty
    vault), validation, inline documents."""
    bundle.assign_ids(entries, payload_sha)
    bad = bundle.resolve_references(entries, lambda u: None, lambda t, v, s: [], collect=True)
    report = importer.ImportReport(kind=kind)
    _SERVICE._validate_entries(entries, kind, report, bad, None)
    for e in entries:
        if e.resource.get("resourceType") == "DocumentReference":
            documents.extract_inline(e.resource)


def _ndjson(data: bytes, payload_sha: str) -> None:
    """``ImportService._import_ndjson``'s per-line parsing and checks, without the database."""
    f = io.BytesIO(data)
    limit = 64 * 1024
    importer._check_line_lengths(f, limit, None)
    lineno = 0
    while True:
        line = f.readline(limit + 1)
        if not line:
            break
        lineno += 1
        if not line.strip():
            continue
        try:
            resource = jsonutil.loads(line, what=f"Line {lineno}", bound_depth=False)
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise ImportRejected(f"Line {lineno} is not a FHIR resource; nothing was imported.")
            entry = bundle.Entry(lineno, resource, None)
            bundle.assign_ids([entry], payload_sha)
            bundle.resolve_references([entry], lambda u: None, lambda t, v, s: [], collect=True)
            _NDJSON_SERVICE._check(resource, f"line {lineno}")
            documents.extract_inline(resource)
        except ImportRejected as err:
            check_sentence(err)


def import_pipeline(data: bytes, name: str) -> None:
    """The importer's path for bytes, up to (not including) the database: kind, parse, cards, entries, checks."""
    payload_sha = hashlib.sha256(data).hexdigest()
    kind, ctype = sources.detect(data[:64 * 1024], name)
    if kind is sources.Kind.DOCUMENT:
        prepared = documents.prepare(data, ctype or "", name, payload_sha, NOW)
    elif kind is sources.Kind.SHC_TEXT:
        prepared = shc.prepare_text(data, TRUST, NOW, payload_sha)
    elif kind is sources.Kind.FHIR_NDJSON:
        return _ndjson(data, payload_sha)
    else:
        try:
            doc = jsonutil.loads(data, bound_depth=False)
        except ImportRejected:
            if importer._is_ndjson_bytes(data):
                return _ndjson(data, payload_sha)
            raise
        if shc.is_card_json(doc):
            prepared = shc.prepare_card_file(doc, TRUST, NOW, payload_sha)
        else:
            doc, _older = fhir_versions.to_r4(doc)  # STU3 and DSTU2 files are converted before any check
            entries, _ = bundle.entries_of(doc)
            prepared = bundle.Prepared(kind.value, entries, "unverified")
    _check_entries(prepared.entries, payload_sha, prepared.kind)


@target("fhir_json", "FHIR JSON import: kind detection, parsing, Bundle entries, references, validation",
        allowed=(VaultError,), max_len=16384)
def t_fhir_json(data: bytes):
    mode, body = split(data, 2)
    return import_pipeline(body, "upload.json" if mode == 0 else "")


def _small_fixture_resources(limit: int) -> list[bytes]:
    out = []
    uscore = FIXTURES / "us-core"
    if uscore.is_dir():
        for p in sorted(uscore.glob("*.json")):
            raw = p.read_bytes()
            if len(raw) <= 6000:
                out.append(orjson.dumps(orjson.loads(raw)))
            if len(out) >= limit:
                break
    return out


def _synthea_bundle(entries: int) -> bytes | None:
    synthea = FIXTURES / "synthea"
    files = sorted(synthea.glob("*.json")) if synthea.is_dir() else []
    patients = [p for p in files if not p.name.startswith(("hospital", "practitioner"))]
    if not patients:
        return None
    doc = orjson.loads(min(patients, key=lambda p: p.stat().st_size).read_bytes())
    wanted = {"Patient", "Condition", "Observation", "Immunization", "Encounter", "MedicationRequest"}
    kept, seen = [], set()
    for e in doc["entry"]:
        rtype = e["resource"]["resourceType"]
        if rtype in wanted and rtype not in seen:
            seen.add(rtype)
            kept.append(e)
    doc["entry"] = kept[:entries]
    return orjson.dumps(doc)


@seeds_for("fhir_json")
def _fhir_json_seeds() -> list[bytes]:
    out = [b"\x00" + r for r in _small_fixture_resources(24)]
    synthea = _synthea_bundle(6)
    if synthea:
        out.append(b"\x00" + synthea)
    out.append(b"\x00" + b'{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:a",'
               b'"resource":{"resourceType":"Patient","id":"a"}},{"resource":{"resourceType":"Condition",'
               b'"subject":{"reference":"urn:uuid:a"},"code":{"text":"x"}}},{"resource":{"resourceType":'
               b'"Observation","status":"final","code":{"text":"y"},"subject":{"reference":'
               b'"Patient?identifier=s|v"}}}]}')
    out.append(b"\x01" + b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
    # STU3 and DSTU2 shapes (text codes where R4 has CodeableConcepts, MedicationOrder), converted before checks
    out.append(b"\x00" + b'{"resourceType":"Condition","id":"c3","clinicalStatus":"active","verificationStatus":'
               b'"confirmed","code":{"text":"x"},"subject":{"reference":"Patient/p"},"onsetDateTime":"2017-01-01"}')
    out.append(b"\x00" + b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":'
               b'"MedicationOrder","id":"m2","status":"active","patient":{"reference":"Patient/p"},'
               b'"medicationCodeableConcept":{"text":"y"},"dateWritten":"2015-02-01"}}]}')
    return out


@target("fhir_ndjson", "bulk FHIR NDJSON import: line bounds, per-line parsing and checks",
        allowed=(VaultError,), max_len=16384)
def t_fhir_ndjson(data: bytes):
    mode, body = split(data, 2)
    if mode == 0:
        return import_pipeline(body, "bulk.ndjson")
    return _ndjson(body, hashlib.sha256(body).hexdigest())


@seeds_for("fhir_ndjson")
def _ndjson_seeds() -> list[bytes]:
    lines = _small_fixture_resources(8)
    out = [b"\x00" + b"\n".join(lines[:4]) + b"\n", b"\x01" + b"\n".join(lines[4:8])]
    out.append(b"\x00" + b'{"resourceType":"Patient","id":"p1"}\n\n{"resourceType":"Observation","status":"final",'
               b'"code":{"text":"x"},"subject":{"reference":"Patient/p1"}}\n')
    return out


# SMART Health Cards ----------------------------------------------------------------------------------------------

def sign_card(payload: bytes, header: bytes = b'{"alg":"ES256","zip":"DEF","kid":"fuzz-key-1"}') -> str:
    head, body = b64u(header), b64u(deflate(payload))
    der = ISSUER_KEY.sign(f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{head}.{body}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def numeric(jws: str, chunks: int = 1) -> str:
    digits = "".join(f"{ord(c) - 45:02d}" for c in jws if 45 <= ord(c) <= 122)
    if chunks <= 1:
        return "shc:/" + digits
    size = max(2, -(-len(digits) // chunks))   # an empty JWS still makes one (empty) chunk
    size += size % 2
    parts = [digits[i:i + size] for i in range(0, len(digits), size)] or [""]
    return "\n".join(f"shc:/{i}/{len(parts)}/{p}" for i, p in enumerate(parts, 1))


def _shc_import(data: bytes) -> None:
    prepared = shc.prepare_text(data, TRUST, NOW, hashlib.sha256(data).hexdigest())
    _check_entries(prepared.entries, hashlib.sha256(data).hexdigest(), prepared.kind)


@target("shc", "SMART Health Cards: shc:/ numeric QR text (chunked too), compact JWS, payload, signature, "
        "card files", allowed=(VaultError,), max_len=8192)
def t_shc(data: bytes):
    mode, body = split(data, 6)
    if mode == 0:
        return _shc_import(body)
    if mode == 1:  # the numeric QR form of whatever JWS text is given, in 1 to 4 chunks
        return _shc_import(numeric(as_text(body[1:]), 1 + (body[0] % 4 if body else 0)).encode())
    if mode == 2:  # any payload, deflated and signed by a trusted issuer
        return _shc_import(sign_card(body).encode())
    if mode == 3:  # any header over a valid payload
        return _shc_import(sign_card(_CARD_PAYLOAD, header=body).encode())
    if mode == 4:  # a .smart-health-card file or $health-card-issue Parameters
        doc = jsonutil.loads(body)
        if not shc.is_card_json(doc):
            return None
        prepared = shc.prepare_card_file(doc, TRUST, NOW, "0" * 64)
        return _check_entries(prepared.entries, "0" * 64, prepared.kind)
    return shc.parse_jwks(body)  # an issuer's key set, as `issuers add` reads it


_CARD_PAYLOAD = orjson.dumps({
    "iss": ISSUER, "nbf": NOW_TS - 86400,
    "vc": {"type": [CARD_TYPE, "https://smarthealth.cards#immunization"],
           "credentialSubject": {"fhirVersion": "4.0.1", "fhirBundle": {
               "resourceType": "Bundle", "type": "collection", "entry": [
                   {"fullUrl": "resource:0", "resource": {"resourceType": "Patient", "name": [{"family": "Fuzz",
                                                                                               "given": ["A"]}],
                                                          "birthDate": "1960-01-20"}},
                   {"fullUrl": "resource:1", "resource": {
                       "resourceType": "Immunization", "status": "completed",
                       "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "207"}]},
                       "patient": {"reference": "resource:0"}, "occurrenceDateTime": "2021-01-01"}}]}}}})


@seeds_for("shc")
def _shc_seeds() -> list[bytes]:
    jws = sign_card(_CARD_PAYLOAD)
    out = [b"\x00" + jws.encode(), b"\x00" + numeric(jws).encode(), b"\x01\x02" + jws.encode(),
           b"\x02" + _CARD_PAYLOAD, b"\x03" + b'{"alg":"ES256","zip":"DEF","kid":"fuzz-key-1"}',
           b"\x04" + orjson.dumps({"verifiableCredential": [jws]}),
           b"\x04" + orjson.dumps({"resourceType": "Parameters", "parameter": [
               {"name": "verifiableCredential", "valueString": jws}]}),
           b"\x05" + orjson.dumps({"keys": [ISSUER_JWK]})]
    spec = FIXTURES / "shl-shc" / "spec"
    for name in ("example-00-d-jws.txt", "example-03-d-jws.txt", "example-00-f-qr-code-numeric-value-0.txt"):
        if (spec / name).exists():
            out.append(b"\x00" + (spec / name).read_bytes().strip())
    chunks = [spec / f"example-02-f-qr-code-numeric-value-{i}.txt" for i in range(3)]
    if all(p.exists() for p in chunks):
        out.append(b"\x00" + b"\n".join(p.read_bytes().strip() for p in chunks))
    payload = spec / "example-00-c-jws-payload-minified.json"
    if payload.exists():
        out.append(b"\x02" + payload.read_bytes().strip())
    return out


# the vault's own files that anyone with access to the folder can edit -------------------------------------------

def _checksummed(body: dict) -> bytes:
    body.pop("checksum", None)
    try:
        body["checksum"] = hashlib.sha256(vheader._canonical(body)).hexdigest()
        return json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError):
        raise Unbuildable() from None


@target("header", "vault/header.py Header.from_bytes (raw, and with a valid checksum so the fields are read)",
        allowed=(VaultError,))
def t_header(data: bytes):
    mode, body = split(data, 2)
    raw = body
    if mode == 1:
        with contextlib.suppress(Unbuildable):
            raw = _checksummed(json_object(body))
    parsed = vheader.Header.from_bytes(raw)
    if vheader.Header.from_bytes(parsed.to_bytes()) != parsed:
        raise ContractBroken("a header that parses does not read back the same after writing")
    return parsed


@seeds_for("header")
def _header_seeds() -> list[bytes]:
    kdf = vheader.KdfParams("test-insecure", 1, 8 * 1024 * 1024, bytes(range(16)))
    h = vheader.Header(vault_id="fuzz-vault", kdf=kdf, passphrase_slot=b"\x01" * 72, recovery_salt=b"\x02" * 16,
                       recovery_slot=b"\x03" * 72)
    big = vheader.Header(vault_id="fuzz-vault", kdf=kdf, passphrase_slot=b"\x01" * 72, recovery_salt=b"\x02" * 16,
                         recovery_slot=b"\x03" * 72, db_page_size=65536)
    out = [b"\x00" + h.to_bytes(), b"\x01" + orjson.dumps(json.loads(big.to_bytes()))]
    frozen = ROOT / "tests" / "data" / "vault-format1" / "vault.header"
    if frozen.exists():
        out.append(b"\x00" + frozen.read_bytes())
    return out


@target("failed_unlocks", "vault/store.py: the failed-unlock note outside the database", allowed=())
def t_failed_unlocks(data: bytes):
    times, rejected = vstore._failed_unlock_times(data)
    if not isinstance(rejected, int) or rejected < 0 or len(times) > vstore._MAX_FAILED_NOTES:
        raise ContractBroken("the failed-unlock note gave an impossible count")
    for t in times:
        if not vstore._TIMESTAMP.fullmatch(t) and datetime.fromisoformat(t).isoformat() != t:
            raise ContractBroken("a failed-unlock time that is not one this code wrote passed into the audit log")
    return times


@seeds_for("failed_unlocks")
def _failed_seeds() -> list[bytes]:
    return [b"\x002023-06-01T10:00:00+00:00\n2023-06-01T10:00:05.123456+00:00\n",
            b"\x002023-06-01T10:00:00Z\nnot a time\n\n2023-02-30T10:00:00+00:00\n"]


@target("recovery_key", "vault/recovery.py parse_key on typed or scanned recovery keys", allowed=(VaultError,),
        max_len=256)
def t_recovery_key(data: bytes):
    secret = recovery.parse_key(as_text(data[1:]))
    if recovery.parse_key(recovery.format_key(secret)) != secret:
        raise ContractBroken("a recovery key does not read back what it was written from")
    return secret


@seeds_for("recovery_key")
def _recovery_seeds() -> list[bytes]:
    key = recovery.format_key(bytes(range(20)))
    return [b"\x00" + key.encode(), b"\x00" + key.lower().replace("-", " ").encode(),
            b"\x00" + b"9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC"]


# content identifiers and the gateway -----------------------------------------------------------------------------

@target("cid", "sync/cid.py parse_cid, and the receiver finding a CID in a share's address",
        allowed=(ValueError,), max_len=256, sentence_required=False)
def t_cid(data: bytes):
    mode, body = split(data, 2)
    text = as_text(body)
    if mode == 1:
        named = receiver.cid_named_by("https://gw.example/ipfs/" + text)
        return named and cidmod.cid_matches(b"fuzz", named)
    parsed = cidmod.parse_cid(text)
    if parsed.text != text:
        raise ContractBroken("parse_cid accepted a CID that is not in its one canonical spelling")
    return parsed


@seeds_for("cid")
def _cid_seeds() -> list[bytes]:
    v0 = cidmod.compute_cid(b"fuzz", cidmod.UNIXFS_V0_2015)
    v1 = cidmod.raw_cid_of(b"fuzz")
    return [b"\x00" + v0.encode(), b"\x00" + v1.encode(), b"\x01" + v1.encode() + b"/x?y"]


class _QuietSocket:
    def settimeout(self, t) -> None:
        pass

    def shutdown(self, how) -> None:
        pass


_HELD_CID = cidmod.raw_cid_of(b"ciphertext")
_HELD = {_HELD_CID: b"ciphertext"}
_ALLOWED_STATUSES = {200, 400, 404, 405, 414, 431, 501, 505}


class _InProcessHandler(gateway._Handler):
    """The gateway's request handler over an in-memory stream instead of a socket (setup/handle are not run)."""

    lookup = staticmethod(_HELD.get)
    head_timeout = 5.0

    def __init__(self, request: bytes) -> None:  # noqa: D107 - deliberately not the socket constructor
        self.rfile = io.BufferedReader(io.BytesIO(request))
        self.wfile = io.BytesIO()
        self.connection = _QuietSocket()
        self.client_address = ("192.0.2.1", 1)
        self.server = type("S", (), {"slots": gateway._Slots(4, 4)})()
        self.close_connection = True


@target("gateway", "sync/gateway.py: HTTP requests to the built-in gateway, parsed in-process", allowed=())
def t_gateway(data: bytes):
    handler = _InProcessHandler(data)
    for _ in range(50):  # keep-alive: the requests one stream carries, as handle() loops over them
        handler.close_connection = True
        handler.handle_one_request()
        if handler.close_connection:
            break
    out = handler.wfile.getvalue()
    for head in out.split(b"HTTP/1.")[1:]:
        status = int(head[2:5])
        if status not in _ALLOWED_STATUSES:
            raise ContractBroken(f"the gateway answered an unexpected status {status}")
    if b" 200 OK" in out and _HELD_CID.encode() not in data:
        raise ContractBroken("the gateway answered 200 for a file it does not hold")
    return out


@seeds_for("gateway")
def _gateway_seeds() -> list[bytes]:
    return [b"\x00GET /ipfs/" + _HELD_CID.encode() + b"?recipient=x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\x00HEAD /ipfs/" + _HELD_CID.encode() + b" HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
            b"GET /ipfs/QmNotHeld HTTP/1.1\r\n\r\n",
            b"\x00POST /ipfs/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"\x00GET /\r\n"]


# QR images -------------------------------------------------------------------------------------------------------

@target("qr_image", "sync/qr.py: decoding QR codes from image files and camera frames", max_len=8192)
def t_qr_image(data: bytes):
    from sync import qr
    mode, body = split(data, 2)
    if mode == 0:
        return qr.decode_bytes(body)
    width = 1 + (body[0] if body else 0)
    return qr.decode_all_gray(body[1:], width, max(1, len(body[1:]) // width))


@seeds_for("qr_image")
def _qr_seeds() -> list[bytes]:
    from PIL import Image
    from sync import qr
    img = qr.make_image("shlink:/" + b64u(b'{"url":"https://a.example/x"}'))
    small = img.resize((img.width // 4, img.height // 4), Image.NEAREST)
    png, gif = io.BytesIO(), io.BytesIO()
    small.save(png, format="PNG", optimize=True)
    small.save(gif, format="GIF")
    out = [b"\x00" + png.getvalue(), b"\x00" + gif.getvalue()]
    gray = small.resize((64, 64))
    out.append(b"\x01" + bytes([63]) + gray.tobytes())
    return out


# every kind of import, end to end, into a real vault ---------------------------------------------------------------

class RealVault:
    """One real vault (cheap KDF) that every import is tried against: the database write path, the person
    check, de-duplication. A refused import must leave its row counts as they were."""

    def __init__(self) -> None:
        self.vault = None

    def open(self):
        if self.vault is None:
            import tempfile
            from vault.store import Vault
            self._dir = tempfile.TemporaryDirectory(prefix="medvault-fuzz-")
            self.vault, _ = Vault.create(Path(self._dir.name) / "v", "fuzz passphrase 1234",
                                         kdf_profile="test-insecure")
        return self.vault

    def close(self) -> None:
        if self.vault is not None:
            self.vault.close()
            self._dir.cleanup()
            self.vault = None


REAL_VAULT = RealVault()


@target("import_vault", "ImportService.import_data into a real SQLCipher vault (slow: the database path)",
        allowed=(VaultError,), max_len=16384)
def t_import_vault(data: bytes):
    from tests.records.records_support import row_counts
    v = REAL_VAULT.open()
    mode, body = split(data, 3)
    name = ("upload.json", "card.smart-health-card", "scan.txt")[mode]
    with v.read() as conn:
        before = row_counts(conn)
    try:
        return importer.ImportService(v, importer.ImportOptions(workers=1)).import_data(body, name)
    except VaultError:
        with v.read() as conn:
            if row_counts(conn) != before:
                raise ContractBroken("a refused import changed the vault") from None
        raise


@seeds_for("import_vault")
def _import_seeds() -> list[bytes]:
    out = [b"\x00" + r for r in _small_fixture_resources(4)]
    out.append(b"\x02" + sign_card(_CARD_PAYLOAD).encode())
    return out


TARGETS["import_vault"].teardown = REAL_VAULT.close

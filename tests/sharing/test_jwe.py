"""SHL JWE: the spec's own file, our round trip, and hostile ciphertext."""

from __future__ import annotations

import base64
import json
import os
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sync import jwe
from sync.errors import ContentTooLarge, DecryptionFailed, LinkUnsupported


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hand_made_jwe(header: dict, payload: bytes, key: bytes) -> str:
    """A JWE built straight from RFC 7516 with cryptography's AES-GCM, independent of the code under test."""
    head = b64u(json.dumps(header).encode())
    iv = os.urandom(12)
    ct = AESGCM(key).encrypt(iv, payload, head.encode("ascii"))
    return ".".join([head, "", b64u(iv), b64u(ct[:-16]), b64u(ct[-16:])])


def test_spec_ips_file_decrypts_to_the_exact_bundle(shl_dir):
    details = json.loads((shl_dir / "spec" / "IPS_IG-bundle-01-shl-details.json").read_text())
    key = unb64u(details["shlinkJsonPayload"]["key"])
    token = (shl_dir / "spec" / "IPS_IG-bundle-01-enc.txt").read_text()
    out = jwe.decrypt(token, key)
    assert out.plaintext == (shl_dir / "spec" / "IPS_IG-bundle-01.json").read_bytes()
    assert out.header["alg"] == "dir" and out.header["enc"] == "A256GCM"


def test_round_trip_headers_and_fresh_iv():
    plaintext = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}).encode() * 50
    token, key = jwe.encrypt(plaintext, cty=jwe.CTY_FHIR)
    header = json.loads(unb64u(token.split(".")[0]))
    assert header == {"alg": "dir", "enc": "A256GCM", "cty": "application/fhir+json", "zip": "DEF"}
    assert len(key) == 32 and token.split(".")[1] == ""  # dir: empty encrypted-key segment
    # zip DEF is raw DEFLATE (RFC 1951): check with an independent decrypt + inflate.
    parts = token.split(".")
    raw = AESGCM(key).decrypt(unb64u(parts[2]), unb64u(parts[3]) + unb64u(parts[4]), parts[0].encode())
    assert zlib.decompress(raw, -15) == plaintext
    again, _ = jwe.encrypt(plaintext, cty=jwe.CTY_FHIR, key=key)
    assert again.split(".")[2] != parts[2], "each encryption must use a new IV"
    assert jwe.decrypt(again, key).plaintext == plaintext
    assert jwe.decrypt(token, key).cty == jwe.CTY_FHIR


def test_uncompressed_and_fresh_keys_differ():
    t1, k1 = jwe.encrypt(b'{"a":1}', cty=jwe.CTY_FHIR, compress=False)
    t2, k2 = jwe.encrypt(b'{"a":1}', cty=jwe.CTY_FHIR, compress=False)
    assert k1 != k2
    assert "zip" not in json.loads(unb64u(t1.split(".")[0]))
    assert jwe.decrypt(t1, k1).plaintext == b'{"a":1}'


def test_one_changed_byte_is_refused():
    token, key = jwe.encrypt(b"x" * 5000, cty=jwe.CTY_FHIR)
    head, _, iv, ct, tag = token.split(".")
    i = len(head) + 2 + len(iv) + 1 + len(ct) // 2  # a byte in the ciphertext
    tampered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    with pytest.raises(DecryptionFailed) as err:
        jwe.decrypt(tampered, key)
    assert err.value.user_message.endswith(".")


def test_changed_header_is_refused():
    token, key = jwe.encrypt(b"x" * 5000, cty=jwe.CTY_FHIR)
    header = json.loads(unb64u(token.split(".")[0]))
    header["cty"] = jwe.CTY_SHC  # still a valid header, but not the one the tag authenticates
    forged = b64u(json.dumps(header).encode()) + token[token.index("."):]
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(forged, key)


def test_wrong_key_is_refused():
    token, _ = jwe.encrypt(b"secret", cty=jwe.CTY_FHIR)
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, os.urandom(32))


def test_zip_bomb_is_stopped_at_the_limit():
    # 128 MiB of zeros deflates to ~130 KB; the default limit is 64 MiB, so inflation must stop early.
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero = bytes(1 << 20)
    bomb = b"".join(comp.compress(zero) for _ in range(128)) + comp.flush()
    key = os.urandom(32)
    token = hand_made_jwe({"alg": "dir", "enc": "A256GCM", "zip": "DEF", "cty": jwe.CTY_FHIR}, bomb, key)
    with pytest.raises(ContentTooLarge) as err:
        jwe.decrypt(token, key)
    assert "expands" in err.value.user_message
    assert jwe.decrypt(token, key, max_plaintext=200 << 20).plaintext == bytes(128 << 20)


def test_hand_made_conforming_jwe_is_accepted():
    key = os.urandom(32)
    token = hand_made_jwe({"alg": "dir", "enc": "A256GCM", "cty": jwe.CTY_FHIR}, b'{"resourceType":"Bundle"}', key)
    assert jwe.decrypt(token, key).plaintext == b'{"resourceType":"Bundle"}'


@pytest.mark.parametrize("header", [
    {"alg": "dir", "enc": "A128GCM"},
    {"alg": "A256KW", "enc": "A256GCM"},
    {"alg": "dir", "enc": "A256GCM", "zip": "GZ"},
    {"alg": "dir", "enc": "A256GCM", "crit": ["exp"], "exp": 1},
])
def test_other_algorithms_are_refused(header):
    key = os.urandom(32)
    with pytest.raises(LinkUnsupported):
        jwe.decrypt(hand_made_jwe(header, b"{}", key), key)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c.d.e", "!!!.x.y.z.w", b"\xff\xfe.a.b.c.d"])
def test_garbage_is_a_typed_error(token):
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(token, os.urandom(32))

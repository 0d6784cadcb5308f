"""The receiver end to end against real loopback servers.

Third-party links (the SHL spec's IPS example and the validation SDK's direct-file and passcode links) point at
hosts we cannot reach in tests (a public raw-file host, ``localhost:8090``). Each is rewritten IN MEMORY ONLY:
the link's JSON is decoded, the scheme/host/port of ``url`` replaced by our loopback server's origin (path kept),
and re-encoded. Key, flags, label and exp stay byte-for-byte as published; the fixture files are read, never
modified, and their encrypted files are served unchanged.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from sync import fetch, jwe, links, qr, receiver
from sync.cid import compute_cid
from sync.errors import (
    CidMismatch, DecryptionFailed, FetchRefused, FetchTimeout, FetchTooLarge, LinkExpired, LinkInactive,
    LinkInvalid, LinkSignatureInvalid, LinkUnsupported, PasscodeLocked, PasscodeRequired, PasscodeWrong,
    QrNotFound, ShareNotForYou, ShareRevoked, SyncError,
)
from vault import crypto

SDK_EXP = 1704096000
BEFORE_SDK_EXP = SDK_EXP - 86400
NOW = 1_800_000_000


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rewrite_to(link_text: str, origin: str) -> str:
    """Point a published link at our loopback server, in memory; everything else is left as published."""
    prefix, _, encoded = link_text.strip().rpartition("shlink:/")
    obj = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    parts = urlsplit(obj["url"])
    obj["url"] = origin + parts.path + (("?" + parts.query) if parts.query else "")
    return prefix + "shlink:/" + b64u(json.dumps(obj, separators=(",", ":")).encode())


def one_sentence(err: SyncError) -> None:
    msg = err.user_message
    assert msg and "\n" not in msg and msg.endswith("."), msg


def open_local(text, **kw):
    kw.setdefault("recipient", "Dr. Test")
    kw.setdefault("allow_local_http", True)
    kw.setdefault("now", NOW)
    return receiver.open_link(text, **kw)


# --- published third-party links ------------------------------------------------------------------------------

def test_spec_ips_link_opens_to_the_exact_bundle(server, shl_dir):
    spec = shl_dir / "spec"
    enc = (spec / "IPS_IG-bundle-01-enc.txt").read_bytes()
    link = (spec / "IPS_IG-bundle-01-shl.txt").read_text()  # viewer-prefixed
    path = urlsplit(links.parse_shlink(link).url).path
    server.serve_bytes(path, enc)
    result = open_local(rewrite_to(link, server.origin))
    assert result.bundles == [json.loads((spec / "IPS_IG-bundle-01.json").read_text())]
    assert result.label == "Demo SHL for IPS_IG-bundle-01" and result.kind == "shlink"
    assert server.seen[0].method == "GET" and server.seen[0].query == {"recipient": ["Dr. Test"]}
    assert result.check("expiry").status == "not_applicable"
    assert result.check("cid").status == "not_applicable"  # that URL does not name a CID
    assert result.check("consent").status == "not_checked" and not result.chain_checked
    assert result.check("signature").status == "not_applicable"
    # The same link read from the spec's QR image.
    assert qr.decode_file(spec / "IPS_IG-bundle-01-shl.png") == link


def _sdk(shl_dir, name):
    return json.loads((shl_dir / "validation-sdk" / "shl-examples" / f"{name}.json").read_text())


def _health_card_bundle(bundle: dict) -> None:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Patient" and set(kinds[1:]) == {"Immunization"}


def test_sdk_direct_file_link(server, shl_dir):
    fixture = _sdk(shl_dir, "jvb42XYZTjY2BTZ2mcL6nozbTFT8Vs5G2_I-_IuxCZo")
    link = (shl_dir / "validation-sdk" / "shlink-link-direct.txt").read_text()
    assert link.strip() == fixture["link"]
    server.serve_bytes(urlsplit(fixture["payload"]["url"]).path, fixture["jweFiles"][0].encode())
    result = open_local(rewrite_to(link, server.origin), now=BEFORE_SDK_EXP)
    assert result.label == "Sample Set 1" and result.exp == SDK_EXP
    assert [f.content_type for f in result.files] == ["application/smart-health-card"]
    assert len(result.bundles) == 1
    _health_card_bundle(result.bundles[0])
    assert result.check("expiry").status == "passed"
    assert result.check("health_card_signature").status == "not_checked"
    # The card itself is handed on untouched, for the records importer to verify against trusted issuers.
    decrypted = json.loads(jwe.decrypt(fixture["jweFiles"][0], links.b64u_decode(fixture["payload"]["key"])).plaintext)
    assert result.files[0].health_cards == decrypted["verifiableCredential"]


def test_sdk_link_is_expired_today(server, shl_dir):
    link = (shl_dir / "validation-sdk" / "shlink-link-direct.txt").read_text()
    with pytest.raises(LinkExpired) as err:
        receiver.open_link(rewrite_to(link, server.origin), recipient="Dr. Test", allow_local_http=True)
    one_sentence(err.value)
    assert not server.seen, "an expired link must not be fetched"


class ManifestServer:
    """The SHL manifest protocol as the spec describes it, serving the validation SDK's passcode example."""

    def __init__(self, server, fixture: dict, embed: bool = False):
        self.server, self.fixture, self.embed = server, fixture, embed
        self.remaining = fixture["attempts"]
        self.active = True
        self.bodies: list[dict] = []
        for path, token in zip(fixture["filePaths"], fixture["jweFiles"]):
            server.serve_bytes(f"/shl/{path}", token.encode())
        server.route("/" + fixture["randomUrlSegment"], self.handle)

    def handle(self, req, seen):
        body = json.loads(seen.body)
        self.bodies.append(body)
        if not self.active:
            return self.server.json_response(req, 404, {})
        if body.get("passcode") != self.fixture["passcode"]:
            self.remaining -= 1
            if self.remaining <= 0:
                self.active = False
            return self.server.json_response(req, 401, {"remainingAttempts": self.remaining})
        files = []
        for path, token in zip(self.fixture["filePaths"], self.fixture["jweFiles"]):
            if self.embed and body.get("embeddedLengthMax", 0) >= len(token):
                files.append({"contentType": "application/smart-health-card", "embedded": token})
            else:
                files.append({"contentType": "application/smart-health-card",
                              "location": f"{self.server.origin}/shl/{path}"})
        return self.server.json_response(req, 200, {"files": files})


@pytest.fixture
def sdk_manifest(server, shl_dir):
    fixture = _sdk(shl_dir, "ERn18l4lL3_5yPXMSzx3ZejyMM_XIeWeseXa3DXsJD0")
    link = (shl_dir / "validation-sdk" / "shlink-link-with-viewer.txt").read_text()
    assert link.strip() == fixture["link"] and fixture["passcode"] == "1234"
    return ManifestServer(server, fixture), rewrite_to(link, server.origin)


def test_sdk_passcode_link_with_location_files(sdk_manifest):
    manifest, link = sdk_manifest
    asked = []
    result = open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: asked.append(rem) or "1234")
    assert asked == [None]
    assert manifest.bodies == [{"recipient": "Dr. Test", "passcode": "1234"}]
    assert [f.source for f in result.files] == ["location", "location"]
    assert len(result.bundles) == 2
    for b in result.bundles:
        _health_card_bundle(b)
    assert result.check("passcode").status == "passed"


def test_sdk_passcode_link_with_embedded_files(server, shl_dir):
    fixture = _sdk(shl_dir, "ERn18l4lL3_5yPXMSzx3ZejyMM_XIeWeseXa3DXsJD0")
    manifest = ManifestServer(server, fixture, embed=True)
    link = rewrite_to(fixture["link"], server.origin)
    result = open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: "1234",
                        embedded_length_max=1_000_000)
    assert manifest.bodies[0]["embeddedLengthMax"] == 1_000_000
    assert [f.source for f in result.files] == ["embedded", "embedded"]
    assert not [s for s in server.seen if s.path.startswith("/shl/")]
    assert len(result.bundles) == 2


def test_passcode_wrong_then_right_reports_remaining_attempts(sdk_manifest):
    manifest, link = sdk_manifest
    answers = iter(["0000", "9999", "1234"])
    asked = []
    result = open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: asked.append(rem) or next(answers))
    assert asked == [None, 8, 7]
    assert len(result.bundles) == 2


def test_passcode_wrong_then_cancelled(sdk_manifest):
    _, link = sdk_manifest
    answers = iter(["0000", None])
    with pytest.raises(PasscodeWrong) as err:
        open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: next(answers))
    assert err.value.remaining_attempts == 8
    assert err.value.user_message == "The passcode is wrong; 8 attempts remain."
    with pytest.raises(PasscodeRequired):
        open_local(link, now=BEFORE_SDK_EXP)  # no way to ask


def test_passcode_locked_after_too_many_attempts(sdk_manifest):
    manifest, link = sdk_manifest
    asked = []
    with pytest.raises(PasscodeLocked) as err:
        open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: asked.append(rem) or "0000")
    one_sentence(err.value)
    assert asked == [None, 8, 7, 6, 5, 4, 3, 2, 1]
    with pytest.raises(LinkInactive):  # even the right passcode cannot open it now
        open_local(link, now=BEFORE_SDK_EXP, passcode_provider=lambda rem: "1234")


# --- our own shares: build -> JWE -> link -> QR -> open ---------------------------------------------------------

BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Łukasiewicz", "given": ["Zoë"]}]}},
    {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                  "code": {"text": "HbA1c"}, "valueQuantity": {"value": 6.1, "unit": "%"}}},
]}


def publish(server, bundle=BUNDLE) -> tuple[str, bytes, str]:
    data, key = jwe.encrypt_bundle(bundle)
    cid = compute_cid(data)
    return server.serve_bytes(f"/ipfs/{cid}", data), key, cid


def test_round_trip_through_a_qr_png(server, tmp_path):
    url, key, cid = publish(server)
    text = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U", exp=NOW + 3600, label="HbA1c for Dr. A"))
    png = qr.write_png(text, tmp_path / "share.png")
    result = open_local(png)
    assert result.bundles == [BUNDLE]
    assert result.check("cid").status == "passed" and result.files[0].cid == cid
    assert result.check("expiry").status == "passed"
    assert result.consent_id == crypto.mac(key, b"medvault/consent/v1").hex() == links.consent_id(key).hex()
    as_json = json.loads(json.dumps(result.to_json()))
    assert as_json["bundles"] == [BUNDLE] and {c["name"] for c in as_json["checks"]} >= {"cid", "consent"}
    assert open_local(str(png)).bundles == [BUNDLE]  # a path given as text


def _swap(server, cid: str, data: bytes) -> None:
    server.serve_bytes(f"/ipfs/{cid}", data)


def test_tampered_file_is_refused(server):
    url, key, cid = publish(server)
    original = fetch.get_jwe(url, policy=fetch.FetchPolicy(allow_local_http=True))
    i = len(original) - 40
    tampered = original[:i] + (b"A" if original[i:i + 1] != b"A" else b"B") + original[i + 1:]
    _swap(server, cid, tampered)
    link = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U"))
    with pytest.raises(CidMismatch) as err:
        open_local(link)
    one_sentence(err.value)
    # Without a CID in the address the AEAD tag still catches the change.
    server.serve_bytes("/plain/file", tampered)
    with pytest.raises(DecryptionFailed):
        open_local(links.build_shlink(links.ShlPayload(url=server.origin + "/plain/file", key=key, flag="U")))


def test_file_swapped_for_another_valid_share_is_refused(server):
    url, key, cid = publish(server)
    other_token, _ = jwe.encrypt(json.dumps(BUNDLE).encode(), cty=jwe.CTY_FHIR, key=key)  # same key, valid file
    _swap(server, cid, other_token.encode())
    with pytest.raises(CidMismatch):
        open_local(links.build_shlink(links.ShlPayload(url=url, key=key, flag="U")))


def test_wrong_key_is_refused(server):
    url, _, _ = publish(server)
    with pytest.raises(DecryptionFailed) as err:
        open_local(links.build_shlink(links.ShlPayload(url=url, key=crypto.random_bytes(32), flag="U")))
    one_sentence(err.value)


def test_expired_link_is_refused_before_fetching(server):
    url, key, _ = publish(server)
    seen_before = len(server.seen)
    with pytest.raises(LinkExpired):
        open_local(links.build_shlink(links.ShlPayload(url=url, key=key, flag="U", exp=NOW)), now=NOW)
    assert len(server.seen) == seen_before


@pytest.mark.parametrize("payload, error", [
    ({"flag": "UP"}, LinkInvalid),
    ({"flag": "U", "v": 2}, LinkUnsupported),
])
def test_bad_flags_and_versions(server, payload, error):
    obj = {"url": server.origin + "/ipfs/x", "key": b64u(bytes(32)), **payload}
    with pytest.raises(error) as err:
        open_local("shlink:/" + b64u(json.dumps(obj).encode()))
    one_sentence(err.value)
    assert not server.seen


@pytest.mark.parametrize("text", ["otherapp:/abc", "https://viewer.example/#nothing", "just some words"])
def test_unknown_scheme(text):
    with pytest.raises(LinkUnsupported) as err:
        open_local(text)
    one_sentence(err.value)


def test_qr_image_with_no_code(tmp_path):
    from PIL import Image
    path = tmp_path / "photo.png"
    Image.new("RGB", (300, 300), "white").save(path)
    with pytest.raises(QrNotFound):
        open_local(path)


def test_hostile_servers(server, silent_server):
    big = server.serve_endless("/ipfs/big")
    with pytest.raises(FetchTooLarge):
        open_local(links.build_shlink(links.ShlPayload(url=big, key=bytes(32), flag="U")),
                   policy=fetch.FetchPolicy(allow_local_http=True, max_bytes=8 << 20))
    with pytest.raises(FetchTimeout):
        open_local(links.build_shlink(links.ShlPayload(url=silent_server + "/ipfs/x", key=bytes(32), flag="U")),
                   policy=fetch.FetchPolicy(allow_local_http=True, timeout=1.0))
    html = server.serve_bytes("/ipfs/page", b"<html><body>gateway</body></html>", content_type="text/html")
    with pytest.raises(FetchRefused) as err:
        open_local(links.build_shlink(links.ShlPayload(url=html, key=bytes(32), flag="U")))
    assert "web page" in err.value.user_message
    away = server.redirect("/ipfs/away", "http://127.0.0.2:9/ipfs/x")
    with pytest.raises(FetchRefused):
        open_local(links.build_shlink(links.ShlPayload(url=away, key=bytes(32), flag="U")))
    with pytest.raises(FetchRefused):  # local http only when the caller allows it
        open_local(links.build_shlink(links.ShlPayload(url=html, key=bytes(32), flag="U")), allow_local_http=False)


# --- directed medvault:/ shares and the consent hook ------------------------------------------------------------

@pytest.fixture
def directed(server):
    patient, clinician, stranger = (crypto.ed25519_new_seed() for _ in range(3))
    card = links.card_from_link(links.build_card(clinician, name="Dr. Ana Rivera", address=None, iat=NOW))
    url, key, cid = publish(server)
    text = links.build_directed_share(patient, card, url=url, key=key, exp=NOW + 60, label="For Dr. Rivera", iat=NOW)
    return patient, clinician, stranger, card, text, key


def test_directed_share_opens_for_its_recipient(directed, tmp_path):
    patient, clinician, _, card, text, key = directed
    png = qr.write_png(text, tmp_path / "directed.png")
    result = open_local(png, x25519_private=crypto.x25519_private_from_ed25519(clinician), my_did=card.did)
    assert result.bundles == [BUNDLE] and result.kind == "medvault-share"
    assert result.sender == links.did_key_from_ed25519(crypto.ed25519_public(patient))
    assert result.check("signature").status == "passed" and result.check("recipient").status == "passed"
    assert result.check("cid").status == "passed"


def test_directed_share_for_someone_else(directed, server):
    _, _, stranger, _, text, _ = directed
    before = len(server.seen)
    with pytest.raises(ShareNotForYou) as err:
        open_local(text, x25519_private=crypto.x25519_private_from_ed25519(stranger))
    assert err.value.user_message == "This share was sent to someone else and cannot be opened with your identity."
    with pytest.raises(ShareNotForYou):
        open_local(text)  # no identity at all
    assert len(server.seen) == before


def test_forged_directed_share(directed):
    _, clinician, _, _, text, _ = directed
    env = json.loads(base64.urlsafe_b64decode(text[10:] + "=" * (-len(text[10:]) % 4)))
    env["body"]["url"] = env["body"]["url"].replace("/ipfs/", "/ipfs/x")
    forged = "medvault:/" + b64u(links.canonical_json(env))
    with pytest.raises(LinkSignatureInvalid):
        open_local(forged, x25519_private=crypto.x25519_private_from_ed25519(clinician))


def test_expired_directed_share(directed):
    _, clinician, _, _, text, _ = directed
    with pytest.raises(LinkExpired):
        open_local(text, x25519_private=crypto.x25519_private_from_ed25519(clinician), now=NOW + 60)


PATIENT_ADDRESS = "0x" + "ab" * 20


def test_consent_checker_hook_asks_about_the_patient_the_link_names(server):
    patient, clinician = crypto.ed25519_new_seed(), crypto.ed25519_new_seed()
    card = links.card_from_link(links.build_card(clinician, name="Dr. Ana Rivera", address=None, iat=NOW))
    url, key, _ = publish(server)
    text = links.build_directed_share(patient, card, url=url, key=key, exp=NOW + 60, label="For Dr. Rivera", iat=NOW,
                                      patient=PATIENT_ADDRESS)
    priv = crypto.x25519_private_from_ed25519(clinician)
    asked = []
    ok = open_local(text, x25519_private=priv, consent_checker=lambda cid, who: asked.append((cid, who)) or True)
    assert asked == [(crypto.mac(key, b"medvault/consent/v1"), PATIENT_ADDRESS)]
    assert ok.chain_checked and ok.check("consent").status == "passed" and ok.patient == PATIENT_ADDRESS
    assert PATIENT_ADDRESS in ok.check("consent").detail
    before = len(server.seen)
    with pytest.raises(ShareRevoked) as err:
        open_local(text, x25519_private=priv, consent_checker=lambda cid, who: False)
    one_sentence(err.value)
    assert len(server.seen) == before, "a revoked share must not be fetched"


def test_a_link_naming_no_patient_is_not_checked_by_its_id_alone(directed):
    """Anyone holding a link can register its consent id under their own key; an id alone proves nothing."""
    _, clinician, _, _, text, _ = directed
    asked = []
    result = open_local(text, x25519_private=crypto.x25519_private_from_ed25519(clinician),
                        consent_checker=lambda cid, who: asked.append(cid) or True)
    assert asked == [] and not result.chain_checked and result.patient is None
    assert result.check("consent").status == "not_checked" and "name the patient" in result.check("consent").detail


def test_shlink_names_its_patient_and_refuses_a_malformed_one(server):
    url, key, _ = publish(server)
    text = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U", patient=PATIENT_ADDRESS))
    assert links.parse_shlink(text).patient == PATIENT_ADDRESS
    result = open_local(text, consent_checker=lambda cid, who: who == PATIENT_ADDRESS)
    assert result.chain_checked and result.patient == PATIENT_ADDRESS
    obj = json.loads(base64.urlsafe_b64decode(text[8:] + "=" * (-len(text[8:]) % 4)))
    obj[links.SHL_PATIENT_MEMBER] = "someone"
    with pytest.raises(LinkInvalid) as err:
        links.parse_shlink("shlink:/" + b64u(json.dumps(obj).encode()))
    one_sentence(err.value)


def test_card_link_is_not_a_share(directed):
    _, clinician, _, _, _, _ = directed
    with pytest.raises(LinkUnsupported) as err:
        open_local(links.build_card(clinician, name="Dr. A", address=None, iat=1))
    assert "identity card" in err.value.user_message


def test_decrypted_content_that_is_not_fhir(server):
    for body in (b"not json", b'{"hello": "world"}', b"[" * 10000 + b"]" * 10000):
        token, key = jwe.encrypt(body, cty=jwe.CTY_FHIR)
        url = server.serve_bytes(f"/f/{len(server.routes)}", token.encode())
        with pytest.raises(SyncError) as err:
            open_local(links.build_shlink(links.ShlPayload(url=url, key=key, flag="U")))
        assert type(err.value).__name__ == "ContentInvalid"
        one_sentence(err.value)


def test_in_memory_camera_frame(server):
    from PIL import Image
    url, key, _ = publish(server)
    frame = Image.new("RGB", (1280, 720), (90, 90, 90))
    frame.paste(qr.make_image(links.build_shlink(links.ShlPayload(url=url, key=key, flag="U"))).convert("RGB"),
                (300, 50))
    assert open_local(frame).bundles == [BUNDLE]

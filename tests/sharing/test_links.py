"""Link formats: the SHL spec's own links, our builders, medvault's signed links, and each malformed case."""

from __future__ import annotations

import base64
import json

import pytest

from sync import links
from sync.errors import LinkInvalid, LinkSignatureInvalid, LinkUnsupported, ShareNotForYou, SyncError
from vault import crypto

KEY = bytes(range(32))


def shl_text(obj: dict) -> str:
    return "shlink:/" + links.b64u_encode(json.dumps(obj).encode())


def one_sentence(err: SyncError) -> None:
    msg = err.user_message
    assert msg and "\n" not in msg and msg.endswith(".") and msg.count(". ") == 0, msg


def test_spec_link_parses_bare_and_behind_viewer(shl_dir):
    details = json.loads((shl_dir / "spec" / "IPS_IG-bundle-01-shl-details.json").read_text())
    want = details["shlinkJsonPayload"]
    for text in (details["shlink"], details["shlinkBare"], (shl_dir / "spec" / "IPS_IG-bundle-01-shl.txt").read_text()):
        p = links.parse_shlink(text)
        assert p.url == want["url"] and p.label == want["label"] and p.flag == "LU"
        assert links.b64u_encode(p.key) == want["key"] and p.exp is None and p.v == 1
        assert p.direct_file and not p.needs_passcode


def test_validation_sdk_links(shl_dir):
    sdk = shl_dir / "validation-sdk"
    direct = links.parse_link((sdk / "shlink-link-direct.txt").read_text())
    assert direct.flag == "U" and direct.exp == 1704096000 and direct.label == "Sample Set 1"
    viewer = links.parse_link((sdk / "shlink-link-with-viewer.txt").read_text())
    bare = links.parse_link((sdk / "shlink-link.txt").read_text())
    assert viewer == bare and bare.needs_passcode and not bare.direct_file
    assert json.loads((sdk / "shlink-payload.txt").read_text())["url"] == bare.url


def test_build_round_trip_is_minified_json_with_integer_seconds():
    p = links.ShlPayload(url="https://example.org/ipfs/bafkreia", key=KEY, flag="LU", exp=1_900_000_000,
                         label="Labs for Dr. Rivera")
    text = links.build_shlink(p)
    assert text.startswith("shlink:/") and "=" not in text
    obj = json.loads(base64.urlsafe_b64decode(text[8:] + "=" * (-len(text[8:]) % 4)))
    assert obj == {"url": p.url, "key": links.b64u_encode(KEY), "exp": 1_900_000_000, "flag": "LU",
                   "label": "Labs for Dr. Rivera", "v": 1}
    assert len(obj["key"]) == 43
    assert links.parse_shlink(text) == p
    assert links.parse_shlink("https://viewer.example/#" + text) == p


def test_exp_accepts_numeric_strings_and_milliseconds():
    base = {"url": "https://h/x", "key": links.b64u_encode(KEY)}
    assert links.parse_shlink(shl_text({**base, "exp": "1704096000"})).exp == 1704096000
    assert links.parse_shlink(shl_text({**base, "exp": "1704096000000"})).exp == 1704096000
    assert links.parse_shlink(shl_text({**base, "exp": 1704096000.5})).exp == 1704096000


@pytest.mark.parametrize("change, error", [
    ({"flag": "UP"}, LinkInvalid),
    ({"flag": "LPU"}, LinkInvalid),
    ({"flag": "X"}, LinkUnsupported),
    ({"v": 2}, LinkUnsupported),
    ({"v": "1"}, LinkInvalid),
    ({"url": "https://h/" + "a" * 119}, LinkInvalid),
    ({"url": "ftp://h/x"}, LinkUnsupported),
    ({"url": None}, LinkInvalid),
    ({"label": "x" * 81}, LinkInvalid),
    ({"key": links.b64u_encode(KEY[:31])}, LinkInvalid),
    ({"key": "!" * 43}, LinkInvalid),
    ({"exp": "soon"}, LinkInvalid),
    ({"exp": True}, LinkInvalid),
])
def test_malformed_shlinks_are_typed_errors(change, error):
    obj = {"url": "https://h/x", "key": links.b64u_encode(KEY), "flag": "L", **change}
    with pytest.raises(error) as err:
        links.parse_shlink(shl_text(obj))
    one_sentence(err.value)


def test_limits_hold_at_the_boundary():
    ok = {"url": "https://h/" + "a" * 118, "key": links.b64u_encode(KEY), "label": "x" * 80}
    assert len(ok["url"]) == 128 and links.check_url(ok["url"]) == ok["url"]
    with pytest.raises(LinkInvalid):
        links.check_url(ok["url"] + "a")
    assert links.parse_shlink(shl_text(ok)).label == "x" * 80
    with pytest.raises(ValueError):
        links.build_shlink(links.ShlPayload(url="https://h/x", key=KEY, exp="soon"))  # type: ignore[arg-type]
    with pytest.raises(LinkInvalid):
        links.build_shlink(links.ShlPayload(url="https://h/x", key=KEY, flag="UP"))


@pytest.mark.parametrize("text, error", [
    ("http://example.org/", LinkUnsupported),
    ("otherapp:/eyJ9", LinkUnsupported),
    ("shlink:/not-base64!", LinkInvalid),
    ("shlink:/" + links.b64u_encode(b"[1,2]"), LinkInvalid),
    ("shlink:/" + links.b64u_encode(b"{not json"), LinkInvalid),
    ("shlink:/" + "A" * 10000, LinkInvalid),
    ("medvault:/" + links.b64u_encode(b'{"t":"share"}'), LinkInvalid),
])
def test_unknown_schemes_and_garbage(text, error):
    with pytest.raises(error) as err:
        links.parse_link(text)
    one_sentence(err.value)


def test_did_key_vectors(fixtures_dir):
    vectors = json.loads((fixtures_dir / "did-key" / "ed25519-x25519.json").read_text())
    assert vectors
    for did, v in vectors.items():
        seed = bytes.fromhex(v["seed"])
        public = crypto.ed25519_public(seed)
        assert links.did_key_from_ed25519(public) == did
        assert links.ed25519_from_did_key(did) == public


# --- medvault:/ ---------------------------------------------------------------------------------------------------

@pytest.fixture
def people():
    patient, clinician, other = (crypto.ed25519_new_seed() for _ in range(3))
    card = links.card_from_link(links.build_card(clinician, name="Dr. Ana Rivera",
                                                 address="0x" + "1f" * 20, iat=1_700_000_000))
    return patient, clinician, other, card


def test_card_round_trip(people):
    _, clinician, _, card = people
    pub = crypto.ed25519_public(clinician)
    assert card.did == links.did_key_from_ed25519(pub) and card.name == "Dr. Ana Rivera"
    assert card.x25519_public == crypto.x25519_public_from_ed25519(pub)
    assert card.address == "0x" + "1f" * 20


def test_directed_share_round_trip_and_only_recipient_can_open(people):
    patient, clinician, other, card = people
    text = links.build_directed_share(patient, card, url="http://127.0.0.1:8080/ipfs/bafkreia", key=KEY,
                                      exp=1_900_000_000, label="For Dr. Rivera", iat=1_700_000_000)
    assert text.startswith("medvault:/")
    link = links.parse_link(text)
    assert link.type == "share" and link.v == 1
    assert link.sender == links.did_key_from_ed25519(crypto.ed25519_public(patient))
    assert link.body.to == card.did and link.body.exp == 1_900_000_000 and link.body.label == "For Dr. Rivera"
    assert links.unseal_share_key(link.body, crypto.x25519_private_from_ed25519(clinician)) == KEY
    with pytest.raises(ShareNotForYou) as err:
        links.unseal_share_key(link.body, crypto.x25519_private_from_ed25519(other))
    one_sentence(err.value)
    assert KEY not in base64.urlsafe_b64decode(text[10:] + "==")  # the key never travels in the clear


def test_signature_is_over_canonical_json_with_context(people):
    patient, _, _, card = people
    text = links.build_return(patient, card, url="https://h/ipfs/bafkreia", key=KEY, exp=None, label=None, iat=5)
    env = json.loads(base64.urlsafe_b64decode(text[10:] + "=" * (-len(text[10:]) % 4)))
    sig = base64.urlsafe_b64decode(env.pop("sig") + "==")
    signed = links.SIGNATURE_CONTEXT + json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    assert crypto.ed25519_verify(crypto.ed25519_public(patient), signed, sig)
    assert links.parse_link(text).type == "return"


def _reencode(env: dict) -> str:
    return "medvault:/" + links.b64u_encode(links.canonical_json(env))


def _envelope(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text[10:] + "=" * (-len(text[10:]) % 4)))


def test_altered_or_forged_medvault_links_are_refused(people):
    patient, clinician, other, card = people
    text = links.build_directed_share(patient, card, url="https://h/ipfs/bafkreia", key=KEY, exp=10, label="a",
                                      iat=1)
    env = _envelope(text)
    env["body"]["exp"] = 99999999999 // 1000  # extend the expiry
    with pytest.raises(LinkSignatureInvalid) as err:
        links.parse_link(_reencode(env))
    one_sentence(err.value)
    env = _envelope(text)
    env["from"] = links.did_key_from_ed25519(crypto.ed25519_public(other))  # claim another sender
    with pytest.raises(LinkSignatureInvalid):
        links.parse_link(_reencode(env))
    # A card whose encryption key is not derived from its signing key would redirect shares to someone else.
    env = _envelope(links.build_card(clinician, name="Dr. A", address=None, iat=1))
    env["body"]["x25519"] = links.b64u_encode(crypto.x25519_public_from_ed25519(crypto.ed25519_public(other)))
    env.pop("sig")
    env["sig"] = links.b64u_encode(crypto.ed25519_sign(clinician, links.SIGNATURE_CONTEXT + links.canonical_json(env)))
    with pytest.raises(LinkSignatureInvalid):
        links.parse_link(_reencode(env))


def test_newer_or_unknown_medvault_links(people):
    patient, _, _, card = people
    env = _envelope(links.build_card(patient, name="P", address=None, iat=1))
    for change, error in (({"v": 2}, LinkUnsupported), ({"t": "invoice"}, LinkUnsupported),
                          ({"extra": 1}, LinkInvalid)):
        with pytest.raises(error):
            links.parse_link(_reencode({**env, **change}))

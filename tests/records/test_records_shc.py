"""SMART Health Cards against the HL7 spec examples and the validation SDK's conformance cases."""

from __future__ import annotations

import json

import pytest

from vault.records.errors import (CardInvalid, CardSignatureInvalid, IssuerInvalid, RecordsError)
from vault.records.importer import ImportReport, ImportService
from vault.records.shc import TrustStore

from records_support import fixture_dir, rows

ISSUER = "https://spec.smarthealth.cards/examples/issuer"


@pytest.fixture
def trusted(vault):
    assert TrustStore(vault).add_folder(ISSUER, fixture_dir("shl-shc", "issuer")) == 2
    return vault


def spec(name: str):
    return fixture_dir("shl-shc", "spec") / name


def sdk(name: str):
    return fixture_dir("shl-shc", "validation-sdk") / name


@pytest.mark.parametrize("n", ["00", "01", "02"])
def test_spec_examples_verify_from_file(trusted, n):
    r = ImportService(trusted).import_file(spec(f"example-{n}-e-file.smart-health-card"))
    assert r.trust == "issuer-verified"
    assert [c["status"] for c in r.cards] == ["verified"] and r.cards[0]["flags"] == []
    with trusted.read() as conn:
        jws = conn.execute("SELECT jws FROM rec_cards").fetchall()
        assert [j for (j,) in jws] == [spec(f"example-{n}-d-jws.txt").read_text().strip()]   # original JWS kept
        stored = conn.execute("SELECT DISTINCT trust FROM rec_resources").fetchall()
    assert stored == [("issuer-verified",)]
    expected = json.loads(spec(f"example-{n}-a-fhirBundle.json").read_text())
    assert sum(r.by_type.values()) == len(expected["entry"])


@pytest.mark.parametrize("n,chunks", [("00", 1), ("01", 1), ("02", 3)])
def test_spec_examples_verify_from_qr_text_in_any_chunk_order(trusted, n, chunks):
    parts = [spec(f"example-{n}-f-qr-code-numeric-value-{i}.txt").read_text() for i in range(chunks)]
    text = "\n".join(reversed(parts))
    r = ImportService(trusted).import_data(text.encode(), "scan.txt")
    assert r.trust == "issuer-verified" and r.cards[0]["status"] == "verified"


def test_same_card_from_qr_and_file_dedupes(trusted):
    svc = ImportService(trusted)
    first = svc.import_file(spec("example-00-e-file.smart-health-card"))
    again = svc.import_data(spec("example-00-f-qr-code-numeric-value-0.txt").read_bytes(), "scan.txt")
    assert first.added > 0 and again.added == 0 and again.duplicates == first.added


def test_example_03_is_reported_revoked_and_expired_and_not_verified(trusted):
    r = ImportService(trusted).import_file(spec("example-03-e-file.smart-health-card"))
    card = r.cards[0]
    assert set(card["flags"]) >= {"revoked", "expired"}
    assert card["status"] == "unverified" and r.trust == "unverified"
    assert "revoked" in card["sentence"] and "expired" in card["sentence"]
    with trusted.read() as conn:
        assert conn.execute("SELECT count(*) FROM rec_resources WHERE trust = 'issuer-verified'").fetchone()[0] == 0


def test_unknown_issuer_is_stored_unverified_never_verified(vault):
    r = ImportService(vault).import_file(spec("example-00-e-file.smart-health-card"))
    assert r.trust == "unverified" and r.cards[0]["status"] == "unverified"
    assert "unknown-issuer" in r.cards[0]["flags"]
    with vault.read() as conn:
        assert {t for (t,) in conn.execute("SELECT trust FROM rec_resources")} == {"unverified"}


def test_bad_signature_is_refused_and_vault_unchanged(trusted):
    before = rows(trusted)
    with pytest.raises(CardSignatureInvalid) as err:
        ImportService(trusted).import_file(sdk("test-example-00-d-jws-invalid-signature.txt"))
    assert "\n" not in err.value.user_message and err.value.user_message.endswith(".")
    assert rows(trusted) == before


def test_tampered_payload_fails_signature(trusted, tmp_path):
    jws = spec("example-00-d-jws.txt").read_text().strip()
    h, p, s = jws.split(".")
    other = spec("example-01-d-jws.txt").read_text().strip().split(".")[1]
    forged = tmp_path / "forged.txt"
    forged.write_text(f"{h}.{other}.{s}")
    before = rows(trusted)
    with pytest.raises(CardSignatureInvalid):
        ImportService(trusted).import_file(forged)
    assert rows(trusted) == before


def test_trust_store_refuses_private_keys_and_non_smart_keys(vault):
    with pytest.raises(IssuerInvalid):
        TrustStore(vault).add(ISSUER, fixture_dir("shl-shc", "issuer", "issuer.jwks.private.json").read_bytes())
    with pytest.raises(IssuerInvalid):
        TrustStore(vault).add(ISSUER, sdk("wrong_curve_key.json").read_bytes())
    with pytest.raises(IssuerInvalid):
        TrustStore(vault).add("http://insecure.example/issuer", spec("../issuer/.well-known/jwks.json").read_bytes())
    assert TrustStore(vault).list() == []


# Validation SDK cases, by what a wallet must do with them.
REJECTED = {
    "test-example-00-d-jws-invalid-signature.txt": CardSignatureInvalid,
    "test-example-00-d-jws-der-signature.txt": CardSignatureInvalid,
    "test-example-00-d-jws-der-signature-r-neg.txt": CardSignatureInvalid,
    "test-example-00-d-jws-der-signature-rs-neg.txt": CardSignatureInvalid,
    "test-example-00-d-jws-der-signature-s-neg.txt": CardSignatureInvalid,
    "test-example-00-d-jws-wrong_jws_header_kid.txt": CardSignatureInvalid,
    "test-example-00-d-jws-issuer-kid-mismatch.txt": CardSignatureInvalid,
    "test-example-00-d-jws-no_jws_header_alg.txt": CardInvalid,
    "test-example-00-d-jws-no_jws_header_kid.txt": CardInvalid,
    "test-example-00-d-jws-no_jws_header_zip.txt": CardInvalid,
    "test-example-00-d-jws-no_deflate.txt": CardInvalid,
    "test-example-00-e-file-no_deflate.smart-health-card": CardInvalid,
    "test-example-00-e-file-invalid_deflate.smart-health-card": CardInvalid,
    "test-example-00-e-file-multi-jws-issues.smart-health-card": CardInvalid,
    "test-example-00-f-qr-code-numeric-value-0-odd-count.txt": CardInvalid,
    "test-example-00-f-qr-code-numeric-value-0-number-too-big.txt": CardInvalid,
    "test-example-00-f-qr-code-numeric-value-0-index-out-of-range.txt": CardInvalid,
    "test-example-00-f-qr-code-numeric-value-0-wrong-multi-chunk.txt": CardInvalid,
    "test-example-00-f-qr-code-numeric-value-0-qr_chunk_too_small.txt": CardInvalid,   # 1 of 17 chunks
    "test-example-02-f-qr-code-numeric-value-0-qr_chunk_too_big.txt": CardInvalid,    # 1 of 2 chunks
}
FLAGGED_UNVERIFIED = {   # signature cannot be checked: the issuer in the card is not the trusted one
    "test-example-00-d-jws-issuer-not-valid-with-smart-key.txt",
    "test-example-00-e-file-invalid_issuer_url.smart-health-card",
    "test-example-00-e-file-invalid_issuer_url_http.smart-health-card",
    "test-example-00-e-file-issuer_url_with_trailing_slash.smart-health-card",
    "test-example-00-e-file-bad_jwks.smart-health-card",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_broken_sdk_cards_are_rejected_with_a_reason(trusted, name):
    before = rows(trusted)
    with pytest.raises(REJECTED[name]) as err:
        ImportService(trusted).import_file(sdk(name))
    msg = err.value.user_message
    assert msg and "\n" not in msg and "Traceback" not in msg
    assert rows(trusted) == before


@pytest.mark.parametrize("name", sorted(FLAGGED_UNVERIFIED))
def test_sdk_cards_from_other_issuers_are_flagged_unverified(trusted, name):
    r = ImportService(trusted).import_file(sdk(name))
    assert r.trust == "unverified" and all(c["status"] == "unverified" and "unknown-issuer" in c["flags"]
                                           for c in r.cards)


def _card_like(path) -> bool:
    if path.suffix in (".png", ".jpg") or not path.is_file():
        return False
    head = path.read_bytes()[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"shc:/", b"eyJ")) or b"verifiableCredential" in path.read_bytes()


def test_no_sdk_card_or_qr_text_crashes(trusted):
    """Every card-like SDK case ends as a typed error with one sentence, or a report saying what was found."""
    d = fixture_dir("shl-shc", "validation-sdk")
    cases = [p for p in sorted(d.rglob("*")) if _card_like(p)]
    assert len(cases) >= 50
    outcomes = {}
    for p in cases:
        try:
            r = ImportService(trusted).import_file(p)
        except RecordsError as err:
            assert err.user_message and "\n" not in err.user_message
            outcomes[p.name] = "rejected"
            continue
        assert isinstance(r, ImportReport) and r.cards
        for c in r.cards:
            assert c["status"] in ("verified", "unverified")
            if c["status"] == "unverified":
                assert c["flags"], p.name        # never unverified without saying why
        outcomes[p.name] = r.cards[0]["status"]
    assert {n for n, o in outcomes.items() if o == "rejected"} >= set(REJECTED)

"""The records commands of the ``medvault`` CLI: exit codes, one-line errors, stable --json."""

from __future__ import annotations

import json

import pytest

from records_support import fixture_dir, synthea_patients, synthea_support


@pytest.fixture
def vdir(tmp_path, cli):
    d = tmp_path / "v"
    r = cli(["--vault", str(d), "init", "--kdf-profile", "test-insecure"])
    assert r.code == 0, r.err
    return d


def test_import_list_search_export_roundtrip(vdir, cli, tmp_path):
    files = [str(p) for p in synthea_support() + [min(synthea_patients(), key=lambda p: p.stat().st_size)]]
    r = cli(["--vault", str(vdir), "import", "--json", *files])
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert [o["added"] > 0 for o in out] == [True] * 3 and all("error" not in o for o in out)

    r = cli(["--vault", str(vdir), "import", files[0]])
    assert r.code == 0 and "imported before" in r.out

    r = cli(["--vault", str(vdir), "list", "--type", "Condition", "--json"])
    rows = json.loads(r.out)
    assert r.code == 0 and rows and all(x["rtype"] == "Condition" for x in rows)
    assert set(rows[0]) == {"rid", "rtype", "id", "date", "category", "code_system", "code", "display", "status",
                            "trust"}

    r = cli(["--vault", str(vdir), "search", "--json", rows[0]["display"].split()[0]])
    assert r.code == 0 and json.loads(r.out)

    for fmt in ("bundle", "ndjson", "ips"):
        out_file = tmp_path / f"out.{fmt}"
        r = cli(["--vault", str(vdir), "export", "--format", fmt, "-o", str(out_file), "--json"])
        assert r.code == 0, r.err
        assert json.loads(r.out)["resources"] > 0 and out_file.stat().st_mode & 0o077 == 0

    r = cli(["--vault", str(vdir), "audit", "--json"])
    events = [e["event"] for e in json.loads(r.out)]
    assert events.count("import") >= 4 and events.count("export") == 3
    for e in json.loads(r.out):
        assert "Schinner" not in json.dumps(e) and "Hoeger" not in json.dumps(e)


def test_bad_file_is_exit_1_with_one_line(vdir, cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    r = cli(["--vault", str(vdir), "import", str(bad)])
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "not valid JSON" in lines[0] and "Traceback" not in r.err


def test_skip_invalid_reports_each_skip(vdir, cli, tmp_path):
    p = tmp_path / "mixed.json"
    p.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "id": "a", "status": "final", "code": {"text": "x"}}},
        {"resource": {"resourceType": "Observation", "id": "b", "status": "final"}}]}))
    assert cli(["--vault", str(vdir), "import", str(p)]).code == 1
    r = cli(["--vault", str(vdir), "import", "--skip-invalid", str(p)])
    assert r.code == 0 and "skipped entry 2" in r.out


def test_issuer_add_then_card_verifies_and_shc_text_imports(vdir, cli):
    issuer = fixture_dir("shl-shc", "issuer")
    r = cli(["--vault", str(vdir), "issuer", "add", "https://spec.smarthealth.cards/examples/issuer", str(issuer)])
    assert r.code == 0, r.err
    r = cli(["--vault", str(vdir), "import", "--json",
             str(fixture_dir("shl-shc", "spec", "example-00-e-file.smart-health-card"))])
    assert json.loads(r.out)[0]["trust"] == "issuer-verified"
    qr = fixture_dir("shl-shc", "spec", "example-01-f-qr-code-numeric-value-0.txt").read_text().strip()
    r = cli(["--vault", str(vdir), "import", "--json", qr])
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["cards"][0]["status"] == "verified"
    r = cli(["--vault", str(vdir), "issuer", "list", "--json"])
    assert json.loads(r.out) == ["https://spec.smarthealth.cards/examples/issuer"]


def test_wrong_passphrase_is_exit_1(vdir, cli):
    r = cli(["--vault", str(vdir), "list"], env={"MEDVAULT_PASSPHRASE": "not the passphrase at all"})
    assert r.code == 1 and "passphrase" in r.err


def test_bare_jws_text_and_stdin(vdir, cli, monkeypatch):
    jws = fixture_dir("shl-shc", "spec", "example-00-d-jws.txt").read_text().strip()
    r = cli(["--vault", str(vdir), "import", "--json", jws])
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["cards"][0]["status"] == "unverified"     # no issuer trusted in this vault
    r = cli(["--vault", str(vdir), "import", str(vdir / "no-such-file.json")])
    assert r.code == 1 and "could not be read" in r.err


def test_link_import_hands_the_link_to_the_receiver_and_imports_its_bundles(vdir, cli, monkeypatch):
    """Narrow glue test: the real receiver is tested by the sharing suite against a real gateway."""
    import sync.receiver as receiver
    seen = {}
    bundle = json.loads(fixture_dir("shl-shc", "spec", "example-00-a-fhirBundle.json").read_text())

    class Result:
        kind, sender, bundles = "medvault-share", "did:key:z6MkexampleClinician", [bundle]

    def fake_open_link(text, **kw):
        seen.update(text=text, **kw)
        return Result()

    monkeypatch.setattr(receiver, "open_link", fake_open_link)
    r = cli(["--vault", str(vdir), "import", "--json", "medvault:/eyJleGFtcGxlIjp0cnVlfQ"])
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert seen["text"] == "medvault:/eyJleGFtcGxlIjp0cnVlfQ" and seen["x25519_private"]
    # a share's records are only as good as their content (a clinician's note is judged in tests/clinician_flow)
    assert out[0]["trust"] == "unverified" and out[0]["added"] == len(bundle["entry"])

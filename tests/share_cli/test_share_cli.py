"""Sharing end to end through the command line, with real components: SQLCipher vaults, the embedded gateway
as a real ``medvault serve`` process, QR PNGs decoded by zxing-cpp, and ``medvault open`` as another process."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tests.conftest import PASSPHRASE, run_medvault
from tests.share_cli.conftest import (cli_in, env_for, free_port, record_ids, serving, shared_ids,
                                      vault_fingerprint)


def _create(vault_dir: Path, port: int, *args: str) -> tuple[str, str]:
    """``share create`` through the CLI; returns (printed link, share id)."""
    res = cli_in(vault_dir, "share", "create", "--gateway", f"http://127.0.0.1:{port}", *args)
    assert res.code == 0, res.err
    link = res.out.strip()
    assert "\n" not in link
    share_id = res.err.split()[1].rstrip(":")
    return link, share_id


def _shares(vault_dir: Path) -> dict[str, dict]:
    res = cli_in(vault_dir, "share", "list", "--json")
    assert res.code == 0, res.err
    return {r["id"]: r for r in json.loads(res.out)}


def _open(link_or_png: str, vault_dir: Path | None = None, *extra: str):
    """``medvault open`` as its own process (the clinician's machine), optionally with a vault for directed links."""
    return run_medvault(["open", link_or_png, "--allow-local-http", *extra], env_for(vault_dir))


def test_open_share_by_qr_gives_exactly_the_selected_records(patient_vault, tmp_path):
    port = free_port()
    png = tmp_path / "x.png"
    link, share_id = _create(patient_vault, port, "--type", "Condition", "--qr", str(png), "--label", "GP visit")
    assert link.startswith("shlink:/")

    # The PNG decodes with zxing-cpp to exactly the printed link, at error-correction level M.
    found = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [b.text for b in found] == [link]
    assert found[0].ec_level == "M"

    from sync.links import parse_shlink
    payload = parse_shlink(link)
    assert payload.flag == "U" and payload.label == "GP visit" and len(payload.url) <= 128
    assert payload.url.startswith(f"http://127.0.0.1:{port}/ipfs/bafkrei")

    expected = record_ids(patient_vault, "Condition")
    assert len(expected) >= 2
    with serving(patient_vault, port):
        res = _open(str(png), None, "--json")
        human = _open(link)
    assert res.code == 0, res.err
    opened = json.loads(res.out)
    assert shared_ids(opened) == expected
    checks = {c["name"]: c["status"] for c in opened["checks"]}
    assert checks["cid"] == "passed" and checks["expiry"] == "passed" and checks["consent"] == "not_checked"
    # The Consent travelling with the records names exactly them, and the grant's end is the link's expiry.
    consents = [e["resource"] for b in opened["bundles"] for e in b["entry"]
                if e["resource"]["resourceType"] == "Consent"]
    assert len(consents) == 1
    assert {d["reference"]["reference"] for d in consents[0]["provision"]["data"]} == expected
    end = datetime.fromisoformat(consents[0]["provision"]["period"]["end"])
    assert int(end.timestamp()) == payload.exp
    assert human.code == 0, human.err
    assert "The consent chain could not be checked." in human.out
    assert _shares(patient_vault)[share_id]["state"] == "active"


def test_open_save_writes_the_bundle_to_a_file_only(patient_vault, tmp_path):
    port = free_port()
    link, _ = _create(patient_vault, port, "--type", "Condition")
    out_file = tmp_path / "received.json"
    with serving(patient_vault, port):
        res = _open(link, None, "--save", str(out_file))
    assert res.code == 0, res.err
    saved = json.loads(out_file.read_text())
    assert saved["resourceType"] == "Bundle"
    assert shared_ids({"bundles": [saved]}) == record_ids(patient_vault, "Condition")


def test_directed_share_opens_for_its_clinician_only(patient_vault, clinician_vault, stranger_vault, tmp_path):
    card_png = tmp_path / "card.png"
    card = cli_in(clinician_vault, "card", "--name", "Dr Ada Example", "--qr", str(card_png))
    assert card.code == 0, card.err
    assert card.out.strip().startswith("medvault:/")

    port = free_port()
    some = sorted(record_ids(patient_vault, "Condition"))[:2]
    link, share_id = _create(patient_vault, port, "--to", str(card_png),
                             *[a for i in some for a in ("--id", i)])
    assert link.startswith("medvault:/")
    with serving(patient_vault, port):
        mine = _open(link, clinician_vault, "--json")
        theirs = _open(link, stranger_vault)
        nobody = _open(link, None)
    assert mine.code == 0, mine.err
    assert shared_ids(json.loads(mine.out)) == set(some)
    assert theirs.code == 1 and theirs.out == ""
    assert theirs.err.strip() == ("medvault: This share was sent to someone else and cannot be opened with your "
                                  "identity.")
    assert nobody.code == 1 and len(nobody.err.strip().splitlines()) == 1
    row = _shares(patient_vault)[share_id]
    assert row["kind"] == "directed" and row["recipient_name"] == "Dr Ada Example"
    assert row["recipient"].startswith("did:key:z")


def test_expired_link_is_refused(patient_vault, tmp_path):
    from sync import shares
    from vault.store import Vault
    # The vault's clock is injected: the share is made "ten days ago" with a 7-day expiry.
    past = datetime.now(timezone.utc) - timedelta(days=10)
    with Vault.unlock(patient_vault, PASSPHRASE, clock=lambda: past) as vault:
        created = shares.create_share(vault, shares.Selection(types=("Condition",)), expires=timedelta(days=7),
                                      gateway_base=f"http://127.0.0.1:{free_port()}")
    res = _open(created.link)
    assert res.code == 1 and res.out == ""
    assert res.err.strip() == "medvault: This share has expired; ask the sender for a new one."
    assert _shares(patient_vault)[created.id]["state"] == "expired"


def test_revoke_stops_the_link_and_says_copies_cannot_be_recalled(patient_vault, tmp_path):
    port = free_port()
    link, share_id = _create(patient_vault, port, "--type", "Condition")
    keep_link, keep_id = _create(patient_vault, port, "--ips")
    with serving(patient_vault, port):
        assert _open(link).code == 0

    res = cli_in(patient_vault, "share", "revoke", share_id)
    assert res.code == 0, res.err
    assert "Copies already fetched cannot be recalled" in res.out
    states = _shares(patient_vault)
    assert states[share_id]["state"] == "revoked" and states[share_id]["revoked_at"] is not None
    assert states[keep_id]["state"] == "active"

    from vault.shares_store import VaultBlobStorage
    from vault.store import Vault
    with Vault.unlock(patient_vault, PASSPHRASE) as vault:
        held = set(VaultBlobStorage(vault).list())
    assert states[share_id]["cid"] not in held and states[keep_id]["cid"] in held

    with serving(patient_vault, port):
        gone = _open(link)
        kept = _open(keep_link, None, "--json")
    assert gone.code == 1
    assert gone.err.strip() == "medvault: This share is no longer available; it may have been revoked or locked."
    assert kept.code == 0, kept.err
    assert json.loads(kept.out)["bundles"][0]["type"] == "document"  # the IPS share is untouched

    again = cli_in(patient_vault, "share", "revoke", share_id)
    assert again.code == 0 and "already revoked" in again.out
    missing = cli_in(patient_vault, "share", "revoke", "nosuchshare")
    assert missing.code == 1 and "no share with that id" in missing.err


def test_share_list_human_and_json(patient_vault):
    port = free_port()
    _, share_id = _create(patient_vault, port, "--type", "Condition", "--label", "list me", "--expires", "2h")
    rows = _shares(patient_vault)
    r = rows[share_id]
    assert r["state"] == "active" and r["recipient"] == "bearer" and r["label"] == "list me"
    assert r["expires_at"] - r["created_at"] == 2 * 3600
    human = cli_in(patient_vault, "share", "list")
    line = next(l for l in human.out.splitlines() if l.startswith(share_id))
    assert "active" in line and "anyone with the link" in line


@pytest.mark.parametrize("case", ["unknown-scheme", "garbage-image", "blank-image", "malformed-link",
                                  "version-too-new"])
def test_bad_input_to_open_is_one_line_and_touches_no_vault(case, patient_vault, tmp_path):
    import base64
    if case == "unknown-scheme":
        source, expected = "ftp:/example.org/share", "not a SMART Health Link or a medvault link"
    elif case == "garbage-image":
        source = str(tmp_path / "garbage.png")
        Path(source).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
        expected = "not an image medvault can read"
    elif case == "blank-image":
        source = str(tmp_path / "blank.png")
        Image.new("L", (300, 300), 255).save(source)
        expected = "No readable QR code was found"
    elif case == "malformed-link":
        source, expected = "shlink:/eyJ1cmwiOi!!", "damaged"
    else:
        body = json.dumps({"url": "https://example.org/x", "key": "A" * 43, "flag": "U", "v": 9}).encode()
        source = "shlink:/" + base64.urlsafe_b64encode(body).decode().rstrip("=")
        expected = "newer version"
    shares_before = _shares(patient_vault)
    before = vault_fingerprint(patient_vault)  # after the listing, which unlocks (and audits) once
    res = run_medvault(["open", source], env_for(patient_vault))
    assert res.code == 1 and res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medvault: ") and expected in lines[0], res.err
    assert "Traceback" not in res.err
    assert vault_fingerprint(patient_vault) == before
    assert _shares(patient_vault) == shares_before


@pytest.mark.parametrize("args, expected", [
    (["--type", "Condition", "--expires", "7x"], "expiry must be a number"),
    (["--type", "NoSuchType"], "Nothing in the vault matches"),
    (["--type", "Condition", "--to", "medvault:/e30"], "invalid version number"),
    (["--type", "Condition", "--label", "L" * 81], "longer than 80"),
])
def test_bad_share_create_changes_nothing(args, expected, patient_vault):
    shares_before = _shares(patient_vault)
    from vault.shares_store import VaultBlobStorage
    from vault.store import Vault
    with Vault.unlock(patient_vault, PASSPHRASE) as vault:
        blobs_before = set(VaultBlobStorage(vault).list())
    res = cli_in(patient_vault, "share", "create", *args)
    assert res.code == 1 and res.out == ""
    assert len(res.err.strip().splitlines()) == 1 and expected in res.err, res.err
    assert _shares(patient_vault) == shares_before
    with Vault.unlock(patient_vault, PASSPHRASE) as vault:
        assert set(VaultBlobStorage(vault).list()) == blobs_before

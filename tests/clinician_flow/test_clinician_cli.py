"""The clinician's commands: ``init --clinician``, ``profile``, ``writeback`` and ``clinicians``, against real vaults
and real ``medvault serve`` processes (the patient's shares and the clinician's notes are fetched over loopback)."""

from __future__ import annotations

import json

from tests.clinician_flow.conftest import PATIENT_FILE, SYNTHEA
from tests.share_cli.conftest import cli_in, free_port, serving


def _ok(result):
    assert result.code == 0, (result.code, result.err, result.out)
    return result


def test_init_as_a_clinician_puts_the_name_and_organisation_on_the_card(tmp_path):
    from sync import links, qr
    folder = tmp_path / "doctor"
    created = _ok(cli_in(folder, "init", "--kdf-profile", "test-insecure", "--clinician", "--name", "Dr Ada Sample",
                         "--organisation", "Riverside Practice"))
    assert "Clinician mode: your card names you as Dr Ada Sample, Riverside Practice" in created.out
    shown = json.loads(_ok(cli_in(folder, "profile", "--json", "--card-qr", str(tmp_path / "card.png"))).out)
    assert shown["clinician"] and shown["registration"] == "not checked"
    card = links.card_from_link(qr.decode_file(tmp_path / "card.png"))
    assert (card.name, card.organisation) == ("Dr Ada Sample", "Riverside Practice")
    assert links.card_from_link(_ok(cli_in(folder, "card")).out.strip()).organisation == "Riverside Practice"

    off = _ok(cli_in(folder, "profile", "--patient"))
    assert "Mode: patient" in off.out and "Dr Ada Sample" in off.out      # the name is kept for next time


def test_init_refuses_a_clinician_without_a_name_before_creating_anything(tmp_path):
    bare = cli_in(tmp_path / "v", "init", "--kdf-profile", "test-insecure", "--name", "Dr Nobody")
    assert bare.code == 2 and "--clinician" in bare.err
    nameless = cli_in(tmp_path / "v", "init", "--kdf-profile", "test-insecure", "--clinician")
    assert nameless.code == 1 and "needs a name" in nameless.err
    assert not (tmp_path / "v").exists()
    weird = cli_in(tmp_path / "v", "init", "--kdf-profile", "test-insecure", "--clinician", "--name", "Dr \x1b[2J")
    assert weird.code == 1 and "control characters" in weird.err and not (tmp_path / "v").exists()


def test_writeback_from_the_command_line_and_confirming_the_card(tmp_path):
    patient, doctor = tmp_path / "patient", tmp_path / "doctor"
    _ok(cli_in(patient, "init", "--kdf-profile", "test-insecure"))
    _ok(cli_in(doctor, "init", "--kdf-profile", "test-insecure", "--clinician", "--name", "Dr Ada Sample"))
    files = [str(p) for p in sorted(SYNTHEA.glob("hospitalInformation*.json"))
             + sorted(SYNTHEA.glob("practitionerInformation*.json"))] + [str(SYNTHEA / PATIENT_FILE)]
    _ok(cli_in(patient, "import", *files))
    _ok(cli_in(doctor, "profile", "--card-qr", str(tmp_path / "card.png")))
    p_port, d_port = free_port(), free_port()
    share = json.loads(_ok(cli_in(patient, "share", "create", "--ips", "--to", str(tmp_path / "card.png"),
                                  "--gateway", f"http://127.0.0.1:{p_port}", "--json")).out)

    assert cli_in(doctor, "writeback", share["link"], "--vital", "pulse=70").code == 2
    assert cli_in(doctor, "writeback", share["link"]).code == 2
    too_high = cli_in(doctor, "writeback", share["link"], "--vital", "heart-rate=700")
    assert too_high.code == 1 and "between 20 and 300" in too_high.err

    _ok(cli_in(doctor, "share", "backend", "--embedded"))
    from sync import shares
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    with Vault.unlock(doctor, PASSPHRASE) as vault:
        shares.set_gateway_setting(vault, f"http://127.0.0.1:{d_port}")
    with serving(patient, p_port):
        back = json.loads(_ok(cli_in(doctor, "writeback", share["link"], "--allow-local-http", "--note",
                                     "Reviewed; no change.", "--vital", "blood-pressure=128/82", "--qr",
                                     str(tmp_path / "back.png"), "--json")).out)
    assert len(back["resources"]) == 2
    with serving(doctor, d_port):
        refused_remote = cli_in(patient, "import", str(back["link"]))
        assert refused_remote.code == 1 and "http" in refused_remote.err.lower()
        imported = json.loads(_ok(cli_in(patient, "import", back["link"], "--allow-local-http", "--json")).out)
    assert imported[0]["trust"] == "unknown-signer"
    assert "no consent network is set up" in imported[0]["signature"]

    confirmed = _ok(cli_in(patient, "clinicians", "confirm", str(tmp_path / "card.png")))
    assert "Confirmed Dr Ada Sample" in confirmed.out
    listed = json.loads(_ok(cli_in(patient, "clinicians", "list", "--json")).out)
    assert [c["name"] for c in listed] == ["Dr Ada Sample"]
    rechecked = _ok(cli_in(patient, "clinicians", "recheck"))
    assert "1 now show as signed by a clinician" in rechecked.out
    rows = json.loads(_ok(cli_in(patient, "list", "--type", "Observation", "--json", "--limit", "10000")).out)
    assert "clinician-signed" in {r["trust"] for r in rows}
    assert _ok(cli_in(patient, "clinicians", "forget", listed[0]["did"])).code == 0
    assert cli_in(patient, "clinicians", "forget", listed[0]["did"]).code == 1
